package portal_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ocsp"

	"github.com/sigillo/sigillo/internal/browsertest"
)

// browser drives a headless Chromium through one holder's journey.
type browser struct {
	*browsertest.Browser
	t *testing.T
	s *stack
}

func newBrowser(t *testing.T, s *stack) *browser {
	t.Helper()
	return &browser{Browser: browsertest.New(t, "portal", 1100, 900), t: t, s: s}
}

func (b *browser) open(path string) { b.Step("open "+path, chromedp.Navigate(b.s.URL+path)) }

func (b *browser) fill(name, value string) {
	b.Step("fill "+name, chromedp.SetValue(chromedp.ID("f-"+name), value))
}

func (b *browser) typeIn(name, value string) {
	b.Step("type "+name, chromedp.SendKeys(chromedp.ID("f-"+name), value))
}

func (b *browser) tick(name string) { b.Step("tick "+name, chromedp.Click(chromedp.ID("f-"+name))) }

// submit clicks the submit button of the form posting to action and waits
// for the next page to load.
func (b *browser) submit(action string) {
	b.t.Helper()
	b.Step("submit "+action,
		chromedp.Evaluate[chromedp.Void]("window.__old = true; undefined"),
		chromedp.Click(chromedp.CSS(`form[action="`+action+`"] button[type=submit]`)),
	)
	b.waitLoad("after submit " + action)
}

// waitLoad waits until the page that replaced the marked one has loaded;
// evaluation errors while the navigation is under way are expected.
func (b *browser) waitLoad(what string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.Context(), 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!window.__old && document.readyState === 'complete'"))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	b.t.Fatalf("browser: %s: page did not load", what)
}

func (b *browser) has(css string) bool {
	b.t.Helper()
	ok, err := chromedp.Run(b.Context(), chromedp.Evaluate[bool](`document.querySelector(`+jsString(css)+`) !== null`))
	if err != nil {
		b.t.Fatal(err)
	}
	return ok
}

func jsString(s string) string { j, _ := json.Marshal(s); return string(j) }

