package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/store"
)

// snapshot is the state a bad request must not change.
type snapshot struct {
	cred     store.Credential
	user     store.User
	requests int
	status   string
}

func (s *stack) snapshot(t *testing.T, h *holder) snapshot {
	t.Helper()
	ctx := context.Background()
	c, err := s.Store.Credential(ctx, h.credID)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Store.User(ctx, h.userID)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.Store.CertRequests(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.CA.Status(ctx, c.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{cred: *c, user: *u, requests: len(rs), status: string(st)}
}

var long = strings.Repeat("x", 300)

func TestAPI_badInputsAnswer400AndChangeNothing(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("bea")
	before := s.snapshot(t, h)
	cred := "/credentials/" + h.credID
	noCSRF := []string{"X-CSRF-Token", ""}
	future := time.Now().AddDate(1, 0, 0).Format("2006-01-02")
	okRequest := map[string]any{"givenName": "Bea", "surname": "Rossi", "fiscalCode": testFiscal, "phone": "+393330000999",
		"method": "cie", "docType": "passport", "docNumber": "YA1234567", "docCountry": "IT", "docExpiry": future}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range okRequest {
			m[a] = b
		}
		m[k] = v
		return m
	}
	anon := s.newClient()
	tests := []struct {
		name    string
		c       *client
		method  string
		path    string
		body    any
		hdr     []string
		status  int
		field   string // the field the error names ("" = none expected)
		errCode string
	}{
		{"register: empty body", anon, "POST", "/register", "", nil, 400, "", "invalid_request"},
		{"register: not JSON", anon, "POST", "/register", "email=x", nil, 400, "", "invalid_request"},
		{"register: empty e-mail", anon, "POST", "/register", map[string]any{"password": testPassword, "passwordConfirm": testPassword, "country": "IT", "consentProcessing": true}, nil, 400, "email", ""},
		{"register: e-mail too long", anon, "POST", "/register", map[string]any{"email": long + "@example.test", "password": testPassword, "passwordConfirm": testPassword, "country": "IT", "consentProcessing": true}, nil, 400, "email", ""},
		{"register: e-mail wrong format", anon, "POST", "/register", map[string]any{"email": "not-an-email", "password": testPassword, "passwordConfirm": testPassword, "country": "IT", "consentProcessing": true}, nil, 400, "email", ""},
		{"register: e-mail taken", anon, "POST", "/register", map[string]any{"email": h.email, "password": testPassword, "passwordConfirm": testPassword, "country": "IT", "consentProcessing": true}, nil, 400, "email", ""},
		{"register: weak password", anon, "POST", "/register", map[string]any{"email": "new1@example.test", "password": "password", "passwordConfirm": "password", "country": "IT", "consentProcessing": true}, nil, 400, "password", ""},
		{"register: password too long", anon, "POST", "/register", map[string]any{"email": "new1@example.test", "password": "Aa1!" + long, "passwordConfirm": "Aa1!" + long, "country": "IT", "consentProcessing": true}, nil, 400, "password", ""},
		{"register: confirmation differs", anon, "POST", "/register", map[string]any{"email": "new1@example.test", "password": testPassword, "passwordConfirm": testPassword + "x", "country": "IT", "consentProcessing": true}, nil, 400, "passwordConfirm", ""},
		{"register: unknown country", anon, "POST", "/register", map[string]any{"email": "new1@example.test", "password": testPassword, "passwordConfirm": testPassword, "country": "XX", "consentProcessing": true}, nil, 400, "country", ""},
		{"register: no consent", anon, "POST", "/register", map[string]any{"email": "new1@example.test", "password": testPassword, "passwordConfirm": testPassword, "country": "IT"}, nil, 400, "consentProcessing", ""},
		{"register: wrong type", anon, "POST", "/register", `{"email":42}`, nil, 400, "", "invalid_request"},
		{"verify: empty token", anon, "POST", "/verify", map[string]any{"token": ""}, nil, 400, "", "invalid_request"},
		{"verify: unknown token", anon, "POST", "/verify", map[string]any{"token": "abcdef"}, nil, 400, "", "invalid_request"},
		{"resend: empty body", anon, "POST", "/verify/resend", "", nil, 400, "", "invalid_request"},
		{"resend: not JSON", anon, "POST", "/verify/resend", "email=x", nil, 400, "", "invalid_request"},
		{"resend: empty e-mail", anon, "POST", "/verify/resend", map[string]any{"email": ""}, nil, 400, "email", ""},
		{"resend: not an e-mail", anon, "POST", "/verify/resend", map[string]any{"email": "nobody"}, nil, 400, "email", ""},
		{"resend: e-mail too long", anon, "POST", "/verify/resend", map[string]any{"email": long + "@example.test"}, nil, 400, "email", ""},
		{"resend: e-mail not a string", anon, "POST", "/verify/resend", map[string]any{"email": 7}, nil, 400, "", "invalid_request"},
		{"login: empty", anon, "POST", "/login", map[string]any{}, nil, 400, "login", ""},
		{"login: too long", anon, "POST", "/login", map[string]any{"login": long, "password": "x"}, nil, 400, "login", ""},
		{"login: wrong password", anon, "POST", "/login", map[string]any{"login": h.email, "password": "Wrong-Pass-1"}, nil, 400, "", "authentication_error"},
		{"me: no session", anon, "GET", "/me", nil, nil, 401, "", "invalid_token"},
		{"me: garbage bearer", anon, "GET", "/me", nil, []string{"Authorization", "Bearer nope"}, 401, "", "invalid_token"},
		{"me: malformed bearer", anon, "GET", "/me", nil, []string{"Authorization", "Basic abc"}, 400, "", "invalid_request"},
		{"password: CSRF missing", h.c, "POST", "/password", map[string]any{"currentPassword": testPassword, "newPassword": "Other-Pass-77", "newPasswordConfirm": "Other-Pass-77"}, noCSRF, 403, "", "csrf"},
		{"password: CSRF wrong", h.c, "POST", "/password", map[string]any{"currentPassword": testPassword, "newPassword": "Other-Pass-77", "newPasswordConfirm": "Other-Pass-77"}, []string{"X-CSRF-Token", "nope"}, 403, "", "csrf"},
		{"password: empty", h.c, "POST", "/password", map[string]any{}, nil, 400, "currentPassword", ""},
		{"password: weak new", h.c, "POST", "/password", map[string]any{"currentPassword": testPassword, "newPassword": "abc", "newPasswordConfirm": "abc"}, nil, 400, "newPassword", ""},
		{"password: confirmation differs", h.c, "POST", "/password", map[string]any{"currentPassword": testPassword, "newPassword": "Other-Pass-77", "newPasswordConfirm": "Other-Pass-78"}, nil, 400, "newPasswordConfirm", ""},
		{"password: wrong current", h.c, "POST", "/password", map[string]any{"currentPassword": "Wrong-Pass-1", "newPassword": "Other-Pass-77", "newPasswordConfirm": "Other-Pass-77"}, nil, 400, "", "authentication_error"},
		{"pin: CSRF missing", h.c, "POST", cred + "/pin", map[string]any{"currentPIN": h.pin, "newPIN": "11112222", "newPINConfirm": "11112222", "otp": "123456"}, noCSRF, 403, "", "csrf"},
		{"pin: empty", h.c, "POST", cred + "/pin", map[string]any{}, nil, 400, "currentPIN", ""},
		{"pin: letters", h.c, "POST", cred + "/pin", map[string]any{"currentPIN": h.pin, "newPIN": "abcdefgh", "newPINConfirm": "abcdefgh", "otp": "123456"}, nil, 400, "newPIN", ""},
		{"pin: too long", h.c, "POST", cred + "/pin", map[string]any{"currentPIN": h.pin, "newPIN": long, "newPINConfirm": long, "otp": "123456"}, nil, 400, "newPIN", ""},
		{"pin: confirmation differs", h.c, "POST", cred + "/pin", map[string]any{"currentPIN": h.pin, "newPIN": "11112222", "newPINConfirm": "11112223", "otp": "123456"}, nil, 400, "newPINConfirm", ""},
		{"pin: OTP wrong format", h.c, "POST", cred + "/pin", map[string]any{"currentPIN": h.pin, "newPIN": "11112222", "newPINConfirm": "11112222", "otp": "12ab"}, nil, 400, "otp", ""},
		{"pin: unknown credential", h.c, "POST", "/credentials/c-nope/pin", map[string]any{"currentPIN": h.pin, "newPIN": "11112222", "newPINConfirm": "11112222", "otp": "123456"}, nil, 404, "", "not_found"},
		{"pin: credential id with bad characters", h.c, "POST", "/credentials/%3Cx%3E/pin", map[string]any{"currentPIN": h.pin, "newPIN": "11112222", "newPINConfirm": "11112222", "otp": "123456"}, nil, 400, "credentialID", ""},
		{"unblock: PUK wrong format", h.c, "POST", cred + "/unblock", map[string]any{"puk": "12", "newPIN": "11112222", "newPINConfirm": "11112222", "otp": "123456"}, nil, 400, "puk", ""},
		{"activate: empty", h.c, "POST", cred + "/activate", map[string]any{}, nil, 400, "puk", ""},
		{"envelope: CSRF missing", h.c, "POST", cred + "/envelope", map[string]any{"pin": h.pin, "otp": "123456", "passphrase": "long enough", "passphraseConfirm": "long enough"}, noCSRF, 403, "", "csrf"},
		{"envelope: empty", h.c, "POST", cred + "/envelope", map[string]any{}, nil, 400, "pin", ""},
		{"envelope: PIN letters", h.c, "POST", cred + "/envelope", map[string]any{"pin": "abcdefgh", "otp": "123456", "passphrase": "long enough", "passphraseConfirm": "long enough"}, nil, 400, "pin", ""},
		{"envelope: passphrase short", h.c, "POST", cred + "/envelope", map[string]any{"pin": h.pin, "otp": "123456", "passphrase": "short", "passphraseConfirm": "short"}, nil, 400, "passphrase", ""},
		{"envelope: passphrases differ", h.c, "POST", cred + "/envelope", map[string]any{"pin": h.pin, "otp": "123456", "passphrase": "long enough", "passphraseConfirm": "long enougH"}, nil, 400, "passphraseConfirm", ""},
		{"envelope: passphrase too long", h.c, "POST", cred + "/envelope", map[string]any{"pin": h.pin, "otp": "123456", "passphrase": long, "passphraseConfirm": long}, nil, 400, "passphrase", ""},
		{"reactivate: empty", h.c, "POST", cred + "/reactivate", map[string]any{}, nil, 400, "pin", ""},
		{"renew: PIN wrong format", h.c, "POST", cred + "/renew", map[string]any{"pin": "1", "otp": "123456"}, nil, 400, "pin", ""},
		{"revoke: not confirmed", h.c, "POST", cred + "/revoke", map[string]any{}, nil, 400, "confirm", ""},
		{"revoke: CSRF missing", h.c, "POST", cred + "/revoke", map[string]any{"confirm": "REVOKE"}, noCSRF, 403, "", "csrf"},
		{"suspend: CSRF missing", h.c, "POST", cred + "/suspend", nil, noCSRF, 403, "", "csrf"},
		{"phone: bad number", h.c, "POST", cred + "/phone", map[string]any{"phone": "12", "otp": "123456"}, nil, 400, "phone", ""},
		{"history: negative page", h.c, "GET", cred + "/history?page=-1", nil, nil, 400, "", "invalid_request"},
		{"history: page size too big", h.c, "GET", cred + "/history?size=1000", nil, nil, 400, "", "invalid_request"},
		{"emergency: empty", anon, "POST", "/emergency", map[string]any{}, nil, 400, "iut", ""},
		{"emergency: bad action", anon, "POST", "/emergency", map[string]any{"iut": h.codes["IUT"], "erc": h.codes["ERC"], "action": "delete"}, nil, 400, "action", ""},
		{"emergency: IUT too long", anon, "POST", "/emergency", map[string]any{"iut": long, "erc": h.codes["ERC"], "action": "suspend"}, nil, 400, "iut", ""},
		{"emergency: wrong ERC", anon, "POST", "/emergency", map[string]any{"iut": h.codes["IUT"], "erc": "WRONGWRONG23", "action": "revoke"}, nil, 403, "", "access_denied"},
		{"emergency: unknown IUT", anon, "POST", "/emergency", map[string]any{"iut": "ZZZZZZZZZZ", "erc": h.codes["ERC"], "action": "suspend"}, nil, 403, "", "access_denied"},
		{"emergency: other holder's user id", anon, "POST", "/emergency", map[string]any{"iut": "nobody", "erc": h.codes["ERC"], "action": "suspend"}, nil, 403, "", "access_denied"},
		{"request: empty", h.c, "POST", "/request", map[string]any{}, nil, 400, "givenName", ""},
		{"request: bad fiscal code", h.c, "POST", "/request", with("fiscalCode", "RSSMRA80A01H501X"), nil, 400, "fiscalCode", ""},
		{"request: bad phone", h.c, "POST", "/request", with("phone", "3330000"), nil, 400, "phone", ""},
		{"request: expired document", h.c, "POST", "/request", with("docExpiry", "2001-01-01"), nil, 400, "docExpiry", ""},
		{"request: date wrong format", h.c, "POST", "/request", with("docExpiry", "01/01/2030"), nil, 400, "docExpiry", ""},
		{"request: unknown method", h.c, "POST", "/request", with("method", "telepathy"), nil, 400, "method", ""},
		{"request: name too long", h.c, "POST", "/request", with("givenName", long), nil, 400, "givenName", ""},
		{"request: document number with symbols", h.c, "POST", "/request", with("docNumber", "AB<script>"), nil, 400, "docNumber", ""},
		{"request: phone already bound", h.c, "POST", "/request", with("phone", h.phone), nil, 400, "phone", ""},
		{"request: CSRF missing", h.c, "POST", "/request", okRequest, noCSRF, 403, "", "csrf"},
		{"complete: nothing approved", h.c, "POST", "/request/complete", map[string]any{"acceptContract": true, "acceptPrivacy": true, "pin": "12345678", "pinConfirm": "12345678", "passphrase": testPassphrase, "passphraseConfirm": testPassphrase, "otp": "123456"}, nil, 409, "", "conflict"},
		{"complete: empty and nothing approved", h.c, "POST", "/request/complete", map[string]any{}, nil, 409, "", "conflict"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, m := tc.c.api(tc.method, tc.path, tc.body, tc.hdr...)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %v", st, tc.status, m)
			}
			if m["error"] == nil || m["error_description"] == nil || m["error_description"] == "" {
				t.Fatalf("not the error shape: %v", m)
			}
			if tc.errCode != "" && m["error"] != tc.errCode {
				t.Fatalf("error %v, want %s (%v)", m["error"], tc.errCode, m)
			}
			if tc.field != "" {
				f, _ := m["fields"].(map[string]any)
				if f[tc.field] == nil {
					t.Fatalf("no error for field %s: %v", tc.field, m)
				}
			}
		})
	}
	after := s.snapshot(t, h)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("bad requests changed state:\nbefore %+v\nafter  %+v", before, after)
	}
	// Only the one holder registered: no bad registration created an account.
	if n := len(s.emails("new1@example.test")); n != 0 {
		t.Fatalf("%d e-mails to a refused registration", n)
	}
}

