package store

// Rate limits: fixed-window hit counters per scope, shared by every
// replica (package ratelimit decides the scopes and the limits).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// HitRateLimit counts one hit on scope in the fixed window that starts at
// windowStart and lasts window, if fewer than limit hits were counted in
// that window; a row left from an earlier window starts over at 1. It
// returns the hit count including this one and whether the hit was
// allowed. One conditional UPSERT: concurrent hits from any number of
// replicas never admit more than limit per window.
func (s *Store) HitRateLimit(ctx context.Context, scope string, windowStart time.Time, window time.Duration, limit int) (hits int, allowed bool, err error) {
	if limit < 1 {
		return 0, false, nil
	}
	start := Millis(windowStart)
	end := start + window.Milliseconds()
	err = s.InTx(ctx, func(tx *Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO rate_limits (scope, window_start, hits, expires_at) VALUES (?, ?, 1, ?)
		ON CONFLICT (scope) DO UPDATE SET
			hits = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.hits + 1 ELSE 1 END,
			window_start = excluded.window_start,
			expires_at = excluded.expires_at
		WHERE rate_limits.window_start <> excluded.window_start OR rate_limits.hits < ?
		RETURNING hits`, scope, start, end, limit).Scan(&hits)
	})
	if errors.Is(err, sql.ErrNoRows) {
		// The conditional update refused: the window is full.
		return limit, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("rate limit %s: %w", scope, s.mapErr(err))
	}
	return hits, true, nil
}

// PruneRateLimits deletes counters whose window ended before now and
// reports how many went.
func (s *Store) PruneRateLimits(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.Exec(ctx, `DELETE FROM rate_limits WHERE expires_at <= ?`, Millis(now))
	if err != nil {
		return 0, fmt.Errorf("prune rate limits: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune rate limits: %w", err)
	}
	return n, nil
}

// ResetRateLimit forgets the counter of scope (e.g. the login counter of
// a user after an operator unblocks them).
func (s *Store) ResetRateLimit(ctx context.Context, scope string) error {
	if _, err := s.Exec(ctx, `DELETE FROM rate_limits WHERE scope = ?`, scope); err != nil {
		return fmt.Errorf("reset rate limit %s: %w", scope, err)
	}
	return nil
}
