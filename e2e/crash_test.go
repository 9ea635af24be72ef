package e2e

import (
	"context"
	"database/sql"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// authorizer loops SCAL 2 authorizations (bound to fresh hashes) on one
// replica and counts the SADs it received.
type authorizer struct {
	cred     *credential
	token    string
	returned atomic.Int64
	netErrs  atomic.Int64 // transport errors: refused while down, or cut by the kill
	cut      atomic.Int64 // of which not "connection refused": in flight at the kill
}

func (z *authorizer) run(ctx context.Context, t *testing.T, base string) {
	for ctx.Err() == nil {
		// ctx only stops the loop: a request is never cancelled midway,
		// so every request the server saw is also seen here.
		r, err := do(context.Background(), http.MethodPost, base+"/csc/v2/credentials/authorize", z.token, authorizeReq(z.cred.ID, 3, digests(3), pin, ""))
		switch {
		case err != nil:
			z.netErrs.Add(1)
			if !strings.Contains(err.Error(), "connection refused") {
				z.cut.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		case r.status == 200 && r.str("SAD") != "":
			z.returned.Add(1)
		case r.status == 503 || r.status == 429:
			time.Sleep(50 * time.Millisecond)
		default:
			t.Errorf("authorize: %s", r)
			return
		}
	}
}

// checkNoHalfWrittenSADs: every bound SAD has exactly its remaining
// budget in unconsumed hashes (SAD row and hash rows are written and
// consumed in one transaction each), and for the authorizer's
// credential, SADs returned ≤ SADs audited ≤ SADs stored ≤ returned +
// requests cut by the crash.
func checkNoHalfWrittenSADs(t *testing.T, db *sql.DB, z *authorizer) {
	t.Helper()
	var broken int
	err := db.QueryRow(`SELECT count(*) FROM sads s WHERE s.bound = 1 AND s.remaining <>
		(SELECT COALESCE(sum(h.cnt - h.used), 0) FROM sad_hashes h WHERE h.sad_hash = s.hash)`).Scan(&broken)
	if err != nil {
		t.Fatal(err)
	}
	if broken > 0 {
		t.Errorf("%d bound SADs whose remaining budget differs from their unconsumed hashes", broken)
	}
	var stored, audited int
	if err := db.QueryRow(`SELECT count(*) FROM sads WHERE credential_id = $1`, z.cred.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM audit_log WHERE action = 'credential.authorize' AND outcome = 'success' AND object = $1`,
		"credential:"+z.cred.ID).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	returned, cut := int(z.returned.Load()), int(z.netErrs.Load())
	t.Logf("authorize %s: %d SADs returned, %d audited, %d stored; %d requests failed at the TCP level, %d of them cut mid-request",
		z.cred.ID, returned, audited, stored, cut, z.cut.Load())
	if returned > audited || audited > stored || stored > returned+cut {
		t.Errorf("SADs: returned %d ≤ audited %d ≤ stored %d ≤ returned + cut %d does not hold", returned, audited, stored, returned+cut)
	}
}

// auditVerify runs `sigillo audit verify` on the database.
func auditVerify(t *testing.T, dsn string) {
	t.Helper()
	cmd := exec.Command(binary, "audit", "verify", "--database", dsn)
	cmd.Env = baseEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sigillo audit verify: %v\n%s", err, out)
	}
	t.Logf("audit verify: %s", lastLine(out))
}

func lastLine(b []byte) string {
	s := string(b)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}

// TestCrashKill9: replica A is killed with SIGKILL while batch signHash
// calls and authorizations run on it (and on B). After A restarts, every
// SAD budget adds up (consumed = signatures audited + failures audited,
// up to the requests the kill cut), no SAD is half written, and the audit
// chain verifies.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: process crash under load (run without -short)")
	}
	c, a, b := twoReplicas(t)
	pa := c.api(a)
	const workers, granted, batch = 4, 1000, 10
	signers := make([]*signer, workers)
	for i := range signers {
		signers[i] = newSigner(t, pa, "crash"+string(rune('a'+i)), granted)
	}
	// Two authorizers, each on its own credential (the per-credential
	// rate limit must not be what stops them).
	var zs []*authorizer
	for _, name := range []string{"crashy", "crashz"} {
		cred := pa.newCredential(name, "none", 2, 3)
		zs = append(zs, &authorizer{cred: cred, token: pa.login(cred.UserID)})
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for _, s := range signers {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(ctx, t, []string{a.URL, b.URL}, batch) }()
	}
	for _, z := range zs {
		wg.Add(1)
		go func() { defer wg.Done(); z.run(ctx, t, a.URL) }()
	}
	sads := func() (n int64) {
		for _, z := range zs {
			n += z.returned.Load()
		}
		return n
	}

	total := func() (n int64) {
		for _, s := range signers {
			n += s.returned.Load()
		}
		return n
	}
	if !waitFor(20*time.Second, func() bool { return total() >= 200 && sads() >= 4 }) {
		t.Fatalf("load not established: %d signatures, %d SADs", total(), sads())
	}
	a.kill9()
	killed := total()
	if !waitFor(10*time.Second, func() bool { return total() >= killed+100 }) {
		t.Errorf("B did not keep signing while A was down")
	}
	a.restart()
	restarted := total()
	if !waitFor(20*time.Second, func() bool { return total() >= restarted+100 || total() >= workers*granted-workers*batch }) {
		t.Errorf("signing did not go on after A's restart")
	}
	zBefore := sads()
	if !waitFor(20*time.Second, func() bool { return sads() > zBefore }) {
		t.Errorf("authorize on A did not resume after the restart")
	}
	stop()
	wg.Wait()

	db := openDB(t, c.database)
	for _, s := range signers {
		if s.status(500) > 0 {
			t.Errorf("%s: %d answers were 500", s.cred.ID, s.status(500))
		}
		checkBudget(t, db, s, int(s.netErrs.Load())*batch)
	}
	for _, z := range zs {
		checkNoHalfWrittenSADs(t, db, z)
	}
	auditVerify(t, c.database)
}

// TestDatabaseLoss: the private PostgreSQL under two replicas is stopped
// mid-load. Every answer is 200 or 503 with Retry-After (never 500), no
// signature is returned without its SAD consumption and audit record,
// readyz says why, and both replicas recover by themselves when the
// database is back.
func TestDatabaseLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: stops and restarts a PostgreSQL server")
	}
	needBinary(t)
	pg := startPG(t) // private: stopping it hurts no other test
	t.Cleanup(pg.destroy)
	tok := newToken(t, "dbloss")
	dsn := pg.newDatabase(t)
	c := newCluster(t, dsn, tok.env())
	a := c.start("A")
	b := c.start("B")
	pa := c.api(a)

	const workers, granted, batch = 3, 1000, 5
	signers := make([]*signer, workers)
	for i := range signers {
		signers[i] = newSigner(t, pa, "db"+string(rune('a'+i)), granted)
		signers[i].pace = 5 * time.Millisecond
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for _, s := range signers {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(ctx, t, []string{a.URL, b.URL}, batch) }()
	}
	total := func() (n int64) {
		for _, s := range signers {
			n += s.returned.Load()
		}
		return n
	}
	if !waitFor(20*time.Second, func() bool { return total() >= 100 }) {
		t.Fatalf("load not established: %d", total())
	}

	pg.stop()
	if !waitFor(15*time.Second, func() bool { return readyStatus(a.URL) == 503 && readyStatus(b.URL) == 503 }) {
		t.Fatal("readyz did not report the database loss")
	}
	r, err := do(ctx, http.MethodGet, a.URL+"/readyz", "", nil)
	if err != nil || r.status != 503 || !retryAfterOK(r) {
		t.Errorf("readyz while the database is down: %v %v", r, err)
	}
	time.Sleep(time.Second)
	var refused int64
	for _, s := range signers {
		refused += s.status(503)
	}
	if refused == 0 {
		t.Error("no signHash answered 503 while the database was down")
	}

	if err := pg.start(); err != nil {
		t.Fatalf("restart PostgreSQL: %v", err)
	}
	if !waitFor(30*time.Second, func() bool { return readyStatus(a.URL) == 200 && readyStatus(b.URL) == 200 }) {
		t.Fatalf("replicas not ready within 30s of the database's return:\nA:\n%s\nB:\n%s", a.logs.String(), b.logs.String())
	}
	back := total()
	if !waitFor(20*time.Second, func() bool { return total() >= back+100 }) {
		t.Errorf("signing did not resume after the database came back (%d → %d)", back, total())
	}
	stop()
	wg.Wait()

	db := openDB(t, dsn)
	for _, s := range signers {
		if s.status(500) > 0 {
			t.Errorf("%s: %d answers were 500", s.cred.ID, s.status(500))
		}
		if n := s.noRetry.Load(); n > 0 {
			t.Errorf("%s: %d refusals without Retry-After", s.cred.ID, n)
		}
		// A request refused while the database died may have consumed
		// its budget (and even signed) before the audit write failed:
		// such budget is lost, never turned into a returned signature.
		checkBudget(t, db, s, int(s.status(503)+s.netErrs.Load())*batch)
	}
	auditVerify(t, dsn)
}
