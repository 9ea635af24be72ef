package sam

// OAuth2 for CSC (CSC.md §2, §4): the client registry, the holder's login
// and consent behind oauth2/authorize, authorization codes and the tokens
// oauth2/token issues. The HTTP side (forms, cookies, CSRF, redirects) is
// package oauth; every decision about who may do what is here.
//
// Tokens. An OAuth token is an access_tokens row like a login token, with
// the client's id and a grant (store.OAuthGrant) saying what it may do:
// scope "service" (a user's, from a code; or a domain's, from
// client_credentials) or scope "credential" (one credential). A
// credential-scope access token IS a SAD: it is stored as a SAD under the
// same hash, bound to the credential, the count and the hashes the holder
// consented to with PIN + OTP, so signHash consumes it atomically exactly
// like a SAD from credentials/authorize, and it expires with it (SADTTL).
//
// Client secrets are 256-bit random values we generate, stored as their
// SHA-256: a secret with that much entropy cannot be brute-forced from its
// hash, so a slow hash (argon2id, which we use for human-chosen secrets)
// would add nothing but ~50 ms of CPU and 32 MiB per token request — a
// cheap way to exhaust the service with bad secrets. Comparison is
// constant-time.

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/ratelimit"
	"github.com/sigillo/sigillo/store"
)

// OAuth scopes (CSC v2).
const (
	ScopeService    = "service"
	ScopeCredential = "credential"
)

// OAuth grant types.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
)

// CodeTTL is the lifetime of an authorization code (RFC 6749 §4.1.2
// recommends at most 10 minutes; the client redeems it at once).
const CodeTTL = 2 * time.Minute

// OAuth errors, with the RFC 6749 codes.
var (
	// ErrInvalidClient is an unknown client or a wrong secret (401).
	ErrInvalidClient = errs.New(errs.Unauthenticated, "invalid_client", "Client authentication failed")
	// ErrUnauthorizedClient is a grant type the client is not registered for.
	ErrUnauthorizedClient = errs.New(errs.Invalid, "unauthorized_client", "The client is not authorized to use this grant type")
	// ErrInvalidScope is a scope the client may not ask for.
	ErrInvalidScope = errs.New(errs.Invalid, "invalid_scope", "The requested scope is invalid")
	// ErrUnsupportedTokenType answers a revocation with an unknown hint.
	ErrUnsupportedTokenType = errs.New(errs.Invalid, "unsupported_token_type", "Invalid parameter token_type_hint")
)

// badGrant is an invalid_grant with the reason the client may see.
func badGrant(msg string) error { return errs.New(errs.Invalid, "invalid_grant", msg) }

// oauthStore is the OAuth persistence; *store.Store has it.
type oauthStore interface {
	CreateOAuthClient(ctx context.Context, c store.OAuthClient) error
	OAuthClient(ctx context.Context, id string) (*store.OAuthClient, error)
	PutOAuthCode(ctx context.Context, c store.OAuthCode) error
	TakeOAuthCode(ctx context.Context, hash string) (*store.OAuthCode, error)
	ReuseOAuthCode(ctx context.Context, hash string) error
	IssueOAuthTokens(ctx context.Context, in store.OAuthIssue) error
	OAuthGrant(ctx context.Context, id string) (*store.OAuthGrant, error)
	RevokeOAuthGrant(ctx context.Context, grantID string) error
	RevokeOAuthAccessToken(ctx context.Context, hash string) error
}

var _ oauthStore = (*store.Store)(nil)

func (s *Service) oauthStore() (oauthStore, error) {
	os, ok := s.st.(oauthStore)
	if !ok {
		return nil, errs.Wrap(errs.Internal, "Internal error", errors.New("sam: Store keeps no OAuth state"))
	}
	return os, nil
}

// NewOAuthClient registers a client (operator API).
type NewOAuthClient struct {
	Name         string
	RedirectURIs []string
	// Domain binds a client_credentials client to an automatic-signature
	// domain: its tokens reach that domain's credentials.
	Domain string
	// GrantTypes default to [authorization_code]; Scopes to [service].
	GrantTypes, Scopes []string
}

