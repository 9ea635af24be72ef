package sam_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
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
)

var ctx = context.Background()

func digest(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func digests(n int, prefix string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = digest(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// verify checks a raw signature with Go's crypto against the leaf.
func verify(t *testing.T, leafDER []byte, d []byte, opts crypto.SignerOpts, sig []byte) {
	t.Helper()
	cert, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, d, sig) {
			t.Fatalf("ECDSA signature does not verify against the certificate")
		}
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if err := rsa.VerifyPSS(pub, pss.Hash, d, sig, pss); err != nil {
				t.Fatalf("RSA-PSS signature does not verify: %v", err)
			}
		} else if err := rsa.VerifyPKCS1v15(pub, opts.HashFunc(), d, sig); err != nil {
			t.Fatalf("RSA PKCS#1 v1.5 signature does not verify: %v", err)
		}
	default:
		t.Fatalf("unexpected key type %T", pub)
	}
}

// wantErr checks that err is (or wraps) want.
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func wantKind(t *testing.T, err error, kind errs.Kind, msg string) {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || e.Kind != kind || (msg != "" && e.Msg != msg) {
		t.Fatalf("got error %v (%+v), want kind %d %q", err, e, kind, msg)
	}
}

func authorize(t *testing.T, e *samtest.Env, p *sam.Principal, r sam.AuthorizeRequest) *sam.SAD {
	t.Helper()
	if r.PIN == "" {
		r.PIN = samtest.PIN
	}
	if r.HashAlgo == 0 && len(r.Hashes) > 0 {
		r.HashAlgo = crypto.SHA256
	}
	sad, err := e.Service.Authorize(ctx, p, r)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	return sad
}

func TestSignVerifiesAgainstCertificate(t *testing.T) {
	e := hsmEnv(t)
	u := e.User(t, "alice")
	p := e.Login(t, u)
	tests := []struct {
		algo string
		opts crypto.SignerOpts
		h    func(string) []byte
	}{
		{"ecdsa-p256", crypto.SHA256, digest},
		{"ecdsa-p384", crypto.SHA384, func(s string) []byte { h := sha512.Sum384([]byte(s)); return h[:] }},
		{"rsa-2048", crypto.SHA256, digest},
		{"rsa-2048", &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}, digest},
	}
	creds := map[string]*sam.CreatedCredential{}
	for _, tt := range tests {
		name := fmt.Sprintf("%s_%T", tt.algo, tt.opts)
		t.Run(name, func(t *testing.T) {
			cc := creds[tt.algo]
			if cc == nil {
				cc = e.Credential(t, u, sam.NewCredential{KeyAlgo: tt.algo})
				creds[tt.algo] = cc
			}
			hashes := [][]byte{tt.h("doc-1"), tt.h("doc-2"), tt.h("doc-3")}
			sad := authorize(t, e, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 3, Hashes: hashes, HashAlgo: tt.opts.HashFunc()})
			sigs, err := e.Service.SignHash(ctx, p, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value, Hashes: hashes, Opts: tt.opts})
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			if len(sigs) != len(hashes) {
				t.Fatalf("%d signatures for %d hashes", len(sigs), len(hashes))
			}
			for i := range hashes {
				verify(t, cc.Certificates[0], hashes[i], tt.opts, sigs[i])
			}
		})
	}
	if n := e.Audit.Count("signature.sign", "success"); n != len(tests) {
		t.Errorf("%d signature.sign success audit events, want %d", n, len(tests))
	}
}

