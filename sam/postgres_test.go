package sam_test

import (
	"crypto"
	"errors"
	"sync"
	"testing"

	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	"github.com/sigillo/sigillo/store/storetest"
)

// TestOnPostgres runs the counters that matter across replicas on
// PostgreSQL: two services (two "replicas") share one database and one
// key store, and the test alternates between them. Needs SIGILLO_TEST_POSTGRES_URL (skipped loudly without).
func TestOnPostgres(t *testing.T) {
	st := storetest.NewPostgres(t)
	e := samtest.New(t, samtest.WithStore(st))
	replica2, err := sam.New(e.Config, sam.Deps{Store: st, Keys: e.Keys, Issuer: e.CA, Audit: e.Audit, Now: e.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	replicas := []*sam.Service{e.Service, replica2}
	u := e.User(t, "alice")
	p := e.Login(t, u)

	t.Run("concurrent_wrong_PINs_stop_exactly_at_the_block", func(t *testing.T) {
		cc := e.Credential(t, u, sam.NewCredential{})
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := replicas[i%2].Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: "99999999"})
				if !errors.Is(err, sam.ErrInvalidPIN) && !errors.Is(err, sam.ErrPINLocked) {
					t.Errorf("unexpected %v", err)
				}
			}()
		}
		wg.Wait()
		c, err := st.Credential(ctx, cc.CredentialID)
		if err != nil || c.PINTries != 3 {
			t.Fatalf("pin_tries %d, %v; want 3", c.PINTries, err)
		}
	})

	t.Run("concurrent_signers_share_the_budget", func(t *testing.T) {
		cc := e.Credential(t, u, sam.NewCredential{SCAL: 2})
		hashes := digests(4, "pg")
		sad := authorize(t, e, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 4, Hashes: hashes})
		var wg sync.WaitGroup
		var mu sync.Mutex
		signed := 0
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sigs, err := replicas[i%2].SignHash(ctx, p, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value, Hashes: hashes[i%4 : i%4+1], Opts: crypto.SHA256})
				if err == nil {
					verify(t, cc.Certificates[0], hashes[i%4], crypto.SHA256, sigs[0])
					mu.Lock()
					signed++
					mu.Unlock()
				} else if !errors.Is(err, sam.ErrHashNotAuth) && !errors.Is(err, sam.ErrTooMany) {
					t.Errorf("unexpected %v", err)
				}
			}()
		}
		wg.Wait()
		if signed != 4 {
			t.Fatalf("%d signatures from a SAD for 4 hashes", signed)
		}
	})
}
