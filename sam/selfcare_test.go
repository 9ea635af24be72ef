package sam_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

// lifecycleCA is the test CA with the lifecycle operations holders use.
type lifecycleCA struct {
	*samtest.CA
}

func (l *lifecycleCA) move(serial, from, to string) error {
	st, err := l.CertStatus(context.Background(), serial)
	if err != nil {
		return err
	}
	if st != from && !(from == "valid|suspended" && (st == "valid" || st == "suspended")) {
		return errs.New(errs.Conflict, "", "certificate is "+st)
	}
	l.SetStatus(serial, to)
	return nil
}

func (l *lifecycleCA) Suspend(_ context.Context, serial, _ string) error {
	return l.move(serial, "valid", "suspended")
}
func (l *lifecycleCA) Reactivate(_ context.Context, serial, _ string) error {
	return l.move(serial, "suspended", "valid")
}
func (l *lifecycleCA) Revoke(_ context.Context, serial, _, _ string) error {
	return l.move(serial, "valid|suspended", "revoked")
}

// RenewCert is exercised against the real CA (portal tests).
func (l *lifecycleCA) RenewCert(context.Context, string) (string, [][]byte, error) {
	return "", nil, errors.New("test CA: renewal not supported")
}

var _ sam.CertLifecycle = (*lifecycleCA)(nil)

type scEnv struct {
	svc   *sam.Service
	st    *store.Store
	ca    *lifecycleCA
	audit *samtest.Audit
	clock *samtest.Clock
}