// OAuthClient is a registered client, without its secret.
type OAuthClient struct {
	ID, Name           string
	RedirectURIs       []string
	Domain             string
	GrantTypes, Scopes []string
	CreatedAt          time.Time
}

// Allows reports whether the client may use the grant type; refresh_token
// comes with authorization_code.
func (c *OAuthClient) Allows(grant string) bool {
	if grant == GrantRefreshToken && slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		return true
	}
	return slices.Contains(c.GrantTypes, grant)
}

// HasScope reports whether the client may ask for scope.
func (c *OAuthClient) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// HasRedirectURI reports whether uri is registered, by exact string match.
func (c *OAuthClient) HasRedirectURI(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

func clientView(c *store.OAuthClient) *OAuthClient {
	return &OAuthClient{ID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs, Domain: c.Domain,
		GrantTypes: c.GrantTypes, Scopes: c.Scopes, CreatedAt: c.CreatedAt}
}

// checkRedirectURI accepts absolute https URIs, and http only on the
// loopback interface (native apps, tests), without fragment (RFC 6749
// §3.1.2).
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q must be absolute, without fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || h == "127.0.0.1" || h == "::1" {
			return nil
		}
	}
	return fmt.Errorf("redirect URI %q must use https (http only on loopback)", raw)
}

// CreateOAuthClient registers a client and returns it with its secret,
// which is shown only this once (only its SHA-256 is stored).
func (s *Service) CreateOAuthClient(ctx context.Context, nc NewOAuthClient) (*OAuthClient, string, error) {
	st, err := s.oauthStore()
	if err != nil {
		return nil, "", err
	}
	if len(nc.GrantTypes) == 0 {
		nc.GrantTypes = []string{GrantAuthorizationCode}
	}
	if len(nc.Scopes) == 0 {
		nc.Scopes = []string{ScopeService}
	}
	var problems []string
	if name := strings.TrimSpace(nc.Name); name == "" || len(name) > 200 {
		problems = append(problems, "name: required, at most 200 characters")
	}
	for _, g := range nc.GrantTypes {
		if g != GrantAuthorizationCode && g != GrantClientCredentials && g != GrantRefreshToken {
			problems = append(problems, fmt.Sprintf("grantTypes: unknown %q", g))
		}
	}
	for _, sc := range nc.Scopes {
		if sc != ScopeService && sc != ScopeCredential {
			problems = append(problems, fmt.Sprintf("scopes: unknown %q", sc))
		}
	}
	if slices.Contains(nc.GrantTypes, GrantAuthorizationCode) && len(nc.RedirectURIs) == 0 {
		problems = append(problems, "redirectURIs: required for authorization_code")
	}
	for _, u := range nc.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			problems = append(problems, "redirectURIs: "+err.Error())
		}
	}
	if slices.Contains(nc.GrantTypes, GrantClientCredentials) {
		// A client_credentials token acts for nobody in particular: without
		// a domain it would reach nothing, or everything.
		if nc.Domain == "" {
			problems = append(problems, "domain: required for client_credentials")
		}
		if !slices.Contains(nc.Scopes, ScopeService) {
			problems = append(problems, "scopes: client_credentials needs scope service")
		}
	}
	if len(nc.Domain) > 200 {
		problems = append(problems, "domain: at most 200 characters")
	}
	if len(problems) > 0 {
		return nil, "", invalidList(problems)
	}
	secret, err := randomToken()
	if err != nil {
		return nil, "", err
	}
	c := store.OAuthClient{ID: randomID("cl-"), Name: strings.TrimSpace(nc.Name), SecretHash: tokenHash(secret),
		RedirectURIs: nc.RedirectURIs, Domain: nc.Domain, GrantTypes: nc.GrantTypes, Scopes: nc.Scopes, CreatedAt: s.now()}
	if err := st.CreateOAuthClient(ctx, c); err != nil {
		return nil, "", storeErr("create oauth client", err)
	}
	s.record(ctx, audit.Event{Actor: "operator", Action: "oauth.client.create", Object: "client:" + c.ID, Outcome: "success",
		Detail: map[string]string{"name": c.Name, "domain": c.Domain, "grantTypes": strings.Join(c.GrantTypes, " ")}})
	return clientView(&c), secret, nil
}