func (b *browser) location() string {
	b.t.Helper()
	l, err := chromedp.Run(b.Context(), chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return l
}

// expectFlash checks the page's success message.
func (b *browser) expectAlert(kind, contains string) {
	b.t.Helper()
	got := b.Text(".alert." + kind)
	if !strings.Contains(got, contains) {
		b.t.Fatalf("alert %s = %q, want it to contain %q (page %s)", kind, got, contains, b.location())
	}
}

// TestBrowser_holderJourney is the holder's whole story in a real browser:
// register, verify the e-mail, request the certificate (an operator
// approves through the API), choose the PIN and sign the contract with an
// SMS code, open the envelope PDF, change the PIN, block it with three
// wrong PINs, unblock it with the PUK, suspend with the ERC on the
// emergency page (OCSP says certificateHold), reactivate, and sign through
// the CSC API.
func TestBrowser_holderJourney(t *testing.T) {
	s := newStack(t)
	b := newBrowser(t, s)
	email, phone := "grace@example.test", "+393339876543"

	// Registration, with the live password policy.
	b.open("/portal/register")
	b.fill("email", email)
	b.typeIn("password", "short")
	b.Step("policy feedback", chromedp.WaitVisible(chromedp.CSS(`#password-rules li.bad`)))
	b.Shot("01-register-policy")
	b.Step("clear password", chromedp.Evaluate[chromedp.Void](`document.getElementById("f-password").value = ""; undefined`))
	b.typeIn("password", testPassword)
	b.Step("policy satisfied", chromedp.WaitNotPresent(chromedp.CSS(`#password-rules li.bad`)))
	b.fill("passwordConfirm", testPassword)
	b.Step("country", chromedp.SetValue(chromedp.ID("f-country"), "IT"))
	b.tick("consentProcessing")
	b.submit("/portal/register")
	userID := b.Text("#new-userid")
	b.Shot("02-registered")

	// Verify the e-mail and log in.
	link := s.verifyLink(email)
	b.Step("verify", chromedp.Navigate(link))
	b.expectAlert("ok", "confirmed")
	b.open("/portal/login")
	b.fill("login", email)
	b.fill("password", testPassword)
	b.Shot("03-login")
	b.submit("/portal/login")
	if !strings.HasSuffix(b.location(), "/portal/home") {
		t.Fatalf("after login at %s", b.location())
	}
	b.Shot("04-home-empty")

	// Certificate request; first with a bad fiscal code.
	b.open("/portal/request")
	b.fill("givenName", "Grace")
	b.fill("surname", "Hopper")
	b.fill("fiscalCode", "RSSMRA80A01H501X")
	b.fill("phone", phone)
	b.Step("method", chromedp.SetValue(chromedp.ID("f-method"), "video-operator"))
	b.Step("doc type", chromedp.SetValue(chromedp.ID("f-docType"), "passport"))
	b.fill("docNumber", "YA1234567")
	b.fill("docExpiry", time.Now().AddDate(2, 0, 0).Format("2006-01-02"))
	b.submit("/portal/request")
	if msg := b.Text("#f-fiscalCode-err"); !strings.Contains(msg, "fiscal code") {
		t.Fatalf("fiscal code error %q", msg)
	}
	b.Shot("05-request-error")
	b.fill("fiscalCode", testFiscal)
	b.submit("/portal/request")
	if !b.has("#request-pending") {
		t.Fatalf("request not pending at %s", b.location())
	}
	s.approvePending()
	b.open("/portal/request")
	if !b.has("#request-approved") {
		t.Fatal("request not approved in the page")
	}
	b.submit("/portal/request/otp")
	b.expectAlert("ok", "SMS")
	b.tick("acceptContract")
	b.tick("acceptPrivacy")
	b.fill("pin", "11223344")
	b.fill("pinConfirm", "11223344")
	b.fill("passphrase", testPassphrase)
	b.fill("passphraseConfirm", testPassphrase)
	b.fill("otp", s.lastSMS(phone))
	b.Shot("06-contract")
	b.submit("/portal/request/complete")
	b.expectAlert("ok", "issued")
	b.Shot("07-home-issued")
	if st := b.Text("#cert-status"); st != "Valid" {
		t.Fatalf("certificate status %q", st)
	}

	// The envelope: AES-256 PDF, opened with the passphrase.
	codes, txt := s.envelopeCodes(email, testPassphrase)
	if strings.Contains(txt, "11223344") {
		t.Fatal("the PIN is printed in the envelope")
	}
	if !strings.Contains(txt, userID) {
		t.Fatalf("envelope lacks the UserID %s", userID)
	}
	creds, err := s.Store.CredentialsByUser(context.Background(), userID)
	if err != nil || len(creds) != 1 {
		t.Fatalf("credentials: %v %d", err, len(creds))
	}
	credID, serial := creds[0].ID, creds[0].CertSerial

	// Change the PIN (current PIN + SMS code).
	b.open("/portal/pin?cred=" + credID)
	b.submit("/portal/otp/send")
	b.expectAlert("ok", "SMS")
	b.fill("currentPIN", "11223344")
	b.fill("newPIN", "55667788")
	b.fill("newPINConfirm", "55667788")
	b.fill("otp", s.lastSMS(phone))
	b.submit("/portal/pin")
	b.expectAlert("ok", "PIN has been changed")

	// Three wrong PINs block it.
	for i := 1; i <= 3; i++ {
		b.open("/portal/pin?cred=" + credID)
		b.fill("currentPIN", "00000000")
		b.fill("newPIN", "12121212")
		b.fill("newPINConfirm", "12121212")
		b.fill("otp", "000000")
		b.submit("/portal/pin")
		msg := b.Text("#f-currentPIN-err")
		want := "PIN is invalid"
		if i == 3 {
			want = "PIN is blocked"
		}
		if !strings.Contains(msg, want) {
			t.Fatalf("wrong PIN #%d: %q, want %q", i, msg, want)
		}
	}
	b.Shot("08-pin-locked")
	b.open("/portal/home")
	if !b.has("#pin-status") {
		t.Fatal("home does not show the PIN blocked")
	}

	// Unblock with the PUK from the envelope.
	b.open("/portal/unblock?cred=" + credID)
	b.submit("/portal/otp/send")
	b.fill("puk", codes["PUK"])
	b.fill("newPIN", "99887766")
	b.fill("newPINConfirm", "99887766")
	b.fill("otp", s.lastSMS(phone))
	b.Shot("09-unblock")
	b.submit("/portal/unblock")
	b.expectAlert("ok", "unblocked")

	// Emergency suspension with IUT + ERC, first with a wrong ERC.
	b.open("/portal/emergency")
	b.fill("iut", codes["IUT"])
	b.fill("erc", "WRONGWRONG23")
	b.submit("/portal/emergency")
	if msg := b.Text("#f-erc-err"); !strings.Contains(msg, "Invalid") {
		t.Fatalf("wrong ERC message %q", msg)
	}
	b.fill("erc", codes["ERC"])
	b.Shot("10-emergency")
	b.submit("/portal/emergency")
	b.expectAlert("ok", "suspended")
	b.Shot("11-emergency-done")
	if got := ocspStatus(t, s, serial); got != "certificateHold" {
		t.Fatalf("OCSP after emergency suspension: %s", got)
	}

	// Reactivate with PIN + OTP.
	b.open("/portal/home")
	if st := b.Text("#cert-status"); st != "Suspended" {
		t.Fatalf("home status %q", st)
	}
	b.open("/portal/reactivate?cred=" + credID)
	b.submit("/portal/otp/send")
	b.fill("pin", "99887766")
	b.fill("otp", s.lastSMS(phone))
	b.submit("/portal/reactivate")
	b.expectAlert("ok", "valid again")
	if got := ocspStatus(t, s, serial); got != "good" {
		t.Fatalf("OCSP after reactivation: %s", got)
	}

	// Sign through the CSC API with the new PIN and an SMS code.
	signCSC(t, s, userID, credID, "99887766", phone)
	b.open("/portal/home")
	if n := b.Text("#count-total"); n != "1" {
		t.Fatalf("signature counter %q", n)
	}
	b.Shot("12-home-after-signature")
	b.open("/portal/history?cred=" + credID)
	b.Shot("13-history")

	// Switch the OTP to an authenticator app with the QR code.
	b.open("/portal/otp?cred=" + credID)
	b.submit("/portal/otp/send")
	sms := s.lastSMS(phone)
	b.submit("/portal/totp/start")
	b.Step("QR code", chromedp.WaitVisible(chromedp.ID("totp-qr")))
	secret := b.Text("#totp-secret")
	code, err := totp.GenerateCode(secret, s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.fill("code", code)
	b.fill("pin", "99887766")
	b.fill("currentOTP", sms)
	b.Shot("15-otp-totp-qr")
	b.submit("/portal/totp")
	b.expectAlert("ok", "authenticator app")

	// Italian pages.
	b.open("/portal/lang?to=it&back=/portal/home")
	if h := b.Text("h1"); h != "Il mio certificato" {
		t.Fatalf("Italian title %q", h)
	}
	b.Shot("14-home-it")
}

// ocspStatus asks the CA's OCSP responder over HTTP.
func ocspStatus(t *testing.T, s *stack, serial string) string {
	t.Helper()
	c, err := s.CA.Get(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	issuer := s.CA.Issuer()
	req, err := ocsp.CreateRequest(c.Cert, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(s.URL+"/ca/ocsp", "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	r, err := ocsp.ParseResponseForCert(der, c.Cert, issuer)
	if err != nil {
		t.Fatalf("OCSP response: %v", err)
	}
	switch r.Status {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		if r.RevocationReason == ocsp.CertificateHold {
			return "certificateHold"
		}
		return "revoked"
	}
	return "unknown"
}

// signCSC signs one hash through CSC v2 (login, getChallenge, authorize
// with PIN + OTP, signHash) and verifies the signature with the
// certificate from credentials/info.
func signCSC(t *testing.T, s *stack, userID, credID, pin, phone string) {
	t.Helper()
	call := func(path, auth string, body any) map[string]any {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/csc/v2"+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		} else {
			req.SetBasicAuth(userID, testPassword)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("CSC %s: %d %s", path, resp.StatusCode, data)
		}
		return m
	}
	auth := "Bearer " + call("/auth/login", "", map[string]any{})["access_token"].(string)
	info := call("/credentials/info", auth, map[string]any{"credentialID": credID, "certificates": "single"})
	der, _ := base64.StdEncoding.DecodeString(info["cert"].(map[string]any)["certificates"].([]any)[0].(string))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	call("/credentials/getChallenge", auth, map[string]any{"credentialID": credID, "authObjectID": "OTP"})
	digest := sha256.Sum256([]byte("a document signed after the self-care journey"))
	h := base64.StdEncoding.EncodeToString(digest[:])
	sad := call("/credentials/authorize", auth, map[string]any{"credentialID": credID, "numSignatures": 1, "hashes": []string{h},
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
		"authData":         []map[string]string{{"id": "PIN", "value": pin}, {"id": "OTP", "value": s.lastSMS(phone)}}})["SAD"].(string)
	sigs := call("/signatures/signHash", auth, map[string]any{"credentialID": credID, "SAD": sad, "hashes": []string{h},
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"})["signatures"].([]any)
	sig, _ := base64.StdEncoding.DecodeString(sigs[0].(string))
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("the CSC signature does not verify with the holder's certificate")
	}
}
