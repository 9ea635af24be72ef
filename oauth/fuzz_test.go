package oauth

import (
	"context"
	"net/url"
	"testing"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
)

// fakeClients knows one client and no credential.
type fakeClients struct{}

func (fakeClients) OAuthClient(_ context.Context, id string) (*sam.OAuthClient, error) {
	if id != "cl-1" {
		return nil, errs.New(errs.NotFound, "", "Unknown client")
	}
	return &sam.OAuthClient{ID: "cl-1", RedirectURIs: []string{"https://a.example/cb"},
		GrantTypes: []string{sam.GrantAuthorizationCode}, Scopes: []string{sam.ScopeService, sam.ScopeCredential}}, nil
}

func (fakeClients) PrecheckCredential(context.Context, string, bool) error { return nil }

// FuzzParseAuthorize: whatever the query, parseAuthorize does not panic,
// and what it accepts is consistent (registered redirect URI, S256
// challenge, digests of the named algorithm, count covering them).
func FuzzParseAuthorize(f *testing.F) {
	f.Add("response_type=code&client_id=cl-1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
	f.Add("response_type=code&client_id=cl-1&scope=credential&credentialID=c-1&numSignatures=2&hashes=LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564,Ag&hashAlgorithmOID=2.16.840.1.101.3.4.2.1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
	f.Add(`client_id=cl-1&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&authorization_details=[{"type":"credential","credentialID":"c","numSignatures":"1","hashAlgorithmOID":"2.16.840.1.101.3.4.2.1","documentDigests":[{"hash":"LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=","label":"a"}]}]`)
	f.Add("client_id=cl-1&redirect_uri=https://evil.example/&response_type=code")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, _, err := parseAuthorize(context.Background(), fakeClients{}, q, nil)
		if err != nil {
			return
		}
		if r.RedirectURI != "https://a.example/cb" || len(r.CodeChallenge) != 43 {
			t.Fatalf("accepted %+v", r)
		}
		switch r.Scope {
		case sam.ScopeService:
		case sam.ScopeCredential:
			if r.CredentialID == "" || r.NumSignatures < len(r.Documents) || r.NumSignatures < 1 {
				t.Fatalf("accepted %+v", r)
			}
			for _, d := range r.Documents {
				if len(d.Hash) != r.hashAlgo().Size() {
					t.Fatalf("digest of %d bytes for %s", len(d.Hash), r.HashOID)
				}
			}
		default:
			t.Fatalf("scope %q", r.Scope)
		}
	})
}