// OAuthClient returns a registered client; an unknown one is errs.NotFound.
func (s *Service) OAuthClient(ctx context.Context, id string) (*OAuthClient, error) {
	st, err := s.oauthStore()
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, errs.New(errs.NotFound, "", "Unknown client")
	}
	c, err := st.OAuthClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.New(errs.NotFound, "", "Unknown client")
	}
	if err != nil {
		return nil, storeErr("oauth client", err)
	}
	return clientView(c), nil
}

// AuthenticateClient checks a client's secret (constant-time compare of
// SHA-256 digests). Unknown clients and wrong secrets are both
// ErrInvalidClient.
func (s *Service) AuthenticateClient(ctx context.Context, id, secret string) (*OAuthClient, error) {
	st, err := s.oauthStore()
	if err != nil {
		return nil, err
	}
	if id == "" || secret == "" {
		return nil, ErrInvalidClient
	}
	c, err := st.OAuthClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidClient
	}
	if err != nil {
		return nil, storeErr("oauth client", err)
	}
	if subtle.ConstantTimeCompare([]byte(tokenHash(secret)), []byte(c.SecretHash)) != 1 {
		s.record(ctx, audit.Event{Actor: "client:" + id, Action: "oauth.client.auth", Object: "client:" + id, Outcome: "failure:bad_secret"})
		return nil, ErrInvalidClient
	}
	return clientView(c), nil
}

// OAuthLogin checks a holder's username and password on the OAuth login
// page. It is Login without the token, and with the same refusals (rate
// limit before argon2, disabled user, password to change first).
func (s *Service) OAuthLogin(ctx context.Context, username, password string) (string, error) {
	if username == "" || password == "" || len(username) > 254 {
		return "", ErrAuthentication
	}
	if err := s.limit(ctx, ratelimit.Login, ratelimit.User(username)); err != nil {
		return "", err
	}
	fail := func(id, reason string, err error) (string, error) {
		s.record(ctx, audit.Event{Actor: "user:" + id, Action: "oauth.login", Object: "user:" + id, Outcome: "failure:" + reason})
		return "", err
	}
	u, err := s.st.User(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		_, _ = s.verify(ctx, dummyHash(s.cfg.Argon2), password)
		return fail(username, "unknown_user", ErrAuthentication)
	}
	if err != nil {
		return "", storeErr("login", err)
	}
	ok, err := s.verify(ctx, u.PasswordHash, password)
	if err != nil {
		return "", err
	}
	switch {
	case !ok:
		return fail(u.ID, "bad_password", ErrAuthentication)
	case u.Status != "active":
		return fail(u.ID, "disabled", ErrUserDisabled)
	case u.MustChangePassword || s.now().Sub(u.PasswordChangedAt) > s.cfg.PasswordMaxAge:
		return fail(u.ID, "password_change_required", ErrPasswordChange)
	}
	s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "oauth.login", Object: "user:" + u.ID, Outcome: "success"})
	return u.ID, nil
}

// PrecheckCredential is what oauth2/authorize can say about a credential
// before anyone logged in: a SCAL 2 credential needs hashes. An unknown
// credential passes here; ownership is checked after login.
func (s *Service) PrecheckCredential(ctx context.Context, credentialID string, hasHashes bool) error {
	if credentialID == "" || hasHashes {
		return nil
	}
	c, err := s.st.Credential(ctx, credentialID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeErr("credential", err)
	}
	if c.SCAL >= 2 {
		return ErrHashesRequired
	}
	return nil
}

