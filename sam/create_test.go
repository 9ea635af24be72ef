package sam_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/hsm"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

// testIssuer is the test CA with failures on demand and, like a qualified
// CA, an optional holder check.
type testIssuer struct {
	*samtest.CA
	fail       error // Issue fails with it
	otherKey   bool  // Issue certifies a key that is not the one given
	needFiscal bool  // CheckHolder wants a fiscal code
	issued     int
	lastID     string
}

func (i *testIssuer) Issue(ctx context.Context, pub crypto.PublicKey, h sam.Holder, id string) (string, [][]byte, error) {
	i.issued++
	i.lastID = id
	if i.fail != nil {
		return "", nil, i.fail
	}
	if i.otherKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", nil, err
		}
		pub = k.Public()
	}
	return i.CA.Issue(ctx, pub, h, id)
}

func (i *testIssuer) CheckHolder(h sam.Holder) error {
	if i.needFiscal && h.FiscalCode == "" {
		return errors.New("a qualified certificate needs a fiscal code or another identifier")
	}
	return nil
}

type createEnv struct {
	svc   *sam.Service
	st    *store.Store
	keys  *samtest.MemKeys
	iss   *testIssuer
	audit *samtest.Audit
}

func newCreateEnv(t *testing.T, cfg sam.Config) *createEnv {
	t.Helper()
	return newCreateEnvKeys(t, cfg, nil)
}

