-- Self-care and enrollment (packages enroll / portal): portal accounts
-- created by registration, portal sessions (stored hashed), the dev e-mail
-- outbox and certificate requests with their identification evidence.
-- No secret is stored here in clear: session ids and e-mail verification
-- tokens only as SHA-256 hashes; PIN, PUK, ERC and passwords live (hashed)
-- in users / credentials.
CREATE TABLE selfcare_accounts (
    user_id            TEXT PRIMARY KEY,
    email              TEXT NOT NULL UNIQUE,
    country            TEXT NOT NULL,
    lang               TEXT NOT NULL DEFAULT 'en',
    consent_processing INTEGER NOT NULL,
    consent_marketing  INTEGER NOT NULL,
    verify_hash        TEXT NOT NULL,
    verify_expires_at  BIGINT NOT NULL,
    verified_at        BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL
);
CREATE INDEX selfcare_accounts_verify ON selfcare_accounts (verify_hash);

CREATE TABLE selfcare_sessions (
    hash        TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    must_change INTEGER NOT NULL DEFAULT 0,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX selfcare_sessions_user ON selfcare_sessions (user_id);

CREATE TABLE email_outbox (
    id              TEXT PRIMARY KEY,
    to_email        TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    attachment_name TEXT NOT NULL DEFAULT '',
    attachment      BLOB,
    created_at      BIGINT NOT NULL
);
CREATE INDEX email_outbox_to ON email_outbox (to_email, created_at);

-- A certificate request and its identification evidence. status moves
-- pending → approved | rejected (operator) → issued (holder) with one
-- conditional UPDATE each.
CREATE TABLE cert_requests (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    given_name      TEXT NOT NULL,
    surname         TEXT NOT NULL,
    fiscal_code     TEXT NOT NULL DEFAULT '',
    birth_date      TEXT NOT NULL DEFAULT '',
    phone           TEXT NOT NULL,
    email           TEXT NOT NULL,
    country         TEXT NOT NULL,
    id_method       TEXT NOT NULL,
    doc_type        TEXT NOT NULL,
    doc_number      TEXT NOT NULL,
    doc_country     TEXT NOT NULL,
    doc_expiry      TEXT NOT NULL,
    operator        TEXT NOT NULL DEFAULT '',
    decision_reason TEXT NOT NULL DEFAULT '',
    decided_at      BIGINT NOT NULL DEFAULT 0,
    contract_accepted_at BIGINT NOT NULL DEFAULT 0,
    privacy_accepted_at  BIGINT NOT NULL DEFAULT 0,
    contract_version     TEXT NOT NULL DEFAULT '',
    credential_id   TEXT NOT NULL DEFAULT '',
    envelope_number TEXT NOT NULL DEFAULT '',
    issued_at       BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);
CREATE INDEX cert_requests_user ON cert_requests (user_id, created_at);
CREATE INDEX cert_requests_status ON cert_requests (status, created_at);