var reCSRF = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// page fetches a page and returns its form token.
func (c *client) pageToken(path string) string {
	c.t.Helper()
	st, body := c.get(path)
	if st != http.StatusOK {
		c.t.Fatalf("GET %s: %d", path, st)
	}
	m := reCSRF.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("no CSRF token in %s", path)
	}
	return m[1]
}

func TestPages_badFormsShowTheErrorNextToTheFieldAndChangeNothing(t *testing.T) {
	s := newStack(t)
	h := s.enrollHolder("cleo")
	before := s.snapshot(t, h)
	tok := h.c.pageToken("/portal/home")
	anon := s.newClient()
	anonTok := anon.pageToken("/portal/register")
	v := func(kv ...string) url.Values {
		out := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		c      *client
		path   string
		form   url.Values
		status int
		field  string // "" = a page-level message is expected
		text   string // part of the message
	}{
		{"register: CSRF missing", anon, "/portal/register", v("email", "x@example.test"), 400, "", "expired"},
		{"register: all empty", anon, "/portal/register", v("csrf", anonTok), 400, "email", "required"},
		{"register: bad e-mail", anon, "/portal/register", v("csrf", anonTok, "email", "nope", "password", testPassword, "passwordConfirm", testPassword, "country", "IT", "consentProcessing", "on"), 400, "email", "valid e-mail"},
		{"register: weak password", anon, "/portal/register", v("csrf", anonTok, "email", "n@example.test", "password", "abc", "passwordConfirm", "abc", "country", "IT", "consentProcessing", "on"), 400, "password", "rules"},
		{"register: no consent", anon, "/portal/register", v("csrf", anonTok, "email", "n@example.test", "password", testPassword, "passwordConfirm", testPassword, "country", "IT"), 400, "consentProcessing", "consent"},
		{"login: CSRF wrong", anon, "/portal/login", v("csrf", "00", "login", h.email, "password", testPassword), 400, "", "expired"},
		{"login: empty", anon, "/portal/login", v("csrf", anonTok), 400, "login", "required"},
		{"login: wrong password", anon, "/portal/login", v("csrf", anonTok, "login", h.email, "password", "Wrong-Pass-1"), 401, "", "Invalid username or password"},
		{"emergency: CSRF missing", anon, "/portal/emergency", v("iut", h.codes["IUT"], "erc", h.codes["ERC"], "action", "suspend"), 400, "", "expired"},
		{"emergency: empty", anon, "/portal/emergency", v("csrf", anonTok), 400, "iut", "required"},
		{"emergency: revoke not confirmed", anon, "/portal/emergency", v("csrf", anonTok, "iut", h.codes["IUT"], "erc", h.codes["ERC"], "action", "revoke"), 400, "understand", "confirm"},
		{"emergency: wrong ERC", anon, "/portal/emergency", v("csrf", anonTok, "iut", h.codes["IUT"], "erc", "WRONGWRONG23", "action", "suspend"), 403, "erc", "Invalid identifying code"},
		{"pin: CSRF missing", h.c, "/portal/pin", v("cred", h.credID, "currentPIN", h.pin, "newPIN", "11112222", "newPINConfirm", "11112222", "otp", "123456"), 400, "", "expired"},
		{"pin: empty", h.c, "/portal/pin", v("csrf", tok, "cred", h.credID), 400, "currentPIN", "required"},
		{"pin: too long", h.c, "/portal/pin", v("csrf", tok, "cred", h.credID, "currentPIN", h.pin, "newPIN", long, "newPINConfirm", long, "otp", "123456"), 400, "newPIN", "too long"},
		{"pin: wrong format", h.c, "/portal/pin", v("csrf", tok, "cred", h.credID, "currentPIN", h.pin, "newPIN", "1234", "newPINConfirm", "1234", "otp", "123456"), 400, "newPIN", "8 digits"},
		{"pin: confirmation differs", h.c, "/portal/pin", v("csrf", tok, "cred", h.credID, "currentPIN", h.pin, "newPIN", "11112222", "newPINConfirm", "22221111", "otp", "123456"), 400, "newPINConfirm", "do not match"},
		{"unblock: PUK wrong format", h.c, "/portal/unblock", v("csrf", tok, "cred", h.credID, "puk", "1", "newPIN", "11112222", "newPINConfirm", "11112222", "otp", "123456"), 400, "puk", "8 digits"},
		{"reactivate: empty", h.c, "/portal/reactivate", v("csrf", tok, "cred", h.credID), 400, "pin", "required"},
		{"renew: OTP letters", h.c, "/portal/renew", v("csrf", tok, "cred", h.credID, "pin", h.pin, "otp", "abcdef"), 400, "otp", "6 to 8 digits"},
		{"suspend: not confirmed", h.c, "/portal/suspend", v("csrf", tok, "cred", h.credID), 400, "confirm", "confirm"},
		{"revoke: first confirmation missing", h.c, "/portal/revoke", v("csrf", tok, "cred", h.credID), 400, "understand", "confirm"},
		{"revoke: second confirmation wrong word", h.c, "/portal/revoke", v("csrf", tok, "cred", h.credID, "step", "2", "confirm", "yes"), 400, "confirm", "confirmation word"},
		{"password: CSRF missing", h.c, "/portal/password", v("currentPassword", testPassword, "newPassword", "Other-Pass-77", "newPasswordConfirm", "Other-Pass-77"), 400, "", "expired"},
		{"password: weak", h.c, "/portal/password", v("csrf", tok, "currentPassword", testPassword, "newPassword", "abc", "newPasswordConfirm", "abc"), 400, "newPassword", "rules"},
		{"phone: bad number", h.c, "/portal/phone", v("csrf", tok, "cred", h.credID, "phone", "abc", "phoneOTP", "123456"), 400, "phone", "international format"},
		{"request: empty", h.c, "/portal/request", v("csrf", tok), 400, "givenName", "required"},
		{"request: bad fiscal code", h.c, "/portal/request", v("csrf", tok, "givenName", "A", "surname", "B", "fiscalCode", "XXX", "phone", "+393331112223", "method", "cie", "docType", "passport", "docNumber", "AB12345", "docCountry", "IT", "docExpiry", "2099-01-01"), 400, "fiscalCode", "fiscal code"},
		{"otp send: unknown credential", h.c, "/portal/otp/send", v("csrf", tok, "cred", "c-nope"), 404, "", ""},
		{"complete: nothing approved", h.c, "/portal/request/complete", v("csrf", tok), 409, "", "no approved certificate request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := tc.c.form(tc.path, tc.form)
			if st != tc.status {
				t.Fatalf("status %d, want %d:\n%s", st, tc.status, body)
			}
			if tc.field != "" {
				re := regexp.MustCompile(`<p class="error" id="f-` + tc.field + `-err">([^<]*)</p>`)
				m := re.FindStringSubmatch(body)
				if m == nil {
					t.Fatalf("no error next to %s:\n%s", tc.field, body)
				}
				if !strings.Contains(m[1], tc.text) {
					t.Fatalf("error next to %s is %q, want %q", tc.field, m[1], tc.text)
				}
				if !strings.Contains(body, `aria-describedby="`) || !strings.Contains(body, `f-`+tc.field+`-err`) {
					t.Fatalf("field %s not described by its error", tc.field)
				}
				return
			}
			if !strings.Contains(body, `role="alert"`) || !strings.Contains(body, tc.text) {
				t.Fatalf("page message lacks %q:\n%s", tc.text, body)
			}
		})
	}
	after := s.snapshot(t, h)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("bad forms changed state:\nbefore %+v\nafter  %+v", before, after)
	}
}
