package e2e

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const oidSHA256WithRSA = "1.2.840.113549.1.1.11"

// asyncJobHashes is the size of the job A is killed under: large enough
// that A is still signing when the test sees its first progress (chunks of
// 500, RSA-2048 on SoftHSM2), small enough to keep the test short.
const asyncJobHashes = 6000

// automatic is an automatic-signature credential (domain + alias, SCAL 1,
// PIN only) with its holder's token and one SAD for granted signatures,
// as an unattended integration uses it (README "Automatic signature").
type automatic struct {
	cred    *credential
	token   string
	sad     string
	granted int
}

func newAutomatic(t testing.TB, a *api, name string, granted int) *automatic {
	t.Helper()
	uid, _ := a.newUser(name)
	alias := strings.ToUpper(randHex(8))
	r := a.must(201, "/admin/v1/credentials", a.admin, map[string]any{
		"userID": uid, "pin": pin, "keyAlgo": "rsa-2048", "otp": "none", "scal": 1,
		"domain": name + ".e2e.example", "alias": alias,
	})
	certs, _ := r.body["certificates"].([]any)
	if len(certs) == 0 {
		t.Fatalf("no certificate in %s", r)
	}
	der, _ := base64.StdEncoding.DecodeString(certs[0].(string))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	tok := a.login(uid)
	// The integration finds the credential by the alias.
	list := a.must(200, "/csc/v2/credentials/list", tok, map[string]any{"userID": alias})
	ids, _ := list.body["credentialIDs"].([]any)
	if len(ids) != 1 || ids[0] != r.str("credentialID") {
		t.Fatalf("credentials/list for alias %s: %s, want [%s]", alias, list, r.str("credentialID"))
	}
	sad := a.must(200, "/csc/v2/credentials/authorize", tok, authorizeReq(r.str("credentialID"), granted, nil, pin, "")).str("SAD")
	return &automatic{cred: &credential{ID: r.str("credentialID"), UserID: uid, Serial: r.str("serialNumber"), Cert: cert},
		token: tok, sad: sad, granted: granted}
}

// submit starts an asynchronous signHash (operationMode "A") and returns
// its responseID.
func (m *automatic) submit(a *api, hashes [][]byte) string {
	a.t.Helper()
	r := a.must(200, "/csc/v2/signatures/signHash", m.token, map[string]any{
		"credentialID": m.cred.ID, "SAD": m.sad, "hashes": b64s(hashes),
		"signAlgo": oidSHA256WithRSA, "operationMode": "A",
	})
	id := r.str("responseID")
	if id == "" {
		a.t.Fatalf("asynchronous signHash: no responseID in %s", r)
	}
	return id
}

// poll calls signPolling once: 202 while the job runs, 200 when done.
func (m *automatic) poll(a *api, id string) *result {
	a.t.Helper()
	r := a.post("/csc/v2/signatures/signPolling", m.token, map[string]any{"requestID": id})
	if r.status != 200 && r.status != 202 {
		a.t.Fatalf("signPolling %s: %s", id, r)
	}
	return r
}

// progress is the "done" member of a 202 answer.
func progress(r *result) int {
	n, _ := r.body["done"].(float64)
	return int(n)
}

