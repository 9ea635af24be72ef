package oauth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/oauth"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

// appClient registers a CSC client app with two redirect URIs.
func (s *stack) appClient() client {
	return s.register(map[string]any{"name": "Signing App", "redirectURIs": []string{s.cb.URL("/cb"), s.cb.URL("/other")},
		"grantTypes": []string{"authorization_code"}, "scopes": []string{"service", "credential"}})
}

// serviceCode runs the code flow for scope service and returns the code.
func (s *stack) serviceCode(cl client, challenge, redirect string) string {
	s.t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {cl.ID}, "redirect_uri": {redirect}, "scope": {"service"},
		"state": {"st-1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	got := codeFrom(s.t, s.agent().consent(s.authorizeURL(q), "alice", "", ""), redirect)
	if got.Get("state") != "st-1" || got.Get("code") == "" {
		s.t.Fatalf("redirect query %v", got)
	}
	return got.Get("code")
}

func (s *stack) exchange(cl client, code, redirect, verifier string) (int, map[string]any) {
	s.t.Helper()
	return s.form(oauth.Base+"/token", &cl, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}})
}

func wantOAuthError(t *testing.T, st int, m map[string]any, status int, code string) {
	t.Helper()
	if st != status || m["error"] != code {
		t.Fatalf("got %d %v, want %d %s", st, m, status, code)
	}
}

