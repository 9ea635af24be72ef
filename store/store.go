// Package store is sigillo's persistence layer. Every piece of state that
// must survive a restart or be shared between replicas (users, credentials,
// SAD budgets, OTP replay guards, retry counters, certificates, audit) lives
// here, never only in one process's memory.
//
// One implementation of the queries runs on two backends: SQLite
// (store/sqlite, the embedded default) and PostgreSQL (store/postgres, for
// several replicas). The backends differ only in how they open the database
// and in their numbered migrations; queries are written once with `?`
// placeholders and rebound for PostgreSQL. Domain packages declare the small
// interfaces they need; *Store satisfies them.
//
// Conventions shared by every table: identifiers are TEXT, times are BIGINT
// Unix milliseconds (UTC), booleans are INTEGER 0/1, binary data is BLOB
// (SQLite) / BYTEA (PostgreSQL). Counters that guard security change with
// one conditional UPDATE, never read-modify-write in Go.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Dialect names the SQL backend a Store talks to.
type Dialect int

const (
	// SQLite is the embedded default backend (modernc.org/sqlite).
	SQLite Dialect = iota + 1
	// Postgres is the shared backend for several replicas (pgx).
	Postgres
)

// String returns the dialect's name as used in logs and metrics.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "unknown"
}

var (
	// ErrNotFound is returned when the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict is returned when a unique constraint or a conditional
	// update refuses the change (e.g. a duplicate name, a lost race).
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable wraps failures to reach the database at all; the HTTP
	// edge answers 503 for it.
	ErrUnavailable = errors.New("store: unavailable")
)

// Store is the persistence layer. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
	met     *metrics // nil until SetMetrics (metrics.go)
	// writes is the in-process write gate of SQLite (nil on PostgreSQL):
	// SQLite has one writer, and a writer that finds the lock taken
	// sleeps in its busy handler (1 ms, then 2, 5...) — far longer than
	// the transaction it waits for. Queueing writers here instead keeps
	// them off that sleep; the busy timeout still covers other processes.
	writes chan struct{}
	stmts  *stmtCache // SQLite only; nil for PostgreSQL
}

// New wraps an open database whose schema is already migrated. The backend
// packages call it; other code opens a store through them.
func New(db *sql.DB, d Dialect) *Store {
	s := &Store{db: db, dialect: d}
	if d == SQLite {
		s.writes = make(chan struct{}, 1)
		s.stmts = &stmtCache{}
	}
	return s
}

// lockWrites takes the write gate (a no-op on PostgreSQL). It waits at
// most gateWait: past that (another writer stuck, or a write through the
// Store from inside one of its own transactions) it goes on without the
// gate, and SQLite's busy timeout decides, as it would without a gate.
func (s *Store) lockWrites(ctx context.Context) (func(), error) {
	if s.writes == nil {
		return func() {}, nil
	}
	select {
	case s.writes <- struct{}{}:
		return func() { <-s.writes }, nil
	default:
	}
	t := time.NewTimer(gateWait)
	defer t.Stop()
	select {
	case s.writes <- struct{}{}:
		return func() { <-s.writes }, nil
	case <-t.C:
		return func() {}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// gateWait bounds the wait for the write gate; it matches the SQLite
// busy timeout.
const gateWait = 10 * time.Second

// isWrite reports whether a statement changes data (INSERT, UPDATE,
// DELETE, REPLACE), from its first word.
func isWrite(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	if len(q) > 7 {
		q = q[:7]
	}
	q = strings.ToUpper(q)
	for _, w := range []string{"INSERT", "UPDATE", "DELETE", "REPLACE"} {
		if strings.HasPrefix(q, w) {
			return true
		}
	}
	return false
}

// Dialect reports which backend the store uses.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB exposes the underlying pool for tests and for backend packages.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database pool.
func (s *Store) Close() error {
	if s.stmts != nil {
		s.stmts.close()
	}
	return s.db.Close()
}

// stmt returns a cached prepared statement for a rebound query, or nil.
func (s *Store) stmt(ctx context.Context, query string) *sql.Stmt {
	if s.stmts == nil {
		return nil
	}
	return s.stmts.get(ctx, s.db, query)
}

// Ping checks that the database answers; readiness probes call it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Rebind turns `?` placeholders into the dialect's form ($1, $2... for
// PostgreSQL). Queries never contain a literal '?' inside strings.
func (s *Store) Rebind(query string) string {
	return Rebind(s.dialect, query)
}

// Rebind turns `?` placeholders into the dialect's form.
func Rebind(d Dialect, query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Exec runs a statement written with `?` placeholders.
func (s *Store) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	defer s.met.since(opExec, time.Now())
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return nil, s.met.failed(opExec, fmt.Errorf("%s: %w", firstWords(query), err))
	}
	defer unlock()
	q := s.Rebind(query)
	var res sql.Result
	if st := s.stmt(ctx, q); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = s.db.ExecContext(ctx, q, args...)
	}
	return res, s.met.failed(opExec, s.mapErr(err))
}

