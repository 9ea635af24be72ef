package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigillo/sigillo/store"
)

func init() {
	register("oauth/client_roundtrip", testOAuthClient)
	register("oauth/request_login_and_use_once", testOAuthRequest)
	register("oauth/code_single_use_reuse_revokes_grant", testOAuthCode)
	register("oauth/code_taken_once_under_concurrency", testOAuthCodeConcurrent)
}

func testOAuthClient(t *testing.T, s *store.Store) {
	ctx := context.Background()
	c := store.OAuthClient{ID: "cl-1", Name: "App", SecretHash: "ab", RedirectURIs: []string{"https://a.example/cb", "http://127.0.0.1/cb"},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"service", "credential"}, CreatedAt: t0}
	if err := s.CreateOAuthClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOAuthClient(ctx, c); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate client: %v", err)
	}
	d := store.OAuthClient{ID: "cl-2", Name: "Batch", SecretHash: "cd", Domain: "acme.example",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"service"}, CreatedAt: t0}
	if err := s.CreateOAuthClient(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.OAuthClient(ctx, "cl-1")
	if err != nil || got.Name != "App" || len(got.RedirectURIs) != 2 || got.RedirectURIs[1] != "http://127.0.0.1/cb" ||
		got.Domain != "" || len(got.Scopes) != 2 || !got.CreatedAt.Equal(t0) {
		t.Fatalf("client %+v, %v", got, err)
	}
	got, err = s.OAuthClient(ctx, "cl-2")
	if err != nil || got.Domain != "acme.example" || got.RedirectURIs != nil || got.GrantTypes[0] != "client_credentials" {
		t.Fatalf("client %+v, %v", got, err)
	}
	if _, err := s.OAuthClient(ctx, "cl-3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing client: %v", err)
	}
}

