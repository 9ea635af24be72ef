package portal_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The forms that the browser journey does not click: suspend, renew,
// change mobile, revoke with its two confirmations, logout.
func TestPages_lifecycleForms(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("lia")
	c := h.c
	ctx := context.Background()
	tok := c.pageToken("/portal/home")
	form := func(path string, kv ...string) (int, string, http.Header) {
		t.Helper()
		v := url.Values{"csrf": {tok}, "cred": {h.credID}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return c.form(path, v)
	}
	done := func(st int, hdr http.Header, what string) {
		t.Helper()
		if st != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "done="+what) {
			t.Fatalf("%s: %d, Location %q", what, st, hdr.Get("Location"))
		}
	}
	cred, _ := s.Store.Credential(ctx, h.credID)

	// Change the mobile number with a code sent to the old one.
	st, _, hdr := form("/portal/otp/send", "back", "/portal/otp")
	if st != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/portal/otp?sent=1") {
		t.Fatalf("send code: %d %q", st, hdr.Get("Location"))
	}
	st, _, hdr = form("/portal/phone", "phone", "+39 333 999 8888", "phoneOTP", s.lastSMS(h.phone))
	done(st, hdr, "phone_changed")
	if u, _ := s.Store.User(ctx, h.userID); u.Phone != "+393339998888" {
		t.Fatalf("phone %q", u.Phone)
	}
	h.phone = "+393339998888"

	// Renew with PIN + OTP.
	form("/portal/otp/send", "back", "/portal/renew")
	st, _, hdr = form("/portal/renew", "pin", h.pin, "otp", s.lastSMS(h.phone))
	done(st, hdr, "renewed")
	renewed, _ := s.Store.Credential(ctx, h.credID)
	if renewed.CertSerial == cred.CertSerial {
		t.Fatal("serial unchanged after renewal")
	}

	// Suspend (one confirmation), then reactivate.
	st, _, hdr = form("/portal/suspend", "confirm", "on")
	done(st, hdr, "suspended")
	if st, _ := s.CA.Status(ctx, renewed.CertSerial); st != "suspended" {
		t.Fatalf("after suspend: %s", st)
	}
	// The offer on the home page follows the state.
	if _, body := c.get("/portal/home"); !strings.Contains(body, "/portal/reactivate?cred=") || strings.Contains(body, "/portal/suspend?cred=") {
		t.Fatal("home does not offer reactivation for a suspended certificate")
	}

	// Revoke: first confirmation shows the second step, which needs the word.
	st, body, _ := form("/portal/revoke", "understand", "on")
	if st != http.StatusOK || !strings.Contains(body, `name="step" value="2"`) {
		t.Fatalf("first confirmation: %d", st)
	}
	if st, _ := s.CA.Status(ctx, renewed.CertSerial); st != "suspended" {
		t.Fatalf("revoked after one confirmation: %s", st)
	}
	st, _, hdr = form("/portal/revoke", "step", "2", "confirm", "REVOKE")
	done(st, hdr, "revoked")
	if st, _ := s.CA.Status(ctx, renewed.CertSerial); st != "revoked" {
		t.Fatalf("after revoke: %s", st)
	}

	// Logout ends the session; the pages send the visitor to the login.
	st, _, hdr = form("/portal/logout")
	if st != http.StatusSeeOther || hdr.Get("Location") != "/portal/login" {
		t.Fatalf("logout: %d %q", st, hdr.Get("Location"))
	}
	if st, _ := c.get("/portal/home"); st != http.StatusSeeOther {
		t.Fatalf("home after logout: %d", st)
	}
}

// Pages answer in Italian when the browser asks for it.
func TestPages_italianFromAcceptLanguage(t *testing.T) {
	s := newStack(t)
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/portal/emergency", nil)
	req.Header.Set("Accept-Language", "it-IT,it;q=0.9,en;q=0.5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, _ = io.Copy(b, resp.Body)
	if !strings.Contains(b.String(), `<html lang="it">`) || !strings.Contains(b.String(), "Sospensione o revoca d&#39;emergenza") {
		t.Fatalf("not Italian:\n%s", b.String()[:600])
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("missing %s", h)
		}
	}
}

// A credential without OTP (automatic signature) changes its PIN with the
// PIN alone; the form does not ask for a code it could never get.
func TestPages_credentialWithoutOTP(t *testing.T) {
	s := newStack(t)
	if st, m := s.admin(http.MethodPost, "/users", map[string]any{"username": "batch-user", "password": testPassword, "email": "b@example.test",
		"phone": "+393331112222", "givenName": "Bo", "surname": "Batch", "fiscalCode": testFiscal}); st != http.StatusCreated {
		t.Fatalf("user: %d %v", st, m)
	}
	st, m := s.admin(http.MethodPost, "/credentials", map[string]any{"userID": "batch-user", "pin": "10203040", "keyAlgo": "ecdsa-p256",
		"otp": "none", "domain": "acme.example", "alias": "RSSMRA80A01H501U"})
	if st != http.StatusCreated {
		t.Fatalf("credential: %d %v", st, m)
	}
	credID := m["credentialID"].(string)
	c := s.newClient()
	tok := c.pageToken("/portal/login")
	if st, _, hdr := c.form("/portal/login", url.Values{"csrf": {tok}, "login": {"batch-user"}, "password": {testPassword}}); st != http.StatusSeeOther || hdr.Get("Location") != "/portal/home" {
		t.Fatalf("login: %d %q", st, hdr.Get("Location"))
	}
	_, body := c.get("/portal/pin?cred=" + credID)
	if strings.Contains(body, `id="f-otp"`) || strings.Contains(body, "/portal/otp/send") {
		t.Fatal("the PIN form asks for an OTP the credential does not have")
	}
	tok = c.pageToken("/portal/home")
	st, _, hdr := c.form("/portal/pin", url.Values{"csrf": {tok}, "cred": {credID}, "currentPIN": {"10203040"}, "newPIN": {"50607080"}, "newPINConfirm": {"50607080"}})
	if st != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "done=pin_changed") {
		t.Fatalf("change PIN: %d %q", st, hdr.Get("Location"))
	}
}

