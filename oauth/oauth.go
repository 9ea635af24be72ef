// Package oauth is sigillo's OAuth2 authorization server for the CSC API
// (CSC.md §2, §4): oauth2/authorize with the holder's login and consent
// pages, oauth2/pushed_authorize (PAR, RFC 9126), oauth2/token
// (authorization_code with PKCE S256, client_credentials, refresh_token)
// and oauth2/revoke. It exists so that CSC clients that only speak OAuth2
// (EUDI wallets, Setasign) can sign, and so that the holder gives PIN and
// OTP to us, never to the client.
//
// It is an HTTP layer: it decodes, keeps the browser flow's state and
// calls sam, which decides (client secrets, passwords, PIN/OTP, codes,
// tokens). Invariants kept here:
//   - errors found before the client and its redirect URI are validated
//     are shown on our error page, never sent to an unverified URI;
//   - a browser flow is bound to the browser that started it (a random
//     cookie whose SHA-256 is stored with the flow) and every form carries
//     the flow's synchronizer token, so no other site can drive it;
//   - all flow state is in the store (any replica serves any step) and a
//     flow ends at most once (one conditional UPDATE).
package oauth

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// SAM is what the authorization server asks of sam; *sam.Service has it.
type SAM interface {
	OAuthClient(ctx context.Context, id string) (*sam.OAuthClient, error)
	AuthenticateClient(ctx context.Context, id, secret string) (*sam.OAuthClient, error)
	PrecheckCredential(ctx context.Context, credentialID string, hasHashes bool) error
	OAuthLogin(ctx context.Context, username, password string) (string, error)
	Credential(ctx context.Context, p *sam.Principal, credentialID string) (*sam.CredentialInfo, error)
	CredentialByQualifier(ctx context.Context, p *sam.Principal, qualifier string) (*sam.CredentialInfo, error)
	SendOTPFor(ctx context.Context, p *sam.Principal, credentialID string, hashes [][]byte) error
	IssueCode(ctx context.Context, p *sam.Principal, r sam.CodeRequest) (string, error)
	ExchangeCode(ctx context.Context, cl *sam.OAuthClient, code, redirectURI, verifier string) (*sam.OAuthTokens, error)
	ClientCredentials(ctx context.Context, cl *sam.OAuthClient, scope string) (*sam.OAuthTokens, error)
	RefreshOAuth(ctx context.Context, cl *sam.OAuthClient, refresh string) (*sam.OAuthTokens, error)
	RevokeOAuth(ctx context.Context, cl *sam.OAuthClient, token, hint string) error
}

var _ SAM = (*sam.Service)(nil)

// Requests keeps pending authorization requests (PAR rows and browser
// flows); *store.Store has it.
type Requests interface {
	PutOAuthRequest(ctx context.Context, r store.OAuthRequest) error
	OAuthRequest(ctx context.Context, hash string, now time.Time) (*store.OAuthRequest, error)
	LoginOAuthRequest(ctx context.Context, hash, userID, csrf string, now time.Time) error
	UseOAuthRequest(ctx context.Context, hash string, now time.Time) error
}

var _ Requests = (*store.Store)(nil)

// Base is where the server is mounted; info's oauth2 is PublicURL + Base.
const Base = "/csc/v2/oauth2"

// Config tunes the server. Zero values take the defaults.
type Config struct {
	// FlowTTL bounds a browser flow, from authorize to consent (default
	// 10 minutes); PARTTL a pushed request (default 90 s, RFC 9126 §2.2).
	FlowTTL, PARTTL time.Duration
	// SecureCookies forces the Secure flag on the flow cookie even when
	// the request did not come over TLS (TLS-terminating proxy).
	SecureCookies bool
	// PortalStylesheet is linked before our own small stylesheet so that
	// the pages look like the self-care portal (default
	// "/portal/static/style.css"; "-" links none).
	PortalStylesheet string
	// MaxBody bounds form bodies (default 1 MiB).
	MaxBody int64
}

// Deps are the server's collaborators.
type Deps struct {
	SAM      SAM
	Requests Requests
	Log      *slog.Logger
	Now      func() time.Time
}

// Server serves the OAuth2 endpoints and pages.
type Server struct {
	cfg   Config
	sam   SAM
	reqs  Requests
	log   *slog.Logger
	now   func() time.Time
	pages map[string]*template.Template
}

// New checks the dependencies, parses the embedded templates and returns
// the server.
func New(cfg Config, d Deps) (*Server, error) {
	var problems []error
	if d.SAM == nil {
		problems = append(problems, errors.New("oauth: SAM is required"))
	}
	if d.Requests == nil {
		problems = append(problems, errors.New("oauth: Requests is required"))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if cfg.FlowTTL == 0 {
		cfg.FlowTTL = 10 * time.Minute
	}
	if cfg.PARTTL == 0 {
		cfg.PARTTL = 90 * time.Second
	}
	if cfg.PortalStylesheet == "" {
		cfg.PortalStylesheet = "/portal/static/style.css"
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Server{cfg: cfg, sam: d.SAM, reqs: d.Requests, log: d.Log, now: d.Now}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{"inc": func(i int) int { return i + 1 }}
	base, err := template.New("base").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return fmt.Errorf("oauth templates: %w", err)
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return err
	}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, n)
		if err != nil {
			return fmt.Errorf("oauth template %s: %w", n, err)
		}
		s.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return nil
}