func testOAuthRequest(t *testing.T, s *store.Store) {
	ctx := context.Background()
	r := store.OAuthRequest{Hash: "h1", ClientID: "cl-1", Params: []byte(`{"a":1}`), BrowserHash: "b", CSRF: "c1",
		ExpiresAt: t0.Add(10 * time.Minute), CreatedAt: t0}
	if err := s.PutOAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	par := store.OAuthRequest{Hash: "h2", ClientID: "cl-1", Params: []byte(`{}`), Pushed: true, ExpiresAt: t0.Add(time.Minute), CreatedAt: t0}
	if err := s.PutOAuthRequest(ctx, par); err != nil {
		t.Fatal(err)
	}
	got, err := s.OAuthRequest(ctx, "h1", t0)
	if err != nil || string(got.Params) != `{"a":1}` || got.Pushed || got.BrowserHash != "b" || got.CSRF != "c1" || got.UserID != "" {
		t.Fatalf("request %+v, %v", got, err)
	}
	if _, err := s.OAuthRequest(ctx, "h2", t0.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired PAR request: %v", err)
	}
	if err := s.LoginOAuthRequest(ctx, "h2", "alice", "x", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("login on a PAR row: %v", err)
	}
	if err := s.LoginOAuthRequest(ctx, "h1", "alice", "c2", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.LoginOAuthRequest(ctx, "h1", "mallory", "c3", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second login: %v", err)
	}
	got, _ = s.OAuthRequest(ctx, "h1", t0)
	if got.UserID != "alice" || got.CSRF != "c2" {
		t.Fatalf("after login %+v", got)
	}
	if err := s.UseOAuthRequest(ctx, "h1", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.UseOAuthRequest(ctx, "h1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second use: %v", err)
	}
	if _, err := s.OAuthRequest(ctx, "h1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("used request still live: %v", err)
	}
}

func testOAuthCode(t *testing.T, s *store.Store) {
	ctx := context.Background()
	d1, d2 := sha256.Sum256([]byte("1")), sha256.Sum256([]byte("2"))
	code := store.OAuthCode{Hash: "code-1", ClientID: "cl-1", RedirectURI: "https://a.example/cb", CodeChallenge: "ch", UserID: "alice",
		Scope: "credential", CredentialID: "c-1", NumSignatures: 3, HashAlgo: "SHA-256", Hashes: [][]byte{d1[:], d2[:]},
		GrantID: "g-1", ExpiresAt: t0.Add(2 * time.Minute), CreatedAt: t0}
	if err := s.PutOAuthCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	got, err := s.TakeOAuthCode(ctx, "code-1")
	if err != nil || got.NumSignatures != 3 || len(got.Hashes) != 2 || string(got.Hashes[1]) != string(d2[:]) || got.GrantID != "g-1" ||
		got.CodeChallenge != "ch" || !got.ExpiresAt.Equal(code.ExpiresAt) {
		t.Fatalf("take %+v, %v", got, err)
	}
	if _, err := s.TakeOAuthCode(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	got, err = s.TakeOAuthCode(ctx, "code-1")
	if !errors.Is(err, store.ErrOAuthCodeUsed) || got == nil || got.GrantID != "g-1" {
		t.Fatalf("second take: %+v, %v", got, err)
	}
	access := store.Token{Hash: "tok-1", Kind: "access", UserID: "alice", ClientID: "cl-1", GrantID: "g-1", ExpiresAt: t0.Add(5 * time.Minute), CreatedAt: t0}
	in := store.OAuthIssue{
		Grant:    &store.OAuthGrant{ID: "g-1", ClientID: "cl-1", UserID: "alice", Scope: "credential", CredentialID: "c-1", CreatedAt: t0},
		Tokens:   []store.Token{access},
		SAD:      &store.SADRecord{Hash: "tok-1", UserID: "alice", CredentialID: "c-1", HashAlgo: "SHA-256", Remaining: 3, Bound: true, Hashes: [][]byte{d1[:], d2[:]}, ExpiresAt: access.ExpiresAt, CreatedAt: t0},
		CodeHash: "code-1",
	}
	if err := s.IssueOAuthTokens(ctx, in); err != nil {
		t.Fatal(err)
	}
	g, err := s.OAuthGrant(ctx, "g-1")
	if err != nil || g.Scope != "credential" || g.CredentialID != "c-1" || g.UserID != "alice" {
		t.Fatalf("grant %+v, %v", g, err)
	}
	// The token is a SAD: consumable under the token's hash.
	if err := s.ConsumeSAD(ctx, "tok-1", "alice", "c-1", "SHA-256", [][]byte{d1[:]}, t0); err != nil {
		t.Fatalf("consume the token's SAD: %v", err)
	}
	if err := s.ReuseOAuthCode(ctx, "code-1"); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.Token(ctx, "tok-1"); err != nil || !tok.Revoked {
		t.Fatalf("token after reuse: %+v, %v", tok, err)
	}
	if err := s.ConsumeSAD(ctx, "tok-1", "alice", "c-1", "SHA-256", [][]byte{d2[:]}, t0); !errors.Is(err, store.ErrSADInvalid) {
		t.Fatalf("SAD after reuse: %v", err)
	}
	in.Grant, in.SAD = nil, nil
	in.Tokens = []store.Token{{Hash: "tok-2", Kind: "access", UserID: "alice", ClientID: "cl-1", GrantID: "g-1", ExpiresAt: access.ExpiresAt, CreatedAt: t0}}
	if err := s.IssueOAuthTokens(ctx, in); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("issue after reuse: %v", err)
	}
	if _, err := s.Token(ctx, "tok-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token issued after reuse: %v", err)
	}
	// Revoking one access token revokes its SAD too.
	if err := s.IssueOAuthTokens(ctx, store.OAuthIssue{Tokens: []store.Token{{Hash: "tok-3", Kind: "access", UserID: "alice", ClientID: "cl-1",
		GrantID: "g-2", ExpiresAt: access.ExpiresAt, CreatedAt: t0}}, SAD: &store.SADRecord{Hash: "tok-3", UserID: "alice", CredentialID: "c-1",
		Remaining: 1, ExpiresAt: access.ExpiresAt, CreatedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeOAuthAccessToken(ctx, "tok-3"); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeSAD(ctx, "tok-3", "alice", "c-1", "SHA-256", [][]byte{d1[:]}, t0); !errors.Is(err, store.ErrSADInvalid) {
		t.Fatalf("SAD of a revoked token: %v", err)
	}
}

func testOAuthCodeConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if err := s.PutOAuthCode(ctx, store.OAuthCode{Hash: "code-c", ClientID: "cl-1", CodeChallenge: "ch", UserID: "alice", Scope: "service",
		GrantID: "g-c", ExpiresAt: t0.Add(time.Minute), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var won, used atomic.Int32
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.TakeOAuthCode(ctx, "code-c")
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, store.ErrOAuthCodeUsed):
				used.Add(1)
			default:
				t.Errorf("take: %v", err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 || used.Load() != 11 {
		t.Fatalf("won %d, used %d; want 1 and 11", won.Load(), used.Load())
	}
}
