package storetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigillo/sigillo/store"
)

func init() {
	register("identity/users_and_credentials", testUsersAndCredentials)
	register("identity/pin_counter_concurrent", testPINCounterConcurrent)
	register("identity/totp_step_once", testTOTPStepOnce)
	register("identity/sad_consume_concurrent", testSADConsumeConcurrent)
	register("identity/sad_bound_hashes", testSADBoundHashes)
	register("identity/sad_extend", testSADExtend)
	register("identity/tokens", testTokens)
	register("identity/sms_challenge", testSMSChallenge)
	register("identity/send_rate", testSendRate)
	register("identity/outbox_and_history", testOutboxAndHistory)
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// seedCredential inserts a user (once) and a credential with a throw-away
// self-signed-looking chain: the store does not parse more than DER framing.
func seedCredential(t *testing.T, s *store.Store, userID, id string) {
	t.Helper()
	ctx := context.Background()
	err := s.CreateUser(ctx, store.User{ID: userID, PasswordHash: "$argon2id$x", Email: userID + "@e.test", Phone: "+390000",
		GivenName: "G", Surname: "S", Status: "active", PasswordChangedAt: t0, CreatedAt: t0})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		t.Fatal(err)
	}
	if err := s.CreateCredential(ctx, store.Credential{ID: id, UserID: userID, KeyAlgo: "ecdsa-p256", CertSerial: "01",
		CertChain: [][]byte{testCertDER(t)}, PINHash: "$argon2id$p", PUKHash: "$argon2id$u", ERCHash: "$argon2id$e",
		IUT: "IUT-" + id, OTPType: "none", SCAL: 1, Multisign: 10, KeyStatus: "enabled", Activated: true, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
}

func testUsersAndCredentials(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	u, err := s.User(ctx, "alice")
	if err != nil || u.Email != "alice@e.test" || !u.PasswordChangedAt.Equal(t0) || u.MustChangePassword {
		t.Fatalf("user %+v, %v", u, err)
	}
	if _, err := s.User(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing user: %v", err)
	}
	err = s.CreateUser(ctx, store.User{ID: "alice", PasswordHash: "x", Status: "active", CreatedAt: t0})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate user: %v", err)
	}
	c, err := s.Credential(ctx, "c1")
	if err != nil || c.UserID != "alice" || len(c.CertChain) != 1 || c.Domain != "" || !c.Activated {
		t.Fatalf("credential %+v, %v", c, err)
	}
	// domain+alias unique together; several credentials without them.
	for i, da := range [][2]string{{"", ""}, {"", ""}, {"acme", "bob"}, {"acme", "carol"}, {"other", "bob"}} {
		err := s.CreateCredential(ctx, store.Credential{ID: fmt.Sprint("d", i), UserID: "alice", KeyAlgo: "ecdsa-p256",
			CertSerial: "02", CertChain: [][]byte{testCertDER(t)}, PUKHash: "x", ERCHash: "x", IUT: fmt.Sprint("I", i),
			OTPType: "none", SCAL: 1, Multisign: 1, Domain: da[0], Alias: da[1], KeyStatus: "enabled", CreatedAt: t0})
		if err != nil {
			t.Fatalf("credential %d: %v", i, err)
		}
	}
	err = s.CreateCredential(ctx, store.Credential{ID: "dup", UserID: "alice", KeyAlgo: "ecdsa-p256", CertSerial: "03",
		CertChain: [][]byte{testCertDER(t)}, PUKHash: "x", ERCHash: "x", IUT: "Idup", OTPType: "none", SCAL: 1, Multisign: 1,
		Domain: "acme", Alias: "bob", KeyStatus: "enabled", CreatedAt: t0})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate domain+alias: %v", err)
	}
	got, err := s.CredentialByAlias(ctx, "acme", "carol")
	if err != nil || got.ID != "d3" {
		t.Fatalf("by alias: %+v, %v", got, err)
	}
	list, err := s.CredentialsByUser(ctx, "alice")
	if err != nil || len(list) != 6 {
		t.Fatalf("list: %d, %v", len(list), err)
	}
	if err := s.SetKeyStatus(ctx, "c1", "disabled"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Credential(ctx, "c1"); c.KeyStatus != "disabled" {
		t.Fatalf("key status %q", c.KeyStatus)
	}
	if err := s.SetKeyStatus(ctx, "nope", "disabled"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("set status of missing credential: %v", err)
	}
}

func testPINCounterConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	const max = 3
	var wg sync.WaitGroup
	var recorded atomic.Int32
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := s.AddPINTry(ctx, "c1", max)
			if err != nil {
				t.Errorf("AddPINTry: %v", err)
			}
			if ok {
				recorded.Add(1)
			}
		}()
	}
	wg.Wait()
	c, err := s.Credential(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c.PINTries != max || recorded.Load() != max {
		t.Fatalf("pin_tries %d, %d recorded; want exactly %d", c.PINTries, recorded.Load(), max)
	}
	if ok, err := s.ResetPINTries(ctx, "c1", max); ok || err != nil {
		t.Fatalf("reset of a blocked PIN: %v, %v", ok, err)
	}
	if _, ok, _ := s.AddPUKTry(ctx, "c1", max); !ok {
		t.Fatal("PUK counter is not independent of the PIN counter")
	}
	for i := 1; i <= max+1; i++ {
		n, ok, err := s.AddOTPTry(ctx, "c1", max)
		if err != nil || ok != (i <= max) || (ok && n != i) {
			t.Fatalf("OTP try %d: %d %v %v", i, n, ok, err)
		}
	}
	if ok, _ := s.ResetOTPTries(ctx, "c1", max); ok {
		t.Fatal("reset of a blocked OTP counter")
	}
	seedCredential(t, s, "alice", "c2")
	if n, ok, _ := s.AddPINTry(ctx, "c2", max); !ok || n != 1 {
		t.Fatalf("first try: %d %v", n, ok)
	}
	if ok, err := s.ResetPINTries(ctx, "c2", max); !ok || err != nil {
		t.Fatalf("reset: %v %v", ok, err)
	}
	if c, _ := s.Credential(ctx, "c2"); c.PINTries != 0 {
		t.Fatalf("after reset %d", c.PINTries)
	}
}

