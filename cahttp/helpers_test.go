package cahttp_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/cahttp"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Record(_ context.Context, e audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// server is a CA on real SoftHSM2 + SQLite behind a real HTTP server.
type server struct {
	a     *ca.Authority
	keys  ca.Keys
	srv   *httptest.Server
	dir   string
	store *store.Store
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newServer(t testing.TB, keyAlgo string) *server {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	tok := softhsmtest.New(t)
	s := &server{keys: tok.Manager, dir: t.TempDir()}
	r := gin.New()
	s.srv = httptest.NewServer(r)
	t.Cleanup(s.srv.Close)
	cfg := ca.Config{PublicURL: s.srv.URL, KeyAlgo: keyAlgo, ServiceKeyAlgo: keyAlgo, Organization: "Sigillo Test", Country: "IT"}
	s.store = storetest.NewSQLite(t)
	a, err := ca.Open(context.Background(), cfg, tok.Manager, s.store, ca.WithAudit(&recorder{}), ca.WithLogger(quiet()))
	if err != nil {
		t.Fatalf("open CA: %v", err)
	}
	s.a = a
	h := cahttp.New(a, quiet())
	h.Register(r)
	h.RegisterAdmin(r.Group("/admin/v1"))
	return s
}

// issue certifies a fresh HSM credential key.
func (s *server) issue(t testing.TB) *ca.Certificate {
	t.Helper()
	pub := s.credentialKey(t)
	c, err := s.a.Issue(context.Background(), ca.IssueRequest{PublicKey: pub, CommonName: "Mario Rossi", GivenName: "Mario",
		Surname: "Rossi", SerialNumber: "TINIT-RSSMRA80A01H501U", Country: "IT", Qualified: true, Owner: "cred"})
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return c
}

func (s *server) credentialKey(t testing.TB) crypto.PublicKey {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	pub, err := s.keys.GenerateKey(context.Background(), "cred-"+hex.EncodeToString(b[:]), "ecdsa-p256")
	if err != nil {
		t.Fatalf("credential key: %v", err)
	}
	return pub
}

// writePEM writes certificates as PEM into the server's temp dir.
func (s *server) writePEM(t testing.TB, name string, ders ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// openssl runs the real openssl and returns its combined output.
func openssl(t testing.TB, bin string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run openssl: %v", err)
	}
	return string(out), err
}
