package sam_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

// A credential-scope OAuth access token is also the SAD (same hash):
// revoking the token through auth/revoke must void the SAD, so that the
// token no longer signs.
func TestRevokeToken_credentialScopeTokenVoidsItsSAD(t *testing.T) {
	for _, who := range []string{"holder", "another user"} {
		t.Run(who, func(t *testing.T) {
			e := samtest.New(t)
			ctx := context.Background()
			uid := e.User(t, "oauth")
			p := e.Login(t, uid)
			cc := e.Credential(t, uid, sam.NewCredential{Multisign: 5})
			cl, secret, err := e.Service.CreateOAuthClient(ctx, sam.NewOAuthClient{Name: "app", RedirectURIs: []string{"https://app.example/cb"},
				GrantTypes: []string{sam.GrantAuthorizationCode}, Scopes: []string{sam.ScopeCredential}})
			if err != nil || secret == "" {
				t.Fatal(err)
			}
			verifier := strings.Repeat("v", 50)
			ch := sha256.Sum256([]byte(verifier))
			code, err := e.Service.IssueCode(ctx, p, sam.CodeRequest{ClientID: cl.ID, RedirectURI: "https://app.example/cb",
				CodeChallenge: base64.RawURLEncoding.EncodeToString(ch[:]), Scope: sam.ScopeCredential, CredentialID: cc.CredentialID,
				NumSignatures: 2, HashAlgo: crypto.SHA256, PIN: samtest.PIN})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := e.Service.ExchangeCode(ctx, cl, code, "https://app.example/cb", verifier)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := e.Service.Authenticate(ctx, tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			sign := func() error {
				_, err := e.Service.SignHash(ctx, tp, sam.SignRequest{CredentialID: cc.CredentialID, SAD: tok.AccessToken,
					Hashes: [][]byte{sum("doc")}, Opts: crypto.SHA256})
				return err
			}
			if err := sign(); err != nil {
				t.Fatalf("before revocation: %v", err)
			}
			revoker := tp
			if who != "holder" {
				revoker = e.Login(t, e.User(t, "other"))
			}
			if err := e.Service.RevokeToken(ctx, revoker, tok.AccessToken, "access_token"); err != nil {
				t.Fatal(err)
			}
			if who != "holder" {
				// Someone else's revocation is ignored: the token still signs.
				if err := sign(); err != nil {
					t.Fatalf("revoked by another user: %v", err)
				}
				return
			}
			// The SAD itself is void, not only the token.
			if err := sign(); err == nil {
				t.Fatal("a revoked credential token still signs with its SAD")
			}
			var revoked int
			if err := e.Store.QueryRow(ctx, `SELECT revoked FROM sads WHERE hash = ?`, sha256hex(tok.AccessToken)).Scan(&revoked); err != nil || revoked != 1 {
				t.Fatalf("SAD after revocation: revoked=%d, %v", revoked, err)
			}
		})
	}
}