func testTOTPStepOnce(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	var wg sync.WaitGroup
	var won atomic.Int32
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.AdvanceTOTPStep(ctx, "c1", 1000)
			if err != nil {
				t.Errorf("AdvanceTOTPStep: %v", err)
			}
			if ok {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d replicas accepted the same step, want 1", won.Load())
	}
	if ok, _ := s.AdvanceTOTPStep(ctx, "c1", 999); ok {
		t.Fatal("an older step was accepted")
	}
	if ok, _ := s.AdvanceTOTPStep(ctx, "c1", 1001); !ok {
		t.Fatal("a newer step was refused")
	}
}

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func testSADConsumeConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if err := s.PutSAD(ctx, store.SADRecord{Hash: "sad1", UserID: "alice", CredentialID: "c1", Remaining: 10,
		ExpiresAt: t0.Add(time.Minute), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok, exhausted atomic.Int32
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 16 callers × 2 hashes against a budget of 10: exactly 5 win.
			err := s.ConsumeSAD(ctx, "sad1", "alice", "c1", "SHA-256", [][]byte{sum(fmt.Sprint(i)), sum(fmt.Sprint(i, "b"))}, t0)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrSADExhausted):
				exhausted.Add(1)
			default:
				t.Errorf("ConsumeSAD: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 || exhausted.Load() != 11 {
		t.Fatalf("%d consumed, %d exhausted; want 5 and 11", ok.Load(), exhausted.Load())
	}
	for _, tc := range []struct {
		name      string
		user, cid string
		at        time.Time
		want      error
	}{
		{"other_user", "bob", "c1", t0, store.ErrSADInvalid},
		{"other_credential", "alice", "c2", t0, store.ErrSADInvalid},
		{"expired", "alice", "c1", t0.Add(time.Minute), store.ErrSADExpired},
		{"exhausted", "alice", "c1", t0, store.ErrSADExhausted},
	} {
		err := s.ConsumeSAD(ctx, "sad1", tc.user, tc.cid, "SHA-256", [][]byte{sum("z")}, tc.at)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := s.ConsumeSAD(ctx, "nope", "alice", "c1", "SHA-256", [][]byte{sum("z")}, t0); !errors.Is(err, store.ErrSADInvalid) {
		t.Errorf("unknown SAD: %v", err)
	}
}

func testSADBoundHashes(t *testing.T, s *store.Store) {
	ctx := context.Background()
	a, b := sum("a"), sum("b")
	if err := s.PutSAD(ctx, store.SADRecord{Hash: "sad2", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256",
		Remaining: 3, Bound: true, Hashes: [][]byte{a, a, b}, ExpiresAt: t0.Add(time.Minute), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		hashes [][]byte
		algo   string
		want   error
	}{
		{[][]byte{sum("c")}, "SHA-256", store.ErrSADHashNotAuthorized},
		{[][]byte{a, sum("c")}, "SHA-256", store.ErrSADHashNotAuthorized}, // all or nothing
		{[][]byte{b, b}, "SHA-256", store.ErrSADHashNotAuthorized},        // b only once
		{[][]byte{a}, "SHA-384", store.ErrSADHashNotAuthorized},           // algorithm bound
		{[][]byte{a, b}, "SHA-256", nil},
		{[][]byte{b}, "SHA-256", store.ErrSADHashNotAuthorized}, // b is spent, a is left
		{[][]byte{a}, "SHA-256", nil},
		{[][]byte{a}, "SHA-256", store.ErrSADExhausted},
	}
	for i, st := range steps {
		err := s.ConsumeSAD(ctx, "sad2", "alice", "c1", st.algo, st.hashes, t0)
		if !errors.Is(err, st.want) {
			t.Fatalf("step %d: %v, want %v", i, err, st.want)
		}
	}
	// Concurrency: 10 callers race for one bound hash; exactly one wins.
	h := sum("race")
	if err := s.PutSAD(ctx, store.SADRecord{Hash: "sad3", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256",
		Remaining: 5, Bound: true, Hashes: [][]byte{h, sum("r2"), sum("r3"), sum("r4"), sum("r5")}, ExpiresAt: t0.Add(time.Minute), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var won atomic.Int32
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.ConsumeSAD(ctx, "sad3", "alice", "c1", "SHA-256", [][]byte{h}, t0)
			if err == nil {
				won.Add(1)
			} else if !errors.Is(err, store.ErrSADHashNotAuthorized) {
				t.Errorf("ConsumeSAD: %v", err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("one bound hash signed %d times", won.Load())
	}
}

func testSADExtend(t *testing.T, s *store.Store) {
	ctx := context.Background()
	a, b := sum("a"), sum("b")
	if err := s.PutSAD(ctx, store.SADRecord{Hash: "old", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256",
		Remaining: 2, Bound: true, Hashes: [][]byte{a, b}, ExpiresAt: t0.Add(time.Minute), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeSAD(ctx, "old", "alice", "c1", "SHA-256", [][]byte{a}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExtendSAD(ctx, "old", "alice", "c1", [][]byte{a}, store.SADRecord{Hash: "x", ExpiresAt: t0.Add(2 * time.Minute)}, t0); !errors.Is(err, store.ErrSADHashNotAuthorized) {
		t.Fatalf("extend with a used hash: %v", err)
	}
	rec, err := s.ExtendSAD(ctx, "old", "alice", "c1", [][]byte{b}, store.SADRecord{Hash: "new", ExpiresAt: t0.Add(2 * time.Minute), CreatedAt: t0}, t0)
	if err != nil || rec.Remaining != 1 || !rec.Bound || rec.HashAlgo != "SHA-256" {
		t.Fatalf("extend: %+v, %v", rec, err)
	}
	if err := s.ConsumeSAD(ctx, "old", "alice", "c1", "SHA-256", [][]byte{b}, t0); !errors.Is(err, store.ErrSADInvalid) {
		t.Fatalf("old SAD after extend: %v", err)
	}
	if _, err := s.ExtendSAD(ctx, "old", "alice", "c1", nil, store.SADRecord{Hash: "y", ExpiresAt: t0.Add(time.Hour)}, t0); !errors.Is(err, store.ErrSADInvalid) {
		t.Fatalf("second extend of the old SAD: %v", err)
	}
	if err := s.ConsumeSAD(ctx, "new", "alice", "c1", "SHA-256", [][]byte{b}, t0.Add(90*time.Second)); err != nil {
		t.Fatalf("new SAD: %v", err)
	}
	if _, err := s.ExtendSAD(ctx, "new", "alice", "c1", nil, store.SADRecord{Hash: "z", ExpiresAt: t0.Add(time.Hour)}, t0); !errors.Is(err, store.ErrSADExhausted) {
		t.Fatalf("extend of a spent SAD: %v", err)
	}
}

func testTokens(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for _, tok := range []store.Token{
		{Hash: "a1", Kind: "access", UserID: "alice", GrantID: "g1", ExpiresAt: t0.Add(time.Hour), CreatedAt: t0},
		{Hash: "r1", Kind: "refresh", UserID: "alice", GrantID: "g1", ExpiresAt: t0.Add(time.Hour), CreatedAt: t0},
		{Hash: "a2", Kind: "access", UserID: "alice", GrantID: "g2", ExpiresAt: t0.Add(time.Hour), CreatedAt: t0},
	} {
		if err := s.PutToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Token(ctx, "a1")
	if err != nil || got.UserID != "alice" || got.Revoked || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("token %+v, %v", got, err)
	}
	if err := s.RevokeGrant(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]bool{"a1": true, "r1": true, "a2": false} {
		if tok, _ := s.Token(ctx, h); tok.Revoked != want {
			t.Errorf("%s revoked=%v, want %v", h, tok.Revoked, want)
		}
	}
	if ok, _ := s.RevokeToken(ctx, "a2"); !ok {
		t.Error("revoke a2 reported nothing revoked")
	}
	if ok, _ := s.RevokeToken(ctx, "a2"); ok {
		t.Error("second revoke of a2 reported a revocation")
	}
	if _, err := s.Token(ctx, "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing token: %v", err)
	}
}

func testSMSChallenge(t *testing.T, s *store.Store) {
	ctx := context.Background()
	put := func(id string, at time.Time) {
		if err := s.PutSMSChallenge(ctx, store.SMSChallenge{ID: id, CredentialID: "c1", CodeHash: sum(id), Binding: sum("b"),
			ExpiresAt: at.Add(time.Minute), CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	put("s1", t0)
	put("s2", t0.Add(time.Second)) // voids s1
	c, err := s.ActiveSMSChallenge(ctx, "c1", t0.Add(2*time.Second))
	if err != nil || c.ID != "s2" || string(c.Binding) != string(sum("b")) {
		t.Fatalf("active %+v, %v", c, err)
	}
	var wg sync.WaitGroup
	var allowed atomic.Int32
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.SMSAttempt(ctx, "s2", 5, t0.Add(2*time.Second))
			if err != nil {
				t.Errorf("SMSAttempt: %v", err)
			}
			if ok {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 5 {
		t.Fatalf("%d attempts allowed, want 5", allowed.Load())
	}
	put("s3", t0.Add(3*time.Second))
	if ok, _ := s.SMSAttempt(ctx, "s3", 5, t0.Add(2*time.Minute)); ok {
		t.Fatal("attempt on an expired challenge allowed")
	}
	if ok, _ := s.UseSMSChallenge(ctx, "s3"); !ok {
		t.Fatal("use refused")
	}
	if ok, _ := s.UseSMSChallenge(ctx, "s3"); ok {
		t.Fatal("challenge used twice")
	}
	if _, err := s.ActiveSMSChallenge(ctx, "c1", t0.Add(4*time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("active after use: %v", err)
	}
}

func testSendRate(t *testing.T, s *store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			allowed, _, err := s.TakeSendToken(ctx, "k", time.Minute, 5, t0)
			if err != nil {
				t.Errorf("TakeSendToken: %v", err)
			}
			if allowed {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 {
		t.Fatalf("%d sends allowed in one window, want 5", ok.Load())
	}
	allowed, wait, err := s.TakeSendToken(ctx, "k", time.Minute, 5, t0.Add(20*time.Second))
	if allowed || err != nil || wait != 40*time.Second {
		t.Fatalf("limited: %v %v %v", allowed, wait, err)
	}
	if allowed, _, _ := s.TakeSendToken(ctx, "k", time.Minute, 5, t0.Add(time.Minute)); !allowed {
		t.Fatal("new window refused")
	}
	if allowed, _, _ := s.TakeSendToken(ctx, "other", time.Minute, 5, t0); !allowed {
		t.Fatal("keys are not independent")
	}
}

func testOutboxAndHistory(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for i, to := range []string{"+391", "+392", "+391"} {
		if err := s.PutOutbox(ctx, store.OutboxMessage{ID: fmt.Sprint("m", i), To: to, Body: fmt.Sprint("code ", i), CreatedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := s.Outbox(ctx, "+391", 0)
	if err != nil || len(msgs) != 2 || msgs[0].Body != "code 2" {
		t.Fatalf("outbox %+v, %v", msgs, err)
	}
	if all, _ := s.Outbox(ctx, "", 0); len(all) != 3 {
		t.Fatalf("whole outbox: %d", len(all))
	}
	for i, out := range []string{"success", "failure:sad"} {
		if err := s.AddHistory(ctx, store.HistoryEntry{ID: fmt.Sprint("h", i), At: t0.Add(time.Duration(i) * time.Second), UserID: "alice",
			CredentialID: "c1", Action: "sign", HashAlgo: "SHA-256", Count: 3, Outcome: out}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.History(ctx, "c1", 10)
	if err != nil || len(h) != 2 || h[0].Outcome != "failure:sad" || h[1].Count != 3 {
		t.Fatalf("history %+v, %v", h, err)
	}
}

var (
	certOnce sync.Once
	certDER  []byte
	certErr  error
)

// testCertDER returns one self-signed certificate for credential rows
// (the store keeps chains as DER and splits them on read).
func testCertDER(t *testing.T) []byte {
	t.Helper()
	certOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "storetest"},
			NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
		certDER, certErr = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	})
	if certErr != nil {
		t.Fatal(certErr)
	}
	return certDER
}
