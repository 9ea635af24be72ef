package portal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func TestAPI_enrollThenSelfCareLifecycle(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("ada")
	c := h.c
	ctx := context.Background()

	// Change PIN with the current PIN and an SMS code.
	code := h.sendOTP(s)
	c.must(http.MethodPost, "/credentials/"+h.credID+"/pin", map[string]any{"currentPIN": h.pin, "newPIN": "13572468", "newPINConfirm": "13572468", "otp": code})
	h.pin = "13572468"

	// Emergency suspension with the envelope's IUT and ERC.
	anon := s.newClient()
	anon.must(http.MethodPost, "/emergency", map[string]any{"iut": h.codes["IUT"], "erc": h.codes["ERC"], "action": "suspend"})
	cred, err := s.Store.Credential(ctx, h.credID)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s.CA.Status(ctx, cred.CertSerial); st != "suspended" {
		t.Fatalf("after emergency suspend: %s", st)
	}
	// Relying parties see it at once: OCSP, CRL and CSC credentials/info.
	if got := ocspStatus(t, s, cred.CertSerial); got != "certificateHold" {
		t.Fatalf("OCSP: %s", got)
	}
	if reason := crlReason(t, s, cred.CertSerial); reason != 6 {
		t.Fatalf("CRL reason %d, want certificateHold (6)", reason)
	}
	if st := cscCertStatus(t, s, h.userID, h.credID); st != "suspended" {
		t.Fatalf("CSC credentials/info cert status %q", st)
	}
	// Reactivate with PIN + OTP.
	code = h.sendOTP(s)
	c.must(http.MethodPost, "/credentials/"+h.credID+"/reactivate", map[string]any{"pin": h.pin, "otp": code})
	if st, _ := s.CA.Status(ctx, cred.CertSerial); st != "valid" {
		t.Fatalf("after reactivate: %s", st)
	}
	m := c.must(http.MethodGet, "/me", nil)
	if creds := m["credentials"].([]any); len(creds) != 1 || creds[0].(map[string]any)["certStatus"] != "valid" {
		t.Fatalf("me: %v", m)
	}
}

// An operator-created holder (automatic-signature style, "issued, not
// activated" credential) logs in with the temporary password, must set a
// new one before anything else, then activates with PUK + OTP.
func TestAPI_firstAccessWithTemporaryPasswordAndPUK(t *testing.T) {
	s := newStack(t)
	st, m := s.admin(http.MethodPost, "/users", map[string]any{"username": "op-user", "password": "Temp-Pass-123", "email": "op@example.test",
		"phone": "+393331110000", "givenName": "Olga", "surname": "Operated", "fiscalCode": testFiscal, "temporary": true})
	if st != http.StatusCreated {
		t.Fatalf("create user: %d %v", st, m)
	}
	st, m = s.admin(http.MethodPost, "/credentials", map[string]any{"userID": "op-user", "activation": "puk", "keyAlgo": "ecdsa-p256", "otp": "sms"})
	if st != http.StatusCreated {
		t.Fatalf("create credential: %d %v", st, m)
	}
	credID, puk := m["credentialID"].(string), m["puk"].(string)
	c := s.newClient()
	m = c.must(http.MethodPost, "/login", map[string]any{"login": "op-user", "password": "Temp-Pass-123"})
	if m["mustChangePassword"] != true {
		t.Fatalf("temporary password not flagged: %v", m)
	}
	c.csrf = m["csrfToken"].(string)
	if st, m := c.api(http.MethodGet, "/me", nil); st != http.StatusForbidden || m["error"] != "password_change_required" {
		t.Fatalf("before the password change: %d %v", st, m)
	}
	// The page redirects to the password form.
	if st, _ := c.get("/portal/home"); st != http.StatusSeeOther {
		t.Fatalf("home before the password change: %d", st)
	}
	c.must(http.MethodPost, "/password", map[string]any{"currentPassword": "Temp-Pass-123", "newPassword": "Brand-New-Pass-9", "newPasswordConfirm": "Brand-New-Pass-9"})
	m = c.must(http.MethodGet, "/me", nil)
	cred := m["credentials"].([]any)[0].(map[string]any)
	if cred["activated"] != false {
		t.Fatalf("credential %v", cred)
	}
	c.must(http.MethodPost, "/credentials/"+credID+"/otp", nil)
	c.must(http.MethodPost, "/credentials/"+credID+"/activate", map[string]any{"puk": puk, "newPIN": "97531864", "newPINConfirm": "97531864", "otp": s.lastSMS("+393331110000")})
	m = c.must(http.MethodGet, "/me", nil)
	if cred := m["credentials"].([]any)[0].(map[string]any); cred["activated"] != true {
		t.Fatalf("after activation: %v", cred)
	}
	// CSC login works now with the new password.
	tok, err := s.SAM.Login(context.Background(), "op-user", "Brand-New-Pass-9", false)
	if err != nil {
		t.Fatalf("CSC login after first access: %v", err)
	}
	// Apps use the bearer token instead of the cookie (no CSRF needed).
	app := s.newClient()
	st, m = app.api(http.MethodGet, "/me", nil, "Authorization", "Bearer "+tok.AccessToken)
	if st != http.StatusOK || m["userID"] != "op-user" {
		t.Fatalf("bearer: %d %v", st, m)
	}
}