func TestAuthorize(t *testing.T) {
	e := hsmEnv(t)
	alice := e.User(t, "alice")
	bob := e.User(t, "bob")
	pa, pb := e.Login(t, alice), e.Login(t, bob)

	t.Run("wrong_PIN_three_times_blocks_then_right_PIN_refused", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{})
		for i := 1; i <= 3; i++ {
			_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: "00000000"})
			if i < 3 {
				wantErr(t, err, sam.ErrInvalidPIN)
			} else {
				wantErr(t, err, sam.ErrPINLocked)
			}
		}
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantErr(t, err, sam.ErrPINLocked)
		info, err := e.Service.Credential(ctx, pa, cc.CredentialID)
		if err != nil || !info.PINBlocked {
			t.Fatalf("credential info after block: %+v, %v", info, err)
		}
	})

	t.Run("right_PIN_resets_the_counter", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{})
		for range 2 {
			_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: "00000000"})
			wantErr(t, err, sam.ErrInvalidPIN)
		}
		authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1})
		for range 2 {
			_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: "00000000"})
			wantErr(t, err, sam.ErrInvalidPIN)
		}
		authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1})
	})

	t.Run("concurrent_wrong_PINs_stop_exactly_at_the_block", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		kinds := map[string]int{}
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: "99999999"})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, sam.ErrInvalidPIN):
					kinds["invalid"]++
				case errors.Is(err, sam.ErrPINLocked):
					kinds["locked"]++
				default:
					kinds[fmt.Sprint(err)]++
				}
			}()
		}
		wg.Wait()
		c, err := e.Store.Credential(ctx, cc.CredentialID)
		if err != nil {
			t.Fatal(err)
		}
		if c.PINTries != 3 {
			t.Fatalf("pin_tries = %d after 50 concurrent wrong PINs, want exactly 3", c.PINTries)
		}
		if kinds["invalid"] != 2 || kinds["locked"] != 48 {
			t.Fatalf("outcomes %v, want 2 invalid_pin and 48 PIN locked", kinds)
		}
		_, err = e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantErr(t, err, sam.ErrPINLocked)
	})

	t.Run("another_users_credential_is_not_found", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{})
		_, err := e.Service.Authorize(ctx, pb, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantKind(t, err, errs.NotFound, "")
		_, err = e.Service.Credential(ctx, pb, cc.CredentialID)
		wantKind(t, err, errs.NotFound, "")
		_, err = e.Service.Credential(ctx, pb, "c-does-not-exist")
		wantKind(t, err, errs.NotFound, "")
		list, err := e.Service.ListCredentials(ctx, pb)
		if err != nil {
			t.Fatal(err)
		}
		for _, ci := range list {
			if ci.UserID != bob {
				t.Fatalf("bob's list holds %s of %s", ci.ID, ci.UserID)
			}
		}
	})

	t.Run("numSignatures_above_multisign_refused", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{Multisign: 2})
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 3, PIN: samtest.PIN})
		wantErr(t, err, sam.ErrTooMany)
	})

	t.Run("SCAL2_requires_hashes", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{SCAL: 2})
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantErr(t, err, sam.ErrHashesRequired)
	})

	t.Run("suspended_certificate_refused", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{})
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 2})
		e.CA.SetStatus(cc.Serial, "suspended")
		_, err := e.Service.SignHash(ctx, pa, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value, Hashes: [][]byte{digest("x")}, Opts: crypto.SHA256})
		wantKind(t, err, errs.Invalid, "Signing certificate is suspended")
		_, err = e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantKind(t, err, errs.Invalid, "Signing certificate is suspended")
		e.CA.SetStatus(cc.Serial, "revoked")
		_, err = e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantKind(t, err, errs.Invalid, "Signing certificate is revoked")
	})

	t.Run("CA_status_unavailable_fails_closed", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{})
		e.CA.FailStatus.Store(true)
		defer e.CA.FailStatus.Store(false)
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantKind(t, err, errs.Unavailable, "")
	})

	t.Run("disabled_key_refused", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{})
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1})
		if err := e.Service.SetKeyEnabled(ctx, cc.CredentialID, false); err != nil {
			t.Fatal(err)
		}
		_, err := e.Service.SignHash(ctx, pa, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value, Hashes: [][]byte{digest("x")}, Opts: crypto.SHA256})
		wantErr(t, err, sam.ErrDisabled)
		_, err = e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantErr(t, err, sam.ErrDisabled)
		if err := e.Service.SetKeyEnabled(ctx, cc.CredentialID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Service.SignHash(ctx, pa, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value, Hashes: [][]byte{digest("x")}, Opts: crypto.SHA256}); err != nil {
			t.Fatalf("sign after re-enable: %v", err)
		}
	})

	t.Run("not_activated_credential_signs_nothing", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{Activation: "puk"})
		if cc.Activated {
			t.Fatal("a PUK-activation credential came out activated")
		}
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantErr(t, err, sam.ErrNotActivated)
	})

	t.Run("history_and_audit_record_failures", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{})
		before := e.Audit.Count("credential.authorize", "failure:invalid_pin")
		_, _ = e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: "00000000"})
		if e.Audit.Count("credential.authorize", "failure:invalid_pin") != before+1 {
			t.Fatal("wrong PIN not audited")
		}
		h, err := e.Store.History(ctx, cc.CredentialID, 10)
		if err != nil || len(h) != 1 || h[0].Outcome != "failure:invalid_pin" || h[0].Action != "authorize" {
			t.Fatalf("history %+v, %v", h, err)
		}
	})
}

