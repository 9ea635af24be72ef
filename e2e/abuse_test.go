package e2e

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// TestAbuse is the abuse table: one row per attack, each over HTTP
// against two real replicas sharing PostgreSQL and the HSM token. The
// replicas run with a short SAD lifetime so that expiry can be shown.
//
// Not here: TLS below 1.2 is refused by the listener, proven in
// server/server_test.go (TestTLSRefusesOldVersions), which drives the
// same server.App the binary runs.
func TestAbuse(t *testing.T) {
	const sadTTL = 4 * time.Second
	c, a, b := twoReplicas(t, "SIGILLO_AUTH_SAD_TTL="+sadTTL.String())
	pA, pB := c.api(a), c.api(b)

	t.Run("wrong_PIN_x3_blocks_the_PIN", func(t *testing.T) {
		A := pA.with(t)
		cred := A.newCredential("ab-pin3", "none", 1, 1)
		tok := A.login(cred.UserID)
		for i := 1; i <= 3; i++ {
			r := A.post("/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, nil, "11111111", ""))
			if (i < 3 && !wrongFactor(r, "PIN")) || (i == 3 && !locked(r)) {
				t.Fatalf("wrong PIN #%d: %s", i, r)
			}
		}
		if r := A.post("/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, nil, pin, "")); !locked(r) {
			t.Fatalf("right PIN after the block: %s", r)
		}
		if r := A.get("/admin/v1/credentials/"+cred.ID, A.admin); r.body["pinBlocked"] != true {
			t.Fatalf("operator view: %s", r)
		}
	})

	t.Run("50_parallel_wrong_PINs_are_counted_exactly", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("ab-pin50", "none", 1, 1)
		tok := A.login(cred.UserID)
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				side := []*api{A, B}[i%2]
				r, err := do(t.Context(), "POST", side.base+"/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, nil, "22222222", ""))
				if err != nil {
					t.Error(err)
					return
				}
				kind := "other: " + r.String()
				switch {
				case wrongFactor(r, "PIN"):
					kind = "invalid"
				case locked(r):
					kind = "locked"
				}
				mu.Lock()
				counts[kind]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		// PIN max tries is 3: two "invalid" answers, the third wrong PIN
		// blocks, every other attempt finds it blocked.
		if counts["invalid"] != 2 || counts["locked"] != 48 {
			t.Fatalf("answers %v, want 2 invalid and 48 locked", counts)
		}
	})

	t.Run("TOTP_reuse_across_replicas", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("ab-totp", "totp", 1, 1)
		tok := A.login(cred.UserID)
		code := totpAt(t, cred.OTPURI, time.Now())
		A.must(200, "/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, nil, pin, code))
		for _, side := range []*api{B, A} {
			if r := side.post("/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, nil, pin, code)); !wrongFactor(r, "OTP") {
				t.Fatalf("TOTP code reused on %s: %s", side.base, r)
			}
		}
	})

	t.Run("SMS_OTP_brute_force", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("ab-sms", "sms", 1, 1)
		tok := A.login(cred.UserID)
		A.must(204, "/csc/v2/credentials/getChallenge", tok, map[string]any{"credentialID": cred.ID, "authObjectID": "OTP"})
		code := A.smsCode(cred.Phone)
		guesses := 0
		for i := 0; i < 12; i++ {
			wrong := fmt.Sprintf("%06d", (i*7919+1)%1000000)
			if wrong == code {
				continue
			}
			side := []*api{A, B}[i%2]
			r := side.post("/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, nil, pin, wrong))
			if r.status != 400 {
				t.Fatalf("wrong SMS code: %s", r)
			}
			guesses++
		}
		// After a dozen wrong guesses (spread over both replicas) the
		// real code no longer works: the challenge or the OTP is burnt.
		if r := B.post("/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, nil, pin, code)); r.status == 200 {
			t.Fatalf("the right SMS code still worked after %d wrong guesses", guesses)
		}
	})

	t.Run("SMS_sending_is_limited_across_replicas", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("ab-smsflood", "sms", 1, 1)
		tok := A.login(cred.UserID)
		sent := 0
		for i := 0; i < 30; i++ {
			side := []*api{A, B}[i%2]
			r := side.post("/csc/v2/credentials/getChallenge", tok, map[string]any{"credentialID": cred.ID, "authObjectID": "OTP"})
			if r.status == 204 {
				sent++
				continue
			}
			if r.status != 429 || !retryAfterOK(r) {
				t.Fatalf("SMS #%d: %s, want 204 or 429 with Retry-After", i+1, r)
			}
			// The other replica refuses too: the counter is shared.
			other := []*api{A, B}[(i+1)%2]
			if r := other.post("/csc/v2/credentials/getChallenge", tok, map[string]any{"credentialID": cred.ID, "authObjectID": "OTP"}); r.status != 429 {
				t.Fatalf("other replica after the limit: %s", r)
			}
			t.Logf("%d codes sent, then 429 (Retry-After %s)", sent, r.header.Get("Retry-After"))
			return
		}
		t.Fatalf("30 SMS codes sent to one credential without a limit")
	})

	t.Run("SAD_replay", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("ab-replay", "none", 1, 1)
		tok := A.login(cred.UserID)
		sad := A.must(200, "/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, nil, pin, "")).str("SAD")
		hs := digests(1)
		req := signHashReq(cred.ID, sad, hs)
		signatures(t, A.must(200, "/csc/v2/signatures/signHash", tok, req), cred.Cert, hs)
		for _, side := range []*api{A, B} {
			if r := side.post("/csc/v2/signatures/signHash", tok, req); r.status != 400 {
				t.Fatalf("replayed signHash: %s", r)
			}
		}
	})

	t.Run("hash_swap", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("ab-swap", "none", 2, 1)
		tok := A.login(cred.UserID)
		bound := digests(1)
		sad := A.must(200, "/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, bound, pin, "")).str("SAD")
		r := B.post("/csc/v2/signatures/signHash", tok, signHashReq(cred.ID, sad, digests(1)))
		if r.status != 400 || !strings.Contains(r.String(), "not authorized by the SAD") {
			t.Fatalf("swapped hash: %s", r)
		}
		// The bound hash still signs: a refused swap costs no budget.
		signatures(t, B.must(200, "/csc/v2/signatures/signHash", tok, signHashReq(cred.ID, sad, bound)), cred.Cert, bound)
	})

	t.Run("count_plus_one", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("ab-count", "none", 1, 2)
		tok := A.login(cred.UserID)
		if r := A.post("/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 3, nil, pin, "")); r.status != 400 {
			t.Fatalf("authorize beyond multisign: %s", r)
		}
		sad := A.must(200, "/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 2, nil, pin, "")).str("SAD")
		if r := B.post("/csc/v2/signatures/signHash", tok, signHashReq(cred.ID, sad, digests(3))); r.status != 400 {
			t.Fatalf("3 hashes on a 2-signature SAD: %s", r)
		}
		hs := digests(2)
		signatures(t, B.must(200, "/csc/v2/signatures/signHash", tok, signHashReq(cred.ID, sad, hs)), cred.Cert, hs)
		if r := A.post("/csc/v2/signatures/signHash", tok, signHashReq(cred.ID, sad, digests(1))); r.status != 400 {
			t.Fatalf("third signature: %s", r)
		}
	})

	t.Run("foreign_credential", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		victim := A.newCredential("ab-victim", "none", 1, 5)
		thief := A.newCredential("ab-thief", "none", 1, 5)
		tokV, tokT := A.login(victim.UserID), B.login(thief.UserID)
		sad := A.must(200, "/csc/v2/credentials/authorize", tokV, authorizeReq(victim.ID, 5, nil, pin, "")).str("SAD")
		missing := B.post("/csc/v2/credentials/info", tokT, map[string]any{"credentialID": "c-does-not-exist"})
		for name, r := range map[string]*result{
			"info":      B.post("/csc/v2/credentials/info", tokT, map[string]any{"credentialID": victim.ID}),
			"authorize": B.post("/csc/v2/credentials/authorize", tokT, authorizeReq(victim.ID, 1, nil, pin, "")),
			"signHash":  A.post("/csc/v2/signatures/signHash", tokT, signHashReq(victim.ID, sad, digests(1))),
		} {
			if r.status != 400 || r.errCode() != missing.errCode() || r.str("error_description") != missing.str("error_description") {
				t.Errorf("%s on another user's credential: %s (a missing one: %s)", name, r, missing)
			}
		}
	})

	t.Run("expired_SAD", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("ab-expiry", "none", 1, 2)
		tok := A.login(cred.UserID)
		sad := A.must(200, "/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 2, nil, pin, "")).str("SAD")
		time.Sleep(sadTTL + 500*time.Millisecond)
		r := B.post("/csc/v2/signatures/signHash", tok, signHashReq(cred.ID, sad, digests(1)))
		if r.status != 400 || !strings.Contains(r.String(), "SAD expired") {
			t.Fatalf("signHash with an expired SAD: %s", r)
		}
	})

	t.Run("digest_and_OID_confusion", func(t *testing.T) {
		A, B := pA.with(t), pB.with(t)
		cred := A.newCredential("ab-oid", "none", 2, 1)
		tok := A.login(cred.UserID)
		bound := digests(1)
		sad := A.must(200, "/csc/v2/credentials/authorize", tok, authorizeReq(cred.ID, 1, bound, pin, "")).str("SAD")
		d384 := sha512.Sum384(bound[0])
		for name, body := range map[string]map[string]any{
			// a SHA-256 digest labelled SHA-384
			"digest_length": {"credentialID": cred.ID, "SAD": sad, "hashes": b64s(bound), "hashAlgorithmOID": oidSHA384, "signAlgo": oidECDSASHA256},
			// a 48-byte digest of the bound data, signed as if SHA-384
			"other_hash_of_the_same_data": {"credentialID": cred.ID, "SAD": sad, "hashes": b64s([][]byte{d384[:]}), "hashAlgorithmOID": oidSHA384, "signAlgo": "1.2.840.10045.4.3.3"},
			// RSA PKCS#1 asked of an EC key
			"rsa_on_ec_key": {"credentialID": cred.ID, "SAD": sad, "hashes": b64s(bound), "hashAlgorithmOID": oidSHA256, "signAlgo": oidRSA},
			// an unknown hash OID
			"unknown_oid": {"credentialID": cred.ID, "SAD": sad, "hashes": b64s(bound), "hashAlgorithmOID": "1.2.3.4", "signAlgo": oidECDSASHA256},
			// MD5-sized garbage
			"short_digest": {"credentialID": cred.ID, "SAD": sad, "hashes": b64s([][]byte{make([]byte, 16)}), "hashAlgorithmOID": oidSHA256, "signAlgo": oidECDSASHA256},
		} {
			if r := B.post("/csc/v2/signatures/signHash", tok, body); r.status != 400 {
				t.Errorf("%s: %s, want 400", name, r)
			}
		}
		// None of the refusals spent the SAD.
		signatures(t, A.must(200, "/csc/v2/signatures/signHash", tok, signHashReq(cred.ID, sad, bound)), cred.Cert, bound)
	})

	t.Run("key_export_via_PKCS11", func(t *testing.T) {
		A := pA.with(t)
		cred := A.newCredential("ab-export", "none", 1, 1)
		checkKeysUnexportable(t, c.tok, cred.ID)
	})
}