// Query runs a query written with `?` placeholders. It is for reads:
// a write (RETURNING or not) goes through Exec or InTx, which hold the
// write gate.
func (s *Store) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	defer s.met.since(opQuery, time.Now())
	if isWrite(query) {
		return nil, fmt.Errorf("store: %s through Query: use InTx", firstWords(query))
	}
	q := s.Rebind(query)
	var (
		rows *sql.Rows
		err  error
	)
	if st := s.stmt(ctx, q); st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = s.db.QueryContext(ctx, q, args...)
	}
	return rows, s.met.failed(opQuery, s.mapErr(err))
}

// QueryRow runs a single-row query written with `?` placeholders. Scan
// errors should go through MapErr. Like Query it is for reads; a write
// through it is a programming error caught by every store test.
func (s *Store) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	defer s.met.since(opQueryRow, time.Now())
	if isWrite(query) {
		panic("store: " + firstWords(query) + " through QueryRow: use InTx")
	}
	q := s.Rebind(query)
	if st := s.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, q, args...)
}

// Tx is a transaction with the same placeholder convention as Store.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
	s       *Store
}

// Exec runs a statement inside the transaction.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	defer t.s.met.since(opExec, time.Now())
	q := Rebind(t.dialect, query)
	var (
		res sql.Result
		err error
	)
	if st := t.s.stmt(ctx, q); st != nil {
		res, err = t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	} else {
		res, err = t.tx.ExecContext(ctx, q, args...)
	}
	return res, t.s.met.failed(opExec, t.s.mapErr(err))
}

// Query runs a query inside the transaction.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	defer t.s.met.since(opQuery, time.Now())
	q := Rebind(t.dialect, query)
	var (
		rows *sql.Rows
		err  error
	)
	if st := t.s.stmt(ctx, q); st != nil {
		rows, err = t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	} else {
		rows, err = t.tx.QueryContext(ctx, q, args...)
	}
	return rows, t.s.met.failed(opQuery, t.s.mapErr(err))
}

// QueryRow runs a single-row query inside the transaction.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	defer t.s.met.since(opQueryRow, time.Now())
	q := Rebind(t.dialect, query)
	if st := t.s.stmt(ctx, q); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// InTx runs fn in one transaction: committed when fn returns nil, rolled
// back otherwise. On SQLite the backend opens transactions IMMEDIATE so two
// writers serialise instead of failing at commit.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	defer s.met.since(opTx, time.Now())
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return s.met.failed(opTx, fmt.Errorf("begin: %w", err))
	}
	defer unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.met.failed(opTx, s.mapErr(fmt.Errorf("begin: %w", err)))
	}
	if err := fn(&Tx{tx: tx, dialect: s.dialect, s: s}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.met.failed(opTx, s.mapErr(fmt.Errorf("commit: %w", err)))
	}
	return nil
}

// firstWords names a statement in errors: its first two words.
func firstWords(query string) string {
	f := strings.Fields(query)
	return strings.Join(f[:min(2, len(f))], " ")
}

// MapErr turns driver errors into the store's error kinds: sql.ErrNoRows
// becomes ErrNotFound, unique violations ErrConflict, connection failures
// ErrUnavailable. Other errors pass through unchanged.
func (s *Store) MapErr(err error) error { return s.mapErr(err) }

func (s *Store) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrUnavailable) {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "UNIQUE constraint failed"), // sqlite
		strings.Contains(msg, "SQLSTATE 23505"): // postgres unique_violation
		return fmt.Errorf("%w: %v", ErrConflict, err)
	case strings.Contains(msg, "connection refused"),
		strings.Contains(msg, "SQLSTATE 57P"), // admin shutdown, cannot connect now
		strings.Contains(msg, "SQLSTATE 08"),  // connection exceptions
		strings.Contains(msg, "broken pipe"),
		strings.Contains(msg, "database is closed"),
		strings.Contains(msg, "driver: bad connection"),
		strings.Contains(msg, "unexpected EOF"),
		strings.Contains(msg, "connection reset by peer"),
		strings.Contains(msg, "failed to connect to"),
		strings.Contains(msg, "conn closed"),
		errors.As(err, new(net.Error)),
		errors.Is(err, sql.ErrConnDone):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// Millis converts a time to the stored representation.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMillis converts a stored time back; 0 is the zero time.
func FromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Bool converts a Go bool to the stored 0/1.
func Bool(b bool) int {
	if b {
		return 1
	}
	return 0
}
