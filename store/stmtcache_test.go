package store

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

func TestStmtCache(t *testing.T) {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	c := &stmtCache{}
	defer c.close()

	q := "SELECT ? + 1"
	a, b := c.get(ctx, db, q), c.get(ctx, db, q)
	if a == nil || a != b {
		t.Fatalf("a query is prepared once and reused: %p %p", a, b)
	}
	var n int
	if err := a.QueryRowContext(ctx, 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("cached statement: %d, %v", n, err)
	}
	many := "SELECT " + strings.Repeat("?, ", maxCachedParams) + "?"
	for _, tc := range []struct{ name, query string }{
		{"two statements", "SELECT 1; SELECT 2"},
		{"too many placeholders (a multi-row INSERT's kind)", many},
		{"not SQL", "SELEKT nothing"},
	} {
		if st := c.get(ctx, db, tc.query); st != nil {
			t.Errorf("%s: cached", tc.name)
		}
	}
	if got := c.n.Load(); got != 1 {
		t.Fatalf("%d statements cached, want 1", got)
	}
	c.n.Store(maxCachedStatements)
	if st := c.get(ctx, db, "SELECT 2"); st != nil {
		t.Fatal("cached past the bound")
	}
	if st := c.get(ctx, db, q); st != a {
		t.Fatal("a cached statement is still served when the cache is full")
	}
}
