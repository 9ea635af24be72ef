// Package samtest gives tests a real signature activation service: SQLite
// store, the keys the test passes (a SoftHSM2 token: WithKeys(softhsmtest.New(t).Manager);
// in-memory keys otherwise), a test CA minted
// in the test whose certificate statuses the test controls, a recording
// auditor that can be told to fail, and a settable clock. It is imported
// only by tests (sam, admin, csc). It does not import the HSM packages
// itself so that `go list -deps ./sam/...` stays free of PKCS#11.
package samtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

// CA is a throw-away issuing CA implementing sam.Issuer. Statuses default
// to "valid"; SetStatus changes them; FailStatus makes CertStatus error.
type CA struct {
	Cert       *x509.Certificate
	key        *ecdsa.PrivateKey
	now        func() time.Time
	status     sync.Map // serial → status
	FailStatus atomic.Bool
	// Validity of issued certificates (default one year).
	Validity time.Duration
}

// NewCA mints a CA (P-256) valid around now().
func NewCA(t testing.TB, now func() time.Time) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n := now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sigillo test CA", Organization: []string{"sigillo tests"}, Country: []string{"IT"}},
		NotBefore:             n.Add(-time.Hour),
		NotAfter:              n.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, key: key, now: now, Validity: 365 * 24 * time.Hour}
}

var _ sam.Issuer = (*CA)(nil)

// Issue certifies pub for the holder; the chain is leaf, CA.
func (ca *CA) Issue(_ context.Context, pub crypto.PublicKey, h sam.Holder, credentialID string) (string, [][]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return "", nil, err
	}
	n := ca.now()
	subj := pkix.Name{CommonName: h.GivenName + " " + h.Surname, Country: []string{h.Country}}
	if h.FiscalCode != "" {
		subj.SerialNumber = "TINIT-" + h.FiscalCode
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        subj,
		NotBefore:      n.Add(-time.Minute),
		NotAfter:       n.Add(ca.Validity),
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		EmailAddresses: []string{h.Email},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		return "", nil, fmt.Errorf("test CA: %w", err)
	}
	s := serial.Text(16)
	ca.status.Store(s, "valid")
	return s, [][]byte{der, ca.Cert.Raw}, nil
}

// CertStatus returns the status set for serial.
func (ca *CA) CertStatus(_ context.Context, serial string) (string, error) {
	if ca.FailStatus.Load() {
		return "", errors.New("test CA: status unavailable")
	}
	v, ok := ca.status.Load(serial)
	if !ok {
		return "", fmt.Errorf("test CA: unknown serial %s", serial)
	}
	return v.(string), nil
}

// SetStatus sets the status CertStatus reports for serial.
func (ca *CA) SetStatus(serial, status string) { ca.status.Store(serial, status) }

// Audit is the real audit log on the Env's store (so events and the rows
// they carry in With commit as in production), plus an in-memory copy of
// every recorded event for assertions; Fail makes Record fail before
// anything is written.
type Audit struct {
	Log    *audit.Log
	mu     sync.Mutex
	events []audit.Event
	Fail   atomic.Bool
}

// NewAudit opens the audit log on st, closed when the test ends.
func NewAudit(t testing.TB, st *store.Store) *Audit {
	t.Helper()
	l, err := audit.Open(context.Background(), st)
	if err != nil {
		t.Fatalf("audit.Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return &Audit{Log: l}
}

// Record appends e to the log and remembers it, or fails when Fail is set.
func (a *Audit) Record(ctx context.Context, e audit.Event) error {
	if a.Fail.Load() {
		return errors.New("test audit: down")
	}
	if err := a.Log.Record(ctx, e); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	return nil
}

// Events returns a copy of the recorded events.
func (a *Audit) Events() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Event(nil), a.events...)
}

