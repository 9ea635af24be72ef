package hsm_test

import (
	"context"
	"crypto"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigillo/sigillo/hsm"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// disruptions are ways another user of the same library in this process can
// pull the rug from under the Manager.
var disruptions = []struct {
	name string
	do   func(t testing.TB, r *rawToken)
}{
	{"C_CloseAllSessions", func(t testing.TB, r *rawToken) {
		if err := r.p.CloseAllSessions(r.slot); err != nil {
			t.Errorf("C_CloseAllSessions: %v", err)
		}
	}},
	{"C_Finalize", func(t testing.TB, r *rawToken) {
		if err := r.p.Finalize(); err != nil {
			t.Errorf("C_Finalize: %v", err)
		}
	}},
	{"C_Finalize_and_C_Initialize", func(t testing.TB, r *rawToken) {
		// The library comes back, but with no sessions and no login.
		if err := r.p.Finalize(); err != nil {
			t.Errorf("C_Finalize: %v", err)
		}
		if err := r.p.Initialize(); err != nil {
			t.Errorf("C_Initialize: %v", err)
		}
	}},
}

// TestRecovery: after the library's state is destroyed underneath, the next
// Sign through the same cached signer succeeds, in the same process.
func TestRecovery(t *testing.T) {
	tok := softhsmtest.New(t)
	ctx := context.Background()
	m := tok.Manager
	for _, id := range []string{"rsa", "ec"} {
		algo := map[string]string{"rsa": "rsa-2048", "ec": "ecdsa-p256"}[id]
		if _, err := m.GenerateKey(ctx, id, algo); err != nil {
			t.Fatal(err)
		}
	}
	signers := map[string]crypto.Signer{}
	for _, id := range []string{"rsa", "ec"} {
		s, err := m.Signer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		signers[id] = s
	}
	for _, d := range disruptions {
		t.Run(d.name, func(t *testing.T) {
			for id, s := range signers {
				digest := digestOf(crypto.SHA256, randomMsg(t))
				if _, err := s.Sign(nil, digest, crypto.SHA256); err != nil {
					t.Fatalf("Sign before: %v", err)
				}
				raw := openRaw(t, tok.Config.Module, tok.Config.TokenLabel)
				d.do(t, raw)
				sig, err := s.Sign(nil, digest, crypto.SHA256)
				if err != nil {
					t.Fatalf("%s: Sign after %s: %v", id, d.name, err)
				}
				if err := verify(s.Public(), digest, sig, crypto.SHA256); err != nil {
					t.Fatalf("%s: signature after recovery: %v", id, err)
				}
				if err := m.Ready(ctx); err != nil {
					t.Fatalf("Ready after recovery: %v", err)
				}
				// Other operations recovered too.
				if _, err := m.PublicKey(ctx, id); err != nil {
					t.Fatalf("PublicKey after recovery: %v", err)
				}
			}
		})
	}
	t.Run("Ready_heals_after_C_Finalize", func(t *testing.T) {
		raw := openRaw(t, tok.Config.Module, tok.Config.TokenLabel)
		if err := raw.p.Finalize(); err != nil {
			t.Fatal(err)
		}
		if err := m.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		if err := m.Ready(ctx); err != nil {
			t.Fatalf("Ready again: %v", err)
		}
	})
}

// TestRecovery_concurrentSigning: 8 goroutines sign while, repeatedly, the
// library is finalized or its sessions closed underneath. No panic, every
// returned signature verifies, and since each disruption waits until every
// worker has signed again since the previous one (so no single signature
// meets two outages), the one retry is enough: no signature fails at all.
func TestRecovery_concurrentSigning(t *testing.T) {
	cfg, _ := softhsmtest.Provision(t)
	reg := prometheus.NewRegistry()
	m, err := hsm.Open(cfg, hsm.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	if _, err := m.GenerateKey(ctx, "ec", "ecdsa-p256"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GenerateKey(ctx, "rsa", "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	const workers, perWorker, rounds = 8, 80, 9
	var (
		wg       sync.WaitGroup
		signed   [workers]atomic.Int64
		finished [workers]atomic.Bool
		failures atomic.Int64
	)
	for w := range workers {
		id := []string{"ec", "rsa"}[w%2]
		s, err := m.Signer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished[w].Store(true)
			for i := 0; i < perWorker; i++ {
				digest := digestOf(crypto.SHA256, randomMsg(t))
				sig, err := s.Sign(nil, digest, crypto.SHA256)
				if err != nil {
					t.Errorf("worker %d: Sign: %v", w, err)
					failures.Add(1)
					continue
				}
				if err := verify(s.Public(), digest, sig, crypto.SHA256); err != nil {
					t.Errorf("worker %d: returned signature does not verify: %v", w, err)
				}
				signed[w].Add(1)
			}
		}()
	}
	raw := openRaw(t, cfg.Module, cfg.TokenLabel)
	disrupted := 0
	for r := 0; r < rounds; r++ {
		var snap [workers]int64
		for w := range workers {
			snap[w] = signed[w].Load()
		}
		// Wait until every worker still running has signed once more.
		for w := 0; w < workers; {
			if finished[w].Load() || signed[w].Load() > snap[w] {
				w++
				continue
			}
			time.Sleep(100 * time.Microsecond)
		}
		d := disruptions[r%len(disruptions)]
		// Between two calls into the library, never during one: see
		// hsm.LockLibrary.
		unlock := hsm.LockLibrary(cfg.Module)
		d.do(t, raw)
		if d.name == "C_Finalize" {
			// Our raw handle needs the library initialised next round.
			_ = raw.p.Initialize()
		}
		unlock()
		disrupted++
	}
	wg.Wait()
	var total int64
	for w := range workers {
		total += signed[w].Load()
	}
	t.Logf("%d disruptions, %d signatures verified, %d failed", disrupted, total, failures.Load())
	if total == 0 {
		t.Fatal("no signature succeeded")
	}
	if err := m.Ready(ctx); err != nil {
		t.Fatalf("Ready after the storm: %v", err)
	}
	// Single flight: 8 goroutines failing together reconnect once per
	// disruption, not once each.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	reconnects := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "sigillo_hsm_reconnects_total" {
			for _, mt := range mf.GetMetric() {
				reconnects[mt.GetLabel()[0].GetValue()] = mt.GetCounter().GetValue()
			}
		}
	}
	if reconnects["ok"] != float64(disrupted) || reconnects["error"] != 0 {
		t.Errorf("reconnects %v, want ok=%d error=0", reconnects, disrupted)
	}
}
