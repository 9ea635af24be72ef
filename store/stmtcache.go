package store

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"sync/atomic"
)

// maxCachedStatements bounds the cache: queries are constants in code, so
// the bound is only a guard against a query built from data.
const maxCachedStatements = 512

// maxCachedParams is the most placeholders a cached statement has.
const maxCachedParams = 32

// stmtCache keeps one prepared statement per query text for SQLite, whose
// driver otherwise parses and plans every statement on every call (the
// signing hot path runs the same handful of queries thousands of times a
// second). pgx caches prepared statements per connection by itself.
type stmtCache struct {
	m sync.Map // query -> *sql.Stmt
	n atomic.Int32
}

// get returns the prepared statement for query, preparing it once; nil
// when the cache is full or preparing fails (the caller then runs the
// query unprepared, and any error surfaces there).
func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	if v, ok := c.m.Load(query); ok {
		return v.(*sql.Stmt)
	}
	// A prepared statement holds one SQL statement: scripts run unprepared.
	if strings.Contains(strings.TrimRight(strings.TrimSpace(query), ";"), ";") {
		return nil
	}
	// Multi-row INSERTs and long IN lists have a text per row count; they
	// would fill the cache with variants used once.
	if strings.Count(query, "?") > maxCachedParams {
		return nil
	}
	if c.n.Load() >= maxCachedStatements {
		return nil
	}
	st, err := db.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil
	}
	if v, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt)
	}
	c.n.Add(1)
	return st
}

// close releases every prepared statement.
func (c *stmtCache) close() {
	c.m.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		c.m.Delete(k)
		return true
	})
}