// CodeRequest is what the holder consents to on the OAuth page.
type CodeRequest struct {
	ClientID string
	// RedirectURI is the one the authorize request named ("" when it
	// named none); the token request must repeat it.
	RedirectURI string
	// CodeChallenge is the PKCE S256 challenge.
	CodeChallenge string
	Scope         string
	// For scope credential: what is authorized, and the factors.
	CredentialID  string
	NumSignatures int
	Hashes        [][]byte
	HashAlgo      crypto.Hash
	PIN, OTP      string
}

// IssueCode issues an authorization code to the logged-in holder p. For
// scope credential it first does what credentials/authorize does (owner,
// count, multisign, SCAL 2 hashes, key and certificate, PIN, OTP, with
// the same counters and audit); the SAD itself is created when the code
// is redeemed, as the access token.
func (s *Service) IssueCode(ctx context.Context, p *Principal, r CodeRequest) (string, error) {
	st, err := s.oauthStore()
	if err != nil {
		return "", err
	}
	if p == nil || p.UserID == "" {
		return "", ErrInvalidToken
	}
	code := store.OAuthCode{ClientID: r.ClientID, RedirectURI: r.RedirectURI, CodeChallenge: r.CodeChallenge,
		UserID: p.UserID, Scope: r.Scope, GrantID: randomID("g-")}
	switch r.Scope {
	case ScopeService:
	case ScopeCredential:
		n, err := s.consentCredential(ctx, p, r)
		if err != nil {
			return "", err
		}
		code.CredentialID, code.NumSignatures, code.Hashes = r.CredentialID, n, r.Hashes
		if len(r.Hashes) > 0 {
			code.HashAlgo = algoName(r.HashAlgo)
		}
	default:
		return "", ErrInvalidScope
	}
	value, err := randomToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	code.Hash, code.ExpiresAt, code.CreatedAt = tokenHash(value), now.Add(CodeTTL), now
	if err := st.PutOAuthCode(ctx, code); err != nil {
		return "", storeErr("put oauth code", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "oauth.consent", Object: "client:" + r.ClientID, Outcome: "success",
		Detail: map[string]string{"scope": r.Scope, "credential": r.CredentialID}})
	return value, nil
}

// consentCredential checks a credential-scope consent like Authorize and
// returns the number of signatures authorized.
func (s *Service) consentCredential(ctx context.Context, p *Principal, r CodeRequest) (int, error) {
	c, err := s.loadOwned(ctx, p, r.CredentialID)
	if err != nil {
		return 0, err
	}
	if err := s.limit(ctx, ratelimit.Authorize, ratelimit.Cred(c.ID)); err != nil {
		s.met.authorize.WithLabelValues("rate_limited").Inc()
		return 0, err
	}
	n := r.NumSignatures
	if n == 0 {
		n = max(len(r.Hashes), 1)
	}
	fail := func(reason string, err error) (int, error) {
		s.met.authorize.WithLabelValues(reason).Inc()
		s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "credential.authorize", Object: "credential:" + c.ID,
			Outcome: "failure:" + reason, Detail: map[string]string{"numSignatures": strconv.Itoa(n), "via": "oauth2code", "client": r.ClientID},
			With: store.AuditExtras{History: []store.HistoryEntry{s.historyEntry(c, "authorize", r.HashAlgo, n, "failure:"+reason)}}})
		return 0, err
	}
	if reason, err := s.checkAuthorization(ctx, c, n, r.Hashes, r.HashAlgo, r.PIN, r.OTP); err != nil {
		return fail(reason, err)
	}
	if err := s.recordStrict(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "credential.authorize", Object: "credential:" + c.ID,
		Outcome: "success", Detail: map[string]string{"numSignatures": strconv.Itoa(n), "hashAlgo": algoName(r.HashAlgo),
			"bound": strconv.FormatBool(len(r.Hashes) > 0), "via": "oauth2code", "client": r.ClientID},
		With: store.AuditExtras{History: []store.HistoryEntry{s.historyEntry(c, "authorize", r.HashAlgo, n, "success")}}}); err != nil {
		return 0, err
	}
	s.met.authorize.WithLabelValues("success").Inc()
	return n, nil
}