// Count returns how many events have the action and outcome.
func (a *Audit) Count(action, outcome string) int {
	n := 0
	for _, e := range a.Events() {
		if e.Action == action && e.Outcome == outcome {
			n++
		}
	}
	return n
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the current fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// MemKeys is an in-memory sam.Keys for tests that do not need an HSM.
type MemKeys struct {
	mu   sync.Mutex
	keys map[string]crypto.Signer
}

// GenerateKey makes a key of algo under id.
func (m *MemKeys) GenerateKey(_ context.Context, id, algo string) (crypto.PublicKey, error) {
	var k crypto.Signer
	var err error
	switch algo {
	case "ecdsa-p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa-2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa-3072":
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		return nil, fmt.Errorf("memkeys: unsupported %s", algo)
	}
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = map[string]crypto.Signer{}
	}
	if _, ok := m.keys[id]; ok {
		return nil, fmt.Errorf("memkeys: %s exists", id)
	}
	m.keys[id] = k
	return k.Public(), nil
}

// Signer returns the key's signer.
func (m *MemKeys) Signer(_ context.Context, id string) (crypto.Signer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return nil, fmt.Errorf("memkeys: no key %s", id)
	}
	return k, nil
}

// DestroyKey deletes the key id (like hsm.Manager.DestroyKey).
func (m *MemKeys) DestroyKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[id]; !ok {
		return fmt.Errorf("memkeys: no key %s", id)
	}
	delete(m.keys, id)
	return nil
}

// Has reports whether the key id exists.
func (m *MemKeys) Has(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.keys[id]
	return ok
}

// Len is the number of keys held.
func (m *MemKeys) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

var (
	_ sam.Keys = (*MemKeys)(nil)
	_ sam.Keys = (*FailingKeys)(nil)
)

// FailingKeys wraps MemKeys with an HSM that can be made to fail: while
// Fail is set, every Sign of every signer it gave (cached ones included)
// errors, as a token that went away would.
type FailingKeys struct {
	MemKeys
	Fail atomic.Bool
	// BeforeSign, when set, runs before every Sign (e.g. to cancel the
	// caller's context mid-batch).
	BeforeSign func()
}

// Signer returns the key's signer, failing while Fail is set.
func (f *FailingKeys) Signer(ctx context.Context, id string) (crypto.Signer, error) {
	s, err := f.MemKeys.Signer(ctx, id)
	if err != nil {
		return nil, err
	}
	return failingSigner{Signer: s, keys: f}, nil
}

type failingSigner struct {
	crypto.Signer
	keys *FailingKeys
}

func (s failingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if s.keys.BeforeSign != nil {
		s.keys.BeforeSign()
	}
	if s.keys.Fail.Load() {
		return nil, errors.New("failing keys: CKR_DEVICE_REMOVED")
	}
	return s.Signer.Sign(r, digest, opts)
}

// Env is a ready service and its parts.
type Env struct {
	Service *sam.Service
	Store   *store.Store
	CA      *CA
	Audit   *Audit
	Clock   *Clock
	Keys    sam.Keys
	Config  sam.Config
}

// Option changes the Env before the service is built.
type Option func(*options)

type options struct {
	cfg  sam.Config
	keys sam.Keys
	st   *store.Store
}

// WithConfig edits the service configuration.
func WithConfig(f func(*sam.Config)) Option { return func(o *options) { f(&o.cfg) } }

// WithKeys uses the given key manager, typically a real SoftHSM2 token:
// samtest.WithKeys(softhsmtest.New(t).Manager). Without it the Env uses
// MemKeys.
func WithKeys(k sam.Keys) Option { return func(o *options) { o.keys = k } }

// WithStore uses the given store (e.g. PostgreSQL) instead of a fresh SQLite.
func WithStore(s *store.Store) Option { return func(o *options) { o.st = s } }

// FastArgon2 makes hashing cheap for tests (production uses sam.Argon2Default).
var FastArgon2 = sam.Argon2Params{Time: 1, Memory: 256, Threads: 1}