func TestCodeFlow_serviceScope(t *testing.T) {
	s := newStack(t)
	_, cc := s.user("alice", sam.NewCredential{OTP: "totp"})
	cl := s.appClient()
	cb, other := s.cb.URL("/cb"), s.cb.URL("/other")

	t.Run("code_gives_service_tokens", func(t *testing.T) {
		v, ch := pkce("a")
		st, m := s.exchange(cl, s.serviceCode(cl, ch, cb), cb, v)
		if st != 200 || m["token_type"] != "Bearer" || m["refresh_token"] == nil || m["credentialID"] != nil {
			t.Fatalf("token: %d %v", st, m)
		}
		st, list := s.api("/csc/v2/credentials/list", m["access_token"].(string), map[string]any{})
		if st != 200 || !slices.Contains(list["credentialIDs"].([]any), any(cc.CredentialID)) {
			t.Fatalf("list: %d %v", st, list)
		}
	})
	t.Run("wrong_code_verifier_is_invalid_grant", func(t *testing.T) {
		_, ch := pkce("b")
		other, _ := pkce("c")
		st, m := s.exchange(cl, s.serviceCode(cl, ch, cb), cb, other)
		wantOAuthError(t, st, m, 400, "invalid_grant")
	})
	t.Run("mismatched_redirect_uri_is_invalid_grant", func(t *testing.T) {
		v, ch := pkce("d")
		st, m := s.exchange(cl, s.serviceCode(cl, ch, cb), other, v)
		wantOAuthError(t, st, m, 400, "invalid_grant")
	})
	t.Run("reused_code_is_invalid_grant_and_revokes_its_tokens", func(t *testing.T) {
		v, ch := pkce("e")
		code := s.serviceCode(cl, ch, cb)
		st, first := s.exchange(cl, code, cb, v)
		if st != 200 {
			t.Fatalf("first exchange: %d %v", st, first)
		}
		st, m := s.exchange(cl, code, cb, v)
		wantOAuthError(t, st, m, 400, "invalid_grant")
		st, m = s.api("/csc/v2/credentials/list", first["access_token"].(string), map[string]any{})
		wantOAuthError(t, st, m, 401, "invalid_token")
		st, m = s.form(oauth.Base+"/token", &cl, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
		wantOAuthError(t, st, m, 400, "invalid_grant")
	})
	t.Run("code_of_another_client_is_invalid_grant", func(t *testing.T) {
		v, ch := pkce("f")
		code := s.serviceCode(cl, ch, cb)
		thief := s.register(map[string]any{"name": "Thief", "redirectURIs": []string{cb}})
		st, m := s.exchange(thief, code, cb, v)
		wantOAuthError(t, st, m, 400, "invalid_grant")
	})
	t.Run("unknown_client_and_wrong_secret_are_invalid_client", func(t *testing.T) {
		v, ch := pkce("g")
		code := s.serviceCode(cl, ch, cb)
		for _, bad := range []client{{ID: "cl-nobody", Secret: cl.Secret}, {ID: cl.ID, Secret: "wrong"}} {
			st, m := s.exchange(bad, code, cb, v)
			wantOAuthError(t, st, m, 401, "invalid_client")
		}
		// client_secret_post, and no authentication at all.
		st, m := s.form(oauth.Base+"/token", nil, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"client_id": {cl.ID}, "client_secret": {"wrong"}, "redirect_uri": {cb}, "code_verifier": {v}})
		wantOAuthError(t, st, m, 401, "invalid_client")
		st, m = s.form(oauth.Base+"/token", nil, url.Values{"grant_type": {"authorization_code"}, "code": {code}})
		wantOAuthError(t, st, m, 401, "invalid_client")
		// The code was not burnt by the failed authentications.
		st, m = s.form(oauth.Base+"/token", nil, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"client_id": {cl.ID}, "client_secret": {cl.Secret}, "redirect_uri": {cb}, "code_verifier": {v}})
		if st != 200 {
			t.Fatalf("client_secret_post: %d %v", st, m)
		}
	})
	t.Run("refresh_rotates_and_replay_revokes_the_grant", func(t *testing.T) {
		v, ch := pkce("h")
		_, first := s.exchange(cl, s.serviceCode(cl, ch, cb), cb, v)
		refresh := func(tok string) (int, map[string]any) {
			return s.form(oauth.Base+"/token", &cl, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}})
		}
		st, second := refresh(first["refresh_token"].(string))
		if st != 200 || second["refresh_token"] == first["refresh_token"] {
			t.Fatalf("refresh: %d %v", st, second)
		}
		st, m := refresh(first["refresh_token"].(string))
		wantOAuthError(t, st, m, 400, "invalid_grant")
		st, m = refresh(second["refresh_token"].(string))
		wantOAuthError(t, st, m, 400, "invalid_grant")
		st, m = s.api("/csc/v2/credentials/list", second["access_token"].(string), map[string]any{})
		wantOAuthError(t, st, m, 401, "invalid_token")
	})
	t.Run("revoke", func(t *testing.T) {
		v, ch := pkce("i")
		_, tok := s.exchange(cl, s.serviceCode(cl, ch, cb), cb, v)
		access := tok["access_token"].(string)
		st, m := s.form(oauth.Base+"/revoke", &cl, url.Values{"token": {access}, "token_type_hint": {"bogus"}})
		wantOAuthError(t, st, m, 400, "unsupported_token_type")
		st, m = s.form(oauth.Base+"/revoke", &client{cl.ID, "wrong"}, url.Values{"token": {access}})
		wantOAuthError(t, st, m, 401, "invalid_client")
		if st, m := s.api("/csc/v2/credentials/list", access, map[string]any{}); st != 200 {
			t.Fatalf("before revoke: %d %v", st, m)
		}
		if st, m := s.form(oauth.Base+"/revoke", &cl, url.Values{"token": {access}, "token_type_hint": {"access_token"}}); st != 204 {
			t.Fatalf("revoke: %d %v", st, m)
		}
		st, m = s.api("/csc/v2/credentials/list", access, map[string]any{})
		wantOAuthError(t, st, m, 401, "invalid_token")
	})
}

