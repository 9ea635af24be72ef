-- Identity: users, credentials, access tokens, SADs, OTP state, SMS outbox
-- and signature history (package sam / otp / admin). Secrets are stored
-- only as argon2id (PIN, PUK, ERC, password) or SHA-256 (tokens, SAD)
-- hashes; TOTP seeds only AES-GCM sealed.
CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    password_hash        TEXT NOT NULL,
    email                TEXT NOT NULL,
    phone                TEXT NOT NULL,
    given_name           TEXT NOT NULL,
    surname              TEXT NOT NULL,
    fiscal_code          TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL,
    password_changed_at  BIGINT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL
);

CREATE TABLE credentials (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id),
    description    TEXT NOT NULL DEFAULT '',
    key_algo       TEXT NOT NULL,
    cert_serial    TEXT NOT NULL,
    cert_chain     BLOB NOT NULL,
    pin_hash       TEXT NOT NULL DEFAULT '',
    puk_hash       TEXT NOT NULL,
    erc_hash       TEXT NOT NULL,
    iut            TEXT NOT NULL UNIQUE,
    otp_type       TEXT NOT NULL,
    totp_secret    BLOB,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    scal           INTEGER NOT NULL,
    multisign      INTEGER NOT NULL,
    domain         TEXT,
    alias          TEXT,
    key_status     TEXT NOT NULL,
    activated      INTEGER NOT NULL,
    pin_tries      INTEGER NOT NULL DEFAULT 0,
    puk_tries      INTEGER NOT NULL DEFAULT 0,
    otp_tries      INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    UNIQUE (domain, alias)
);
CREATE INDEX credentials_user ON credentials (user_id);

CREATE TABLE access_tokens (
    hash       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL DEFAULT '',
    grant_id   TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);

CREATE TABLE sads (
    hash          TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    hash_algo     TEXT NOT NULL DEFAULT '',
    remaining     INTEGER NOT NULL,
    bound         INTEGER NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0,
    expires_at    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- The multiset of hashes a SAD authorizes: cnt copies of digest, used of
-- them consumed.
CREATE TABLE sad_hashes (
    sad_hash TEXT NOT NULL,
    digest   BLOB NOT NULL,
    cnt      INTEGER NOT NULL,
    used     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sad_hash, digest)
);

CREATE TABLE otp_sms (
    id            TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL,
    code_hash     BLOB NOT NULL,
    binding       BLOB,
    attempts      INTEGER NOT NULL DEFAULT 0,
    used          INTEGER NOT NULL DEFAULT 0,
    expires_at    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX otp_sms_credential ON otp_sms (credential_id, created_at);

CREATE TABLE otp_send_rate (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    cnt          INTEGER NOT NULL
);

CREATE TABLE sms_outbox (
    id         TEXT PRIMARY KEY,
    to_phone   TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sms_outbox_to ON sms_outbox (to_phone, created_at);

CREATE TABLE signature_history (
    id            TEXT PRIMARY KEY,
    at            BIGINT NOT NULL,
    user_id       TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    action        TEXT NOT NULL,
    hash_algo     TEXT NOT NULL DEFAULT '',
    cnt           INTEGER NOT NULL,
    outcome       TEXT NOT NULL
);
CREATE INDEX signature_history_credential ON signature_history (credential_id, at);
