package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/oauth"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

// TestPagesSpeakTheRequestLanguage: with lang=it (CSC's parameter) the
// sign-in and consent pages, and sam's refusal of a wrong PIN, are in
// Italian; a browser asking for Italian gets Italian without it; the
// default is English.
func TestPagesSpeakTheRequestLanguage(t *testing.T) {
	s := newStack(t)
	_, cc := s.user("giulia", sam.NewCredential{OTP: "totp", SCAL: 2})
	cl := s.appClient()
	cb := s.cb.URL("/cb")
	_, ch := pkce("l")
	request := func(lang string) url.Values {
		q := credentialQuery(cl.ID, cb, ch, cc.CredentialID, "contratto")
		if lang != "" {
			q.Set("lang", lang)
		}
		return q
	}
	get := func(a *agent, u, acceptLanguage string) page {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if acceptLanguage != "" {
			req.Header.Set("Accept-Language", acceptLanguage)
		}
		return a.do(req)
	}
	want := func(p page, texts ...string) {
		t.Helper()
		for _, x := range texts {
			if !strings.Contains(p.Body, x) {
				t.Errorf("page %d lacks %q: %.600s", p.Status, x, p.Body)
			}
		}
	}

	a := s.agent()
	login := get(a, s.authorizeURL(request("it-IT")), "en-US")
	want(login, `<html lang="it">`, "Accedi", "Nome utente", "chiede di creare firme con il tuo certificato.")
	f := login.hidden(t)
	f.Set("username", "giulia")
	f.Set("password", samtest.Password)
	consent := a.get(s.URL + a.post(oauth.Base+"/authorize/login", f).Location)
	want(consent, "Cosa autorizzi", "Autorizza 1 firma", "Codice monouso", "Rifiuta")
	f = consent.hidden(t)
	f.Set("action", "allow")
	f.Set("pin", "00000000")
	f.Set("otp", "000000")
	refused := a.post(oauth.Base+"/authorize/consent", f)
	if refused.Status != http.StatusBadRequest {
		t.Fatalf("wrong PIN: %d", refused.Status)
	}
	want(refused, "Il PIN è errato")

	want(get(s.agent(), s.authorizeURL(request("")), "it-IT,it;q=0.9,en;q=0.5"), `<html lang="it">`, "Accedi")
	want(get(s.agent(), s.authorizeURL(request("")), ""), `<html lang="en">`, "Sign in", "Username")
	// An error page before any request is understood follows the browser.
	want(get(s.agent(), s.URL+oauth.Base+"/authorize?response_type=code", "it"), `<html lang="it">`, "Autorizzazione non riuscita", "Manca il parametro client_id")
}
