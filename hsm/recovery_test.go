package hsm_test

import (
	"context"
	"crypto"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

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

// TestRecovery_concurrentSigning: 8 goroutines sign while the library is
// finalized and its sessions closed underneath, repeatedly. No panic, and
// every signature returned verifies; failures, if any, are ErrUnavailable.
func TestRecovery_concurrentSigning(t *testing.T) {
	tok := softhsmtest.New(t)
	ctx := context.Background()
	m := tok.Manager
	if _, err := m.GenerateKey(ctx, "ec", "ecdsa-p256"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GenerateKey(ctx, "rsa", "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	const workers, perWorker, rounds = 8, 60, 6
	var (
		wg               sync.WaitGroup
		signed, failures atomic.Int64
		stop             = make(chan struct{})
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
			for i := 0; i < perWorker; i++ {
				digest := digestOf(crypto.SHA256, randomMsg(t))
				sig, err := s.Sign(nil, digest, crypto.SHA256)
				if err != nil {
					if !errors.Is(err, hsm.ErrUnavailable) {
						t.Errorf("Sign: unexpected error kind: %v", err)
					}
					t.Logf("sign failed: %v", err)
					failures.Add(1)
					continue
				}
				if err := verify(s.Public(), digest, sig, crypto.SHA256); err != nil {
					t.Errorf("returned signature does not verify: %v", err)
				}
				signed.Add(1)
			}
		}()
	}
	var dwg sync.WaitGroup
	dwg.Add(1)
	go func() {
		defer dwg.Done()
		raw := openRaw(t, tok.Config.Module, tok.Config.TokenLabel)
		for r := 0; r < rounds; r++ {
			select {
			case <-stop:
				return
			default:
			}
			// Wait until some signing happened since the last hit.
			before := signed.Load()
			for signed.Load() < before+5 && signed.Load()+failures.Load() < workers*perWorker {
				select {
				case <-stop:
					return
				default:
				}
			}
			d := disruptions[r%len(disruptions)]
			// Between two calls of the signing goroutines, never during
			// one (see hsm.LockLibrary).
			unlock := hsm.LockLibrary(tok.Config.Module)
			d.do(t, raw)
			if d.name == "C_Finalize" {
				// Our raw handle needs the library initialised for the
				// next round.
				_ = raw.p.Initialize()
			}
			unlock()
		}
	}()
	wg.Wait()
	close(stop)
	dwg.Wait()
	t.Logf("signed %d, failed %d", signed.Load(), failures.Load())
	if signed.Load() == 0 {
		t.Fatal("no signature succeeded")
	}
	// After the storm the Manager is healthy again.
	if err := m.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	s, _ := m.Signer(ctx, "ec")
	digest := digestOf(crypto.SHA256, []byte("after"))
	sig, err := s.Sign(nil, digest, crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign after the storm: %v", err)
	}
	if err := verify(s.Public(), digest, sig, crypto.SHA256); err != nil {
		t.Fatal(err)
	}
}