func TestAuthorize_refusals(t *testing.T) {
	s := newStack(t)
	_, scal2 := s.user("alice", sam.NewCredential{OTP: "totp", SCAL: 2})
	cl := s.appClient()
	cb := s.cb.URL("/cb")
	_, ch := pkce("z")
	base := func() url.Values {
		return url.Values{"response_type": {"code"}, "client_id": {cl.ID}, "redirect_uri": {cb}, "scope": {"service"},
			"state": {"s-42"}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}
	}
	digest := sha256.Sum256([]byte("doc"))
	rar, _ := json.Marshal([]any{map[string]any{"type": "credential", "credentialID": scal2.CredentialID, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
		"documentDigests": []any{map[string]any{"hash": base64.StdEncoding.EncodeToString(digest[:]), "label": "doc.pdf"}}}})
	cases := []struct {
		name string
		edit func(url.Values)
		// page > 0: an error page with that status; else a redirect with
		// error code.
		page int
		code string
	}{
		{"unknown_client_gets_error_page", func(q url.Values) { q.Set("client_id", "cl-nobody") }, 400, ""},
		{"missing_client_gets_error_page", func(q url.Values) { q.Del("client_id") }, 400, ""},
		{"unregistered_redirect_uri_gets_error_page", func(q url.Values) { q.Set("redirect_uri", cb+"x") }, 400, ""},
		{"missing_pkce", func(q url.Values) { q.Del("code_challenge") }, 0, "invalid_request"},
		{"plain_pkce_refused", func(q url.Values) { q.Set("code_challenge_method", "plain") }, 0, "invalid_request"},
		{"pkce_method_missing_means_plain_refused", func(q url.Values) { q.Del("code_challenge_method") }, 0, "invalid_request"},
		{"response_type_token", func(q url.Values) { q.Set("response_type", "token") }, 0, "unsupported_response_type"},
		{"unknown_scope", func(q url.Values) { q.Set("scope", "admin") }, 0, "invalid_scope"},
		{"scope_credential_with_authorization_details", func(q url.Values) {
			q.Set("scope", "credential")
			q.Set("authorization_details", string(rar))
		}, 0, "invalid_request"},
		{"scal2_without_hashes", func(q url.Values) {
			q.Set("scope", "credential")
			q.Set("credentialID", scal2.CredentialID)
			q.Set("numSignatures", "1")
		}, 0, "invalid_request"},
		{"credential_scope_without_credential", func(q url.Values) { q.Set("scope", "credential") }, 0, "invalid_request"},
		{"hash_of_wrong_length", func(q url.Values) {
			q.Set("scope", "credential")
			q.Set("credentialID", scal2.CredentialID)
			q.Set("hashes", base64.RawURLEncoding.EncodeToString(digest[:10]))
			q.Set("hashAlgorithmOID", "2.16.840.1.101.3.4.2.1")
		}, 0, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := base()
			tc.edit(q)
			p := s.agent().get(s.authorizeURL(q))
			if tc.page > 0 {
				if p.Status != tc.page || p.Location != "" || !strings.Contains(p.Body, "Authorization failed") {
					t.Fatalf("want error page %d, got %d %q", tc.page, p.Status, p.Location)
				}
				return
			}
			got := codeFrom(t, p, cb)
			if got.Get("error") != tc.code || got.Get("state") != "s-42" || got.Get("code") != "" {
				t.Fatalf("redirect query %v, want error %s", got, tc.code)
			}
		})
	}
	t.Run("rar_alone_is_accepted", func(t *testing.T) {
		q := base()
		q.Del("scope")
		q.Set("authorization_details", string(rar))
		if p := s.agent().get(s.authorizeURL(q)); p.Status != 200 || !strings.Contains(p.Body, `action="/csc/v2/oauth2/authorize/login"`) {
			t.Fatalf("got %d %q", p.Status, p.Location)
		}
	})
}