// OAuthTokens is what oauth2/token returns.
type OAuthTokens struct {
	AccessToken, RefreshToken string
	ExpiresIn                 int
	Scope                     string
	// CredentialID is set for scope credential.
	CredentialID string
}

// pkceOK checks an RFC 7636 S256 verifier against the challenge.
func pkceOK(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, r := range verifier {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// ExchangeCode redeems an authorization code for the authenticated
// client. The code is single-use: a second redemption revokes every token
// issued from it (RFC 6749 §4.1.2). A code of another client, a different
// redirect_uri, a wrong PKCE verifier or an expired code give
// invalid_grant (and burn the code).
func (s *Service) ExchangeCode(ctx context.Context, cl *OAuthClient, code, redirectURI, verifier string) (*OAuthTokens, error) {
	st, err := s.oauthStore()
	if err != nil {
		return nil, err
	}
	if !cl.Allows(GrantAuthorizationCode) {
		return nil, ErrUnauthorizedClient
	}
	if code == "" {
		return nil, errs.Invalidf("Missing parameter code")
	}
	h := tokenHash(code)
	c, err := st.TakeOAuthCode(ctx, h)
	switch {
	case errors.Is(err, store.ErrOAuthCodeUsed):
		if rerr := st.ReuseOAuthCode(ctx, h); rerr != nil {
			return nil, storeErr("revoke reused code", rerr)
		}
		s.record(ctx, audit.Event{Actor: "client:" + cl.ID, Action: "oauth.code.reuse", Object: "user:" + c.UserID, Outcome: "failure:reused",
			Detail: map[string]string{"grant": c.GrantID}})
		return nil, badGrant("The authorization code was already used; the tokens issued from it are revoked")
	case errors.Is(err, store.ErrNotFound):
		return nil, badGrant("Invalid authorization code")
	case err != nil:
		return nil, storeErr("take code", err)
	}
	now := s.now()
	fail := func(reason, msg string) (*OAuthTokens, error) {
		s.record(ctx, audit.Event{Actor: "client:" + cl.ID, Action: "oauth.token", Object: "user:" + c.UserID, Outcome: "failure:" + reason})
		return nil, badGrant(msg)
	}
	switch {
	case c.ClientID != cl.ID:
		return fail("other_client", "Invalid authorization code")
	case !now.Before(c.ExpiresAt):
		return fail("expired", "The authorization code expired")
	case c.RedirectURI != redirectURI:
		return fail("redirect_uri", "redirect_uri does not match the authorization request")
	case !pkceOK(verifier, c.CodeChallenge):
		return fail("pkce", "Invalid code_verifier")
	}
	u, err := s.st.User(ctx, c.UserID)
	if err != nil {
		return nil, storeErr("code user", err)
	}
	if u.Status != "active" {
		return fail("disabled", "The user is disabled")
	}
	access, err := randomToken()
	if err != nil {
		return nil, err
	}
	g := &store.OAuthGrant{ID: c.GrantID, ClientID: cl.ID, UserID: c.UserID, Scope: c.Scope, CredentialID: c.CredentialID, CreatedAt: now}
	in := store.OAuthIssue{Grant: g, CodeHash: h}
	out := &OAuthTokens{AccessToken: access, Scope: c.Scope}
	if c.Scope == ScopeCredential {
		exp := now.Add(s.cfg.SADTTL)
		in.Tokens = []store.Token{{Hash: tokenHash(access), Kind: "access", UserID: c.UserID, ClientID: cl.ID, GrantID: g.ID, ExpiresAt: exp, CreatedAt: now}}
		in.SAD = &store.SADRecord{Hash: tokenHash(access), UserID: c.UserID, CredentialID: c.CredentialID, HashAlgo: c.HashAlgo,
			Remaining: c.NumSignatures, Bound: len(c.Hashes) > 0, Hashes: c.Hashes, ExpiresAt: exp, CreatedAt: now}
		out.ExpiresIn, out.CredentialID = int(s.cfg.SADTTL.Seconds()), c.CredentialID
	} else {
		refresh, err := randomToken()
		if err != nil {
			return nil, err
		}
		in.Tokens = []store.Token{
			{Hash: tokenHash(access), Kind: "access", UserID: c.UserID, ClientID: cl.ID, GrantID: g.ID, ExpiresAt: now.Add(s.cfg.TokenTTL), CreatedAt: now},
			{Hash: tokenHash(refresh), Kind: "refresh", UserID: c.UserID, ClientID: cl.ID, GrantID: g.ID, ExpiresAt: now.Add(s.cfg.RefreshTTL), CreatedAt: now},
		}
		out.ExpiresIn, out.RefreshToken = int(s.cfg.TokenTTL.Seconds()), refresh
	}
	if err := st.IssueOAuthTokens(ctx, in); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fail("reused", "The authorization code was already used")
		}
		return nil, storeErr("issue tokens", err)
	}
	s.record(ctx, audit.Event{Actor: "client:" + cl.ID, Action: "oauth.token", Object: "user:" + c.UserID, Outcome: "success",
		Detail: map[string]string{"grant": GrantAuthorizationCode, "scope": c.Scope, "credential": c.CredentialID}})
	return out, nil
}

