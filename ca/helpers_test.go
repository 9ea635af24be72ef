package ca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/ca"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

// recorder is an in-memory audit log that can be told to fail.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (r *recorder) Record(_ context.Context, e audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("audit log down")
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) actions(object string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if object == "" || e.Object == object {
			out = append(out, e.Action)
		}
	}
	return out
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// env is a CA on a real SoftHSM2 token and a real SQLite store.
type env struct {
	a     *ca.Authority
	keys  ca.Keys
	st    *store.Store
	audit *recorder
	clock *clock
	cfg   ca.Config
}

func testConfig() ca.Config {
	return ca.Config{PublicURL: "http://ca.test", KeyAlgo: "ecdsa-p256", Organization: "Sigillo Test", Country: "IT",
		TSAPolicyOID: "1.3.6.1.4.1.99999.1.1"}
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, storetest.NewSQLite)
}

// newEnvOn is newEnv on the store that open returns.
func newEnvOn(t testing.TB, open func(testing.TB) *store.Store) *env {
	t.Helper()
	st := open(t) // first: a missing database skips before a token is made
	tok := softhsmtest.New(t)
	e := &env{keys: tok.Manager, st: st, audit: &recorder{}, clock: &clock{}, cfg: testConfig()}
	e.a = e.open(t)
	return e
}

func (e *env) open(t testing.TB) *ca.Authority {
	t.Helper()
	a, err := ca.Open(context.Background(), e.cfg, e.keys, e.st, ca.WithAudit(e.audit), ca.WithClock(e.clock.Now),
		ca.WithLogger(quiet()))
	if err != nil {
		t.Fatalf("open CA: %v", err)
	}
	return a
}

// credentialKey makes a credential key in the HSM, as the signing side does.
func (e *env) credentialKey(t testing.TB) crypto.PublicKey {
	t.Helper()
	id := "cred-" + randHex(6)
	pub, err := e.keys.GenerateKey(context.Background(), id, "ecdsa-p256")
	if err != nil {
		t.Fatalf("generate credential key: %v", err)
	}
	return pub
}

func randHex(n int) string {
	const hexd = "0123456789abcdef"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = hexd[b[i]%16]
	}
	return string(b)
}

func holder(pub crypto.PublicKey) ca.IssueRequest {
	return ca.IssueRequest{PublicKey: pub, CommonName: "Mario Rossi", GivenName: "Mario", Surname: "Rossi",
		SerialNumber: "TINIT-RSSMRA80A01H501U", Country: "IT", Owner: "cred-1", Qualified: true}
}

func memKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newStore(t testing.TB) *store.Store { return storetest.NewSQLite(t) }

func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func softhsmtestManager(t testing.TB) ca.Keys { return softhsmtest.New(t).Manager }