func TestFlow_isBoundToBrowserAndCSRF(t *testing.T) {
	s := newStack(t)
	s.user("alice", sam.NewCredential{})
	cl := s.appClient()
	_, ch := pkce("k")
	q := url.Values{"response_type": {"code"}, "client_id": {cl.ID}, "redirect_uri": {s.cb.URL("/cb")}, "code_challenge": {ch},
		"code_challenge_method": {"S256"}}
	a := s.agent()
	f := a.get(s.authorizeURL(q)).hidden(t)
	f.Set("username", "alice")
	f.Set("password", samtest.Password)

	wrong := url.Values{"flow": {f.Get("flow")}, "csrf": {"forged"}, "username": {"alice"}, "password": {samtest.Password}}
	if p := a.post(oauth.Base+"/authorize/login", wrong); p.Status != http.StatusForbidden {
		t.Fatalf("wrong csrf: %d", p.Status)
	}
	if p := s.agent().post(oauth.Base+"/authorize/login", f); p.Status != http.StatusForbidden {
		t.Fatalf("other browser: %d", p.Status)
	}
	bad := url.Values{"flow": {f.Get("flow")}, "csrf": {f.Get("csrf")}, "username": {"alice"}, "password": {"nope"}}
	if p := a.post(oauth.Base+"/authorize/login", bad); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "Invalid username or password") {
		t.Fatalf("wrong password: %d %.200s", p.Status, p.Body)
	}
	if p := a.post(oauth.Base+"/authorize/login", f); p.Status != http.StatusSeeOther {
		t.Fatalf("login: %d", p.Status)
	}
	// The pre-login token no longer works for consent (checked below);
	// and password guessing through this page hits the login limit.
	b := s.agent()
	g := b.get(s.authorizeURL(q)).hidden(t)
	g.Set("username", "alice")
	g.Set("password", "guess")
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		p := b.post(oauth.Base+"/authorize/login", g)
		limited = p.Status == http.StatusTooManyRequests && strings.Contains(p.Body, "Too many attempts")
	}
	if !limited {
		t.Fatal("40 wrong passwords were never rate limited")
	}
	c := url.Values{"flow": {f.Get("flow")}, "csrf": {f.Get("csrf")}, "action": {"allow"}}
	if p := a.post(oauth.Base+"/authorize/consent", c); p.Status != http.StatusForbidden {
		t.Fatalf("consent with the pre-login token: %d", p.Status)
	}
}