// ClientCredentials issues a service-scope token to a client bound to a
// domain: its principal reaches that domain's credentials (domain + alias
// addressing) and no user's.
func (s *Service) ClientCredentials(ctx context.Context, cl *OAuthClient, scope string) (*OAuthTokens, error) {
	st, err := s.oauthStore()
	if err != nil {
		return nil, err
	}
	if !cl.Allows(GrantClientCredentials) || cl.Domain == "" {
		return nil, ErrUnauthorizedClient
	}
	if scope != "" && scope != ScopeService {
		return nil, ErrInvalidScope
	}
	access, err := randomToken()
	if err != nil {
		return nil, err
	}
	now := s.now()
	g := &store.OAuthGrant{ID: randomID("g-"), ClientID: cl.ID, Scope: ScopeService, Domain: cl.Domain, CreatedAt: now}
	err = st.IssueOAuthTokens(ctx, store.OAuthIssue{Grant: g, Tokens: []store.Token{{Hash: tokenHash(access), Kind: "access",
		ClientID: cl.ID, GrantID: g.ID, ExpiresAt: now.Add(s.cfg.TokenTTL), CreatedAt: now}}})
	if err != nil {
		return nil, storeErr("issue tokens", err)
	}
	s.record(ctx, audit.Event{Actor: "client:" + cl.ID, Action: "oauth.token", Object: "domain:" + cl.Domain, Outcome: "success",
		Detail: map[string]string{"grant": GrantClientCredentials}})
	return &OAuthTokens{AccessToken: access, ExpiresIn: int(s.cfg.TokenTTL.Seconds()), Scope: ScopeService}, nil
}

