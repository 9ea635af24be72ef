package store

// Automatic signature, usage side: per-credential signature counters (total
// and per UTC day) with an optional limit, consumed in the same transaction
// as the SAD; and the per-signature log (what was signed, when, by which
// client, with which outcome — never the document).

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUsageLimit is matched (errors.Is) by a *UsageLimitError.
var ErrUsageLimit = errors.New("store: credential signature limit reached")

// UsageLimitError says that n more signatures would exceed the
// credential's limit.
type UsageLimitError struct {
	CredentialID string
	Limit, Total int64
	Wanted       int
}

func (e *UsageLimitError) Error() string {
	return fmt.Sprintf("credential %s: %d signatures asked, %d of %d used", e.CredentialID, e.Wanted, e.Total, e.Limit)
}

// Is makes errors.Is(err, ErrUsageLimit) true.
func (e *UsageLimitError) Is(target error) bool { return target == ErrUsageLimit }

// UsageDay is the UTC day number (days since the Unix epoch) of t, the key
// of the per-day counters.
func UsageDay(t time.Time) int64 {
	return t.UTC().Unix() / 86400
}

// SADUse is one signing call's consumption: len(Authorized) signatures
// from the SAD (bound SADs: exactly these values) and from the
// credential's counters.
type SADUse struct {
	SADHash, UserID, CredentialID string
	// HashAlgo is the algorithm of Authorized (checked against a bound SAD).
	HashAlgo   string
	Authorized [][]byte
	Now        time.Time
}

// ConsumeSADCounted is ConsumeSAD plus the usage counters, in one
// transaction: the SAD's remaining budget (one conditional UPDATE, and the
// per-hash rows for a bound SAD), the credential's total (one conditional
// upsert that refuses to pass the limit) and the day's counter. Either all
// move or none does. Errors: those of ConsumeSAD, or a *UsageLimitError.
func (s *Store) ConsumeSADCounted(ctx context.Context, u SADUse) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := consumeSADTx(ctx, tx, u); err != nil {
			return err
		}
		return addUsageTx(ctx, tx, u.CredentialID, int64(len(u.Authorized)), u.Now)
	})
	if err != nil {
		return fmt.Errorf("consume SAD: %w", err)
	}
	return nil
}

// consumeSADTx takes len(u.Authorized) from the SAD inside tx.
func consumeSADTx(ctx context.Context, tx *Tx, u SADUse) error {
	n := len(u.Authorized)
	if n == 0 {
		return ErrSADHashNotAuthorized
	}
	var bound int
	err := tx.QueryRow(ctx, `UPDATE sads SET remaining = remaining - ?
		WHERE hash = ? AND user_id = ? AND credential_id = ? AND revoked = 0 AND expires_at > ?
		AND remaining >= ? AND (hash_algo = '' OR hash_algo = ?) RETURNING bound`,
		n, u.SADHash, u.UserID, u.CredentialID, Millis(u.Now), n, u.HashAlgo).Scan(&bound)
	if errors.Is(err, sql.ErrNoRows) {
		return classifySAD(ctx, tx, u.SADHash, u.UserID, u.CredentialID, u.HashAlgo, n, u.Now)
	}
	if err != nil {
		return tx.s.mapErr(err)
	}
	if bound == 0 {
		return nil
	}
	return consumeHashes(ctx, tx, u.SADHash, u.Authorized)
}