func TestAPI_passwordOlderThan180DaysForcesAChange(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("old")
	s.Clock.Advance(181 * 24 * time.Hour)
	c := s.newClient()
	m := c.must(http.MethodPost, "/login", map[string]any{"login": h.email, "password": testPassword})
	if m["mustChangePassword"] != true {
		t.Fatalf("expired password not flagged: %v", m)
	}
	c.csrf = m["csrfToken"].(string)
	if st, _ := c.api(http.MethodPost, "/credentials/"+h.credID+"/suspend", nil); st != http.StatusForbidden {
		t.Fatalf("suspend with an expired password: %d", st)
	}
	c.must(http.MethodPost, "/password", map[string]any{"currentPassword": testPassword, "newPassword": "Next-Pass-2027", "newPasswordConfirm": "Next-Pass-2027"})
	c.must(http.MethodGet, "/me", nil)
}

func TestAPI_renewRevokeHistoryAndLogout(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("rex")
	c := h.c
	ctx := context.Background()
	old, _ := s.Store.Credential(ctx, h.credID)
	m := c.must(http.MethodPost, "/credentials/"+h.credID+"/renew", map[string]any{"pin": h.pin, "otp": h.sendOTP(s)})
	serial := m["serialNumber"].(string)
	if serial == "" || serial == old.CertSerial {
		t.Fatalf("renewal serial %q (old %s)", serial, old.CertSerial)
	}
	if st, _ := s.CA.Status(ctx, old.CertSerial); st != "revoked" {
		t.Fatalf("old certificate after renewal: %s", st)
	}
	m = c.must(http.MethodGet, "/credentials", nil)
	if got := m["credentials"].([]any)[0].(map[string]any)["serialNumber"]; got != serial {
		t.Fatalf("credential serial %v, want %s", got, serial)
	}
	// Suspend then revoke (revocation from suspended is allowed and final).
	c.must(http.MethodPost, "/credentials/"+h.credID+"/suspend", nil)
	if st, _ := s.CA.Status(ctx, serial); st != "suspended" {
		t.Fatalf("after suspend: %s", st)
	}
	c.must(http.MethodPost, "/credentials/"+h.credID+"/revoke", map[string]any{"confirm": "REVOKE"})
	if st, _ := s.CA.Status(ctx, serial); st != "revoked" {
		t.Fatalf("after revoke: %s", st)
	}
	if st, m := c.api(http.MethodPost, "/credentials/"+h.credID+"/reactivate", map[string]any{"pin": h.pin, "otp": "123456"}); st/100 == 2 {
		t.Fatalf("reactivated a revoked certificate: %v", m)
	}
	m = c.must(http.MethodGet, "/credentials/"+h.credID+"/history?size=5", nil)
	if _, ok := m["entries"].([]any); !ok {
		t.Fatalf("history %v", m)
	}
	// Logout ends the session everywhere (it is in the store).
	if st, _ := c.api(http.MethodPost, "/logout", nil); st != http.StatusNoContent {
		t.Fatalf("logout: %d", st)
	}
	if st, _ := c.api(http.MethodGet, "/me", nil); st != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", st)
	}
}

