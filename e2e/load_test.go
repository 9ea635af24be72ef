package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// signer is one load worker: its own credential and a SAD for granted
// signatures, signing one hash per signHash call against a set of
// replicas in turn. It counts what came back.
type signer struct {
	cred    *credential
	token   string
	sad     string
	granted int
	pace    time.Duration // pause between requests (a "small" load)

	returned atomic.Int64 // signatures received and verified
	// by status: 200, 503, 429, 400, other; transport errors apart.
	statuses sync.Map     // int → *atomic.Int64
	noRetry  atomic.Int64 // 503/429 without Retry-After
	netErrs  atomic.Int64
}

func newSigner(t *testing.T, a *api, name string, granted int) *signer {
	t.Helper()
	cred := a.newCredential(name, "none", 1, granted)
	tok := a.login(cred.UserID)
	sad := a.must(200, "/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, granted, nil, pin, "")).str("SAD")
	return &signer{cred: cred, token: tok, sad: sad, granted: granted}
}

func (s *signer) count(status int) {
	v, _ := s.statuses.LoadOrStore(status, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (s *signer) status(code int) int64 {
	v, ok := s.statuses.Load(code)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// run signs until ctx ends or the SAD is spent; each call uses hashes
// hashes per request.
func (s *signer) run(ctx context.Context, t *testing.T, bases []string, hashes int) {
	for i := 0; ctx.Err() == nil && int(s.returned.Load())+hashes <= s.granted; i++ {
		hs := digests(hashes)
		// ctx only stops the loop: a request is never cancelled midway
		// (the accounting must see every answer the server gave).
		r, err := do(context.Background(), http.MethodPost, bases[i%len(bases)]+"/csc/v2/signatures/signHash", s.token, signHashReq(s.cred.ID, s.sad, hs))
		if err != nil {
			s.netErrs.Add(1)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		s.count(r.status)
		if s.pace > 0 {
			time.Sleep(s.pace)
		}
		switch r.status {
		case http.StatusOK:
			s.returned.Add(int64(signatures(t, r, s.cred.Cert, hs)))
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			if !retryAfterOK(r) {
				s.noRetry.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		case http.StatusBadRequest:
			// The SAD is spent (a request lost to an outage consumed
			// budget the client never got signatures for).
			return
		default:
			// Counted (callers fail on any 500); keep the load going so
			// recovery can still be observed.
			t.Errorf("signHash answered %s", r)
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// budget reads a SAD's remaining budget and the audit outcomes of
// signHash calls on the credential, straight from the database.
type budget struct {
	remaining int
	audited   map[string]int // outcome → hashes
}

func readBudget(t *testing.T, db *sql.DB, s *signer) budget {
	t.Helper()
	b := budget{audited: map[string]int{}}
	if err := db.QueryRow(`SELECT remaining FROM sads WHERE credential_id = $1`, s.cred.ID).Scan(&b.remaining); err != nil {
		t.Fatalf("read SAD of %s: %v", s.cred.ID, err)
	}
	rows, err := db.Query(`SELECT outcome, detail FROM audit_log WHERE action = 'signature.sign' AND object = $1`, "credential:"+s.cred.ID)
	if err != nil {
		t.Fatalf("read audit: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var outcome, detail string
		if err := rows.Scan(&outcome, &detail); err != nil {
			t.Fatal(err)
		}
		b.audited[outcome] += detailCount(detail)
	}
	return b
}

// detailCount reads "count" from an audit detail (JSON object of strings).
func detailCount(detail string) int {
	var m map[string]string
	if err := json.Unmarshal([]byte(detail), &m); err != nil {
		return 1
	}
	n := 0
	for _, c := range m["count"] {
		if c < '0' || c > '9' {
			return 1
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 {
		return 1
	}
	return n
}

// checkBudget asserts the SAD invariants after an outage or a crash:
//   - every signature returned was audited as a success, and nothing
//     was audited as a success that the client did not get — except the
//     requests in flight at a crash (inFlight bounds them);
//   - every consumed unit of budget is either a returned signature or an
//     audited failure that keeps its budget (the audit write failed after
//     signing), or in flight. A call the HSM failed (unavailable) gave
//     its budget back to the SAD (sam refunds it: no signature of the
//     batch was returned), so audited HSM failures consume nothing;
//   - consumption never exceeds the grant (remaining ≥ 0).
func checkBudget(t *testing.T, db *sql.DB, s *signer, inFlight int) {
	t.Helper()
	b := readBudget(t, db, s)
	consumed := s.granted - b.remaining
	returned := int(s.returned.Load())
	success := b.audited["success"]
	failedAfterConsume := b.audited["failure:audit"]
	t.Logf("%s: granted %d, consumed %d, returned %d, audited success %d, audited audit failures %d, audited HSM failures (refunded) %d",
		s.cred.ID, s.granted, consumed, returned, success, failedAfterConsume, b.audited["failure:hsm"])
	if b.remaining < 0 {
		t.Errorf("%s: remaining %d < 0", s.cred.ID, b.remaining)
	}
	if returned > consumed {
		t.Errorf("%s: %d signatures returned but only %d consumed from the SAD", s.cred.ID, returned, consumed)
	}
	if returned > success {
		t.Errorf("%s: %d signatures returned but only %d audited", s.cred.ID, returned, success)
	}
	if success > returned+inFlight {
		t.Errorf("%s: %d audited successes, %d returned (+%d in flight)", s.cred.ID, success, returned, inFlight)
	}
	if unaccounted := consumed - success - failedAfterConsume; unaccounted < 0 || unaccounted > inFlight {
		t.Errorf("%s: %d consumed units are neither a signature nor an audited failure (allowed in flight: %d)",
			s.cred.ID, unaccounted, inFlight)
	}
}