func newSC(t *testing.T) *scEnv {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	clock := samtest.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	st := storetest.NewSQLite(t)
	ca := &lifecycleCA{CA: samtest.NewCA(t, clock.Now)}
	au := samtest.NewAudit(t, st)
	svc, err := sam.New(sam.Config{OTPKey: key, Argon2: samtest.FastArgon2}, sam.Deps{Store: st, Keys: &samtest.MemKeys{},
		Issuer: ca, Audit: au, SMS: otp.NewOutbox(st, clock.Now), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &scEnv{svc: svc, st: st, ca: ca, audit: au, clock: clock}
}

func (e *scEnv) holder(t *testing.T, name string, nc sam.NewCredential) (*sam.Principal, *sam.CreatedCredential) {
	t.Helper()
	c := context.Background()
	if _, err := e.svc.CreateUser(c, sam.NewUser{Username: name, Password: samtest.Password, Email: name + "@example.test",
		Phone: fmt.Sprintf("+39333%07d", int(name[0])*100+len(name)), GivenName: "T", Surname: name, FiscalCode: "RSSMRA80A01H501U"}); err != nil {
		t.Fatal(err)
	}
	nc.UserID = name
	if nc.PIN == "" && nc.Activation == "" {
		nc.PIN = samtest.PIN
	}
	if nc.KeyAlgo == "" {
		nc.KeyAlgo = "ecdsa-p256"
	}
	if nc.OTP == "" {
		nc.OTP = "sms"
	}
	cc, err := e.svc.CreateCredential(c, nc)
	if err != nil {
		t.Fatal(err)
	}
	return &sam.Principal{UserID: name}, cc
}

var reCode = regexp.MustCompile(`code is ([0-9]+)`)

// code sends an SMS OTP for the credential and returns it.
func (e *scEnv) code(t *testing.T, p *sam.Principal, credID string) string {
	t.Helper()
	c := context.Background()
	if err := e.svc.SendOTP(c, p, credID); err != nil {
		t.Fatal(err)
	}
	u, _ := e.st.User(c, p.UserID)
	ms, err := e.st.Outbox(c, u.Phone, 1)
	if err != nil || len(ms) == 0 {
		t.Fatalf("no SMS: %v", err)
	}
	e.clock.Advance(time.Millisecond)
	return reCode.FindStringSubmatch(ms[0].Body)[1]
}

func scDigest(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// signs reports whether the credential can sign with pin (SMS OTP sent).
func (e *scEnv) signs(t *testing.T, p *sam.Principal, credID, pin string) error {
	t.Helper()
	d := scDigest("doc")
	code := e.code(t, p, credID)
	sad, err := e.svc.Authorize(context.Background(), p, sam.AuthorizeRequest{CredentialID: credID, NumSignatures: 1,
		Hashes: [][]byte{d}, HashAlgo: crypto.SHA256, PIN: pin, OTP: code})
	if err != nil {
		return err
	}
	_, err = e.svc.SignHash(context.Background(), p, sam.SignRequest{CredentialID: credID, SAD: sad.Value, Hashes: [][]byte{d}, Opts: crypto.SHA256})
	return err
}

func TestChangePIN(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	p, cc := e.holder(t, "alice", sam.NewCredential{SCAL: 2})

	if err := e.svc.ChangePIN(c, p, cc.CredentialID, samtest.PIN, "1234", "1234", "000000"); errs.KindOf(err) != errs.Invalid {
		t.Fatalf("bad new PIN: %v", err)
	}
	if err := e.svc.ChangePIN(c, p, cc.CredentialID, samtest.PIN, "87654321", "87654320", "000000"); errs.KindOf(err) != errs.Invalid {
		t.Fatalf("confirmation differs: %v", err)
	}
	if err := e.svc.ChangePIN(c, p, cc.CredentialID, samtest.PIN, samtest.PIN, samtest.PIN, "000000"); !errors.Is(err, sam.ErrSamePIN) {
		t.Fatalf("same PIN: %v", err)
	}
	if err := e.svc.ChangePIN(c, p, cc.CredentialID, samtest.PIN, "87654321", "87654321", "000000"); !errors.Is(err, sam.ErrInvalidOTP) {
		t.Fatalf("wrong OTP: %v", err)
	}
	if err := e.svc.ChangePIN(c, p, cc.CredentialID, samtest.PIN, "87654321", "87654321", e.code(t, p, cc.CredentialID)); err != nil {
		t.Fatal(err)
	}
	if err := e.signs(t, p, cc.CredentialID, samtest.PIN); !errors.Is(err, sam.ErrInvalidPIN) {
		t.Fatalf("old PIN after the change: %v", err)
	}
	if err := e.signs(t, p, cc.CredentialID, "87654321"); err != nil {
		t.Fatalf("new PIN: %v", err)
	}
	// Another holder cannot touch it.
	other, _ := e.holder(t, "bob", sam.NewCredential{})
	if err := e.svc.ChangePIN(c, other, cc.CredentialID, "87654321", "11112222", "11112222", "000000"); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("other holder: %v", err)
	}
	if e.audit.Count("selfcare.pin_change", "success") != 1 {
		t.Fatal("PIN change not audited")
	}
}

func TestChangePIN_threeWrongPINsBlockAndPUKUnblocks(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	p, cc := e.holder(t, "alice", sam.NewCredential{})
	for i := 1; i <= 3; i++ {
		err := e.svc.ChangePIN(c, p, cc.CredentialID, "00000000", "11112222", "11112222", "000000")
		want := sam.ErrInvalidPIN
		if i == 3 {
			want = sam.ErrPINLocked
		}
		if !errors.Is(err, want) {
			t.Fatalf("wrong PIN #%d: %v", i, err)
		}
	}
	if err := e.svc.ChangePIN(c, p, cc.CredentialID, samtest.PIN, "11112222", "11112222", e.code(t, p, cc.CredentialID)); !errors.Is(err, sam.ErrPINLocked) {
		t.Fatalf("right PIN after the block: %v", err)
	}
	if err := e.svc.UnblockPIN(c, p, cc.CredentialID, "00000000", "11112222", "11112222", e.code(t, p, cc.CredentialID)); !errors.Is(err, sam.ErrInvalidPUK) {
		t.Fatalf("wrong PUK: %v", err)
	}
	if err := e.svc.UnblockPIN(c, p, cc.CredentialID, cc.PUK, "11112222", "11112222", "000000"); !errors.Is(err, sam.ErrInvalidOTP) {
		t.Fatalf("wrong OTP: %v", err)
	}
	if err := e.svc.UnblockPIN(c, p, cc.CredentialID, cc.PUK, "11112222", "11112222", e.code(t, p, cc.CredentialID)); err != nil {
		t.Fatal(err)
	}
	cr, _ := e.st.Credential(c, cc.CredentialID)
	if cr.PINTries != 0 || cr.PUKTries != 0 {
		t.Fatalf("counters after unblock: pin %d puk %d", cr.PINTries, cr.PUKTries)
	}
	if err := e.signs(t, p, cc.CredentialID, "11112222"); err != nil {
		t.Fatalf("sign after unblock: %v", err)
	}
}

func TestUnblockPIN_tenWrongPUKsBlockThePUKForGood(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	p, cc := e.holder(t, "alice", sam.NewCredential{OTP: "none"})
	for i := 1; i <= sam.PUKMaxTries; i++ {
		err := e.svc.UnblockPIN(c, p, cc.CredentialID, "00000000", "11112222", "11112222", "")
		want := sam.ErrInvalidPUK
		if i == sam.PUKMaxTries {
			want = sam.ErrPUKLocked
		}
		if !errors.Is(err, want) {
			t.Fatalf("wrong PUK #%d: %v", i, err)
		}
	}
	if err := e.svc.UnblockPIN(c, p, cc.CredentialID, cc.PUK, "11112222", "11112222", ""); !errors.Is(err, sam.ErrPUKLocked) {
		t.Fatalf("right PUK after the block: %v", err)
	}
}

func TestUnblockPIN_concurrentWrongPUKsNeverPassTheLimit(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	p, cc := e.holder(t, "alice", sam.NewCredential{OTP: "none"})
	var wg sync.WaitGroup
	for i := 0; i < 2*sam.PUKMaxTries; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = e.svc.UnblockPIN(c, p, cc.CredentialID, "00000000", "11112222", "11112222", "")
		}()
	}
	wg.Wait()
	cr, _ := e.st.Credential(c, cc.CredentialID)
	if cr.PUKTries != sam.PUKMaxTries {
		t.Fatalf("puk_tries %d, want %d", cr.PUKTries, sam.PUKMaxTries)
	}
}

