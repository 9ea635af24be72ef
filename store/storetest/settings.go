package storetest

import (
	"context"
	"errors"
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
