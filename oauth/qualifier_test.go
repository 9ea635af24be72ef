package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/oauth"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

// TestCredentialScope_bySignatureQualifier: a client that names the kind
// of signature (signatureQualifier) instead of the credential, as a query
// parameter or in authorization_details, gets the holder's one credential
// of that kind, shown on the consent page and returned with the token; a
// qualifier sigillo does not know is refused before sign-in, and a holder
// with two credentials of that kind sends the client back with
// invalid_request.
func TestCredentialScope_bySignatureQualifier(t *testing.T) {
	s := newStack(t)
	_, cc := s.user("bruno", sam.NewCredential{OTP: "totp", SCAL: 2, Multisign: 5})
	ci, err := s.env.Service.Credential(t.Context(), &sam.Principal{UserID: "bruno"}, cc.CredentialID)
	if err != nil {
		t.Fatal(err)
	}
	q := ci.SignatureQualifier
	if !sam.IsQualifier(q) {
		t.Fatalf("credential's qualifier %q", q)
	}
	cl := s.appClient()
	cb := s.cb.URL("/cb")
	byQualifier := func(ch string, rar bool) url.Values {
		v := credentialQuery(cl.ID, cb, ch, "", "order.pdf")
		v.Del("credentialID")
		if !rar {
			v.Set("signatureQualifier", q)
			return v
		}
		b, _ := json.Marshal([]any{map[string]any{"type": "credential", "signatureQualifier": q, "numSignatures": 1,
			"hashAlgorithmOID": v.Get("hashAlgorithmOID"), "documentDigests": []any{map[string]any{"hash": v.Get("hashes"), "label": "order.pdf"}}}})
		for _, k := range []string{"scope", "hashes", "hashAlgorithmOID"} {
			v.Del(k)
		}
		v.Set("authorization_details", string(b))
		return v
	}
	for _, rar := range []bool{false, true} {
		t.Run(map[bool]string{false: "query", true: "authorization_details"}[rar], func(t *testing.T) {
			ver, ch := pkce(map[bool]string{false: "q", true: "r"}[rar])
			a := s.agent()
			f := a.get(s.authorizeURL(byQualifier(ch, rar))).hidden(t)
			f.Set("username", "bruno")
			f.Set("password", samtest.Password)
			consent := a.get(s.URL + a.post(oauth.Base+"/authorize/login", f).Location)
			if !strings.Contains(consent.Body, cc.CredentialID) {
				t.Fatalf("the consent page does not show the credential picked: %d %.400s", consent.Status, consent.Body)
			}
			f = consent.hidden(t)
			f.Set("action", "allow")
			f.Set("pin", samtest.PIN)
			f.Set("otp", s.totpCode(cc.OTPURI))
			got := codeFrom(t, a.post(oauth.Base+"/authorize/consent", f), cb)
			st, tok := s.exchange(cl, got.Get("code"), cb, ver)
			if st != 200 || tok["credentialID"] != cc.CredentialID {
				t.Fatalf("token: %d %v", st, tok)
			}
		})
	}

	t.Run("unknown_qualifier", func(t *testing.T) {
		_, ch := pkce("u")
		v := byQualifier(ch, false)
		v.Set("signatureQualifier", "eu_eidas_fancy")
		p := s.agent().get(s.authorizeURL(v))
		if e := codeFrom(t, p, cb); e.Get("error") != "invalid_request" || e.Get("error_description") != "Invalid parameter signatureQualifier" {
			t.Fatalf("unknown qualifier: %v", e)
		}
	})

	t.Run("two_credentials_of_that_kind", func(t *testing.T) {
		s.env.Credential(t, "bruno", sam.NewCredential{OTP: "totp", SCAL: 2})
		_, ch := pkce("t")
		a := s.agent()
		f := a.get(s.authorizeURL(byQualifier(ch, false))).hidden(t)
		f.Set("username", "bruno")
		f.Set("password", samtest.Password)
		p := a.get(s.URL + a.post(oauth.Base+"/authorize/login", f).Location)
		e := codeFrom(t, p, cb)
		if e.Get("error") != "invalid_request" || !strings.Contains(e.Get("error_description"), "2 credentials of the user have it") {
			t.Fatalf("ambiguous qualifier: %v", e)
		}
		if p.Status != http.StatusFound {
			t.Fatalf("status %d", p.Status)
		}
	})
}