func TestActivateWithPUK(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	p, cc := e.holder(t, "alice", sam.NewCredential{Activation: "puk"})
	if err := e.signs(t, p, cc.CredentialID, "11112222"); !errors.Is(err, sam.ErrNotActivated) {
		t.Fatalf("sign before activation: %v", err)
	}
	if err := e.svc.ChangePIN(c, p, cc.CredentialID, "11112222", "22223333", "22223333", "000000"); !errors.Is(err, sam.ErrNotActivated) {
		t.Fatalf("change PIN before activation: %v", err)
	}
	if err := e.svc.ActivateWithPUK(c, p, cc.CredentialID, "00000000", "11112222", "11112222", e.code(t, p, cc.CredentialID)); !errors.Is(err, sam.ErrInvalidPUK) {
		t.Fatalf("wrong PUK: %v", err)
	}
	if err := e.svc.ActivateWithPUK(c, p, cc.CredentialID, cc.PUK, "11112222", "11112222", e.code(t, p, cc.CredentialID)); err != nil {
		t.Fatal(err)
	}
	if err := e.signs(t, p, cc.CredentialID, "11112222"); err != nil {
		t.Fatalf("sign after activation: %v", err)
	}
	if err := e.svc.ActivateWithPUK(c, p, cc.CredentialID, cc.PUK, "11112222", "11112222", "000000"); !errors.Is(err, sam.ErrAlreadyActivated) {
		t.Fatalf("second activation: %v", err)
	}
}