// newCreateEnvKeys uses keys (e.g. SoftHSM2) instead of MemKeys when set.
func newCreateEnvKeys(t *testing.T, cfg sam.Config, keys sam.Keys) *createEnv {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg.OTPKey, cfg.Argon2 = key, samtest.FastArgon2
	clock := samtest.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	st := storetest.NewSQLite(t)
	e := &createEnv{st: st, keys: &samtest.MemKeys{}, iss: &testIssuer{CA: samtest.NewCA(t, clock.Now)}, audit: samtest.NewAudit(t, st)}
	var k sam.Keys = e.keys
	if keys != nil {
		k = keys
	}
	svc, err := sam.New(cfg, sam.Deps{Store: e.st, Keys: k, Issuer: e.iss, Audit: e.audit, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

func (e *createEnv) user(t *testing.T, name, fiscal string) {
	t.Helper()
	if _, err := e.svc.CreateUser(context.Background(), sam.NewUser{Username: name, Password: samtest.Password, Email: name + "@example.test",
		Phone: "+393330000000", GivenName: "Ada", Surname: "Lovelace", FiscalCode: fiscal}); err != nil {
		t.Fatal(err)
	}
}

// A credential that cannot be created leaves no key in the HSM: holder
// data the CA would refuse is caught before the key is generated, and a
// failure after it (CA, wrong certificate, store) destroys the key.
func TestCreateCredential_failureLeavesNoKey(t *testing.T) {
	tests := []struct {
		name      string
		cfg       sam.Config
		fiscal    string
		setup     func(e *createEnv)
		nc        sam.NewCredential
		kind      errs.Kind
		wantIssue bool // the CA was asked (the key existed)
	}{
		{name: "CA fails", fiscal: "RSSMRA80A01H501U", setup: func(e *createEnv) { e.iss.fail = errors.New("CA down") },
			kind: errs.Unavailable, wantIssue: true},
		{name: "CA refuses", fiscal: "RSSMRA80A01H501U", setup: func(e *createEnv) { e.iss.fail = errs.Invalidf("Invalid certificate request") },
			kind: errs.Invalid, wantIssue: true},
		{name: "CA certifies another key", fiscal: "RSSMRA80A01H501U", setup: func(e *createEnv) { e.iss.otherKey = true },
			kind: errs.Internal, wantIssue: true},
		{name: "store refuses (domain and alias taken)", fiscal: "RSSMRA80A01H501U", nc: sam.NewCredential{Domain: "acme.example", Alias: "A1"},
			setup: func(e *createEnv) {
				if _, err := e.svc.CreateCredential(context.Background(), sam.NewCredential{UserID: "holder", PIN: samtest.PIN,
					KeyAlgo: "ecdsa-p256", OTP: "none", Domain: "acme.example", Alias: "A1"}); err != nil {
					panic(err)
				}
			}, kind: errs.Conflict, wantIssue: true},
		{name: "qualified CA, holder without fiscal code: no key made", setup: func(e *createEnv) { e.iss.needFiscal = true },
			kind: errs.Invalid},
		{name: "bad country: no key made", cfg: sam.Config{Country: "Italia"}, fiscal: "RSSMRA80A01H501U", kind: errs.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCreateEnv(t, tt.cfg)
			e.user(t, "holder", tt.fiscal)
			if tt.setup != nil {
				tt.setup(e)
			}
			keysBefore, issuedBefore := e.keys.Len(), e.iss.issued
			nc := tt.nc
			nc.UserID, nc.PIN, nc.KeyAlgo, nc.OTP = "holder", samtest.PIN, "ecdsa-p256", "none"
			cc, err := e.svc.CreateCredential(context.Background(), nc)
			if errs.KindOf(err) != tt.kind || cc != nil {
				t.Fatalf("err = %v (kind %v), want kind %v", err, errs.KindOf(err), tt.kind)
			}
			if got := e.keys.Len(); got != keysBefore {
				t.Fatalf("%d keys after the failure, want %d: orphaned HSM key", got, keysBefore)
			}
			if asked := e.iss.issued > issuedBefore; asked != tt.wantIssue {
				t.Fatalf("CA asked: %v, want %v", asked, tt.wantIssue)
			}
			if tt.wantIssue && e.audit.Count("admin.credential.discard", "success") != 1 {
				t.Fatalf("discard not audited: %+v", e.audit.Events())
			}
		})
	}
}

// The certificate names the country the holder registered with (self-care
// enrollment), else the configured one; the audit record names who asked.
func TestCreateCredential_countryAndActor(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, sam.Config{Country: "IT"})
	e.user(t, "local", "RSSMRA80A01H501U")
	e.user(t, "abroad", "RSSMRA80A01H501U")
	if err := e.st.CreateAccount(ctx, store.Account{UserID: "abroad", Email: "abroad@example.test", Country: "fr", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, actor, wantCountry, wantActor string
	}{
		{"local", "", "IT", "admin"},
		{"abroad", "user:abroad", "FR", "user:abroad"},
		{"abroad", "admin", "FR", "admin"},
	}
	for _, tt := range tests {
		cc, err := e.svc.CreateCredential(ctx, sam.NewCredential{UserID: tt.user, PIN: samtest.PIN, KeyAlgo: "ecdsa-p256", OTP: "none", Actor: tt.actor})
		if err != nil {
			t.Fatalf("%s by %q: %v", tt.user, tt.actor, err)
		}
		leaf, err := x509.ParseCertificate(cc.Certificates[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := leaf.Subject.Country; len(got) != 1 || got[0] != tt.wantCountry {
			t.Errorf("%s: certificate country %v, want %s", tt.user, got, tt.wantCountry)
		}
		found := false
		for _, ev := range e.audit.Events() {
			if ev.Action == "admin.credential.create" && ev.Object == "credential:"+cc.CredentialID {
				found = ev.Actor == tt.wantActor
			}
		}
		if !found {
			t.Errorf("%s: audit actor is not %q", tt.user, tt.wantActor)
		}
	}
	// A holder cannot create in someone else's name.
	_, err := e.svc.CreateCredential(ctx, sam.NewCredential{UserID: "local", PIN: samtest.PIN, KeyAlgo: "ecdsa-p256", OTP: "none", Actor: "user:abroad"})
	if errs.KindOf(err) != errs.Invalid || !strings.Contains(err.Error(), "actor") {
		t.Fatalf("actor of another user: %v", err)
	}
}

// On a real token (SoftHSM2) the key of a credential the CA refused is
// destroyed: the token no longer has it.
func TestCreateCredential_failedIssuanceDestroysTheSoftHSMKey(t *testing.T) {
	tok := softhsmtest.New(t)
	e := newCreateEnvKeys(t, sam.Config{}, tok.Manager)
	e.user(t, "holder", "RSSMRA80A01H501U")
	e.iss.fail = errors.New("CA down")
	ctx := context.Background()
	if _, err := e.svc.CreateCredential(ctx, sam.NewCredential{UserID: "holder", PIN: samtest.PIN, KeyAlgo: "ecdsa-p256", OTP: "none"}); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("CA down: %v", err)
	}
	if e.iss.lastID == "" {
		t.Fatal("the CA was not asked")
	}
	if _, err := tok.Manager.PublicKey(ctx, e.iss.lastID); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("key %s after the failure: %v, want hsm.ErrKeyNotFound", e.iss.lastID, err)
	}
	// The same token still makes credentials.
	e.iss.fail = nil
	if _, err := e.svc.CreateCredential(ctx, sam.NewCredential{UserID: "holder", PIN: samtest.PIN, KeyAlgo: "ecdsa-p256", OTP: "none"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Manager.PublicKey(ctx, e.iss.lastID); err != nil {
		t.Fatalf("key of the created credential: %v", err)
	}
}