func TestOTP(t *testing.T) {
	e := samtest.New(t) // in-memory keys: this test is not about the HSM
	alice := e.User(t, "alice")
	pa := e.Login(t, alice)
	totp := otp.NewTOTP(otp.Config{}, nil, nil)

	t.Run("TOTP_code_reused_refused", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{OTP: "totp"})
		if cc.OTPSecret == "" || !regexp.MustCompile(`^otpauth://totp/`).MatchString(cc.OTPURI) {
			t.Fatalf("no TOTP enrolment data: %q %q", cc.OTPSecret, cc.OTPURI)
		}
		code, err := totp.Code(cc.OTPSecret, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		wantErr(t, err, sam.ErrInvalidOTP)
		authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, OTP: code})
		_, err = e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN, OTP: code})
		wantErr(t, err, sam.ErrInvalidOTP)
		// The previous step's code is inside the window but older than
		// the one accepted: refused too.
		prev, _ := totp.Code(cc.OTPSecret, e.Clock.Now().Add(-30*time.Second))
		_, err = e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN, OTP: prev})
		wantErr(t, err, sam.ErrInvalidOTP)
		e.Clock.Advance(30 * time.Second)
		next, _ := totp.Code(cc.OTPSecret, e.Clock.Now())
		authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, OTP: next})
	})

	t.Run("ten_wrong_OTPs_lock_the_OTP", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{OTP: "totp"})
		for i := 1; i <= 10; i++ {
			_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN, OTP: "000000"})
			if i < 10 {
				wantErr(t, err, sam.ErrInvalidOTP)
			} else {
				wantErr(t, err, sam.ErrOTPLocked)
			}
		}
		code, _ := totp.Code(cc.OTPSecret, e.Clock.Now())
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN, OTP: code})
		wantErr(t, err, sam.ErrOTPLocked)
		info, _ := e.Service.Credential(ctx, pa, cc.CredentialID)
		if !info.OTPBlocked || info.PINBlocked {
			t.Fatalf("info %+v", info)
		}
	})

	t.Run("TOTP_wrong_code_refused", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{OTP: "totp"})
		code, _ := totp.Code(cc.OTPSecret, e.Clock.Now().Add(5*time.Minute))
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN, OTP: code})
		wantErr(t, err, sam.ErrInvalidOTP)
	})

	smsCode := func(t *testing.T) string {
		t.Helper()
		msgs, err := e.Store.Outbox(ctx, "+393330000000", 1)
		if err != nil || len(msgs) == 0 {
			t.Fatalf("outbox: %v, %v", msgs, err)
		}
		m := regexp.MustCompile(`code is (\d{6})`).FindStringSubmatch(msgs[0].Body)
		if m == nil {
			t.Fatalf("no code in %q", msgs[0].Body)
		}
		return m[1]
	}

	t.Run("SMS_OTP_single_use", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{OTP: "sms"})
		if err := e.Service.SendOTP(ctx, pa, cc.CredentialID); err != nil {
			t.Fatal(err)
		}
		code := smsCode(t)
		authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, OTP: code})
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN, OTP: code})
		wantErr(t, err, sam.ErrInvalidOTP)
	})

	t.Run("SMS_OTP_void_after_5_wrong_tries", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{OTP: "sms"})
		if err := e.Service.SendOTP(ctx, pa, cc.CredentialID); err != nil {
			t.Fatal(err)
		}
		code := smsCode(t)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		for range 5 {
			_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN, OTP: wrong})
			wantErr(t, err, sam.ErrInvalidOTP)
		}
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN, OTP: code})
		wantErr(t, err, sam.ErrInvalidOTP)
	})

	t.Run("SMS_OTP_expires", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{OTP: "sms"})
		if err := e.Service.SendOTP(ctx, pa, cc.CredentialID); err != nil {
			t.Fatal(err)
		}
		code := smsCode(t)
		e.Clock.Advance(61 * time.Second)
		_, err := e.Service.Authorize(ctx, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN, OTP: code})
		wantErr(t, err, sam.ErrInvalidOTP)
	})

	t.Run("SMS_send_rate_limited", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{OTP: "sms"})
		for range 5 {
			if err := e.Service.SendOTP(ctx, pa, cc.CredentialID); err != nil {
				t.Fatal(err)
			}
		}
		err := e.Service.SendOTP(ctx, pa, cc.CredentialID)
		wantKind(t, err, errs.RateLimited, "")
		if ee, _ := errs.As(err); ee.RetryAfter <= 0 {
			t.Fatalf("no RetryAfter on %v", err)
		}
		e.Clock.Advance(11 * time.Minute)
		if err := e.Service.SendOTP(ctx, pa, cc.CredentialID); err != nil {
			t.Fatalf("send after the window: %v", err)
		}
	})

	t.Run("SendOTP_on_a_TOTP_credential_refused", func(t *testing.T) {
		cc := e.Credential(t, alice, sam.NewCredential{OTP: "totp"})
		wantErr(t, e.Service.SendOTP(ctx, pa, cc.CredentialID), sam.ErrOTPUnavailable)
	})
}