func TestAPI_sessionCookieIsHttpOnlyLaxAndStoredHashed(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("kim")
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/selfcare/v1/login", strings.NewReader(`{"login":"`+h.email+`","password":"`+testPassword+`"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, x := range resp.Cookies() {
		if x.Name == "sigillo_session" {
			ck = x
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure || ck.Path != "/" {
		t.Fatalf("session cookie %+v", ck)
	}
	sum := sha256.Sum256([]byte(ck.Value))
	if _, err := s.Store.Session(context.Background(), ck.Value, time.Now()); err == nil {
		t.Fatal("session stored under its clear value")
	}
	if _, err := s.Store.Session(context.Background(), hex.EncodeToString(sum[:]), time.Now()); err != nil {
		t.Fatalf("session not stored hashed: %v", err)
	}
	// Under TLS the cookie is Secure too.
	treq := httptest.NewRequest(http.MethodPost, "/selfcare/v1/login", strings.NewReader(`{"login":"`+h.email+`","password":"`+testPassword+`"}`))
	treq.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, treq)
	if sc := rec.Header().Get("Set-Cookie"); rec.Code != http.StatusOK || !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") {
		t.Fatalf("TLS login: %d, Set-Cookie %q", rec.Code, sc)
	}
	// Expired sessions stop working.
	s.Clock.Advance(31 * time.Minute)
	if st, _ := h.c.api(http.MethodGet, "/me", nil); st != http.StatusUnauthorized {
		t.Fatalf("after the session TTL: %d", st)
	}
}

func TestAPI_enrollAuthenticatorAppWithQRCode(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("tom")
	c := h.c
	m := c.must(http.MethodPost, "/credentials/"+h.credID+"/totp/start", nil)
	png, err := base64.StdEncoding.DecodeString(m["qrPNG"].(string))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	secret, pending := m["secret"].(string), m["pending"].(string)
	if !strings.HasPrefix(m["uri"].(string), "otpauth://totp/") {
		t.Fatalf("uri %v", m["uri"])
	}
	code, err := totp.GenerateCode(secret, s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body map[string]any
		want int
	}{
		{"tampered enrollment", map[string]any{"pending": pending[:len(pending)-4] + "AAAA", "pin": h.pin, "otp": "123456", "code": code}, 400},
		{"wrong app code", map[string]any{"pending": pending, "pin": h.pin, "otp": h.sendOTP(s), "code": "000000"}, 400},
		{"no PIN", map[string]any{"pending": pending, "otp": "123456", "code": code}, 400},
	}
	for _, tc := range tests {
		if st, m := c.api(http.MethodPost, "/credentials/"+h.credID+"/totp", tc.body); st != tc.want {
			t.Fatalf("%s: %d %v", tc.name, st, m)
		}
	}
	if cr, _ := s.Store.Credential(context.Background(), h.credID); cr.OTPType != "sms" {
		t.Fatalf("refused enrollments switched the OTP to %s", cr.OTPType)
	}
	c.must(http.MethodPost, "/credentials/"+h.credID+"/totp", map[string]any{"pending": pending, "pin": h.pin, "otp": h.sendOTP(s), "code": code})
	if cr, _ := s.Store.Credential(context.Background(), h.credID); cr.OTPType != "totp" {
		t.Fatalf("OTP type %s after enrollment", cr.OTPType)
	}
	// The app's codes now work (test page), SMS codes do not.
	s.Clock.Advance(30 * time.Second)
	next, _ := totp.GenerateCode(secret, s.Clock.Now())
	c.must(http.MethodPost, "/credentials/"+h.credID+"/otp/test", map[string]any{"otp": next})
	if st, _ := c.api(http.MethodPost, "/credentials/"+h.credID+"/otp", nil); st != http.StatusBadRequest {
		t.Fatalf("SMS after switching to the app: %d", st)
	}
	// An enrollment older than its TTL is refused.
	m = c.must(http.MethodPost, "/credentials/"+h.credID+"/totp/start", nil)
	s.Clock.Advance(11 * time.Minute)
	late, _ := totp.GenerateCode(m["secret"].(string), s.Clock.Now())
	cur, _ := totp.GenerateCode(secret, s.Clock.Now())
	if st, m := c.api(http.MethodPost, "/credentials/"+h.credID+"/totp", map[string]any{"pending": m["pending"], "pin": h.pin, "otp": cur, "code": late}); st != 400 {
		t.Fatalf("stale enrollment: %d %v", st, m)
	}
}

