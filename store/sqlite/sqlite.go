// Package sqlite opens sigillo's store on an embedded SQLite database
// (modernc.org/sqlite, no cgo): the default for one process and for tests.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigillo/sigillo/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the SQLite database at path, with WAL,
// a busy timeout, foreign keys and IMMEDIATE transactions, and applies the
// migrations. path may carry a sqlite:// prefix.
func Open(ctx context.Context, path string) (*store.Store, error) {
	path = strings.TrimPrefix(path, "sqlite://")
	if path == "" {
		return nil, fmt.Errorf("sqlite: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create %s: %w", dir, err)
		}
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// SQLite has one writer; a few connections let readers run beside it
	// while the busy timeout queues writers instead of failing them.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	migs, err := store.LoadMigrations(migrations, "migrations")
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := store.Migrate(ctx, db, store.SQLite, migs); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return store.New(db, store.SQLite), nil
}
