package store

// OTP state: the TOTP replay guard, SMS challenges, the per-credential
// send rate and the dev SMS outbox.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AdvanceTOTPStep records step as the last accepted TOTP time step of the
// credential if it is newer than the stored one, and reports whether it
// was. One conditional UPDATE: of two replicas accepting the same code at
// once, exactly one wins.
func (s *Store) AdvanceTOTPStep(ctx context.Context, credentialID string, step int64) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE credentials SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`, step, credentialID, step)
	if err != nil {
		return false, fmt.Errorf("advance totp step %s: %w", credentialID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("advance totp step %s: %w", credentialID, err)
	}
	return n == 1, nil
}

// SMSChallenge is an online OTP sent by SMS (only its hash is stored).
type SMSChallenge struct {
	ID           string
	CredentialID string
	CodeHash     []byte
	// Binding is a digest of the hashes being authorized, or nil.
	Binding   []byte
	Attempts  int
	Used      bool
	ExpiresAt time.Time
	CreatedAt time.Time
}

// PutSMSChallenge stores a new challenge and voids the credential's
// earlier ones, so only the last code sent is valid.
func (s *Store) PutSMSChallenge(ctx context.Context, c SMSChallenge) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE otp_sms SET used = 1 WHERE credential_id = ? AND used = 0`, c.CredentialID); err != nil {
			return fmt.Errorf("void sms challenges: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO otp_sms (id, credential_id, code_hash, binding, attempts, used, expires_at, created_at)
			VALUES (?,?,?,?,0,0,?,?)`, c.ID, c.CredentialID, c.CodeHash, c.Binding, Millis(c.ExpiresAt), Millis(c.CreatedAt)); err != nil {
			return fmt.Errorf("put sms challenge: %w", err)
		}
		return nil
	})
}

// ActiveSMSChallenge returns the credential's newest unused, unexpired
// challenge, or ErrNotFound.
func (s *Store) ActiveSMSChallenge(ctx context.Context, credentialID string, now time.Time) (*SMSChallenge, error) {
	var c SMSChallenge
	var used int
	var exp, created int64
	err := s.QueryRow(ctx, `SELECT id, credential_id, code_hash, binding, attempts, used, expires_at, created_at FROM otp_sms
		WHERE credential_id = ? AND used = 0 AND expires_at > ? ORDER BY created_at DESC, id DESC LIMIT 1`,
		credentialID, Millis(now)).Scan(&c.ID, &c.CredentialID, &c.CodeHash, &c.Binding, &c.Attempts, &used, &exp, &created)
	if err != nil {
		return nil, fmt.Errorf("sms challenge %s: %w", credentialID, s.mapErr(err))
	}
	c.Used, c.ExpiresAt, c.CreatedAt = used != 0, FromMillis(exp), FromMillis(created)
	return &c, nil
}

// SMSAttempt counts one verification attempt against a challenge unless
// it is used, expired or has had max attempts already; it reports whether
// the attempt may proceed. One conditional UPDATE.
func (s *Store) SMSAttempt(ctx context.Context, id string, max int, now time.Time) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE otp_sms SET attempts = attempts + 1 WHERE id = ? AND used = 0 AND attempts < ? AND expires_at > ?`,
		id, max, Millis(now))
	if err != nil {
		return false, fmt.Errorf("sms attempt: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// UseSMSChallenge marks a challenge used; it reports false if it already was.
func (s *Store) UseSMSChallenge(ctx context.Context, id string) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE otp_sms SET used = 1 WHERE id = ? AND used = 0`, id)
	if err != nil {
		return false, fmt.Errorf("use sms challenge: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// TakeSendToken counts one send under key in a fixed window and reports
// whether it is allowed (at most max per window); when refused, retryAfter
// says when the window ends. One upsert with a conditional update.
func (s *Store) TakeSendToken(ctx context.Context, key string, window time.Duration, max int, now time.Time) (ok bool, retryAfter time.Duration, err error) {
	nowMs := Millis(now)
	cutoff := nowMs - window.Milliseconds()
	res, err := s.Exec(ctx, `INSERT INTO otp_send_rate (key, window_start, cnt) VALUES (?, ?, 1)
		ON CONFLICT (key) DO UPDATE SET
			cnt = CASE WHEN otp_send_rate.window_start <= ? THEN 1 ELSE otp_send_rate.cnt + 1 END,
			window_start = CASE WHEN otp_send_rate.window_start <= ? THEN ? ELSE otp_send_rate.window_start END
		WHERE otp_send_rate.window_start <= ? OR otp_send_rate.cnt < ?`,
		key, nowMs, cutoff, cutoff, nowMs, cutoff, max)
	if err != nil {
		return false, 0, fmt.Errorf("send rate %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, 0, fmt.Errorf("send rate %s: %w", key, err)
	}
	if n == 1 {
		return true, 0, nil
	}
	var start int64
	if err := s.QueryRow(ctx, `SELECT window_start FROM otp_send_rate WHERE key = ?`, key).Scan(&start); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, window, nil
		}
		return false, 0, fmt.Errorf("send rate %s: %w", key, s.mapErr(err))
	}
	wait := time.Duration(start+window.Milliseconds()-nowMs) * time.Millisecond
	if wait <= 0 {
		wait = time.Second
	}
	return false, wait, nil
}

// OutboxMessage is a text message the dev SMS sender "sent".
type OutboxMessage struct {
	ID, To, Body string
	CreatedAt    time.Time
}

// PutOutbox appends a message to the dev outbox.
func (s *Store) PutOutbox(ctx context.Context, m OutboxMessage) error {
	_, err := s.Exec(ctx, `INSERT INTO sms_outbox (id, to_phone, body, created_at) VALUES (?,?,?,?)`, m.ID, m.To, m.Body, Millis(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("put outbox: %w", err)
	}
	return nil
}

// Outbox returns the messages sent to a phone number ("" = all), newest
// first, at most limit (default 100).
func (s *Store) Outbox(ctx context.Context, to string, limit int) ([]OutboxMessage, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.Query(ctx, `SELECT id, to_phone, body, created_at FROM sms_outbox
		WHERE (? = '' OR to_phone = ?) ORDER BY created_at DESC, id DESC LIMIT ?`, to, to, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		var m OutboxMessage
		var at int64
		if err := rows.Scan(&m.ID, &m.To, &m.Body, &at); err != nil {
			return nil, fmt.Errorf("outbox: %w", s.mapErr(err))
		}
		m.CreatedAt = FromMillis(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: %w", s.mapErr(err))
	}
	return out, nil
}
