-- Automatic signature (packages sam / jobs / csc / admin): per-credential
-- usage counters and limit, the per-signature log, asynchronous signing
-- jobs with per-item state, and idempotency keys. No document is kept
-- beyond an unfinished job's lifetime (validity_period), and no secret is
-- stored: jobs keep only the SAD's SHA-256 hash (to refund unused budget).

-- Totals and the optional limit (max_signatures 0 = none). total moves
-- with one conditional upsert per signing call, in the transaction that
-- consumes the SAD.
CREATE TABLE credential_usage (
    credential_id  TEXT PRIMARY KEY,
    total          BIGINT NOT NULL DEFAULT 0,
    max_signatures BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL DEFAULT 0
);

-- Signatures per UTC day (day = Unix days).
CREATE TABLE credential_usage_daily (
    credential_id TEXT NOT NULL,
    day           BIGINT NOT NULL,
    cnt           BIGINT NOT NULL,
    PRIMARY KEY (credential_id, day)
);

-- One row per signature (cnt 1), per signed batch of hashes (cnt n, the
-- n digests concatenated in digests: one INSERT per signHash call keeps
-- the log off the signing path) or per refused batch (cnt n): what was
-- signed (document name or hex digest), never the document.
CREATE TABLE signature_log (
    id            TEXT PRIMARY KEY,
    at            BIGINT NOT NULL,
    credential_id TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    client        TEXT NOT NULL DEFAULT '',
    document      TEXT NOT NULL DEFAULT '',
    format        TEXT NOT NULL DEFAULT '',
    level         TEXT NOT NULL DEFAULT '',
    hash_algo     TEXT NOT NULL DEFAULT '',
    cnt           INTEGER NOT NULL DEFAULT 1,
    digests       BYTEA,
    outcome       TEXT NOT NULL,
    job_id        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX signature_log_credential ON signature_log (credential_id, at);

-- An asynchronous signing job (CSC operationMode "A"). status moves
-- running -> notify (done, response_uri not yet told) -> done. A replica
-- works on a job only while it holds the lease.
CREATE TABLE sign_jobs (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    client_id     TEXT NOT NULL DEFAULT '',
    domain        TEXT NOT NULL DEFAULT '',
    credential_id TEXT NOT NULL,
    kind          TEXT NOT NULL,
    status        TEXT NOT NULL,
    sad_hash      TEXT NOT NULL,
    sign_opts     TEXT NOT NULL,
    params        BYTEA,
    response_uri  TEXT NOT NULL DEFAULT '',
    total         INTEGER NOT NULL,
    lease_owner   TEXT NOT NULL DEFAULT '',
    lease_until   BIGINT NOT NULL DEFAULT 0,
    notify_tries  INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    finished_at   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sign_jobs_status ON sign_jobs (status, lease_until);
CREATE INDEX sign_jobs_expires ON sign_jobs (expires_at);

-- The job's items: state pending -> done (result set in the same UPDATE)
-- or failed (error set).
CREATE TABLE sign_job_items (
    job_id     TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    state      TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    params     BYTEA,
    input      BYTEA NOT NULL,
    result     BYTEA,
    error_code TEXT NOT NULL DEFAULT '',
    error_msg  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX sign_job_items_state ON sign_job_items (job_id, state, idx);

-- Idempotency-Key of signHash / signDoc, per principal: the canonical
-- body's hash and, once answered, the response (status 0 = in progress).
CREATE TABLE idempotency_keys (
    user_id    TEXT NOT NULL,
    idem_key   TEXT NOT NULL,
    route      TEXT NOT NULL,
    body_hash  TEXT NOT NULL,
    status     INTEGER NOT NULL DEFAULT 0,
    response   BYTEA,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
