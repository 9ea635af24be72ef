package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AuditRecord is one row of the audit log as stored. The store does not
// compute or check hashes: package audit owns the chain's format and
// passes finished records to AppendAudit.
type AuditRecord struct {
	Seq      int64
	At       time.Time // stored as Unix milliseconds
	Actor    string
	Action   string
	Object   string
	Outcome  string
	Detail   string // canonical JSON, stored and hashed verbatim
	PrevHash []byte
	Hash     []byte
}

// AuditHead is the last record of the chain: Seq 0 and a nil Hash when the
// log is empty.
type AuditHead struct {
	Seq  int64
	Hash []byte
}

// AuditCheckpoint is a timestamped statement that the chain's record Seq
// had hash Hash: Token is the TSA's RFC 3161 token over Hash.
type AuditCheckpoint struct {
	Seq       int64
	Hash      []byte
	CreatedAt time.Time
	Token     []byte
}

// AuditQuery selects records for reading: those with seq > AfterSeq and,
// when Since is set, a time at or after Since; at most Limit (0: 1000) in
// sequence order.
type AuditQuery struct {
	AfterSeq int64
	Since    time.Time
	Limit    int
}

// auditLockKey is the PostgreSQL advisory lock that serialises appends
// from every replica (an arbitrary constant next to the migration lock's).
const auditLockKey = 7382004

// auditAppendAttempts bounds retries of an append that lost a race on the
// sequence (a unique violation): with the lock this should not happen, but
// a writer that bypassed it must cost a retry, never a fork.
const auditAppendAttempts = 5

// auditInsertChunk is how many rows one INSERT carries (9 parameters per
// row stays far below SQLite's and PostgreSQL's parameter limits).
const auditInsertChunk = 100

// AppendAudit appends records to the audit log in one transaction. It
// takes the append lock (PostgreSQL: a transaction-level advisory lock;
// SQLite: the IMMEDIATE transaction's write lock), reads the head, and
// calls build with it; build returns the records to insert, numbered from
// head.Seq+1 and chained from head.Hash. Either all of them are committed
// or none. On a sequence conflict the whole transaction is retried with
// a fresh head, so build may be called more than once and must not keep
// state between calls.
func (s *Store) AppendAudit(ctx context.Context, build func(head AuditHead) ([]AuditRecord, error)) error {
	return s.AppendAuditWith(ctx, AuditExtras{}, build)
}

// AuditExtras are rows that belong with audit records and commit in their
// transaction: the signature history and log of the calls they audit, so
// that a signature is in all three or in none, and a batch of calls costs
// one commit.
type AuditExtras struct {
	History    []HistoryEntry
	Signatures []SignatureRecord
}

// Add appends o's rows to x.
func (x *AuditExtras) Add(o AuditExtras) {
	x.History = append(x.History, o.History...)
	x.Signatures = append(x.Signatures, o.Signatures...)
}

// AppendAuditWith is AppendAudit that also inserts extras in the same
// transaction.
func (s *Store) AppendAuditWith(ctx context.Context, extras AuditExtras, build func(head AuditHead) ([]AuditRecord, error)) error {
	var err error
	for attempt := 0; attempt < auditAppendAttempts; attempt++ {
		err = s.InTx(ctx, func(tx *Tx) error {
			if s.dialect == Postgres {
				if _, err := tx.Exec(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", auditLockKey)); err != nil {
					return fmt.Errorf("lock: %w", err)
				}
			}
			head, err := auditHead(ctx, tx)
			if err != nil {
				return err
			}
			recs, err := build(head)
			if err != nil {
				return err
			}
			if err := insertAudit(ctx, tx, recs); err != nil {
				return err
			}
			if err := addHistory(ctx, tx, extras.History); err != nil {
				return err
			}
			return addSignatureRecords(ctx, tx, extras.Signatures)
		})
		if !errors.Is(err, ErrConflict) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

func auditHead(ctx context.Context, tx *Tx) (AuditHead, error) {
	var h AuditHead
	err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&h.Seq, &h.Hash)
	if err != nil {
		err = tx.s.mapErr(err)
		if errors.Is(err, ErrNotFound) {
			return AuditHead{}, nil
		}
		return AuditHead{}, fmt.Errorf("read head: %w", err)
	}
	return h, nil
}

func insertAudit(ctx context.Context, tx *Tx, recs []AuditRecord) error {
	for len(recs) > 0 {
		n := min(len(recs), auditInsertChunk)
		var q strings.Builder
		q.WriteString("INSERT INTO audit_log (seq, at, actor, action, object, outcome, detail, prev_hash, hash) VALUES ")
		args := make([]any, 0, n*9)
		for i, r := range recs[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, r.Seq, Millis(r.At), r.Actor, r.Action, r.Object, r.Outcome, r.Detail, r.PrevHash, r.Hash)
		}
		if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert seq %d..%d: %w", recs[0].Seq, recs[n-1].Seq, err)
		}
		recs = recs[n:]
	}
	return nil
}