// waitDone polls on a until the job is done (or within elapses) and
// returns the final answer.
func (m *automatic) waitDone(a *api, id string, within time.Duration) *result {
	a.t.Helper()
	deadline := time.Now().Add(within)
	last := -1
	for {
		r := m.poll(a, id)
		if r.status == 200 {
			return r
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("job %s not done on %s within %v (last answer %s; progress before %d)", id, a.base, within, r, last)
		}
		last = progress(r)
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyRSA checks a finished job's answer: one signature per hash, in
// input order, each verified with the certificate's key (Go's crypto),
// and every item reported "signed".
func verifyRSA(t testing.TB, r *result, cert *x509.Certificate, hashes [][]byte) {
	t.Helper()
	list, _ := r.body["signatures"].([]any)
	results, _ := r.body["results"].([]any)
	if len(list) != len(hashes) || len(results) != len(hashes) {
		t.Fatalf("%d signatures and %d results for %d hashes", len(list), len(results), len(hashes))
	}
	pub := cert.PublicKey.(*rsa.PublicKey)
	bad := 0
	for i, s := range list {
		sig, err := base64.StdEncoding.DecodeString(s.(string))
		if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, hashes[i], sig) != nil {
			bad++
		}
		if st, _ := results[i].(map[string]any)["status"].(string); st != "signed" {
			t.Errorf("item %d: %v", i, results[i])
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d signatures do not verify", bad, len(list))
	}
}

var signedItems = regexp.MustCompile(`(?m)^sigillo_job_items_total\{outcome="signed"\} (\S+)$`)

// jobItemsSigned reads the job items a replica has signed since it
// started, from its /metrics.
func jobItemsSigned(t testing.TB, r *replica) int {
	t.Helper()
	res, err := do(t.Context(), "GET", r.URL+"/metrics", "", nil)
	if err != nil || res.status != 200 {
		t.Fatalf("GET %s/metrics: %v %v", r.name, err, res)
	}
	m := signedItems.FindSubmatch(res.raw)
	if m == nil {
		return 0
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("sigillo_job_items_total: %v", err)
	}
	return int(f)
}

// TestReplicasAsyncJobs: an asynchronous job lives in the store, so it is
// polled on any replica, and a job whose replica dies is finished by
// another once the dead one's lease runs out (jobs.Config.Lease, 15 s).
func TestReplicasAsyncJobs(t *testing.T) {
	c, a, b := twoReplicas(t, "SIGILLO_BATCH_MAX_HASHES="+strconv.Itoa(asyncJobHashes))
	pA, pB := c.api(a), c.api(b)
	db := openDB(t, c.database)

	t.Run("job_started_on_A_polled_on_B", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		m := newAutomatic(t, A, "async-poll", 1000)
		hs := digests(50)
		id := m.submit(A, hs)
		r := m.waitDone(B, id, 30*time.Second)
		verifyRSA(t, r, m.cred.Cert, hs)
		// The same results, again, from A.
		if again := m.poll(A, id); again.status != 200 || len(again.raw) != len(r.raw) {
			t.Fatalf("signPolling on A after B: %s", again)
		}
		// Another user's token does not find the job.
		other := newAutomatic(t, B, "async-other", 1)
		r = B.post("/csc/v2/signatures/signPolling", other.token, map[string]any{"requestID": id})
		if r.status != 400 || !strings.Contains(r.str("error_description"), "requestID") {
			t.Fatalf("signPolling of another user's job: %s, want 400 Invalid parameter requestID", r)
		}
		var remaining int
		if err := db.QueryRow(`SELECT remaining FROM sads WHERE credential_id = $1`, m.cred.ID).Scan(&remaining); err != nil {
			t.Fatal(err)
		}
		if remaining != m.granted-len(hs) {
			t.Fatalf("SAD remaining %d after a %d-hash job, want %d", remaining, len(hs), m.granted-len(hs))
		}
	})

	t.Run("job_of_killed_A_finished_by_B", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: waits for a job lease to expire (15 s)")
		}
		A, B := pA.with(t), pB.with(t)
		m := newAutomatic(t, A, "async-kill", 3*asyncJobHashes)
		// A is woken at submission and claims the job at once; B looks
		// for work every second, so it may (rarely) claim it first. A job
		// B runs proves nothing here: let it finish and submit another.
		var (
			id       string
			hs       [][]byte
			seenDone int
			before   int // job items A had signed before the job
		)
		for attempt := 1; id == ""; attempt++ {
			if attempt > 3 {
				t.Fatal("A never ran the job it accepted in 3 attempts")
			}
			before = jobItemsSigned(t, a)
			hs = digests(asyncJobHashes)
			jid := m.submit(A, hs)
			for {
				r := m.poll(B, jid)
				if r.status == 200 {
					t.Logf("attempt %d: job done before any progress was seen; again", attempt)
					break
				}
				if n := progress(r); n > 0 {
					// A counts its items just after storing them: give
					// its counter a moment before concluding.
					ranOnA := false
					for i := 0; i < 10 && !ranOnA; i++ {
						ranOnA = jobItemsSigned(t, a) > before
						if !ranOnA {
							time.Sleep(20 * time.Millisecond)
						}
					}
					if ranOnA {
						id, seenDone = jid, n
					} else {
						t.Logf("attempt %d: B runs the job; let it finish, then again", attempt)
						m.waitDone(B, jid, 60*time.Second)
					}
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		ownerA := leaseOwner(t, db, id)
		byB := jobItemsSigned(t, b)
		byA := jobItemsSigned(t, a) - before
		a.kill9()
		killed := time.Now()
		t.Logf("killed A (-9) with job %s: %d/%d items seen done, %d counted by A", id, seenDone, len(hs), byA)
		r := m.waitDone(B, id, 60*time.Second)
		t.Logf("B answered the finished job %.1fs after the kill", time.Since(killed).Seconds())
		verifyRSA(t, r, m.cred.Cert, hs)
		// A may have stored one more chunk (500 items) between reading
		// its counter and the kill; B signed (at least) all the rest.
		if signedByB := jobItemsSigned(t, b) - byB; signedByB < len(hs)-byA-500 {
			t.Fatalf("B signed only %d job items; A had signed %d of %d", signedByB, byA, len(hs))
		}
		if owner := leaseOwner(t, db, id); owner == ownerA || owner == "" {
			t.Fatalf("job %s lease owner %q after the kill, A's was %q: B did not take it over", id, owner, ownerA)
		}
		if !b.logs.logged(`"job finished"`, id) {
			t.Fatalf("B's log does not show it finishing job %s", id)
		}
		// The budget was taken once, at acceptance: re-signing the items
		// A had signed but not stored cost nothing more.
		var remaining int
		if err := db.QueryRow(`SELECT remaining FROM sads WHERE credential_id = $1`, m.cred.ID).Scan(&remaining); err != nil {
			t.Fatal(err)
		}
		if want := m.granted - len(hs)*countJobs(t, db, m.cred.ID); remaining != want {
			t.Fatalf("SAD remaining %d, want %d", remaining, want)
		}
	})
}

// countJobs counts the jobs of a credential (an attempt B ran counts too).
func countJobs(t testing.TB, db *sql.DB, credentialID string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sign_jobs WHERE credential_id = $1`, credentialID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// leaseOwner reads which runner (one per replica process) holds, or last
// held, a job's lease.
func leaseOwner(t testing.TB, db *sql.DB, id string) string {
	t.Helper()
	var owner string
	if err := db.QueryRow(`SELECT lease_owner FROM sign_jobs WHERE id = $1`, id).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	return owner
}

// logged reports whether one log line contains every one of subs.
func (r *ring) logged(subs ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
next:
	for _, l := range r.lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		return true
	}
	return false
}
