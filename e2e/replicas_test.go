package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// twoReplicas starts replicas A and B sharing a fresh database on the
// shared private PostgreSQL and one SoftHSM2 token (same SOFTHSM2_CONF and
// token label). A starts first: it creates the CA on the token; B finds it.
func twoReplicas(t *testing.T, extra ...string) (*cluster, *replica, *replica) {
	t.Helper()
	needBinary(t)
	pg := sharedPG.get(t)
	tok := newToken(t, "e2e")
	c := newCluster(t, pg.newDatabase(t), tok.env(), extra...)
	c.tok = tok
	a := c.start("A")
	b := c.start("B")
	return c, a, b
}

// TestReplicas: state that guards signatures lives in the store, so two
// processes behave as one service.
func TestReplicas(t *testing.T) {
	c, a, b := twoReplicas(t)
	pA, pB := c.api(a), c.api(b)

	t.Run("SAD_from_A_signs_on_B", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("rep-sad", "none", 1, 4)
		tokA := A.login(cred.UserID)
		sad := A.must(200, "/csc/v2/credentials/authorize", tokA, authorizeReq(cred.ID, 4, nil, pin, "")).str("SAD")
		// The access token issued by A works on B too.
		hs := digests(3)
		r := B.must(200, "/csc/v2/signatures/signHash", tokA, signHashReq(cred.ID, sad, hs))
		if n := signatures(t, r, cred.Cert, hs); n != 3 {
			t.Fatalf("%d signatures", n)
		}
		// One left: B spent 3 of 4, so A may sign one, and then none.
		hs = digests(1)
		signatures(t, A.must(200, "/csc/v2/signatures/signHash", tokA, signHashReq(cred.ID, sad, hs)), cred.Cert, hs)
		r = B.post("/csc/v2/signatures/signHash", tokA, signHashReq(cred.ID, sad, digests(1)))
		if r.status != 400 {
			t.Fatalf("5th signature of a 4-signature SAD: %s", r)
		}
	})

	t.Run("TOTP_used_on_A_refused_on_B", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("rep-totp", "totp", 1, 1)
		tokA, tokB := A.login(cred.UserID), B.login(cred.UserID)
		code := totpAt(t, cred.OTPURI, time.Now())
		A.must(200, "/csc/v2/credentials/authorize", tokA, authorizeReq(cred.ID, 1, nil, pin, code))
		r := B.post("/csc/v2/credentials/authorize", tokB, authorizeReq(cred.ID, 1, nil, pin, code))
		if !wrongFactor(r, "OTP") {
			t.Fatalf("replayed TOTP on B: %s, want 400 invalid OTP", r)
		}
	})

	t.Run("wrong_PINs_on_A_and_B_share_one_counter", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("rep-pin", "none", 1, 1)
		tokA, tokB := A.login(cred.UserID), B.login(cred.UserID)
		for i, side := range []*api{A, B} {
			tok := []string{tokA, tokB}[i]
			r := side.post("/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, nil, "00000000", ""))
			if !wrongFactor(r, "PIN") {
				t.Fatalf("wrong PIN #%d: %s", i+1, r)
			}
		}
		r := A.post("/csc/v2/credentials/authorize", tokA, authorizeReq(cred.ID, 1, nil, "00000000", ""))
		if r.status != 400 || !strings.Contains(strings.ToLower(r.String()), "locked") {
			t.Fatalf("third wrong PIN (A, after one on A and one on B): %s, want locked", r)
		}
		r = B.post("/csc/v2/credentials/authorize", tokB, authorizeReq(cred.ID, 1, nil, pin, ""))
		if r.status != 400 || !strings.Contains(strings.ToLower(r.String()), "locked") {
			t.Fatalf("right PIN on B after the block on A: %s, want locked", r)
		}
	})

	t.Run("suspension_on_A_stops_signing_on_B_at_once", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("rep-susp", "none", 1, 10)
		tokB := B.login(cred.UserID)
		sad := B.must(200, "/csc/v2/credentials/authorize", tokB, authorizeReq(cred.ID, 10, nil, pin, "")).str("SAD")
		hs := digests(1)
		signatures(t, B.must(200, "/csc/v2/signatures/signHash", tokB, signHashReq(cred.ID, sad, hs)), cred.Cert, hs)
		A.must(200, "/admin/v1/certificates/"+cred.Serial+"/suspend", A.admin, map[string]any{})
		r := B.post("/csc/v2/signatures/signHash", tokB, signHashReq(cred.ID, sad, digests(1)))
		if r.status != 400 || !strings.Contains(r.String(), "suspended") {
			t.Fatalf("sign on B right after suspension on A: %s, want 400 suspended", r)
		}
		r = B.post("/csc/v2/credentials/authorize", tokB, authorizeReq(cred.ID, 1, nil, pin, ""))
		if r.status != 400 || !strings.Contains(r.String(), "suspended") {
			t.Fatalf("authorize on B after suspension on A: %s", r)
		}
		// Reactivated on B, A signs again with the same SAD.
		B.must(200, "/admin/v1/certificates/"+cred.Serial+"/reactivate", B.admin, map[string]any{})
		hs = digests(1)
		signatures(t, A.must(200, "/csc/v2/signatures/signHash", tokB, signHashReq(cred.ID, sad, hs)), cred.Cert, hs)
	})

	t.Run("disabled_key_on_A_refused_on_B", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("rep-dis", "none", 1, 10)
		tokB := B.login(cred.UserID)
		sad := B.must(200, "/csc/v2/credentials/authorize", tokB, authorizeReq(cred.ID, 10, nil, pin, "")).str("SAD")
		A.must(200, "/admin/v1/credentials/"+cred.ID+"/disable", A.admin, map[string]any{})
		r := B.post("/csc/v2/signatures/signHash", tokB, signHashReq(cred.ID, sad, digests(1)))
		if r.status != 400 || !strings.Contains(r.String(), "disabled") {
			t.Fatalf("sign on B after disable on A: %s", r)
		}
	})

	t.Run("concurrent_signing_on_both_never_exceeds_the_SAD", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		const granted = 20
		cred := A.newCredential("rep-race", "none", 1, granted)
		tok := A.login(cred.UserID)
		sad := A.must(200, "/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, granted, nil, pin, "")).str("SAD")
		var mu sync.Mutex
		ok := 0
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				side := []*api{A, B}[i%2]
				hs := digests(1)
				r, err := do(t.Context(), "POST", side.base+"/csc/v2/signatures/signHash", tok, signHashReq(cred.ID, sad, hs))
				if err != nil {
					t.Errorf("signHash: %v", err)
					return
				}
				switch r.status {
				case 200:
					mu.Lock()
					ok += signatures(t, r, cred.Cert, hs)
					mu.Unlock()
				case 400:
				default:
					t.Errorf("signHash: %s", r)
				}
			}()
		}
		wg.Wait()
		if ok != granted {
			t.Fatalf("%d signatures from a %d-signature SAD raced on two replicas", ok, granted)
		}
	})
}