// AuditHead returns the last record's sequence and hash (zero when empty).
func (s *Store) AuditHead(ctx context.Context) (AuditHead, error) {
	var h AuditHead
	err := s.QueryRow(ctx, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&h.Seq, &h.Hash)
	if err != nil {
		err = s.mapErr(err)
		if errors.Is(err, ErrNotFound) {
			return AuditHead{}, nil
		}
		return AuditHead{}, fmt.Errorf("audit head: %w", err)
	}
	return h, nil
}

// AuditRecords returns one page of records selected by q, in sequence
// order. Readers page with AfterSeq = the last Seq they saw.
func (s *Store) AuditRecords(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	query := "SELECT seq, at, actor, action, object, outcome, detail, prev_hash, hash FROM audit_log WHERE seq > ?"
	args := []any{q.AfterSeq}
	if !q.Since.IsZero() {
		query += " AND at >= ?"
		args = append(args, Millis(q.Since))
	}
	query += " ORDER BY seq LIMIT ?"
	args = append(args, limit)
	rows, err := s.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("audit records: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var r AuditRecord
		var at int64
		if err := rows.Scan(&r.Seq, &at, &r.Actor, &r.Action, &r.Object, &r.Outcome, &r.Detail, &r.PrevHash, &r.Hash); err != nil {
			return nil, fmt.Errorf("audit records: %w", s.mapErr(err))
		}
		r.At = FromMillis(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit records: %w", s.mapErr(err))
	}
	return out, nil
}

// FirstAuditSeqSince returns the lowest sequence whose time is at or after
// since (through the index on time), or 0 when there is none. Exports start
// there instead of scanning the whole log.
func (s *Store) FirstAuditSeqSince(ctx context.Context, since time.Time) (int64, error) {
	var seq *int64
	if err := s.QueryRow(ctx, "SELECT MIN(seq) FROM audit_log WHERE at >= ?", Millis(since)).Scan(&seq); err != nil {
		return 0, fmt.Errorf("audit first since: %w", s.mapErr(err))
	}
	if seq == nil {
		return 0, nil
	}
	return *seq, nil
}

// InsertAuditCheckpoint stores a checkpoint. It reports false, and no
// error, when a checkpoint at that sequence exists already (another
// replica took it first).
func (s *Store) InsertAuditCheckpoint(ctx context.Context, c AuditCheckpoint) (bool, error) {
	res, err := s.Exec(ctx, "INSERT INTO audit_checkpoints (seq, hash, created_at, token) VALUES (?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING",
		c.Seq, c.Hash, Millis(c.CreatedAt), c.Token)
	if err != nil {
		return false, fmt.Errorf("audit checkpoint %d: %w", c.Seq, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("audit checkpoint %d: %w", c.Seq, err)
	}
	return n == 1, nil
}

// AuditCheckpoints returns every checkpoint in sequence order.
func (s *Store) AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error) {
	rows, err := s.Query(ctx, "SELECT seq, hash, created_at, token FROM audit_checkpoints ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	defer rows.Close()
	var out []AuditCheckpoint
	for rows.Next() {
		var c AuditCheckpoint
		var at int64
		if err := rows.Scan(&c.Seq, &c.Hash, &at, &c.Token); err != nil {
			return nil, fmt.Errorf("audit checkpoints: %w", s.mapErr(err))
		}
		c.CreatedAt = FromMillis(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", s.mapErr(err))
	}
	return out, nil
}
