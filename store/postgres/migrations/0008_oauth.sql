-- OAuth2 for CSC (packages sam / oauth / admin): registered clients,
-- pending authorization requests (pushed with PAR or started in a
-- browser), authorization codes and grants. Secrets are stored only as
-- SHA-256 hashes (client secrets, request handles, browser binders,
-- codes); access and refresh tokens stay in access_tokens, and a
-- credential-scope token is also a row of sads under the same hash.
CREATE TABLE oauth_clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    domain        TEXT,
    grant_types   TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- A pending authorization request: params is the validated request
-- (JSON); pushed = 1 for a PAR row (used once by authorize), 0 for a
-- browser flow, bound to the browser (browser_hash) and to the user once
-- logged in.
CREATE TABLE oauth_requests (
    hash         TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    params       TEXT NOT NULL,
    pushed       INTEGER NOT NULL,
    browser_hash TEXT NOT NULL DEFAULT '',
    csrf         TEXT NOT NULL DEFAULT '',
    user_id      TEXT NOT NULL DEFAULT '',
    used         INTEGER NOT NULL DEFAULT 0,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX oauth_requests_expires ON oauth_requests (expires_at);

-- An authorization code: single use (used), bound to client, redirect
-- URI and PKCE challenge; for scope credential also to what the holder
-- authorized with PIN + OTP (credential, count, digests concatenated).
-- reused = 1 once a second redemption was tried: the grant is revoked.
CREATE TABLE oauth_codes (
    hash           TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    credential_id  TEXT NOT NULL DEFAULT '',
    num_signatures INTEGER NOT NULL DEFAULT 0,
    hash_algo      TEXT NOT NULL DEFAULT '',
    hashes         BYTEA,
    grant_id       TEXT NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0,
    issued         INTEGER NOT NULL DEFAULT 0,
    reused         INTEGER NOT NULL DEFAULT 0,
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX oauth_codes_expires ON oauth_codes (expires_at);

-- A grant: what the tokens with this grant_id (access_tokens) may do.
CREATE TABLE oauth_grants (
    id            TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL DEFAULT '',
    scope         TEXT NOT NULL,
    credential_id TEXT NOT NULL DEFAULT '',
    domain        TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);