// addUsageTx counts n signatures (n may be negative: a refund) for the
// credential at now. The total moves with one conditional upsert: when
// the limit would be passed no row comes back and nothing changes.
func addUsageTx(ctx context.Context, tx *Tx, credentialID string, n int64, now time.Time) error {
	var total int64
	err := tx.QueryRow(ctx, `INSERT INTO credential_usage (credential_id, total, max_signatures, updated_at) VALUES (?, ?, 0, ?)
		ON CONFLICT (credential_id) DO UPDATE SET total = credential_usage.total + excluded.total, updated_at = excluded.updated_at
		WHERE credential_usage.max_signatures = 0 OR excluded.total <= 0
		   OR credential_usage.total + excluded.total <= credential_usage.max_signatures
		RETURNING total`, credentialID, n, Millis(now)).Scan(&total)
	if errors.Is(err, sql.ErrNoRows) {
		le := &UsageLimitError{CredentialID: credentialID, Wanted: int(n)}
		if err := tx.QueryRow(ctx, `SELECT total, max_signatures FROM credential_usage WHERE credential_id = ?`, credentialID).
			Scan(&le.Total, &le.Limit); err != nil {
			return tx.s.mapErr(err)
		}
		return le
	}
	if err != nil {
		return fmt.Errorf("usage total: %w", tx.s.mapErr(err))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO credential_usage_daily (credential_id, day, cnt) VALUES (?, ?, ?)
		ON CONFLICT (credential_id, day) DO UPDATE SET cnt = credential_usage_daily.cnt + excluded.cnt`,
		credentialID, UsageDay(now), n); err != nil {
		return fmt.Errorf("usage per day: %w", err)
	}
	return nil
}

// RefundUsage gives n signatures back to the credential's counters (the
// day is that of the original consumption): signatures counted but never
// made (HSM failure, failed job items).
func (s *Store) RefundUsage(ctx context.Context, credentialID string, n int, consumedAt time.Time) error {
	if n <= 0 {
		return nil
	}
	err := s.InTx(ctx, func(tx *Tx) error { return refundUsageTx(ctx, tx, credentialID, int64(n), consumedAt) })
	if err != nil {
		return fmt.Errorf("refund usage %s: %w", credentialID, err)
	}
	return nil
}

func refundUsageTx(ctx context.Context, tx *Tx, credentialID string, n int64, consumedAt time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE credential_usage SET total = total - ? WHERE credential_id = ? AND total >= ?`,
		n, credentialID, n); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE credential_usage_daily SET cnt = cnt - ? WHERE credential_id = ? AND day = ? AND cnt >= ?`,
		n, credentialID, UsageDay(consumedAt), n)
	return err
}

// SetUsageLimit sets the credential's signature limit (0 removes it).
func (s *Store) SetUsageLimit(ctx context.Context, credentialID string, max int64, now time.Time) error {
	if max < 0 {
		return fmt.Errorf("set usage limit %s: negative limit", credentialID)
	}
	if _, err := s.Exec(ctx, `INSERT INTO credential_usage (credential_id, total, max_signatures, updated_at) VALUES (?, 0, ?, ?)
		ON CONFLICT (credential_id) DO UPDATE SET max_signatures = excluded.max_signatures, updated_at = excluded.updated_at`,
		credentialID, max, Millis(now)); err != nil {
		return fmt.Errorf("set usage limit %s: %w", credentialID, err)
	}
	return nil
}

// DayCount is the number of signatures of one UTC day.
type DayCount struct {
	Day   time.Time
	Count int64
}

// Usage is a credential's counters.
type Usage struct {
	Total int64
	// Limit is the maximum total (0: none).
	Limit int64
	// Days are the per-day counts asked for, oldest first, days without
	// signatures left out.
	Days []DayCount
}

// CredentialUsage returns the credential's counters, with the days from
// (inclusive) to to (inclusive) in UTC.
func (s *Store) CredentialUsage(ctx context.Context, credentialID string, from, to time.Time) (*Usage, error) {
	u := &Usage{}
	err := s.QueryRow(ctx, `SELECT total, max_signatures FROM credential_usage WHERE credential_id = ?`, credentialID).Scan(&u.Total, &u.Limit)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("usage %s: %w", credentialID, s.mapErr(err))
	}
	rows, err := s.Query(ctx, `SELECT day, cnt FROM credential_usage_daily WHERE credential_id = ? AND day >= ? AND day <= ? AND cnt <> 0 ORDER BY day`,
		credentialID, UsageDay(from), UsageDay(to))
	if err != nil {
		return nil, fmt.Errorf("usage %s: %w", credentialID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var day, n int64
		if err := rows.Scan(&day, &n); err != nil {
			return nil, fmt.Errorf("usage %s: %w", credentialID, s.mapErr(err))
		}
		u.Days = append(u.Days, DayCount{Day: time.Unix(day*86400, 0).UTC(), Count: n})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage %s: %w", credentialID, s.mapErr(err))
	}
	return u, nil
}

// SignatureRecord is one row of the signature log.
type SignatureRecord struct {
	ID           string
	At           time.Time
	CredentialID string
	UserID       string
	// Client is who called (OAuth client, or "user:<id>" for Basic).
	Client string
	// Document is the document's name, or the hex digest signed.
	Document string
	// Format is "hash" (signHash), "derived" (signDoc, synchronous: the
	// digests are the documents' as authorized), "P" (PAdES) or "C"
	// (CAdES); Level the conformance level ("" for raw signatures).
	Format, Level string
	HashAlgo      string
	// Count is 1 for a signature; a batch of hashes (signed or refused)
	// is one row of Count n.
	Count int
	// Digests are the digests of a signed batch, in order (Document is
	// then empty).
	Digests [][]byte
	// Outcome is "success" or "failure:<reason>".
	Outcome string
	JobID   string
}

type execer interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// signatureLogChunk bounds the rows of one INSERT (13 parameters each;
// well under SQLite's and PostgreSQL's parameter limits).
const signatureLogChunk = 400

// joinDigests stores a batch's digests as one value (they have one length).
func joinDigests(ds [][]byte) []byte {
	if len(ds) == 0 {
		return nil
	}
	return bytes.Join(ds, nil)
}

// splitDigests undoes joinDigests for n digests.
func splitDigests(b []byte, n int) [][]byte {
	if len(b) == 0 || n <= 0 || len(b)%n != 0 {
		return nil
	}
	size := len(b) / n
	out := make([][]byte, n)
	for i := range out {
		out[i] = b[i*size : (i+1)*size]
	}
	return out
}

// AddSignatureRecords appends rows to the signature log, many per
// statement.
func (s *Store) AddSignatureRecords(ctx context.Context, recs []SignatureRecord) error {
	if len(recs) <= signatureLogChunk {
		return addSignatureRecords(ctx, s, recs)
	}
	return s.InTx(ctx, func(tx *Tx) error { return addSignatureRecords(ctx, tx, recs) })
}

func addSignatureRecords(ctx context.Context, q execer, recs []SignatureRecord) error {
	for len(recs) > 0 {
		n := min(len(recs), signatureLogChunk)
		var b strings.Builder
		b.WriteString(`INSERT INTO signature_log (id, at, credential_id, user_id, client, document, format, level, hash_algo, cnt, digests, outcome, job_id) VALUES `)
		args := make([]any, 0, n*13)
		for i, r := range recs[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?)")
			args = append(args, r.ID, Millis(r.At), r.CredentialID, r.UserID, r.Client, r.Document, r.Format, r.Level,
				r.HashAlgo, r.Count, joinDigests(r.Digests), r.Outcome, r.JobID)
		}
		if _, err := q.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("add signature records: %w", err)
		}
		recs = recs[n:]
	}
	return nil
}

// LogFilter selects signature log rows: From (inclusive) and To
// (exclusive) bound the time when set; Offset and Limit page.
type LogFilter struct {
	From, To      time.Time
	Offset, Limit int
}

func (f LogFilter) where(credentialID string) (string, []any) {
	q := ` FROM signature_log WHERE credential_id = ?`
	args := []any{credentialID}
	if !f.From.IsZero() {
		q += ` AND at >= ?`
		args = append(args, Millis(f.From))
	}
	if !f.To.IsZero() {
		q += ` AND at < ?`
		args = append(args, Millis(f.To))
	}
	return q, args
}

// SignatureLog returns a page of the credential's signature log, newest
// first, and how many rows match the filter in all.
// Rows of the same millisecond are ordered by id: writers give ids that
// grow in write order (sam.seqID), so the order is deterministic.
func (s *Store) SignatureLog(ctx context.Context, credentialID string, f LogFilter) ([]SignatureRecord, int, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	where, args := f.where(credentialID)
	var total int
	if err := s.QueryRow(ctx, `SELECT COUNT(*)`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("signature log %s: %w", credentialID, s.mapErr(err))
	}
	rows, err := s.Query(ctx, `SELECT id, at, credential_id, user_id, client, document, format, level, hash_algo, cnt, digests, outcome, job_id`+
		where+` ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`, append(args, f.Limit, max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("signature log %s: %w", credentialID, err)
	}
	defer rows.Close()
	var out []SignatureRecord
	for rows.Next() {
		var r SignatureRecord
		var at int64
		var digests []byte
		if err := rows.Scan(&r.ID, &at, &r.CredentialID, &r.UserID, &r.Client, &r.Document, &r.Format, &r.Level,
			&r.HashAlgo, &r.Count, &digests, &r.Outcome, &r.JobID); err != nil {
			return nil, 0, fmt.Errorf("signature log %s: %w", credentialID, s.mapErr(err))
		}
		r.At, r.Digests = FromMillis(at), splitDigests(digests, r.Count)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("signature log %s: %w", credentialID, s.mapErr(err))
	}
	return out, total, nil
}

// SignatureLogCounts returns how many signatures the credential made
// (successful rows) since the given time and in total.
func (s *Store) SignatureLogCounts(ctx context.Context, credentialID string, since time.Time) (recent, total int64, err error) {
	var r, t sql.NullInt64
	err = s.QueryRow(ctx, `SELECT SUM(CASE WHEN at >= ? THEN cnt ELSE 0 END), SUM(cnt) FROM signature_log
		WHERE credential_id = ? AND outcome = 'success'`, Millis(since), credentialID).Scan(&r, &t)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("signature log counts %s: %w", credentialID, s.mapErr(err))
	}
	return r.Int64, t.Int64, nil
}
