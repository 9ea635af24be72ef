-- The audit log: an append-only, hash-chained record of security-relevant
-- events (package audit documents the hash). seq is the primary key and
-- has no gaps; rows are only ever inserted, and the triggers below refuse
-- UPDATE and DELETE so that a bug cannot rewrite history (someone with
-- write access to the file still can: the hash chain is what detects it).
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    object    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Checkpoints: the chain head at seq, with an RFC 3161 token over its hash
-- from our TSA, so that the chain up to seq provably existed at that time
-- (and truncating the log below a checkpoint is detected).
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    token      BLOB NOT NULL
);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
