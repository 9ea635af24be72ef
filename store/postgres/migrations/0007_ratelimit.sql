-- Rate limits (package ratelimit): one row per scope ("login:user:alice",
-- "authorize:cred:c-1", "emergency:ip:192.0.2.1"), a fixed-window counter
-- moved by one conditional UPSERT per hit, so a limit holds across every
-- replica sharing the database. Rows whose window has ended are pruned.
CREATE TABLE rate_limits (
    scope        TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits         INTEGER NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX rate_limits_expires ON rate_limits (expires_at);
