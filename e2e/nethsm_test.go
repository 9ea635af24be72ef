package e2e

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// readyWatch polls a replica's /readyz and records what it saw.
type readyWatch struct {
	sawDown, sawUpAgain atomic.Bool
	non503Down          atomic.Int64 // unready answers that were not 503 + Retry-After
}

func watchReady(ctx context.Context, base string, w *readyWatch) {
	for ctx.Err() == nil {
		r, err := do(ctx, http.MethodGet, base+"/readyz", "", nil)
		if err == nil {
			switch {
			case r.status == 200:
				if w.sawDown.Load() {
					w.sawUpAgain.Store(true)
				}
			case r.status == 503 && retryAfterOK(r):
				w.sawDown.Store(true)
			default:
				w.non503Down.Add(1)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond every 50ms until it holds or within passes.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

func readyStatus(base string) int {
	r, err := do(context.Background(), http.MethodGet, base+"/readyz", "", nil)
	if err != nil {
		return 0
	}
	return r.status
}

// TestNetworkHSMOutage: sigillo reaches SoftHSM2 through p11-kit's
// remoting (NETWORK-HSM.md). Under a small signing load the p11-kit
// server is killed: readyz turns 503 and signHash answers 503 with
// Retry-After (never 500); the server comes back on the same socket and
// the same sigillo process recovers by itself within seconds; and every
// unit of SAD budget is a returned signature or an audited failure.
func TestNetworkHSMOutage(t *testing.T) {
	needBinary(t)
	pg := sharedPG.get(t)
	tok := newToken(t, "net")
	hsmSrv := newP11Server(t, tok)
	dsn := pg.newDatabase(t)
	c := newCluster(t, dsn, hsmSrv.env())
	rep := c.start("net")
	a := c.api(rep)

	const workers, granted = 3, 1000
	signers := make([]*signer, workers)
	for i := range signers {
		signers[i] = newSigner(t, a, "net"+string(rune('a'+i)), granted)
		signers[i].pace = 10 * time.Millisecond
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for _, s := range signers {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(ctx, t, []string{rep.URL}, 1) }()
	}
	watch := &readyWatch{}
	wg.Add(1)
	go func() { defer wg.Done(); watchReady(ctx, rep.URL, watch) }()

	total := func() (n int64) {
		for _, s := range signers {
			n += s.returned.Load()
		}
		return n
	}
	if !waitFor(10*time.Second, func() bool { return total() >= 20 }) {
		t.Fatalf("no signing load established (%d signatures)", total())
	}

	hsmSrv.kill()
	killedAt := time.Now()
	if !waitFor(10*time.Second, func() bool { return readyStatus(rep.URL) == 503 }) {
		t.Fatal("readyz did not report the HSM outage within 10s")
	}
	before := total()
	time.Sleep(time.Second) // load keeps hitting the dead HSM
	if d := total() - before; d > 0 {
		t.Logf("note: %d signatures completed after readyz went 503 (in flight at the kill)", d)
	}
	var unavailable int64
	for _, s := range signers {
		unavailable += s.status(503)
	}
	if unavailable == 0 {
		t.Error("no signHash answered 503 while the HSM was down")
	}

	hsmSrv.start()
	restartedAt := time.Now()
	if !waitFor(20*time.Second, func() bool { return readyStatus(rep.URL) == 200 }) {
		t.Fatalf("sigillo did not recover within 20s of the HSM's return:\n%s", rep.logs.String())
	}
	recovered := time.Since(restartedAt)
	after := total()
	if !waitFor(10*time.Second, func() bool { return total() >= after+20 }) {
		t.Fatalf("signing did not resume after recovery (%d → %d)", after, total())
	}
	stop()
	wg.Wait()
	t.Logf("outage %v, ready again %v after the HSM came back; %d signatures in all",
		restartedAt.Sub(killedAt).Round(time.Millisecond), recovered.Round(time.Millisecond), total())

	if !watch.sawDown.Load() || !watch.sawUpAgain.Load() {
		t.Errorf("readyz watcher: down %v, up again %v", watch.sawDown.Load(), watch.sawUpAgain.Load())
	}
	if n := watch.non503Down.Load(); n > 0 {
		t.Errorf("%d readyz answers were neither 200 nor 503 + Retry-After", n)
	}
	db := openDB(t, dsn)
	for _, s := range signers {
		if n := s.noRetry.Load(); n > 0 {
			t.Errorf("%s: %d refusals without Retry-After", s.cred.ID, n)
		}
		if s.status(500) > 0 {
			t.Errorf("%s: %d answers were 500", s.cred.ID, s.status(500))
		}
		// No request is in flight any more: the accounting is exact.
		checkBudget(t, db, s, 0)
	}
	if !rep.logs.contains("hsm: reconnected") {
		t.Error("no reconnect logged")
	}
}