func TestEmergency(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	p, cc := e.holder(t, "alice", sam.NewCredential{})
	_, other := e.holder(t, "bob", sam.NewCredential{})
	tests := []struct {
		name string
		req  sam.EmergencyRequest
		kind errs.Kind
	}{
		{"empty", sam.EmergencyRequest{ClientIP: "1"}, errs.Invalid},
		{"bad action", sam.EmergencyRequest{ID: cc.IUT, ERC: cc.ERC, Action: "delete", ClientIP: "1"}, errs.Invalid},
		{"wrong ERC", sam.EmergencyRequest{ID: cc.IUT, ERC: "ABCDEFGHJKMN", Action: "suspend", ClientIP: "1"}, errs.Forbidden},
		{"another holder's ERC", sam.EmergencyRequest{ID: cc.IUT, ERC: other.ERC, Action: "suspend", ClientIP: "1"}, errs.Forbidden},
		{"unknown IUT", sam.EmergencyRequest{ID: "ZZZZZZZZZZ", ERC: cc.ERC, Action: "suspend", ClientIP: "1"}, errs.Forbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.svc.Emergency(c, tc.req); errs.KindOf(err) != tc.kind {
				t.Fatalf("got %v, want kind %v", err, tc.kind)
			}
		})
	}
	if st, _ := e.ca.CertStatus(c, cc.Serial); st != "valid" {
		t.Fatalf("refused emergencies changed the status: %s", st)
	}
	// The UserID stands in for the IUT; lower-case and spaces in the ERC are forgiven.
	if err := e.svc.Emergency(c, sam.EmergencyRequest{ID: "alice", ERC: " " + cc.ERC[:6] + " " + cc.ERC[6:], Action: "suspend", ClientIP: "2"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.ca.CertStatus(c, cc.Serial); st != "suspended" {
		t.Fatalf("after suspend: %s", st)
	}
	// Reactivation needs the PIN and the OTP.
	if err := e.svc.ReactivateCredential(c, p, cc.CredentialID, "00000000", e.code(t, p, cc.CredentialID)); !errors.Is(err, sam.ErrInvalidPIN) {
		t.Fatalf("reactivate with a wrong PIN: %v", err)
	}
	if st, _ := e.ca.CertStatus(c, cc.Serial); st != "suspended" {
		t.Fatalf("wrong PIN reactivated: %s", st)
	}
	if err := e.svc.ReactivateCredential(c, p, cc.CredentialID, samtest.PIN, e.code(t, p, cc.CredentialID)); err != nil {
		t.Fatal(err)
	}
	// Revocation by ERC disables the key too.
	if err := e.svc.Emergency(c, sam.EmergencyRequest{ID: cc.IUT, ERC: cc.ERC, Action: "revoke", ClientIP: "2"}); err != nil {
		t.Fatal(err)
	}
	cr, _ := e.st.Credential(c, cc.CredentialID)
	if st, _ := e.ca.CertStatus(c, cc.Serial); st != "revoked" || cr.KeyStatus != sam.KeyDisabled {
		t.Fatalf("after revoke: %s, key %s", st, cr.KeyStatus)
	}
	if e.audit.Count("selfcare.emergency", "failure:bad_code") != 3 {
		t.Fatalf("refusals not audited: %d", e.audit.Count("selfcare.emergency", "failure:bad_code"))
	}
}

func TestEmergency_rateLimitedPerIdentifierAndPerIP(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	_, cc := e.holder(t, "alice", sam.NewCredential{})
	for i := 0; i < sam.EmergencyMaxID; i++ {
		if err := e.svc.Emergency(c, sam.EmergencyRequest{ID: cc.IUT, ERC: "ABCDEFGHJKMN", Action: "suspend", ClientIP: "ip" + string(rune('a'+i))}); errs.KindOf(err) != errs.Forbidden {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Even the right code waits now: the limit is on the identifier.
	err := e.svc.Emergency(c, sam.EmergencyRequest{ID: cc.IUT, ERC: cc.ERC, Action: "suspend", ClientIP: "fresh"})
	if ee, ok := errs.As(err); !ok || ee.Kind != errs.RateLimited || ee.RetryAfter <= 0 {
		t.Fatalf("after %d attempts: %v", sam.EmergencyMaxID, err)
	}
	e.clock.Advance(sam.EmergencyWindow + time.Second)
	if err := e.svc.Emergency(c, sam.EmergencyRequest{ID: cc.IUT, ERC: cc.ERC, Action: "suspend", ClientIP: "fresh"}); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	for i := 0; i < sam.EmergencyMaxIP; i++ {
		_ = e.svc.Emergency(c, sam.EmergencyRequest{ID: "X" + string(rune('A'+i)), ERC: "ABCDEFGHJKMN", Action: "suspend", ClientIP: "1.2.3.4"})
	}
	if err := e.svc.Emergency(c, sam.EmergencyRequest{ID: "another", ERC: "ABCDEFGHJKMN", Action: "suspend", ClientIP: "1.2.3.4"}); errs.KindOf(err) != errs.RateLimited {
		t.Fatalf("per-IP limit: %v", err)
	}
}

func TestLoginHolder(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	if _, err := e.svc.CreateUser(c, sam.NewUser{Username: "temp", Password: samtest.Password, Email: "t@example.test",
		Phone: "+393330000000", GivenName: "T", Surname: "U", Temporary: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CreateHolder(c, sam.HolderAccount{UserID: "newbie", Email: "n@example.test", Password: samtest.Password}); err != nil {
		t.Fatal(err)
	}
	e.holder(t, "alice", sam.NewCredential{})
	tests := []struct {
		name, user, pw string
		err            error
		must, pending  bool
		advance        time.Duration
	}{
		{"wrong password", "alice", "Wrong-Pass-1", sam.ErrAuthentication, false, false, 0},
		{"unknown user", "nobody", samtest.Password, sam.ErrAuthentication, false, false, 0},
		{"empty", "", "", sam.ErrAuthentication, false, false, 0},
		{"fresh password", "alice", samtest.Password, nil, false, false, 0},
		{"temporary password must change", "temp", samtest.Password, nil, true, false, 0},
		{"registered, e-mail not verified", "newbie", samtest.Password, nil, false, true, 0},
		{"password older than 180 days must change", "alice", samtest.Password, nil, true, false, 181 * 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Advance(tc.advance)
			hl, err := e.svc.LoginHolder(c, tc.user, tc.pw)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && (hl.MustChangePassword != tc.must || hl.Pending != tc.pending) {
				t.Fatalf("got %+v", hl)
			}
		})
	}
	// The CSC login refuses the pending holder (no login before the e-mail is verified).
	if _, err := e.svc.Login(c, "newbie", samtest.Password, false); err == nil {
		t.Fatal("CSC login for a pending holder")
	}
}

func TestHistoryAndCounters(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	p, cc := e.holder(t, "alice", sam.NewCredential{SCAL: 2})
	for i := 0; i < 3; i++ {
		if err := e.signs(t, p, cc.CredentialID, samtest.PIN); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.clock.Advance(8 * 24 * time.Hour)
		}
	}
	n, err := e.svc.SignatureCounters(c, p, cc.CredentialID)
	if err != nil || n.Total != 3 || n.Last7Days != 2 {
		t.Fatalf("counters %+v %v", n, err)
	}
	page, err := e.svc.CredentialHistory(c, p, cc.CredentialID, 0, 4)
	if err != nil || len(page.Entries) != 4 || !page.More || page.Entries[0].Action != "sign" {
		t.Fatalf("page 0: %+v %v", page, err)
	}
	page, err = e.svc.CredentialHistory(c, p, cc.CredentialID, 1, 4)
	if err != nil || len(page.Entries) != 2 || page.More {
		t.Fatalf("page 1: %+v %v", page, err)
	}
	for _, bad := range [][2]int{{-1, 10}, {0, 0}, {0, 101}} {
		if _, err := e.svc.CredentialHistory(c, p, cc.CredentialID, bad[0], bad[1]); errs.KindOf(err) != errs.Invalid {
			t.Fatalf("page %v: %v", bad, err)
		}
	}
	if _, err := e.svc.SignatureCounters(c, &sam.Principal{UserID: "bob"}, cc.CredentialID); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("another user's counters: %v", err)
	}
}

func TestHolderOperations_withoutLifecycleAreUnavailable(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	st := storetest.NewSQLite(t)
	clock := samtest.NewClock(time.Now())
	svc, err := sam.New(sam.Config{OTPKey: key, Argon2: samtest.FastArgon2}, sam.Deps{Store: st, Keys: &samtest.MemKeys{},
		Issuer: samtest.NewCA(t, clock.Now), Audit: samtest.NewAudit(t, st), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := context.Background()
	if _, err := svc.CreateUser(c, sam.NewUser{Username: "alice", Password: samtest.Password, Email: "a@example.test", Phone: "+393330000000", GivenName: "A", Surname: "B"}); err != nil {
		t.Fatal(err)
	}
	cc, err := svc.CreateCredential(c, sam.NewCredential{UserID: "alice", PIN: samtest.PIN, KeyAlgo: "ecdsa-p256", OTP: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SuspendCredential(c, &sam.Principal{UserID: "alice"}, cc.CredentialID); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("suspend without a lifecycle CA: %v", err)
	}
}

func TestLoginHolder_rateLimitedPerAccount(t *testing.T) {
	e := newSC(t)
	c := context.Background()
	e.holder(t, "alice", sam.NewCredential{})
	for i := 0; i < sam.LoginMaxAttempts; i++ {
		if _, err := e.svc.LoginHolder(c, "alice", "Wrong-Pass-1"); !errors.Is(err, sam.ErrAuthentication) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, err := e.svc.LoginHolder(c, "ALICE", samtest.Password)
	if ee, ok := errs.As(err); !ok || ee.Kind != errs.RateLimited || ee.RetryAfter <= 0 {
		t.Fatalf("after %d attempts the right password: %v", sam.LoginMaxAttempts, err)
	}
	e.clock.Advance(sam.LoginWindow)
	if _, err := e.svc.LoginHolder(c, "alice", samtest.Password); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}
