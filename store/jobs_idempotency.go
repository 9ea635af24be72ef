package store

// Idempotency keys of the signing calls (Idempotency-Key header): a retry
// with the same key and body gets the stored answer instead of signing
// (and spending SAD budget) again.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// IdempotencyRecord is a stored key. Status 0 means the first request is
// still being answered.
type IdempotencyRecord struct {
	UserID, Key, Route string
	// BodyHash identifies the canonical request body.
	BodyHash  string
	Status    int
	Response  []byte
	ExpiresAt time.Time
	CreatedAt time.Time
}

// BeginIdempotent claims the key for r (status 0). When an unexpired
// record with the same user and key exists it is returned instead and
// nothing changes; nil means the caller owns the key now.
func (s *Store) BeginIdempotent(ctx context.Context, r IdempotencyRecord) (*IdempotencyRecord, error) {
	var existing *IdempotencyRecord
	err := s.InTx(ctx, func(tx *Tx) error {
		existing = nil
		if _, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ? AND expires_at <= ?`,
			r.UserID, r.Key, Millis(r.CreatedAt)); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (user_id, idem_key, route, body_hash, status, expires_at, created_at)
			VALUES (?,?,?,?,0,?,?) ON CONFLICT (user_id, idem_key) DO NOTHING`,
			r.UserID, r.Key, r.Route, r.BodyHash, Millis(r.ExpiresAt), Millis(r.CreatedAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		var e IdempotencyRecord
		var exp, created int64
		err = tx.QueryRow(ctx, `SELECT user_id, idem_key, route, body_hash, status, response, expires_at, created_at
			FROM idempotency_keys WHERE user_id = ? AND idem_key = ?`, r.UserID, r.Key).
			Scan(&e.UserID, &e.Key, &e.Route, &e.BodyHash, &e.Status, &e.Response, &exp, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("key vanished: %w", ErrConflict)
		}
		if err != nil {
			return s.mapErr(err)
		}
		e.ExpiresAt, e.CreatedAt = FromMillis(exp), FromMillis(created)
		existing = &e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency key: %w", err)
	}
	return existing, nil
}

// FinishIdempotent stores the answer for a key begun by BeginIdempotent.
func (s *Store) FinishIdempotent(ctx context.Context, userID, key string, status int, response []byte) error {
	if _, err := s.Exec(ctx, `UPDATE idempotency_keys SET status = ?, response = ? WHERE user_id = ? AND idem_key = ? AND status = 0`,
		status, response, userID, key); err != nil {
		return fmt.Errorf("finish idempotency key: %w", err)
	}
	return nil
}

// AbandonIdempotent forgets a key whose request failed in a way worth
// retrying (5xx), so that the retry runs.
func (s *Store) AbandonIdempotent(ctx context.Context, userID, key string) error {
	if _, err := s.Exec(ctx, `DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ? AND status = 0`, userID, key); err != nil {
		return fmt.Errorf("abandon idempotency key: %w", err)
	}
	return nil
}

// PurgeIdempotency deletes expired keys; it returns how many went.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	res, err := s.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= ?`, Millis(now))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
