// Package signdoctest gives tests of document signing (signdoc, the CSC
// signDoc handler, the `sigillo sign` CLI) the real parts: a SoftHSM2
// token, a SQLite store, the real CA (ca.Authority, keys in the token)
// with its public HTTP endpoints (OCSP, CRL, TSA) on a live loopback
// server, sam on top, and the signdoc service. It also holds the
// independent checkers every produced signature goes through: qpdf,
// pdfsig with an NSS database trusting the CA root, and openssl cms.
// It is imported only by tests.
package signdoctest

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/cahttp"
	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	"github.com/sigillo/sigillo/signdoc"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

// Env is a running set of real parts.
type Env struct {
	// URL is the live server's base URL (the CA's public URL too).
	URL string
	// Engine serves URL; tests mount more routes on it before using them.
	Engine    *gin.Engine
	Store     *store.Store
	Authority *ca.Authority
	Sam       *sam.Service
	SignDoc   *signdoc.Service
	Audit     *Recorder
	// HSMSigns counts signatures sam asked of the HSM (the CA's own
	// signatures are not counted).
	HSMSigns *atomic.Int64
}

// countingKeys wraps sam's view of the HSM to count Sign calls.
type countingKeys struct {
	sam.Keys
	n *atomic.Int64
}

func (k countingKeys) Signer(ctx context.Context, id string) (crypto.Signer, error) {
	s, err := k.Keys.Signer(ctx, id)
	if err != nil {
		return nil, err
	}
	return countingSigner{s, k.n}, nil
}

type countingSigner struct {
	crypto.Signer
	n *atomic.Int64
}

func (s countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.n.Add(1)
	return s.Signer.Sign(r, digest, opts)
}

// Recorder is the real audit log on the Env's store (so the history and
// signature-log rows a signature carries are written) plus an in-memory
// copy of the events for assertions.
type Recorder struct {
	log    *audit.Log
	mu     sync.Mutex
	events []audit.Event
}

// Record appends e to the log and remembers it.
func (r *Recorder) Record(ctx context.Context, e audit.Event) error {
	if err := r.log.Record(ctx, e); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// Count returns how many events have the action and outcome.
func (r *Recorder) Count(action, outcome string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Action == action && e.Outcome == outcome {
			n++
		}
	}
	return n
}

// Issuer adapts the CA to sam.Issuer (the server wires the same adapter).
type Issuer struct{ CA *ca.Authority }

var _ sam.Issuer = Issuer{}

// Issue certifies pub for the holder; the chain is leaf, issuing CA, root.
func (i Issuer) Issue(ctx context.Context, pub crypto.PublicKey, h sam.Holder, credentialID string) (string, [][]byte, error) {
	req := ca.IssueRequest{PublicKey: pub, CommonName: h.GivenName + " " + h.Surname, GivenName: h.GivenName, Surname: h.Surname,
		Country: h.Country, Owner: credentialID, Actor: "system"}
	if h.FiscalCode != "" {
		req.SerialNumber = "TINIT-" + h.FiscalCode
	}
	c, err := i.CA.Issue(ctx, req)
	if err != nil {
		return "", nil, err
	}
	chain := [][]byte{c.DER}
	for _, x := range i.CA.Chain() {
		chain = append(chain, x.Raw)
	}
	return c.Serial, chain, nil
}

// CertStatus asks the CA.
func (i Issuer) CertStatus(ctx context.Context, serial string) (string, error) {
	st, err := i.CA.Status(ctx, serial)
	return string(st), err
}

// FastArgon2 keeps PIN and password hashing cheap in tests.
var FastArgon2 = sam.Argon2Params{Time: 1, Memory: 256, Threads: 1}

// New starts the parts. Configure may adjust the signdoc configuration
// (the Timestamper and Validation default to the CA).
func New(t testing.TB, configure func(*signdoc.Config)) *Env {
	t.Helper()
	gin.SetMode(gin.TestMode)
	ctx := context.Background()
	tok := softhsmtest.New(t)
	st := storetest.NewSQLite(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	alog, err := audit.Open(ctx, st)
	if err != nil {
		t.Fatalf("audit.Open: %v", err)
	}
	t.Cleanup(func() { _ = alog.Close() })
	rec := &Recorder{log: alog}
	auth, err := ca.Open(ctx, ca.Config{PublicURL: url, KeyAlgo: "ecdsa-p256", Organization: "sigillo signdoc test", Country: "IT"},
		tok.Manager, st, ca.WithAudit(rec), ca.WithLogger(log))
	if err != nil {
		t.Fatalf("ca.Open: %v", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	hsmSigns := &atomic.Int64{}
	svc, err := sam.New(sam.Config{OTPKey: key, Argon2: FastArgon2, MaxMultisign: 100000}, sam.Deps{
		Store: st, Keys: countingKeys{tok.Manager, hsmSigns}, Issuer: Issuer{auth}, Audit: rec, SMS: otp.NewOutbox(st, time.Now), Log: log,
	})
	if err != nil {
		t.Fatalf("sam.New: %v", err)
	}
	cfg := signdoc.Config{Timestamper: auth, Validation: auth, Log: log}
	if configure != nil {
		configure(&cfg)
	}
	sd, err := signdoc.New(svc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	engine := gin.New()
	if os.Getenv("SIGILLO_TEST_VERBOSE") != "" {
		engine.Use(gin.Logger())
	}
	cahttp.New(auth, log).Register(engine)
	srv := &http.Server{Handler: engine, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("test server: %v", err)
		}
	}()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	})
	return &Env{URL: url, Engine: engine, Store: st, Authority: auth, Sam: svc, SignDoc: sd, Audit: rec, HSMSigns: hsmSigns}
}

// Password is the password of users made by User (samtest's, which
// enrolls them).
const Password = samtest.Password

// PIN is the PIN of credentials made by Credential (samtest's, which
// creates them).
const PIN = samtest.PIN

// User enrolls a user named "Maria Rossi <username>" (signature checks
// look for the surname) and returns its id (also its login name).
func (e *Env) User(t testing.TB, username string) string {
	t.Helper()
	return samtest.CreateUser(t, e.Sam, sam.NewUser{Username: username, GivenName: "Maria", Surname: "Rossi " + username})
}

// Credential creates an active credential (PIN, no OTP unless nc says
// otherwise, ecdsa-p256 unless nc says otherwise, multisign 10).
func (e *Env) Credential(t testing.TB, userID string, nc sam.NewCredential) *sam.CreatedCredential {
	t.Helper()
	return samtest.CreateCredential(t, e.Sam, userID, nc)
}

// Login returns the principal of a user.
func (e *Env) Login(t testing.TB, userID string) *sam.Principal {
	t.Helper()
	return samtest.Login(t, e.Sam, userID)
}