// Register mounts the endpoints under Base on r (the engine's root).
func (s *Server) Register(r gin.IRouter) {
	g := r.Group(Base)
	g.GET("/authorize", s.authorize)
	g.POST("/authorize", s.authorize)
	g.POST("/authorize/login", s.login)
	g.GET("/authorize/consent", s.consentPage)
	g.POST("/authorize/consent", s.consent)
	g.POST("/authorize/otp", s.sendOTP)
	g.POST("/pushed_authorize", s.pushedAuthorize)
	g.POST("/token", s.token)
	g.POST("/revoke", s.revoke)
	static, _ := fs.Sub(assets, "static")
	g.StaticFS("/static", http.FS(static))
}

// fail renders an OAuth error body with the RFC 6749 status.
func (s *Server) fail(c *gin.Context, err error) {
	if e, ok := errs.As(err); ok && e.Code == "invalid_client" {
		if _, _, basic := c.Request.BasicAuth(); basic {
			c.Header("WWW-Authenticate", `Basic realm="sigillo"`)
		}
	}
	c.Header("Cache-Control", "no-store")
	httpx.WriteError(c, s.log, httpx.CSC, err)
}

// form parses the request's form body (and query), bounded by MaxBody.
func (s *Server) form(c *gin.Context) (url.Values, error) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBody)
	if err := c.Request.ParseForm(); err != nil {
		return nil, errs.Wrap(errs.Invalid, "Malformed form body", err)
	}
	return c.Request.PostForm, nil
}

// clientAuth authenticates the client by client_secret_basic or
// client_secret_post (exactly one of them, RFC 6749 §2.3.1).
func (s *Server) clientAuth(c *gin.Context, f url.Values) (*sam.OAuthClient, error) {
	id, secret, basic := c.Request.BasicAuth()
	if basic {
		if f.Get("client_secret") != "" {
			return nil, errs.Invalidf("Use one client authentication method only")
		}
		// RFC 6749 §2.3.1: both parts are form-urlencoded first.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, sam.ErrInvalidClient
		}
		if fid := f.Get("client_id"); fid != "" && fid != id {
			return nil, errs.Invalidf("client_id does not match the authenticated client")
		}
	} else {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	if f.Get("client_assertion") != "" {
		return nil, errs.Invalidf("client_assertion is not supported: use client_secret_basic or client_secret_post")
	}
	if id == "" || secret == "" {
		return nil, sam.ErrInvalidClient
	}
	return s.sam.AuthenticateClient(c.Request.Context(), id, secret)
}

// tokenResponse is oauth2/token's body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	CredentialID string `json:"credentialID,omitempty"`
}

// authenticatedForm reads the form of a back-channel endpoint (token,
// revoke, PAR) and authenticates the client; on failure it has answered.
func (s *Server) authenticatedForm(c *gin.Context) (url.Values, *sam.OAuthClient, bool) {
	f, err := s.form(c)
	if err == nil {
		var cl *sam.OAuthClient
		if cl, err = s.clientAuth(c, f); err == nil {
			return f, cl, true
		}
	}
	s.fail(c, err)
	return nil, nil, false
}

func (s *Server) token(c *gin.Context) {
	f, cl, ok := s.authenticatedForm(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	var (
		t   *sam.OAuthTokens
		err error
	)
	switch gt := f.Get("grant_type"); gt {
	case sam.GrantAuthorizationCode:
		t, err = s.sam.ExchangeCode(ctx, cl, f.Get("code"), f.Get("redirect_uri"), f.Get("code_verifier"))
	case sam.GrantClientCredentials:
		t, err = s.sam.ClientCredentials(ctx, cl, f.Get("scope"))
	case sam.GrantRefreshToken:
		t, err = s.sam.RefreshOAuth(ctx, cl, f.Get("refresh_token"))
	case "":
		err = errs.Invalidf("Missing parameter grant_type")
	default:
		err = errs.New(errs.Invalid, "unsupported_grant_type", "Unsupported grant_type")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.JSON(http.StatusOK, tokenResponse{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn,
		RefreshToken: t.RefreshToken, Scope: t.Scope, CredentialID: t.CredentialID})
}

func (s *Server) revoke(c *gin.Context) {
	f, cl, ok := s.authenticatedForm(c)
	if !ok {
		return
	}
	if err := s.sam.RevokeOAuth(c.Request.Context(), cl, f.Get("token"), f.Get("token_type_hint")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// requestURIPrefix is RFC 9126's form of a request_uri.
const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// parResponse is pushed_authorize's body.
type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int    `json:"expires_in"`
}

func (s *Server) pushedAuthorize(c *gin.Context) {
	f, cl, ok := s.authenticatedForm(c)
	if !ok {
		return
	}
	if f.Get("request_uri") != "" {
		s.fail(c, errs.Invalidf("request_uri is not allowed in a pushed authorization request"))
		return
	}
	ctx := c.Request.Context()
	r, _, err := parseAuthorize(ctx, s.sam, f, cl)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			err = errs.New(errs.Invalid, ae.code, ae.desc)
		}
		s.fail(c, err)
		return
	}
	handle, err := randomHandle()
	if err != nil {
		s.fail(c, err)
		return
	}
	params, err := json.Marshal(r)
	if err != nil {
		s.fail(c, errs.Wrap(errs.Internal, "Internal error", err))
		return
	}
	now := s.now()
	if err := s.reqs.PutOAuthRequest(ctx, store.OAuthRequest{Hash: hashOf(handle), ClientID: cl.ID, Params: params, Pushed: true,
		ExpiresAt: now.Add(s.cfg.PARTTL), CreatedAt: now}); err != nil {
		s.fail(c, errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", err))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, parResponse{RequestURI: requestURIPrefix + handle, ExpiresIn: int(s.cfg.PARTTL.Seconds())})
}
