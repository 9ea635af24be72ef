-- The certificate authority: its own certificates (root, issuing, the
-- delegated OCSP responder, the time-stamping unit), every certificate it
-- issued with its lifecycle state, and the latest CRL of each CA with the
-- counter that numbers CRLs across replicas.
CREATE TABLE ca_authorities (
    role       TEXT PRIMARY KEY,          -- root, issuing, ocsp, tsa
    key_id     TEXT NOT NULL,             -- the HSM key that signs for it
    cert_der   BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE ca_certificates (
    serial        TEXT PRIMARY KEY,       -- lower-case hex, no leading zeros
    issuer        TEXT NOT NULL,          -- role of the issuing CA
    owner         TEXT NOT NULL,          -- e.g. credential id, "ca:tsa"
    subject       TEXT NOT NULL,
    der           BLOB NOT NULL,
    status        TEXT NOT NULL,          -- valid, suspended, revoked
    reason        TEXT NOT NULL,          -- CRL reason name, '' when valid
    revoked_at    BIGINT NOT NULL,        -- Unix ms of suspension/revocation
    not_before    BIGINT NOT NULL,
    not_after     BIGINT NOT NULL,
    superseded_by TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX ca_certificates_owner ON ca_certificates (owner);
CREATE INDEX ca_certificates_crl ON ca_certificates (issuer, status, not_after);

CREATE TABLE ca_crls (
    issuer      TEXT PRIMARY KEY,
    last_number BIGINT NOT NULL,          -- highest CRL number handed out
    crl_number  BIGINT NOT NULL,          -- number of the CRL stored in der
    der         BLOB NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL
);