func TestSignHash(t *testing.T) {
	e := hsmEnv(t)
	alice := e.User(t, "alice")
	bob := e.User(t, "bob")
	pa, pb := e.Login(t, alice), e.Login(t, bob)
	cc := e.Credential(t, alice, sam.NewCredential{})
	other := e.Credential(t, alice, sam.NewCredential{})
	sign := func(p *sam.Principal, cred, sad string, hashes [][]byte) ([][]byte, error) {
		return e.Service.SignHash(ctx, p, sam.SignRequest{CredentialID: cred, SAD: sad, Hashes: hashes, Opts: crypto.SHA256})
	}

	t.Run("SAD_reused_beyond_numSignatures", func(t *testing.T) {
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 2})
		if _, err := sign(pa, cc.CredentialID, sad.Value, digests(2, "a")); err != nil {
			t.Fatal(err)
		}
		_, err := sign(pa, cc.CredentialID, sad.Value, digests(1, "b"))
		wantErr(t, err, sam.ErrTooMany)
	})

	t.Run("one_too_many_in_a_batch_signs_nothing", func(t *testing.T) {
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 2})
		_, err := sign(pa, cc.CredentialID, sad.Value, digests(3, "c"))
		wantErr(t, err, sam.ErrTooMany)
		// Nothing was consumed: the two authorized signatures remain.
		if _, err := sign(pa, cc.CredentialID, sad.Value, digests(2, "c")); err != nil {
			t.Fatalf("budget lost after a refused batch: %v", err)
		}
	})

	t.Run("hash_not_authorized", func(t *testing.T) {
		hashes := digests(2, "bound")
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 2, Hashes: hashes})
		_, err := sign(pa, cc.CredentialID, sad.Value, [][]byte{hashes[0], digest("intruder")})
		wantErr(t, err, sam.ErrHashNotAuth)
		// The refused batch consumed nothing; the same hash twice is
		// refused (multiset), each bound hash once is fine.
		_, err = sign(pa, cc.CredentialID, sad.Value, [][]byte{hashes[0], hashes[0]})
		wantErr(t, err, sam.ErrHashNotAuth)
		if _, err := sign(pa, cc.CredentialID, sad.Value, [][]byte{hashes[1]}); err != nil {
			t.Fatal(err)
		}
		if _, err := sign(pa, cc.CredentialID, sad.Value, [][]byte{hashes[0]}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("duplicate_hashes_authorized_as_a_multiset", func(t *testing.T) {
		h := digest("same")
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 2, Hashes: [][]byte{h, h}})
		if _, err := sign(pa, cc.CredentialID, sad.Value, [][]byte{h, h}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("hash_algorithm_bound", func(t *testing.T) {
		hashes := digests(1, "algo")
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, Hashes: hashes})
		h384 := sha512.Sum384([]byte("algo"))
		_, err := e.Service.SignHash(ctx, pa, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value, Hashes: [][]byte{h384[:]}, Opts: crypto.SHA384})
		wantErr(t, err, sam.ErrHashNotAuth)
	})

	t.Run("SAD_of_another_credential", func(t *testing.T) {
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: other.CredentialID, NumSignatures: 1})
		_, err := sign(pa, cc.CredentialID, sad.Value, digests(1, "d"))
		wantErr(t, err, sam.ErrSADInvalid)
	})

	t.Run("SAD_of_another_user", func(t *testing.T) {
		bc := e.Credential(t, bob, sam.NewCredential{})
		sad := authorize(t, e, pb, sam.AuthorizeRequest{CredentialID: bc.CredentialID, NumSignatures: 1})
		_, err := sign(pa, cc.CredentialID, sad.Value, digests(1, "e"))
		wantErr(t, err, sam.ErrSADInvalid)
		_, err = sign(pa, bc.CredentialID, sad.Value, digests(1, "e"))
		wantKind(t, err, errs.NotFound, "")
	})

	t.Run("unknown_SAD", func(t *testing.T) {
		_, err := sign(pa, cc.CredentialID, "not-a-sad", digests(1, "f"))
		wantErr(t, err, sam.ErrSADInvalid)
	})

	t.Run("expired_SAD", func(t *testing.T) {
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1})
		if sad.ExpiresIn != 300 {
			t.Fatalf("expiresIn %d, want the 5 minute default", sad.ExpiresIn)
		}
		e.Clock.Advance(5*time.Minute + time.Second)
		_, err := sign(pa, cc.CredentialID, sad.Value, digests(1, "g"))
		wantErr(t, err, sam.ErrSADExpired)
		_, err = e.Service.ExtendTransaction(ctx, pa, cc.CredentialID, sad.Value, nil, 0)
		wantErr(t, err, sam.ErrSADExpired)
	})

	t.Run("digest_length_checked", func(t *testing.T) {
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1})
		_, err := sign(pa, cc.CredentialID, sad.Value, [][]byte{make([]byte, 20)})
		wantErr(t, err, sam.ErrDigestLength)
		_, err = sign(pa, cc.CredentialID, sad.Value, nil)
		wantErr(t, err, sam.ErrEmptyHashes)
	})

	t.Run("extend_transaction_voids_the_old_SAD", func(t *testing.T) {
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 3})
		if _, err := sign(pa, cc.CredentialID, sad.Value, digests(1, "h")); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(4 * time.Minute)
		next, err := e.Service.ExtendTransaction(ctx, pa, cc.CredentialID, sad.Value, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sign(pa, cc.CredentialID, sad.Value, digests(1, "i"))
		wantErr(t, err, sam.ErrSADInvalid)
		e.Clock.Advance(4 * time.Minute) // the old SAD would have expired
		if _, err := sign(pa, cc.CredentialID, next.Value, digests(2, "i")); err != nil {
			t.Fatalf("sign with the extended SAD: %v", err)
		}
		_, err = sign(pa, cc.CredentialID, next.Value, digests(1, "j"))
		wantErr(t, err, sam.ErrTooMany)
	})

	t.Run("extend_keeps_the_unsigned_bound_hashes", func(t *testing.T) {
		hashes := digests(3, "k")
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 3, Hashes: hashes})
		if _, err := sign(pa, cc.CredentialID, sad.Value, hashes[:1]); err != nil {
			t.Fatal(err)
		}
		_, err := e.Service.ExtendTransaction(ctx, pa, cc.CredentialID, sad.Value, hashes[:1], crypto.SHA256)
		wantErr(t, err, sam.ErrHashNotAuth)
		next, err := e.Service.ExtendTransaction(ctx, pa, cc.CredentialID, sad.Value, hashes[1:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sign(pa, cc.CredentialID, next.Value, hashes[:1])
		wantErr(t, err, sam.ErrHashNotAuth)
		if _, err := sign(pa, cc.CredentialID, next.Value, hashes[1:]); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("audit_failure_returns_no_signature", func(t *testing.T) {
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1})
		_, logged, err := e.Store.SignatureLog(ctx, cc.CredentialID, store.LogFilter{})
		if err != nil {
			t.Fatal(err)
		}
		e.Audit.Fail.Store(true)
		sigs, err := sign(pa, cc.CredentialID, sad.Value, digests(1, "l"))
		e.Audit.Fail.Store(false)
		wantKind(t, err, errs.Unavailable, "")
		if sigs != nil {
			t.Fatal("signatures returned although the audit record failed")
		}
		// The signature log and history rows travel with the audit record:
		// none says "success"; the history says why it failed.
		if _, n, err := e.Store.SignatureLog(ctx, cc.CredentialID, store.LogFilter{}); err != nil || n != logged {
			t.Fatalf("signature log rows %d (%v), want still %d", n, err, logged)
		}
		hs, err := e.Store.History(ctx, cc.CredentialID, 1)
		if err != nil || len(hs) != 1 || hs[0].Action != "sign" || hs[0].Outcome != "failure:audit" {
			t.Fatalf("last history row %+v (%v), want sign failure:audit", hs, err)
		}
	})

	t.Run("concurrent_signers_share_the_budget", func(t *testing.T) {
		sad := authorize(t, e, pa, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 5})
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := sign(pa, cc.CredentialID, sad.Value, digests(1, fmt.Sprint("m", i))); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if !errors.Is(err, sam.ErrTooMany) {
					t.Errorf("unexpected error %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 5 {
			t.Fatalf("%d signatures from a SAD for 5", ok)
		}
	})
}

