package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sigillo/sigillo/store"
)

func init() {
	register("settings", testSettings)
	register("migrations_idempotent", testMigrationsIdempotent)
}

func testSettings(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if _, err := s.Setting(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing setting: got %v, want ErrNotFound", err)
	}
	// Concurrent first writers agree on one value.
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v, err := s.SetSettingIfAbsent(ctx, "k", string(rune('a'+i)))
			if err != nil {
				t.Errorf("SetSettingIfAbsent: %v", err)
			}
			got[i] = v
		}(i)
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] {
			t.Fatalf("writers disagree: %q", got)
		}
	}
	if err := s.PutSetting(ctx, "k", "z"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Setting(ctx, "k"); v != "z" {
		t.Fatalf("after PutSetting: %q", v)
	}
}

func testMigrationsIdempotent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	v, err := s.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	// Running the same migrations again changes nothing.
	migs := []store.Migration{{Version: v, Name: "again.sql", SQL: "CREATE TABLE must_not_run (x INTEGER)"}}
	if err := store.Migrate(ctx, s.DB(), s.Dialect(), migs); err != nil {
		t.Fatalf("re-migrate: %v", err)
	}
	if _, err := s.Exec(ctx, "SELECT * FROM must_not_run"); err == nil {
		t.Fatal("an applied migration ran twice")
	}
}

func init() {
	register("concurrent_writers", testConcurrentWriters)
	register("writes_refused_outside_exec_and_tx", testWritesRefusedOutsideExecAndTx)
}

// testConcurrentWriters runs many writers at once, in transactions and
// single statements (the signing path's mix), with readers beside them:
// every write lands and none fails on the database's lock.
func testConcurrentWriters(t *testing.T, s *store.Store) {
	ctx := context.Background()
	const goroutines, each = 16, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("cw-%d-%d", g, i)
				var err error
				if i%2 == 0 {
					err = s.InTx(ctx, func(tx *store.Tx) error {
						if _, err := tx.Exec(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, 0)`, key, "tx"); err != nil {
							return err
						}
						var v string
						return tx.QueryRow(ctx, `UPDATE settings SET value = ? WHERE key = ? RETURNING value`, "tx2", key).Scan(&v)
					})
				} else {
					_, err = s.Exec(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, 0)`, key, "exec")
				}
				if err != nil {
					t.Errorf("writer %d, write %d: %v", g, i, err)
					return
				}
				if _, err := s.Setting(ctx, key); err != nil {
					t.Errorf("reader after write %s: %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var n int
	if err := s.QueryRow(ctx, `SELECT COUNT(*) FROM settings WHERE key LIKE 'cw-%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != goroutines*each {
		t.Fatalf("%d rows written, want %d", n, goroutines*each)
	}
}

// testWritesRefusedOutsideExecAndTx: Query and QueryRow are for reads
// (writes must hold SQLite's write gate, which Exec and InTx take).
func testWritesRefusedOutsideExecAndTx(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if _, err := s.Query(ctx, `UPDATE settings SET value = 'x' WHERE key = ?`, "none"); err == nil {
		t.Fatal("Query ran an UPDATE")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("QueryRow ran an INSERT without complaint")
			}
		}()
		_ = s.QueryRow(ctx, `
			insert INTO settings (key, value, updated_at) VALUES ('qr', 'x', 0) RETURNING key`).Scan(new(string))
	}()
	if _, err := s.Setting(ctx, "qr"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused INSERT left a row: %v", err)
	}
}
