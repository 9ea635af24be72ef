// Package postgres opens sigillo's store on PostgreSQL through pgx: the
// backend shared by several replicas.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sigillo/sigillo/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the connection pool.
type Options struct {
	// MaxConns bounds open connections per replica (0: 20).
	MaxConns int
}

// Open connects to the database at url (postgres://...) and applies the
// migrations.
func Open(ctx context.Context, url string, opts Options) (*store.Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = 20
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w: %v", store.ErrUnavailable, err)
	}
	migs, err := store.LoadMigrations(migrations, "migrations")
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := store.Migrate(ctx, db, store.Postgres, migs); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return store.New(db, store.Postgres), nil
}

var _ = stdlib.GetDefaultDriver // the import registers the "pgx" driver