func TestLogin(t *testing.T) {
	e := samtest.New(t) // in-memory keys: this test is not about the HSM
	alice := e.User(t, "alice")

	t.Run("wrong_password", func(t *testing.T) {
		_, err := e.Service.Login(ctx, alice, "Wr0ng-pass", false)
		wantErr(t, err, sam.ErrAuthentication)
		_, err = e.Service.Login(ctx, "nobody", samtest.Password, false)
		wantErr(t, err, sam.ErrAuthentication)
	})

	t.Run("tokens_expire_and_refresh_rotates", func(t *testing.T) {
		tok, err := e.Service.Login(ctx, alice, samtest.Password, true)
		if err != nil {
			t.Fatal(err)
		}
		if tok.RefreshToken == "" || tok.ExpiresIn != 3600 {
			t.Fatalf("tokens %+v", tok)
		}
		e.Clock.Advance(time.Hour)
		_, err = e.Service.Authenticate(ctx, tok.AccessToken)
		wantErr(t, err, sam.ErrExpiredToken)
		next, err := e.Service.Refresh(ctx, tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Service.Authenticate(ctx, next.AccessToken); err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.Refresh(ctx, tok.RefreshToken)
		wantErr(t, err, sam.ErrInvalidGrant)
		_, err = e.Service.Authenticate(ctx, tok.RefreshToken)
		wantErr(t, err, sam.ErrInvalidToken)
	})

	t.Run("revoke_refresh_revokes_the_grant", func(t *testing.T) {
		tok, err := e.Service.Login(ctx, alice, samtest.Password, true)
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.Service.Authenticate(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Service.RevokeToken(ctx, p, tok.RefreshToken, "refresh_token"); err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.Authenticate(ctx, tok.AccessToken)
		wantErr(t, err, sam.ErrInvalidToken)
		_, err = e.Service.Refresh(ctx, tok.RefreshToken)
		wantErr(t, err, sam.ErrInvalidGrant)
	})

	t.Run("revoke_access_keeps_refresh", func(t *testing.T) {
		tok, _ := e.Service.Login(ctx, alice, samtest.Password, true)
		p, _ := e.Service.Authenticate(ctx, tok.AccessToken)
		if err := e.Service.RevokeToken(ctx, p, tok.AccessToken, ""); err != nil {
			t.Fatal(err)
		}
		_, err := e.Service.Authenticate(ctx, tok.AccessToken)
		wantErr(t, err, sam.ErrInvalidToken)
		if _, err := e.Service.Refresh(ctx, tok.RefreshToken); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("temporary_password_must_be_changed", func(t *testing.T) {
		_, err := e.Service.CreateUser(ctx, sam.NewUser{Username: "temp", Password: samtest.Password, Email: "t@example.test",
			Phone: "+393331111111", GivenName: "T", Surname: "Emp", Temporary: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.Login(ctx, "temp", samtest.Password, false)
		wantErr(t, err, sam.ErrPasswordChange)
		err = e.Service.ChangePassword(ctx, "temp", samtest.Password, "weak")
		wantKind(t, err, errs.Invalid, "")
		if err := e.Service.ChangePassword(ctx, "temp", samtest.Password, "N3w-Passw0rd"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Service.Login(ctx, "temp", "N3w-Passw0rd", false); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("password_expires_after_180_days", func(t *testing.T) {
		e.Clock.Advance(181 * 24 * time.Hour)
		_, err := e.Service.Login(ctx, alice, samtest.Password, false)
		wantErr(t, err, sam.ErrPasswordChange)
	})
}

func TestCreateUserListsEveryProblem(t *testing.T) {
	e := samtest.New(t) // in-memory keys: this test is not about the HSM
	_, err := e.Service.CreateUser(ctx, sam.NewUser{Username: "x", Password: "short", Email: "nope", Phone: "abc"})
	wantKind(t, err, errs.Invalid, "")
	msg := err.Error()
	for _, want := range []string{"username", sam.RuleLength, sam.RuleUpper, sam.RuleDigit, sam.RuleSpecial, "email", "phone", "givenName", "surname"} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(msg) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	e.User(t, "dup")
	_, err = e.Service.CreateUser(ctx, sam.NewUser{Username: "dup", Password: samtest.Password, Email: "d@example.test", Phone: "+391234567", GivenName: "D", Surname: "Up"})
	wantKind(t, err, errs.Conflict, "")
}

func TestCreateCredentialStoresNoSecretInClear(t *testing.T) {
	e := samtest.New(t) // in-memory keys: this test is not about the HSM
	u := e.User(t, "alice")
	cc := e.Credential(t, u, sam.NewCredential{OTP: "totp", Domain: "acme.example", Alias: "RSSMRA80A01H501U"})
	c, err := e.Store.Credential(ctx, cc.CredentialID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cc.PUK) != 8 || len(cc.ERC) < 10 || cc.IUT == "" {
		t.Fatalf("PUK %q ERC %q IUT %q", cc.PUK, cc.ERC, cc.IUT)
	}
	for name, pair := range map[string][2]string{"PIN": {samtest.PIN, c.PINHash}, "PUK": {cc.PUK, c.PUKHash}, "ERC": {cc.ERC, c.ERCHash}} {
		if pair[1] == pair[0] || regexp.MustCompile(regexp.QuoteMeta(pair[0])).MatchString(pair[1]) || pair[1][:10] != "$argon2id$" {
			t.Errorf("%s stored as %q", name, pair[1])
		}
	}
	if regexp.MustCompile(regexp.QuoteMeta(cc.OTPSecret)).Match(c.TOTPSecret) {
		t.Error("TOTP secret stored in clear")
	}
	_, err = e.Service.CreateCredential(ctx, sam.NewCredential{UserID: u, PIN: samtest.PIN, KeyAlgo: "ecdsa-p256", OTP: "none",
		Domain: "acme.example", Alias: "RSSMRA80A01H501U"})
	wantKind(t, err, errs.Conflict, "")
	_, err = e.Service.CreateCredential(ctx, sam.NewCredential{UserID: u, PIN: "1234", KeyAlgo: "dsa", OTP: "fax", SCAL: 3})
	wantKind(t, err, errs.Invalid, "")
	for _, want := range []string{"pin", "keyAlgo", "otp", "scal"} {
		if !regexp.MustCompile(want).MatchString(err.Error()) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	_, err = e.Service.CreateCredential(ctx, sam.NewCredential{UserID: "ghost", PIN: samtest.PIN, KeyAlgo: "ecdsa-p256", OTP: "none"})
	wantKind(t, err, errs.NotFound, "")
}