// New builds a service on a fresh SQLite store (or WithStore's) and the
// keys given WithKeys (in-memory keys by default).
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	o := options{cfg: sam.Config{OTPKey: key, Argon2: FastArgon2}}
	for _, f := range opts {
		f(&o)
	}
	clock := NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	st := o.st
	if st == nil {
		st = storetest.NewSQLite(t)
	}
	keys := o.keys
	if keys == nil {
		keys = &MemKeys{}
	}
	ca := NewCA(t, clock.Now)
	au := NewAudit(t, st)
	svc, err := sam.New(o.cfg, sam.Deps{
		Store: st, Keys: keys, Issuer: ca, Audit: au, SMS: otp.NewOutbox(st, clock.Now), Now: clock.Now,
	})
	if err != nil {
		t.Fatalf("sam.New: %v", err)
	}
	return &Env{Service: svc, Store: st, CA: ca, Audit: au, Clock: clock, Keys: keys, Config: o.cfg}
}

// Password is a password that meets the policy.
const Password = "Corr3ct-Horse"

// PIN is the PIN CreateCredential uses unless told otherwise.
const PIN = "12345678"

// User enrolls a user with Password and returns its id.
func (e *Env) User(t testing.TB, username string) string {
	t.Helper()
	return CreateUser(t, e.Service, sam.NewUser{Username: username})
}

// Credential creates a credential for userID; empty fields of nc get
// PIN, ecdsa-p256, otp none, SCAL 1, multisign 10.
func (e *Env) Credential(t testing.TB, userID string, nc sam.NewCredential) *sam.CreatedCredential {
	t.Helper()
	return CreateCredential(t, e.Service, userID, nc)
}

// Login logs userID in with Password and returns the principal.
func (e *Env) Login(t testing.TB, userID string) *sam.Principal {
	t.Helper()
	return Login(t, e.Service, userID)
}

// CreateUser enrolls nu on svc and returns its id. Empty fields get
// Password, <username>@example.test, a mobile number, a fiscal code and
// the name "Test User <username>". It serves every package's test
// environment that runs a real sam.Service, so that they enroll the same
// way.
func CreateUser(t testing.TB, svc *sam.Service, nu sam.NewUser) string {
	t.Helper()
	if nu.Password == "" {
		nu.Password = Password
	}
	if nu.Email == "" {
		nu.Email = nu.Username + "@example.test"
	}
	if nu.Phone == "" {
		nu.Phone = "+393330000000"
	}
	if nu.GivenName == "" {
		nu.GivenName = "Test"
	}
	if nu.Surname == "" {
		nu.Surname = "User " + nu.Username
	}
	if nu.FiscalCode == "" {
		nu.FiscalCode = "RSSMRA80A01H501U"
	}
	id, err := svc.CreateUser(context.Background(), nu)
	if err != nil {
		t.Fatalf("create user %s: %v", nu.Username, err)
	}
	return id
}

// CreateCredential creates a credential for userID on svc; empty fields
// of nc get PIN (unless an Activation is asked for), ecdsa-p256, otp
// none, multisign 10.
func CreateCredential(t testing.TB, svc *sam.Service, userID string, nc sam.NewCredential) *sam.CreatedCredential {
	t.Helper()
	nc.UserID = userID
	if nc.PIN == "" && nc.Activation == "" {
		nc.PIN = PIN
	}
	if nc.KeyAlgo == "" {
		nc.KeyAlgo = "ecdsa-p256"
	}
	if nc.OTP == "" {
		nc.OTP = "none"
	}
	if nc.Multisign == 0 {
		nc.Multisign = 10
	}
	cc, err := svc.CreateCredential(context.Background(), nc)
	if err != nil {
		t.Fatalf("create credential: %v", err)
	}
	return cc
}

// Login logs userID in on svc with Password and returns the principal.
func Login(t testing.TB, svc *sam.Service, userID string) *sam.Principal {
	t.Helper()
	ctx := context.Background()
	tok, err := svc.Login(ctx, userID, Password, false)
	if err != nil {
		t.Fatalf("login %s: %v", userID, err)
	}
	p, err := svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("authenticate %s: %v", userID, err)
	}
	return p
}
