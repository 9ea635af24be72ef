-- Small named values the service keeps across restarts (e.g. the hash of a
-- generated admin token).
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
