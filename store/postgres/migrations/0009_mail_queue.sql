-- Outgoing e-mail waiting for the SMTP server (package mailqueue): a mail
-- is queued in the step that produces it, so a registration or an
-- issuance never fails, nor loses its envelope, because the server is
-- down; every replica delivers from the queue, one at a time per mail
-- (lease_until), retrying with backoff. Once delivered the content is
-- cleared: the row stays as a record of the delivery.
CREATE TABLE mail_queue (
    id              TEXT PRIMARY KEY,
    to_email        TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    attachment_name TEXT NOT NULL DEFAULT '',
    attachment      BYTEA,
    created_at      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    sent_at         BIGINT NOT NULL DEFAULT 0,
    failed_at       BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mail_queue_due ON mail_queue (sent_at, failed_at, next_at);
