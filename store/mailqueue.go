package store

// The outgoing e-mail queue (package mailqueue).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// QueuedMail is one message of the mail queue.
type QueuedMail struct {
	ID, To, Subject, Body string
	AttachmentName        string
	Attachment            []byte
	CreatedAt             time.Time
	// Attempts counts the failed deliveries so far.
	Attempts int
}

// EnqueueMail stores m for delivery from now on.
func (s *Store) EnqueueMail(ctx context.Context, m QueuedMail) error {
	_, err := s.Exec(ctx, `INSERT INTO mail_queue (id, to_email, subject, body, attachment_name, attachment, created_at, next_at)
		VALUES (?,?,?,?,?,?,?,?)`, m.ID, m.To, m.Subject, m.Body, m.AttachmentName, m.Attachment, Millis(m.CreatedAt), Millis(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("enqueue mail: %w", err)
	}
	return nil
}

// ClaimMail leases (until now+lease) the oldest message that is due, not
// delivered, not given up and not leased by another replica. ErrNotFound
// when there is none. One conditional UPDATE decides between replicas.
func (s *Store) ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (*QueuedMail, error) {
	for attempt := 0; attempt < 5; attempt++ {
		var id string
		err := s.QueryRow(ctx, `SELECT id FROM mail_queue WHERE sent_at = 0 AND failed_at = 0 AND next_at <= ? AND lease_until < ?
			ORDER BY next_at, id LIMIT 1`, Millis(now), Millis(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("claim mail: %w", ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("claim mail: %w", s.mapErr(err))
		}
		res, err := s.Exec(ctx, `UPDATE mail_queue SET lease_until = ? WHERE id = ? AND lease_until < ? AND sent_at = 0 AND failed_at = 0`,
			Millis(now.Add(lease)), id, Millis(now))
		if err != nil {
			return nil, fmt.Errorf("claim mail: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue // another replica took it first
		}
		m := &QueuedMail{}
		var created int64
		err = s.QueryRow(ctx, `SELECT id, to_email, subject, body, attachment_name, attachment, created_at, attempts
			FROM mail_queue WHERE id = ?`, id).Scan(&m.ID, &m.To, &m.Subject, &m.Body, &m.AttachmentName, &m.Attachment, &created, &m.Attempts)
		if err != nil {
			return nil, fmt.Errorf("claim mail: %w", s.mapErr(err))
		}
		m.CreatedAt = FromMillis(created)
		return m, nil
	}
	return nil, fmt.Errorf("claim mail: %w", ErrNotFound)
}

// MailSent records the delivery of id and clears its content (the
// verification link, the envelope): only the record of the delivery stays.
func (s *Store) MailSent(ctx context.Context, id string, now time.Time) error {
	_, err := s.Exec(ctx, `UPDATE mail_queue SET sent_at = ?, lease_until = 0, body = '', attachment = NULL, last_error = ''
		WHERE id = ?`, Millis(now), id)
	if err != nil {
		return fmt.Errorf("mail sent %s: %w", id, err)
	}
	return nil
}

// MailFailed records a failed delivery of id: it is tried again at next,
// or, when giveUp, never again (its content is cleared like a sent one's).
func (s *Store) MailFailed(ctx context.Context, id, reason string, next time.Time, giveUp bool, now time.Time) error {
	q := `UPDATE mail_queue SET attempts = attempts + 1, next_at = ?, lease_until = 0, last_error = ? WHERE id = ?`
	args := []any{Millis(next), reason, id}
	if giveUp {
		q = `UPDATE mail_queue SET attempts = attempts + 1, failed_at = ?, lease_until = 0, last_error = ?, body = '', attachment = NULL
			WHERE id = ?`
		args = []any{Millis(now), reason, id}
	}
	if _, err := s.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("mail failed %s: %w", id, err)
	}
	return nil
}

// MailQueueDepth counts the messages still to deliver.
func (s *Store) MailQueueDepth(ctx context.Context) (int, error) {
	var n int
	if err := s.QueryRow(ctx, `SELECT COUNT(*) FROM mail_queue WHERE sent_at = 0 AND failed_at = 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("mail queue depth: %w", s.mapErr(err))
	}
	return n, nil
}

// MailQueueEntry is a queued message as operators see it: who, what and
// how delivery went, never the content.
type MailQueueEntry struct {
	ID, To, Subject, AttachmentName string
	CreatedAt                       time.Time
	Attempts                        int
	// NextAt is the next attempt of a pending message; SentAt and FailedAt
	// are zero until it was delivered or given up.
	NextAt, SentAt, FailedAt time.Time
	LastError                string
}

// MailQueueEntries lists messages in state "pending", "sent" or "failed"
// (given up), newest first, at most limit.
func (s *Store) MailQueueEntries(ctx context.Context, state string, limit int) ([]MailQueueEntry, error) {
	where := map[string]string{
		"pending": "sent_at = 0 AND failed_at = 0",
		"sent":    "sent_at > 0",
		"failed":  "failed_at > 0",
	}[state]
	if where == "" {
		return nil, fmt.Errorf("mail queue entries: unknown state %q", state)
	}
	rows, err := s.Query(ctx, `SELECT id, to_email, subject, attachment_name, created_at, attempts, next_at, sent_at, failed_at, last_error
		FROM mail_queue WHERE `+where+` ORDER BY created_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("mail queue entries: %w", err)
	}
	defer rows.Close()
	var out []MailQueueEntry
	for rows.Next() {
		var e MailQueueEntry
		var created, next, sent, failed int64
		if err := rows.Scan(&e.ID, &e.To, &e.Subject, &e.AttachmentName, &created, &e.Attempts, &next, &sent, &failed, &e.LastError); err != nil {
			return nil, fmt.Errorf("mail queue entries: %w", err)
		}
		e.CreatedAt, e.NextAt, e.SentAt, e.FailedAt = FromMillis(created), FromMillis(next), FromMillis(sent), FromMillis(failed)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mail queue entries: %w", err)
	}
	return out, nil
}
