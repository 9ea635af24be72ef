package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigillo/sigillo/store"
)

func init() {
	register("selfcare/accounts_and_email_verification", testAccounts)
	register("selfcare/sessions", testSessions)
	register("selfcare/email_outbox", testEmails)
	register("selfcare/cert_request_transitions", testCertRequests)
	register("selfcare/cert_request_claim_concurrent", testCertRequestClaimConcurrent)
	register("selfcare/bindings_and_iut", testBindings)
	register("selfcare/credential_updates", testCredentialUpdates)
	register("selfcare/history_page_and_counts", testHistoryPage)
}

func testAccounts(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, store.User{ID: "u1", PasswordHash: "x", Email: "a@e.test", Status: "pending", PasswordChangedAt: t0, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	a := store.Account{UserID: "u1", Email: "a@e.test", Country: "IT", Lang: "it", ConsentProcessing: true, VerifyHash: "h1",
		VerifyExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, store.Account{UserID: "u2", Email: "a@e.test", Country: "IT", VerifyHash: "h2", CreatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate e-mail: %v", err)
	}
	got, err := s.AccountByEmail(ctx, "a@e.test")
	if err != nil || got.UserID != "u1" || got.Lang != "it" || !got.ConsentProcessing || got.ConsentMarketing || !got.VerifiedAt.IsZero() {
		t.Fatalf("account %+v %v", got, err)
	}
	if _, err := s.Account(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing account: %v", err)
	}
	if _, err := s.VerifyEmail(ctx, "h1", t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	// A new link replaces the expired one.
	if ok, err := s.RenewVerification(ctx, "u1", "h1b", t0.Add(3*time.Hour)); err != nil || !ok {
		t.Fatalf("renew verification: %v %v", ok, err)
	}
	if _, err := s.VerifyEmail(ctx, "h1", t0.Add(90*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a replaced token: %v", err)
	}
	if ok, err := s.RenewVerification(ctx, "nobody", "hx", t0.Add(3*time.Hour)); err != nil || ok {
		t.Fatalf("renew for a missing account: %v %v", ok, err)
	}
	if uid, err := s.VerifyEmail(ctx, "h1b", t0.Add(2*time.Hour)); err != nil || uid != "u1" {
		t.Fatalf("renewed token: %q %v", uid, err)
	}
	if ok, err := s.RenewVerification(ctx, "u1", "h1c", t0.Add(4*time.Hour)); err != nil || ok {
		t.Fatalf("renew once confirmed: %v %v", ok, err)
	}
	if _, err := s.VerifyEmail(ctx, "", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("empty token: %v", err)
	}
	if _, err := s.VerifyEmail(ctx, "h1b", t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token used twice: %v", err)
	}
	u, _ := s.User(ctx, "u1")
	a2, _ := s.Account(ctx, "u1")
	if u.Status != "active" || !a2.VerifiedAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("after verification: user %s, verified %v", u.Status, a2.VerifiedAt)
	}
	if err := s.SetHolderData(ctx, "u1", "Ada", "Lovelace", "RSSMRA80A01H501U", "+393331234567"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPhone(ctx, "u1", "+393330000001"); err != nil {
		t.Fatal(err)
	}
	u, _ = s.User(ctx, "u1")
	if u.GivenName != "Ada" || u.FiscalCode != "RSSMRA80A01H501U" || u.Phone != "+393330000001" {
		t.Fatalf("holder data %+v", u)
	}
	if err := s.SetHolderData(ctx, "nobody", "a", "b", "", "+1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("holder data of a missing user: %v", err)
	}
}

func testSessions(t *testing.T, s *store.Store) {
	ctx := context.Background()
	x := store.Session{Hash: "s1", UserID: "u1", CSRF: "c", MustChange: true, ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
	if err := s.PutSession(ctx, x); err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, "s1", t0)
	if err != nil || got.UserID != "u1" || got.CSRF != "c" || !got.MustChange {
		t.Fatalf("session %+v %v", got, err)
	}
	if _, err := s.Session(ctx, "s1", t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if err := s.ClearSessionMustChange(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(ctx, "s1", t0); got.MustChange {
		t.Fatal("must-change not cleared")
	}
	if err := s.DeleteSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, "s1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
}

func testEmails(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for i, to := range []string{"a@e.test", "b@e.test", "a@e.test"} {
		m := store.Email{ID: string(rune('x' + i)), To: to, Subject: "s", Body: "b", CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		if i == 2 {
			m.AttachmentName, m.Attachment = "e.pdf", []byte{0x25, 0x50, 0x00, 0xff}
		}
		if err := s.PutEmail(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := s.Emails(ctx, "a@e.test", 10)
	if err != nil || len(ms) != 2 || ms[0].AttachmentName != "e.pdf" || string(ms[0].Attachment) != "\x25\x50\x00\xff" || len(ms[1].Attachment) != 0 {
		t.Fatalf("emails %+v %v", ms, err)
	}
	if all, _ := s.Emails(ctx, "", 0); len(all) != 3 {
		t.Fatalf("all: %d", len(all))
	}
}

func newRequest(id, user string, at time.Time) store.CertRequest {
	return store.CertRequest{ID: id, UserID: user, Status: "pending", GivenName: "A", Surname: "B", Phone: "+39333", Email: "a@e.test",
		Country: "IT", Method: "cie", DocType: "passport", DocNumber: "X1", DocCountry: "IT", DocExpiry: "2030-01-01", CreatedAt: at}
}

func testCertRequests(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for i, id := range []string{"r1", "r2"} {
		if err := s.CreateCertRequest(ctx, newRequest(id, "u1", t0.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := s.LatestCertRequest(ctx, "u1"); err != nil || r.ID != "r2" {
		t.Fatalf("latest %+v %v", r, err)
	}
	if err := s.DecideCertRequest(ctx, "r1", "rejected", "op", "blurred photo", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideCertRequest(ctx, "r1", "approved", "op", "", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second decision: %v", err)
	}
	if err := s.DecideCertRequest(ctx, "nope", "approved", "op", "", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing request: %v", err)
	}
	if err := s.ClaimCertRequest(ctx, "r2"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("claim of a pending request: %v", err)
	}
	if err := s.DecideCertRequest(ctx, "r2", "approved", "op", "", t0); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.CertRequests(ctx, "pending", 10); len(ps) != 0 {
		t.Fatalf("pending %d", len(ps))
	}
	if err := s.ClaimCertRequest(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseCertRequest(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimCertRequest(ctx, "r2"); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	fin := store.CertRequest{ID: "r2", ContractAcceptedAt: t0, PrivacyAcceptedAt: t0, ContractVersion: "v1", CredentialID: "c9",
		EnvelopeNumber: "E1", IssuedAt: t0}
	if err := s.FinishCertRequest(ctx, fin); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishCertRequest(ctx, fin); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("finished twice: %v", err)
	}
	r, err := s.CertRequest(ctx, "r2")
	if err != nil || r.Status != "issued" || r.CredentialID != "c9" || r.EnvelopeNumber != "E1" || !r.ContractAcceptedAt.Equal(t0) {
		t.Fatalf("issued request %+v %v", r, err)
	}
	r1, _ := s.CertRequest(ctx, "r1")
	if r1.Status != "rejected" || r1.DecisionReason != "blurred photo" || r1.Operator != "op" {
		t.Fatalf("rejected request %+v", r1)
	}
}

func testCertRequestClaimConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if err := s.CreateCertRequest(ctx, newRequest("r1", "u1", t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideCertRequest(ctx, "r1", "approved", "op", "", t0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var won atomic.Int32
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.ClaimCertRequest(ctx, "r1")
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("claim: %v", err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d claims won, want exactly 1", won.Load())
	}
}

func testBindings(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	bs, err := s.BindingsFor(ctx, "alice@e.test", "")
	if err != nil || len(bs) != 1 || bs[0].CredentialID != "c1" || bs[0].CertSerial != "01" {
		t.Fatalf("by e-mail %+v %v", bs, err)
	}
	if bs, _ := s.BindingsFor(ctx, "", "+390000"); len(bs) != 1 {
		t.Fatalf("by phone %+v", bs)
	}
	if bs, _ := s.BindingsFor(ctx, "", ""); len(bs) != 0 {
		t.Fatalf("empty values matched %+v", bs)
	}
	c, err := s.CredentialByIUT(ctx, "IUT-c1")
	if err != nil || c.ID != "c1" {
		t.Fatalf("by IUT %+v %v", c, err)
	}
	if _, err := s.CredentialByIUT(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown IUT: %v", err)
	}
}

func testCredentialUpdates(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	if ok, err := s.SetPINHash(ctx, "c1", "new", 3); !ok || err != nil {
		t.Fatalf("set pin: %v %v", ok, err)
	}
	for range 3 {
		_, _, _ = s.AddPINTry(ctx, "c1", 3)
	}
	if ok, _ := s.SetPINHash(ctx, "c1", "newer", 3); ok {
		t.Fatal("PIN changed while blocked")
	}
	for range 10 {
		_, _, _ = s.AddPUKTry(ctx, "c1", 10)
	}
	if ok, _ := s.UnblockPIN(ctx, "c1", "unblocked", 10); ok {
		t.Fatal("unblocked with the PUK blocked")
	}
	if ok, _ := s.SetRecoveryHashes(ctx, "c1", "puk2", "erc2", 3); ok {
		t.Fatal("recovery codes replaced while the PIN is blocked")
	}
	c, _ := s.Credential(ctx, "c1")
	if c.PINHash != "new" || c.PINTries != 3 || c.PUKTries != 10 || c.PUKHash == "puk2" {
		t.Fatalf("credential %+v", c)
	}
	seedCredential(t, s, "alice", "c2")
	_, _, _ = s.AddPINTry(ctx, "c2", 3)
	_, _, _ = s.AddPUKTry(ctx, "c2", 10)
	if ok, err := s.UnblockPIN(ctx, "c2", "unblocked", 10); !ok || err != nil {
		t.Fatalf("unblock: %v %v", ok, err)
	}
	c, _ = s.Credential(ctx, "c2")
	if c.PINHash != "unblocked" || c.PINTries != 0 || c.PUKTries != 0 {
		t.Fatalf("after unblock %+v", c)
	}
	// New recovery codes replace both hashes and restart the PUK counter.
	_, _, _ = s.AddPUKTry(ctx, "c2", 10)
	if ok, err := s.SetRecoveryHashes(ctx, "c2", "puk2", "erc2", 3); !ok || err != nil {
		t.Fatalf("recovery codes: %v %v", ok, err)
	}
	if c, _ = s.Credential(ctx, "c2"); c.PUKHash != "puk2" || c.ERCHash != "erc2" || c.PUKTries != 0 {
		t.Fatalf("after new recovery codes %+v", c)
	}
	// Activation happens once.
	if ok, _ := s.ActivateCredential(ctx, "c2", "x", 10); ok {
		t.Fatal("an active credential activated again")
	}
	if err := s.CreateCredential(ctx, store.Credential{ID: "c3", UserID: "alice", KeyAlgo: "ecdsa-p256", CertSerial: "03",
		CertChain: [][]byte{testCertDER(t)}, PUKHash: "u", ERCHash: "e", IUT: "IUT-c3", OTPType: "none", SCAL: 1, Multisign: 1,
		KeyStatus: "enabled", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ActivateCredential(ctx, "c3", "first", 10); !ok || err != nil {
		t.Fatalf("activate: %v %v", ok, err)
	}
	if c, _ := s.Credential(ctx, "c3"); !c.Activated || c.PINHash != "first" {
		t.Fatalf("activated %+v", c)
	}
	der := testCertDER(t)
	if err := s.SetCredentialCert(ctx, "c3", "03", "04", [][]byte{der}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCredentialCert(ctx, "c3", "03", "05", [][]byte{der}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale renewal: %v", err)
	}
	if c, _ := s.Credential(ctx, "c3"); c.CertSerial != "04" {
		t.Fatalf("serial %s", c.CertSerial)
	}
}

func testHistoryPage(t *testing.T, s *store.Store) {
	ctx := context.Background()
	rows := []struct {
		at      time.Duration
		action  string
		cnt     int
		outcome string
	}{
		{0, "sign", 5, "success"}, {time.Hour, "sign", 2, "failure:hsm"}, {10 * 24 * time.Hour, "authorize", 1, "success"},
		{10 * 24 * time.Hour, "sign", 3, "success"}, {11 * 24 * time.Hour, "sign", 1, "success"},
	}
	for i, r := range rows {
		if err := s.AddHistory(ctx, store.HistoryEntry{ID: string(rune('a' + i)), At: t0.Add(r.at), UserID: "u", CredentialID: "c1",
			Action: r.action, Count: r.cnt, Outcome: r.outcome}); err != nil {
			t.Fatal(err)
		}
	}
	recent, total, err := s.SignatureCounts(ctx, "c1", t0.Add(5*24*time.Hour))
	if err != nil || recent != 4 || total != 9 {
		t.Fatalf("counts %d/%d %v", recent, total, err)
	}
	if r, tot, err := s.SignatureCounts(ctx, "none", t0); err != nil || r != 0 || tot != 0 {
		t.Fatalf("no history: %d %d %v", r, tot, err)
	}
	p1, _ := s.HistoryPage(ctx, "c1", 0, 2)
	p2, _ := s.HistoryPage(ctx, "c1", 2, 2)
	p3, _ := s.HistoryPage(ctx, "c1", 4, 2)
	if len(p1) != 2 || len(p2) != 2 || len(p3) != 1 || p1[0].ID != "e" || p3[0].ID != "a" {
		t.Fatalf("pages %v / %v / %v", p1, p2, p3)
	}
}