// crlReason fetches the issuing CA's CRL and returns the reason code of
// serial's entry (-1 when it is not listed).
func crlReason(t *testing.T, s *stack, serial string) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/ca/crl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("CRL: %v", err)
	}
	if err := crl.CheckSignatureFrom(s.CA.Issuer()); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Text(16) == serial {
			return e.ReasonCode
		}
	}
	return -1
}

// cscCertStatus reads cert.status from CSC v2 credentials/info.
func cscCertStatus(t *testing.T, s *stack, userID, credID string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/csc/v2/auth/login", strings.NewReader(`{}`))
	req.SetBasicAuth(userID, testPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var login map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	tok, _ := login["access_token"].(string)
	req, _ = http.NewRequest(http.MethodPost, s.URL+"/csc/v2/credentials/info", strings.NewReader(`{"credentialID":"`+credID+`"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&info)
	cert, _ := info["cert"].(map[string]any)
	st, _ := cert["status"].(string)
	return st
}

// TestAPI_newEnvelopeReplacesPUKAndERC: a holder who lost the envelope
// gets a new one with the PIN and an SMS code: new PUK and ERC under the
// passphrase given now, mailed; the old PUK and ERC stop working, the new
// ones work. A wrong PIN or a missing passphrase changes nothing.
func TestAPI_newEnvelopeReplacesPUKAndERC(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("nina")
	c := h.c
	old := h.codes
	path := "/credentials/" + h.credID + "/envelope"
	mails := func() int { return len(s.emails(h.email)) }
	before := mails()

	if st, m := c.api(http.MethodPost, path, map[string]any{"pin": h.pin, "otp": h.sendOTP(s)}); st != http.StatusBadRequest {
		t.Fatalf("without a passphrase: %d %v", st, m)
	}
	if st, m := c.api(http.MethodPost, path, map[string]any{"pin": "11223344", "otp": h.sendOTP(s), "passphrase": "a new passphrase",
		"passphraseConfirm": "a new passphrase"}); st != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m), "PIN") {
		t.Fatalf("wrong PIN: %d %v", st, m)
	}
	if mails() != before {
		t.Fatal("a refused request mailed an envelope")
	}

	m := c.must(http.MethodPost, path, map[string]any{"pin": h.pin, "otp": h.sendOTP(s), "passphrase": "a new passphrase",
		"passphraseConfirm": "a new passphrase"})
	codes, text := s.envelopeCodes(h.email, "a new passphrase")
	if codes["envelope"] != m["envelopeNumber"] || codes["IUT"] != old["IUT"] || codes["PUK"] == old["PUK"] || codes["ERC"] == old["ERC"] {
		t.Fatalf("new envelope %v (answer %v), old codes %v\n%s", codes, m, old, text)
	}

	// The old PUK no longer unblocks; the new one does.
	unblock := func(puk string) (int, map[string]any) {
		return c.api(http.MethodPost, "/credentials/"+h.credID+"/unblock", map[string]any{"puk": puk, "newPIN": "86427531",
			"newPINConfirm": "86427531", "otp": h.sendOTP(s)})
	}
	if st, m := unblock(old["PUK"]); st != http.StatusBadRequest {
		t.Fatalf("old PUK: %d %v", st, m)
	}
	if st, m := unblock(codes["PUK"]); st != http.StatusOK {
		t.Fatalf("new PUK: %d %v", st, m)
	}
	// The old ERC no longer suspends; the new one does.
	anon := s.newClient()
	if st, m := anon.api(http.MethodPost, "/emergency", map[string]any{"iut": old["IUT"], "erc": old["ERC"], "action": "suspend"}); st != http.StatusForbidden {
		t.Fatalf("old ERC: %d %v", st, m)
	}
	anon.must(http.MethodPost, "/emergency", map[string]any{"iut": codes["IUT"], "erc": codes["ERC"], "action": "suspend"})
}