// checkKeysUnexportable opens the replicas' token with raw PKCS#11 as a
// rogue process holding the user PIN would, and tries to get private keys
// out: every private key (the credential's and the CA's) reads back
// CKA_SENSITIVE true and CKA_EXTRACTABLE false, CKA_VALUE cannot be read,
// C_WrapKey refuses, and neither flag can be flipped.
func checkKeysUnexportable(t *testing.T, tok *token, credID string) {
	t.Helper()
	t.Setenv("SOFTHSM2_CONF", tok.conf)
	p := pkcs11.New(tok.module)
	if p == nil {
		t.Fatalf("load %s", tok.module)
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		t.Fatalf("C_Initialize: %v", err)
	}
	defer p.Finalize()
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	var slot uint
	found := false
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && ti.Label == tok.label {
			slot, found = s, true
		}
	}
	if !found {
		t.Fatalf("token %q not found", tok.label)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseSession(s)
	if err := p.Login(s, pkcs11.CKU_USER, tok.pin); err != nil {
		t.Fatalf("C_Login: %v", err)
	}
	defer p.Logout(s)

	if err := p.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}); err != nil {
		t.Fatal(err)
	}
	keys, _, err := p.FindObjects(s, 1000)
	_ = p.FindObjectsFinal(s)
	if err != nil {
		t.Fatal(err)
	}
	wrapKey, err := p.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
	})
	if err != nil {
		t.Fatalf("generate a session wrapping key: %v", err)
	}
	sawCred := false
	for _, k := range keys {
		attrs, err := p.GetAttributeValue(s, k, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
		})
		if err != nil {
			t.Fatalf("read key attributes: %v", err)
		}
		id := string(attrs[0].Value)
		if id == credID {
			sawCred = true
		}
		isTrue := func(a *pkcs11.Attribute) bool { return len(a.Value) == 1 && a.Value[0] == 1 }
		if !isTrue(attrs[1]) || isTrue(attrs[2]) || !isTrue(attrs[3]) {
			t.Errorf("key %q: sensitive=%v extractable=%v never_extractable=%v", id, attrs[1].Value, attrs[2].Value, attrs[3].Value)
		}
		if _, err := p.GetAttributeValue(s, k, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); !isRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
			t.Errorf("key %q: C_GetAttributeValue(CKA_VALUE) = %v, want CKR_ATTRIBUTE_SENSITIVE", id, err)
		}
		for _, mech := range []uint{pkcs11.CKM_AES_KEY_WRAP_PAD, pkcs11.CKM_AES_KEY_WRAP} {
			if wrapped, err := p.WrapKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, wrapKey, k); err == nil {
				t.Errorf("key %q: C_WrapKey gave %d bytes", id, len(wrapped))
			} else if !isRV(err, pkcs11.CKR_KEY_UNEXTRACTABLE) && !isRV(err, pkcs11.CKR_MECHANISM_INVALID) {
				t.Logf("key %q: C_WrapKey refused with %v", id, err)
			}
		}
		for _, flip := range []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false)} {
			if err := p.SetAttributeValue(s, k, []*pkcs11.Attribute{flip}); err == nil {
				t.Errorf("key %q: attribute 0x%x could be changed", id, flip.Type)
			}
		}
	}
	if !sawCred {
		t.Fatalf("the credential's key %q is not on the token (%d private keys)", credID, len(keys))
	}
	t.Logf("%d private keys checked (credential + CA): none exportable", len(keys))
}

func isRV(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}