func TestPushedAuthorization_andCredentialToken(t *testing.T) {
	s := newStack(t)
	_, cc := s.user("alice", sam.NewCredential{OTP: "totp", SCAL: 2, Multisign: 5})
	other := s.env.Credential(t, "alice", sam.NewCredential{})
	cl := s.appClient()
	cb := s.cb.URL("/cb")
	v, ch := pkce("p")
	d1, d2 := sha256.Sum256([]byte("contract.pdf")), sha256.Sum256([]byte("annex.pdf"))
	rar, _ := json.Marshal([]any{map[string]any{"type": "credential", "credentialID": cc.CredentialID, "numSignatures": "2",
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "documentDigests": []any{
			map[string]any{"hash": base64.StdEncoding.EncodeToString(d1[:]), "label": "contract.pdf"},
			map[string]any{"hash": base64.RawURLEncoding.EncodeToString(d2[:]), "label": "annex.pdf"}}}})
	par := url.Values{"response_type": {"code"}, "redirect_uri": {cb}, "state": {"par"}, "code_challenge": {ch},
		"code_challenge_method": {"S256"}, "authorization_details": {string(rar)}}

	st, m := s.form(oauth.Base+"/pushed_authorize", &client{cl.ID, "wrong"}, par)
	wantOAuthError(t, st, m, 401, "invalid_client")
	st, m = s.form(oauth.Base+"/pushed_authorize", &cl, par)
	if st != http.StatusCreated || !strings.HasPrefix(m["request_uri"].(string), "urn:ietf:params:oauth:request_uri:") || m["expires_in"] == nil {
		t.Fatalf("PAR: %d %v", st, m)
	}
	authorize := s.authorizeURL(url.Values{"client_id": {cl.ID}, "request_uri": {m["request_uri"].(string)}})

	a := s.agent()
	first := a.get(authorize)
	if first.Status != 200 {
		t.Fatalf("authorize with request_uri: %d %q", first.Status, first.Location)
	}
	if p := s.agent().get(authorize); p.Status != 400 {
		t.Fatalf("request_uri reused: %d", p.Status)
	}
	f := first.hidden(t)
	f.Set("username", "alice")
	f.Set("password", samtest.Password)
	p := a.post(oauth.Base+"/authorize/login", f)
	consent := a.get(s.URL + p.Location)
	for _, want := range []string{"contract.pdf", "annex.pdf", cc.CredentialID, `id="num-signatures">2<`} {
		if !strings.Contains(consent.Body, want) {
			t.Fatalf("consent page lacks %q", want)
		}
	}
	// A wrong PIN stays on the page; the right one goes back to the client.
	f = consent.hidden(t)
	f.Set("action", "allow")
	f.Set("pin", "00000000")
	f.Set("otp", s.totpCode(cc.OTPURI))
	if p := a.post(oauth.Base+"/authorize/consent", f); p.Status != 400 || !strings.Contains(p.Body, "The PIN is invalid") {
		t.Fatalf("wrong PIN: %d %.300s", p.Status, p.Body)
	}
	f.Set("pin", samtest.PIN)
	f.Set("otp", s.totpCode(cc.OTPURI))
	got := codeFrom(t, a.post(oauth.Base+"/authorize/consent", f), cb)

	st, tok := s.exchange(cl, got.Get("code"), cb, v)
	if st != 200 || tok["credentialID"] != cc.CredentialID || tok["refresh_token"] != nil || tok["expires_in"] != float64(300) {
		t.Fatalf("token: %d %v", st, tok)
	}
	access := tok["access_token"].(string)
	p2, err := s.env.Service.Authenticate(t.Context(), access)
	if err != nil || p2.Scope != sam.ScopeCredential || p2.CredentialID != cc.CredentialID || p2.ClientID != cl.ID {
		t.Fatalf("principal %+v, %v", p2, err)
	}

	// The credential token sees only its credential.
	st, list := s.api("/csc/v2/credentials/list", access, map[string]any{})
	if st != 200 || len(list["credentialIDs"].([]any)) != 1 || list["credentialIDs"].([]any)[0] != cc.CredentialID {
		t.Fatalf("list: %d %v", st, list)
	}
	sign := func(cred string, d []byte) (int, map[string]any) {
		return s.api("/csc/v2/signatures/signHash", access, map[string]any{"credentialID": cred,
			"hashes": []string{base64.StdEncoding.EncodeToString(d)}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
			"signAlgo": "1.2.840.10045.4.3.2"})
	}
	if st, m := s.api("/csc/v2/credentials/info", access, map[string]any{"credentialID": other.CredentialID}); st != 400 {
		t.Fatalf("info of another credential: %d %v", st, m)
	}
	if st, m := sign(other.CredentialID, d1[:]); st != 400 {
		t.Fatalf("signHash on another credential: %d %v", st, m)
	}
	d3 := sha256.Sum256([]byte("not consented"))
	if st, m := sign(cc.CredentialID, d3[:]); st != 400 || !strings.Contains(m["error_description"].(string), "not authorized") {
		t.Fatalf("unconsented hash: %d %v", st, m)
	}
	for _, d := range [][]byte{d1[:], d2[:]} {
		if st, m := sign(cc.CredentialID, d); st != 200 {
			t.Fatalf("signHash: %d %v", st, m)
		}
	}
	if st, m := sign(cc.CredentialID, d1[:]); st != 400 {
		t.Fatalf("third signature: %d %v", st, m)
	}
}

