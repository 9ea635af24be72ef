package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigillo/sigillo/store"
)

func init() {
	register("ratelimit/concurrent_hits_exact", testRateLimitConcurrent)
	register("ratelimit/windows_and_scopes", testRateLimitWindows)
	register("ratelimit/prune_and_reset", testRateLimitPrune)
}

// testRateLimitConcurrent: 40 concurrent hits on a limit of 7 admit
// exactly 7, with distinct counts 1..7 (one conditional UPSERT each).
func testRateLimitConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		allowed atomic.Int32
		mu      sync.Mutex
		seen    = map[int]bool{}
	)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, ok, err := s.HitRateLimit(ctx, "login:user:alice", t0, time.Minute, 7)
			if err != nil {
				t.Errorf("HitRateLimit: %v", err)
				return
			}
			if ok {
				allowed.Add(1)
				mu.Lock()
				if seen[n] {
					t.Errorf("count %d returned twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 7 {
		t.Fatalf("%d hits allowed, want exactly 7", allowed.Load())
	}
	for i := 1; i <= 7; i++ {
		if !seen[i] {
			t.Errorf("count %d never returned (seen %v)", i, seen)
		}
	}
}

func testRateLimitWindows(t *testing.T, s *store.Store) {
	ctx := context.Background()
	hit := func(scope string, start time.Time, limit int) (int, bool) {
		t.Helper()
		n, ok, err := s.HitRateLimit(ctx, scope, start, time.Minute, limit)
		if err != nil {
			t.Fatalf("HitRateLimit(%s): %v", scope, err)
		}
		return n, ok
	}
	for i := 1; i <= 2; i++ {
		if n, ok := hit("otp:cred:c1", t0, 2); !ok || n != i {
			t.Fatalf("hit %d: %d %v", i, n, ok)
		}
	}
	if _, ok := hit("otp:cred:c1", t0, 2); ok {
		t.Fatal("third hit in a window of 2 allowed")
	}
	// Another scope is independent.
	if n, ok := hit("otp:cred:c2", t0, 2); !ok || n != 1 {
		t.Fatalf("independent scope: %d %v", n, ok)
	}
	// The next window starts over.
	if n, ok := hit("otp:cred:c1", t0.Add(time.Minute), 2); !ok || n != 1 {
		t.Fatalf("next window: %d %v", n, ok)
	}
	// A zero limit refuses without touching the store.
	if _, ok := hit("otp:cred:c3", t0, 0); ok {
		t.Fatal("limit 0 allowed a hit")
	}
}

func testRateLimitPrune(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for _, scope := range []string{"a", "b"} {
		if _, _, err := s.HitRateLimit(ctx, scope, t0, time.Minute, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.HitRateLimit(ctx, "c", t0.Add(time.Hour), time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneRateLimits(ctx, t0.Add(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2", n, err)
	}
	if _, ok, _ := s.HitRateLimit(ctx, "c", t0.Add(time.Hour), time.Minute, 1); ok {
		t.Fatal("c was pruned too early (hit allowed again)")
	}
	if err := s.ResetRateLimit(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.HitRateLimit(ctx, "c", t0.Add(time.Hour), time.Minute, 1); !ok {
		t.Fatal("hit refused after reset")
	}
}
