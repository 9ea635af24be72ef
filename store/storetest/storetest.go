// Package storetest is the conformance suite every store backend must pass,
// plus helpers that give other packages' tests a real, fresh store.
//
// Conformance cases register themselves with register() from init, one
// file per area, so that each domain's store methods are tested on SQLite
// and PostgreSQL by the same code.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/sigillo/sigillo/internal/testenv"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/postgres"
	"github.com/sigillo/sigillo/store/sqlite"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for admin connections
)

// Opener returns a fresh, empty, migrated store for one test.
type Opener func(t testing.TB) *store.Store

type conformanceCase struct {
	name string
	fn   func(t *testing.T, s *store.Store)
}

var cases []conformanceCase

// register adds a conformance case; called from init in this package.
func register(name string, fn func(t *testing.T, s *store.Store)) {
	cases = append(cases, conformanceCase{name, fn})
}

// Run runs every conformance case, each on a fresh store from open.
func Run(t *testing.T, open Opener) {
	sorted := append([]conformanceCase(nil), cases...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, open(t))
		})
	}
}

// NewSQLite returns a migrated SQLite store in a temporary directory.
func NewSQLite(t testing.TB) *store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sigillo.db"))
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresURLEnv names the variable holding the URL of a PostgreSQL server
// the tests may create databases on (.ci/run starts one and exports it).
const PostgresURLEnv = "SIGILLO_TEST_POSTGRES_URL"

// PostgresURL returns a URL to a new, empty database created for this test
// and dropped after it, or applies testenv.Missing when no server is set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresURLEnv)
	if base == "" {
		testenv.Missing(t, "%s is not set (a PostgreSQL server URL; .ci/run starts one)", PostgresURLEnv)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres admin connection: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sigillo_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresURLEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewPostgres returns a migrated store on a fresh PostgreSQL database.
func NewPostgres(t testing.TB) *store.Store {
	t.Helper()
	u := PostgresURL(t)
	s, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 10})
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