func TestClientCredentials_domainClient(t *testing.T) {
	s := newStack(t)
	_, auto := s.user("acme-ops", sam.NewCredential{Domain: "acme.example", Alias: "RSSMRA80A01H501U"})
	s.user("bob", sam.NewCredential{})
	integ := s.register(map[string]any{"name": "ACME batch", "domain": "acme.example",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"service"}})
	app := s.appClient()

	st, m := s.form(oauth.Base+"/token", &app, url.Values{"grant_type": {"client_credentials"}})
	wantOAuthError(t, st, m, 400, "unauthorized_client")
	st, m = s.form(oauth.Base+"/token", &integ, url.Values{"grant_type": {"client_credentials"}, "scope": {"credential"}})
	wantOAuthError(t, st, m, 400, "invalid_scope")
	st, m = s.form(oauth.Base+"/token", &integ, url.Values{"grant_type": {"password"}})
	wantOAuthError(t, st, m, 400, "unsupported_grant_type")

	st, tok := s.form(oauth.Base+"/token", &integ, url.Values{"grant_type": {"client_credentials"}, "scope": {"service"}})
	if st != 200 || tok["refresh_token"] != nil || tok["token_type"] != "Bearer" {
		t.Fatalf("client_credentials: %d %v", st, tok)
	}
	access := tok["access_token"].(string)
	p, err := s.env.Service.Authenticate(t.Context(), access)
	if err != nil || p.Domain != "acme.example" || p.UserID != "" || p.ClientID != integ.ID || p.Scope != sam.ScopeService {
		t.Fatalf("principal %+v, %v", p, err)
	}
	st, list := s.api("/csc/v2/credentials/list", access, map[string]any{"userID": "RSSMRA80A01H501U"})
	if st != 200 || len(list["credentialIDs"].([]any)) != 1 || list["credentialIDs"].([]any)[0] != auto.CredentialID {
		t.Fatalf("list by alias: %d %v", st, list)
	}
	if st, m := s.api("/csc/v2/credentials/list", access, map[string]any{"userID": "bob"}); st != 400 {
		t.Fatalf("alias outside the domain: %d %v", st, m)
	}
	// The domain token signs with the domain's credential (PIN, SCAL 1).
	st, sad := s.api("/csc/v2/credentials/authorize", access, map[string]any{"credentialID": auto.CredentialID, "numSignatures": 1,
		"authData": []any{map[string]any{"id": "PIN", "value": samtest.PIN}}})
	if st != 200 {
		t.Fatalf("authorize with the domain token: %d %v", st, sad)
	}
	d := sha256.Sum256([]byte("batch item"))
	st, m = s.api("/csc/v2/signatures/signHash", access, map[string]any{"credentialID": auto.CredentialID, "SAD": sad["SAD"],
		"hashes": []string{base64.StdEncoding.EncodeToString(d[:])}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"})
	if st != 200 || len(m["signatures"].([]any)) != 1 {
		t.Fatalf("signHash with the domain token: %d %v", st, m)
	}
}

func TestInfo_advertisesOAuth2(t *testing.T) {
	s := newStack(t)
	st, m := s.api("/csc/v2/info", "", map[string]any{})
	if st != 200 || m["oauth2"] != s.URL+oauth.Base {
		t.Fatalf("info: %d %v", st, m)
	}
	types := m["authType"].([]any)
	for _, want := range []string{"basic", "oauth2code", "oauth2client"} {
		if !slices.Contains(types, any(want)) {
			t.Fatalf("authType %v lacks %s", types, want)
		}
	}
}

var reSMS = regexp.MustCompile(`code is ([0-9]+)`)

// TestConsent_smsOTPBoundToHashes: for an SMS credential the holder asks
// for a code on the consent page; the code is bound to the hashes shown.
func TestConsent_smsOTPBoundToHashes(t *testing.T) {
	s := newStack(t)
	_, cc := s.user("alice", sam.NewCredential{OTP: "sms", SCAL: 2})
	cl := s.appClient()
	cb := s.cb.URL("/cb")
	v, ch := pkce("s")
	q := credentialQuery(cl.ID, cb, ch, cc.CredentialID, "doc")
	a := s.agent()
	f := a.get(s.authorizeURL(q)).hidden(t)
	f.Set("username", "alice")
	f.Set("password", samtest.Password)
	consent := a.get(s.URL + a.post(oauth.Base+"/authorize/login", f).Location)
	if !strings.Contains(consent.Body, `action="/csc/v2/oauth2/authorize/otp"`) {
		t.Fatal("no SMS button on the consent page")
	}
	sent := a.post(oauth.Base+"/authorize/otp", consent.hidden(t))
	if sent.Status != 200 || !strings.Contains(sent.Body, "We sent a one-time code") {
		t.Fatalf("send OTP: %d %.300s", sent.Status, sent.Body)
	}
	ms, err := s.env.Store.Outbox(t.Context(), "+393330000000", 1)
	if err != nil || len(ms) == 0 {
		t.Fatalf("no SMS: %v", err)
	}
	m := reSMS.FindStringSubmatch(ms[0].Body)
	if m == nil {
		t.Fatalf("no code in %q", ms[0].Body)
	}
	f = sent.hidden(t)
	f.Set("action", "allow")
	f.Set("pin", samtest.PIN)
	f.Set("otp", m[1])
	got := codeFrom(t, a.post(oauth.Base+"/authorize/consent", f), cb)
	if st, tok := s.exchange(cl, got.Get("code"), cb, v); st != 200 || tok["credentialID"] != cc.CredentialID {
		t.Fatalf("token: %d %v", st, tok)
	}
}

func TestCode_expiresAndDenyGoesBackToClient(t *testing.T) {
	s := newStack(t)
	s.user("alice", sam.NewCredential{})
	cl := s.appClient()
	cb := s.cb.URL("/cb")
	v, ch := pkce("x")
	code := s.serviceCode(cl, ch, cb)
	s.env.Clock.Advance(sam.CodeTTL + time.Second)
	st, m := s.exchange(cl, code, cb, v)
	wantOAuthError(t, st, m, 400, "invalid_grant")

	q := url.Values{"response_type": {"code"}, "client_id": {cl.ID}, "redirect_uri": {cb}, "state": {"d"},
		"code_challenge": {ch}, "code_challenge_method": {"S256"}}
	a := s.agent()
	f := a.get(s.authorizeURL(q)).hidden(t)
	f.Set("username", "alice")
	f.Set("password", samtest.Password)
	f = a.get(s.URL + a.post(oauth.Base+"/authorize/login", f).Location).hidden(t)
	f.Set("action", "deny")
	got := codeFrom(t, a.post(oauth.Base+"/authorize/consent", f), cb)
	if got.Get("error") != "access_denied" || got.Get("state") != "d" || got.Get("code") != "" {
		t.Fatalf("deny: %v", got)
	}
	// The flow is over: a replayed form does nothing.
	f.Set("action", "allow")
	if p := a.post(oauth.Base+"/authorize/consent", f); p.Status != 400 || p.Location != "" {
		t.Fatalf("replayed consent: %d %q", p.Status, p.Location)
	}
}

// TestCredentialToken_expiresWithItsSAD: the credential token lives as
// long as a SAD (SADTTL, 300 s by default), then signHash refuses it.
func TestCredentialToken_expiresWithItsSAD(t *testing.T) {
	s := newStack(t)
	_, cc := s.user("alice", sam.NewCredential{OTP: "totp"})
	cl := s.appClient()
	cb := s.cb.URL("/cb")
	v, ch := pkce("t")
	q := url.Values{"response_type": {"code"}, "client_id": {cl.ID}, "redirect_uri": {cb}, "scope": {"credential"},
		"code_challenge": {ch}, "code_challenge_method": {"S256"}, "credentialID": {cc.CredentialID}}
	a := s.agent()
	p := a.get(s.authorizeURL(q))
	f := p.hidden(t)
	f.Set("username", "alice")
	f.Set("password", samtest.Password)
	f = a.get(s.URL + a.post(oauth.Base+"/authorize/login", f).Location).hidden(t)
	f.Set("action", "allow")
	f.Set("pin", samtest.PIN)
	f.Set("otp", s.totpCode(cc.OTPURI))
	got := codeFrom(t, a.post(oauth.Base+"/authorize/consent", f), cb)
	st, tok := s.exchange(cl, got.Get("code"), cb, v)
	if st != 200 || tok["expires_in"] != float64(300) {
		t.Fatalf("token: %d %v", st, tok)
	}
	s.env.Clock.Advance(301 * time.Second)
	d := sha256.Sum256([]byte("late"))
	st, m := s.api("/csc/v2/signatures/signHash", tok["access_token"].(string), map[string]any{"credentialID": cc.CredentialID,
		"hashes": []string{base64.StdEncoding.EncodeToString(d[:])}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"})
	if st != 401 {
		t.Fatalf("expired credential token: %d %v", st, m)
	}
}