// TestResendVerificationLink: over the JSON API and the page, a holder who
// never confirmed gets a new link that works; an unknown address gets the
// same answer and no mail; a malformed one a field error.
func TestResendVerificationLink(t *testing.T) {
	s := newStack(t)
	c := s.newClient()
	c.must(http.MethodPost, "/register", map[string]any{"email": "ugo@example.test", "password": testPassword, "passwordConfirm": testPassword,
		"country": "IT", "consentProcessing": true})
	if n := len(s.emails("ugo@example.test")); n != 1 {
		t.Fatalf("%d mails after registering", n)
	}
	for _, addr := range []string{"ugo@example.test", "nobody@example.test"} {
		st, m := c.api(http.MethodPost, "/verify/resend", map[string]any{"email": addr})
		if st != http.StatusAccepted || !strings.Contains(fmt.Sprint(m["status"]), "If this address belongs") {
			t.Fatalf("resend for %s: %d %v", addr, st, m)
		}
	}
	if n := len(s.emails("ugo@example.test")); n != 2 {
		t.Fatalf("%d mails after asking for a new link, want 2", n)
	}
	if n := len(s.emails("nobody@example.test")); n != 0 {
		t.Fatalf("a mail went to an unknown address")
	}
	if st, m := c.api(http.MethodPost, "/verify/resend", map[string]any{"email": "ugo at example"}); st != http.StatusBadRequest {
		t.Fatalf("malformed address: %d %v", st, m)
	}

	// The page: the login page links to it; the form answers the same way.
	if _, body := c.get("/portal/login"); !strings.Contains(body, `href="/portal/verify/resend"`) {
		t.Fatal("the login page does not offer a new link")
	}
	tok := c.pageToken("/portal/verify/resend")
	st, body, _ := c.form("/portal/verify/resend", url.Values{"csrf": {tok}, "email": {"ugo@example.test"}})
	if st != http.StatusOK || !strings.Contains(body, "a new link is on its way") {
		t.Fatalf("resend page: %d %.400s", st, body)
	}
	if n := len(s.emails("ugo@example.test")); n != 3 {
		t.Fatalf("%d mails after the page's request, want 3", n)
	}
	// Only the newest link confirms (the clock is real: the newest is the
	// one with the latest time, or the only one that still works).
	worked := 0
	for _, m := range s.emails("ugo@example.test") {
		l := reLink.FindString(m.Body)
		u, _ := url.Parse(l)
		if st, _ := c.api(http.MethodPost, "/verify", map[string]any{"token": u.Query().Get("token")}); st == http.StatusOK {
			worked++
		}
	}
	if worked != 1 {
		t.Fatalf("%d of the three links confirmed the address, want exactly the newest", worked)
	}
}

// TestPages_newEnvelope: the home page offers a new envelope; the form
// with the PIN, the SMS code and a new passphrase mails it and says so.
func TestPages_newEnvelope(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("ivo")
	c := h.c
	if _, body := c.get("/portal/home"); !strings.Contains(body, `href="/portal/envelope?cred=`+h.credID+`"`) {
		t.Fatal("the home page does not offer a new envelope")
	}
	tok := c.pageToken("/portal/envelope?cred=" + h.credID)
	st, body, _ := c.form("/portal/envelope", url.Values{"csrf": {tok}, "cred": {h.credID}, "pin": {h.pin}, "otp": {h.sendOTP(s)},
		"passphrase": {"page passphrase"}, "passphraseConfirm": {"another one"}})
	if st != http.StatusBadRequest || !strings.Contains(body, "aria-invalid") {
		t.Fatalf("mismatched passphrases: %d", st)
	}
	st, _, hdr := c.form("/portal/envelope", url.Values{"csrf": {tok}, "cred": {h.credID}, "pin": {h.pin}, "otp": {h.sendOTP(s)},
		"passphrase": {"page passphrase"}, "passphraseConfirm": {"page passphrase"}})
	if st != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "done=new_envelope") {
		t.Fatalf("new envelope: %d %q", st, hdr.Get("Location"))
	}
	if _, body := c.get(hdr.Get("Location")); !strings.Contains(body, "A new envelope with your new PUK and ERC") {
		t.Fatal("no notice on the home page")
	}
	codes, _ := s.envelopeCodes(h.email, "page passphrase")
	if codes["PUK"] == h.codes["PUK"] || codes["ERC"] == h.codes["ERC"] {
		t.Fatalf("the new envelope has the old codes: %v", codes)
	}
}