// RefreshOAuth rotates a service-scope refresh token of the client: the
// old one is revoked, a new access and refresh token are issued in the
// same grant. A refresh token presented again after rotation revokes the
// whole grant (it was stolen, or the client is confused).
func (s *Service) RefreshOAuth(ctx context.Context, cl *OAuthClient, refresh string) (*OAuthTokens, error) {
	st, err := s.oauthStore()
	if err != nil {
		return nil, err
	}
	if !cl.Allows(GrantRefreshToken) {
		return nil, ErrUnauthorizedClient
	}
	if refresh == "" {
		return nil, errs.Invalidf("Missing parameter refresh_token")
	}
	h := tokenHash(refresh)
	t, err := s.st.Token(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, badGrant("Invalid refresh token")
	}
	if err != nil {
		return nil, storeErr("refresh", err)
	}
	now := s.now()
	if t.Kind != "refresh" || t.ClientID != cl.ID {
		return nil, badGrant("Invalid refresh token")
	}
	if t.Revoked {
		if err := st.RevokeOAuthGrant(ctx, t.GrantID); err != nil {
			return nil, storeErr("revoke grant", err)
		}
		return nil, badGrant("Invalid refresh token")
	}
	if !now.Before(t.ExpiresAt) {
		return nil, badGrant("The refresh token expired")
	}
	if u, err := s.st.User(ctx, t.UserID); err != nil || u.Status != "active" {
		return nil, badGrant("The user is disabled")
	}
	if ok, err := s.st.RevokeToken(ctx, h); err != nil {
		return nil, storeErr("refresh", err)
	} else if !ok {
		return nil, badGrant("Invalid refresh token")
	}
	access, err := randomToken()
	if err != nil {
		return nil, err
	}
	next, err := randomToken()
	if err != nil {
		return nil, err
	}
	err = st.IssueOAuthTokens(ctx, store.OAuthIssue{Tokens: []store.Token{
		{Hash: tokenHash(access), Kind: "access", UserID: t.UserID, ClientID: cl.ID, GrantID: t.GrantID, ExpiresAt: now.Add(s.cfg.TokenTTL), CreatedAt: now},
		{Hash: tokenHash(next), Kind: "refresh", UserID: t.UserID, ClientID: cl.ID, GrantID: t.GrantID, ExpiresAt: now.Add(s.cfg.RefreshTTL), CreatedAt: now},
	}})
	if err != nil {
		return nil, storeErr("issue tokens", err)
	}
	s.record(ctx, audit.Event{Actor: "client:" + cl.ID, Action: "oauth.token", Object: "user:" + t.UserID, Outcome: "success",
		Detail: map[string]string{"grant": GrantRefreshToken}})
	return &OAuthTokens{AccessToken: access, RefreshToken: next, ExpiresIn: int(s.cfg.TokenTTL.Seconds()), Scope: ScopeService}, nil
}

// RevokeOAuth revokes one of the client's tokens (RFC 7009): a refresh
// token with its whole grant, an access token alone (a credential-scope
// one with its SAD). Unknown tokens and other clients' are ignored.
func (s *Service) RevokeOAuth(ctx context.Context, cl *OAuthClient, token, hint string) error {
	st, err := s.oauthStore()
	if err != nil {
		return err
	}
	switch hint {
	case "", "access_token", "refresh_token":
	default:
		return ErrUnsupportedTokenType
	}
	if token == "" {
		return errs.Invalidf("Missing parameter token")
	}
	h := tokenHash(token)
	t, err := s.st.Token(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeErr("revoke", err)
	}
	if t.ClientID != cl.ID {
		return nil
	}
	if t.Kind == "refresh" {
		err = st.RevokeOAuthGrant(ctx, t.GrantID)
	} else {
		err = st.RevokeOAuthAccessToken(ctx, h)
	}
	if err != nil {
		return storeErr("revoke", err)
	}
	s.record(ctx, audit.Event{Actor: "client:" + cl.ID, Action: "oauth.revoke", Object: "user:" + t.UserID, Outcome: "success",
		Detail: map[string]string{"kind": t.Kind}})
	return nil
}

// oauthPrincipal completes the principal of an OAuth access token from
// its grant: scope, credential, domain; a credential-scope token carries
// itself as the SAD (it is one).
func (s *Service) oauthPrincipal(ctx context.Context, t *store.Token, raw string, p *Principal) (*Principal, error) {
	st, err := s.oauthStore()
	if err != nil {
		return nil, err
	}
	g, err := st.OAuthGrant(ctx, t.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		// A token with a client id but no grant: not one we issued here.
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("authenticate", err)
	}
	p.Scope, p.Domain = g.Scope, g.Domain
	if g.Scope == ScopeCredential {
		p.CredentialID, p.SAD = g.CredentialID, raw
	}
	return p, nil
}

// inScope reports whether the principal may touch the credential: a
// credential-scope token reaches only its own credential.
func inScope(p *Principal, credentialID string) bool {
	return p.Scope != ScopeCredential || p.CredentialID == credentialID
}
