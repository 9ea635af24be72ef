package oauth_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sigillo/sigillo/internal/browsertest"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// newBrowser starts a headless Chromium with a fresh profile;
// screenshots go to test-artifacts/oauth.
func newBrowser(t *testing.T) *browsertest.Browser {
	t.Helper()
	return browsertest.New(t, "oauth", 900, 800)
}

// TestBrowser_codeFlowSignsWithCredentialToken is the whole OAuth2 code
// flow as a CSC client and a holder see it: the client sends the holder
// to authorize (PKCE S256, scope credential, two base64url hashes), the
// holder logs in and, seeing the credential and the documents, gives
// PIN and TOTP in a real browser; the client catches the redirect,
// exchanges the code, and signs with the credential token and no SAD on
// a SoftHSM2 key; the signatures verify against the certificate, and a
// third signature is refused.
func TestBrowser_codeFlowSignsWithCredentialToken(t *testing.T) {
	s := newStack(t, samtest.WithKeys(softhsmtest.New(t).Manager))
	_, cc := s.user("alice", sam.NewCredential{OTP: "totp", SCAL: 2, Multisign: 5, Description: "Qualified signature"})
	cl := s.appClient()
	b := newBrowser(t)
	cb := s.cb.URL("/cb")
	verifier, challenge := pkce("browser")
	d1, d2 := sha256.Sum256([]byte("contract.pdf")), sha256.Sum256([]byte("annex.pdf"))
	q := url.Values{"response_type": {"code"}, "client_id": {cl.ID}, "redirect_uri": {cb}, "scope": {"credential"},
		"state": {"state-xyz"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		"credentialID": {cc.CredentialID}, "numSignatures": {"2"},
		"hashes":           {base64.RawURLEncoding.EncodeToString(d1[:]) + "," + base64.RawURLEncoding.EncodeToString(d2[:])},
		"hashAlgorithmOID": {"2.16.840.1.101.3.4.2.1"}, "description": {"Contract 2026/17 and its annex"}}

	b.Step("open authorize", chromedp.Navigate(s.authorizeURL(q)))
	if got := b.Text("h1"); got != "Sign in" {
		t.Fatalf("first page %q", got)
	}
	if got := b.Text("#client"); !strings.Contains(got, "Signing App") {
		t.Fatalf("client line %q", got)
	}
	b.Step("credentials", chromedp.SendKeys(chromedp.ID("f-username"), "alice"), chromedp.SendKeys(chromedp.ID("f-password"), samtest.Password))
	b.Shot("01-login")
	b.Step("sign in", chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("consent-form")))

	if got := b.Text("#num-signatures"); got != "2" {
		t.Fatalf("numSignatures shown %q", got)
	}
	docs := b.Text("#documents")
	for _, d := range [][32]byte{d1, d2} {
		if !strings.Contains(docs, hex.EncodeToString(d[:])) {
			t.Fatalf("documents %q lack a hash", docs)
		}
	}
	if got := b.Text("#cred-id"); !strings.Contains(got, cc.CredentialID) {
		t.Fatalf("credential shown %q", got)
	}
	// A wrong PIN keeps the holder on the page, with the error.
	b.Step("wrong PIN", chromedp.SendKeys(chromedp.ID("f-pin"), "99999999"), chromedp.SendKeys(chromedp.ID("f-otp"), s.totpCode(cc.OTPURI)),
		chromedp.Click(chromedp.ID("allow")), chromedp.WaitVisible(chromedp.ID("page-error")))
	if got := b.Text("#page-error"); !strings.Contains(got, "PIN is invalid") {
		t.Fatalf("wrong PIN message %q", got)
	}
	b.Shot("02-consent-wrong-pin")
	b.Step("factors", chromedp.SendKeys(chromedp.ID("f-pin"), samtest.PIN), chromedp.SendKeys(chromedp.ID("f-otp"), s.totpCode(cc.OTPURI)))
	b.Shot("03-consent")
	b.Step("authorize", chromedp.Click(chromedp.ID("allow")), chromedp.WaitVisible(chromedp.ID("done")))

	back := s.cb.got()
	if back.Get("state") != "state-xyz" || back.Get("code") == "" {
		t.Fatalf("redirect to the client: %v", back)
	}
	st, tok := s.exchange(cl, back.Get("code"), cb, verifier)
	if st != 200 || tok["token_type"] != "Bearer" || tok["credentialID"] != cc.CredentialID || tok["refresh_token"] != nil {
		t.Fatalf("token: %d %v", st, tok)
	}
	access := tok["access_token"].(string)

	st, info := s.api("/csc/v2/credentials/info", access, map[string]any{"credentialID": cc.CredentialID})
	if st != 200 {
		t.Fatalf("credentials/info: %d %v", st, info)
	}
	der, _ := base64.StdEncoding.DecodeString(info["cert"].(map[string]any)["certificates"].([]any)[0].(string))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(d []byte) (int, map[string]any) {
		return s.api("/csc/v2/signatures/signHash", access, map[string]any{"credentialID": cc.CredentialID,
			"hashes": []string{base64.StdEncoding.EncodeToString(d)}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
			"signAlgo": "1.2.840.10045.4.3.2"})
	}
	for _, d := range [][32]byte{d1, d2} {
		st, m := sign(d[:])
		if st != 200 {
			t.Fatalf("signHash with the credential token: %d %v", st, m)
		}
		sig, _ := base64.StdEncoding.DecodeString(m["signatures"].([]any)[0].(string))
		if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), d[:], sig) {
			t.Fatal("signature does not verify against the certificate")
		}
	}
	st, m := sign(d1[:])
	if st != 400 || m["error"] != "invalid_request" {
		t.Fatalf("signature beyond numSignatures: %d %v", st, m)
	}
	if raw, _ := json.Marshal(m); !strings.Contains(string(raw), "too high") {
		t.Fatalf("signature beyond numSignatures: %s", raw)
	}
}
