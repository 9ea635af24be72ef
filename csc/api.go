package csc

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
)

// Service is what the CSC API needs from the signature activation module.
// *sam.Service implements it; tests may swap it.
type Service interface {
	Login(ctx context.Context, username, password string, rememberMe bool) (*sam.Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (*sam.Tokens, error)
	Authenticate(ctx context.Context, accessToken string) (*sam.Principal, error)
	RevokeToken(ctx context.Context, p *sam.Principal, token, hint string) error
	ListCredentials(ctx context.Context, p *sam.Principal) ([]sam.CredentialInfo, error)
	Credential(ctx context.Context, p *sam.Principal, credentialID string) (*sam.CredentialInfo, error)
	CredentialByQualifier(ctx context.Context, p *sam.Principal, qualifier string) (*sam.CredentialInfo, error)
	SendOTP(ctx context.Context, p *sam.Principal, credentialID string) error
	Authorize(ctx context.Context, p *sam.Principal, r sam.AuthorizeRequest) (*sam.SAD, error)
	ExtendTransaction(ctx context.Context, p *sam.Principal, credentialID, sad string, hashes [][]byte, h crypto.Hash) (*sam.SAD, error)
	SignHash(ctx context.Context, p *sam.Principal, r sam.SignRequest) ([][]byte, error)
}

// Timestamper is the CA's RFC 3161 authority, used by signatures/timestamp.
// It returns a DER TimeStampToken over digest.
type Timestamper interface {
	Timestamp(ctx context.Context, digest []byte, h crypto.Hash) ([]byte, error)
}

// NonceTimestamper is implemented by a Timestamper that can put the
// client's nonce in the token. Without it, requests carrying a nonce are
// refused: the spec says the nonce SHALL appear in the token.
type NonceTimestamper interface {
	TimestampNonce(ctx context.Context, digest []byte, h crypto.Hash, nonce *big.Int) ([]byte, error)
}

// Options configures the API. Zero values take the documented defaults.
type Options struct {
	// Log receives request failures (5xx at error level). Nil discards.
	Log *slog.Logger
	// Registerer receives the signature counter. Nil registers nothing.
	Registerer prometheus.Registerer
	// TSA serves signatures/timestamp; nil leaves the method out.
	TSA Timestamper
	// SignDoc serves v2 signatures/signDoc (*signdoc.Service); nil leaves
	// it 501.
	SignDoc DocSigner
	// MaxHashes bounds the hashes of one request (default DefaultMaxHashes).
	MaxHashes int
	// MaxBody bounds request bodies in bytes (default httpx.MaxBody, 8 MiB).
	MaxBody int64
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Name, Logo (a URI), Region (ISO 3166-1 alpha-2), Lang and
	// Description are what info tells clients about the service.
	Name, Logo, Region, Lang, Description string
	// Async, when set, serves operationMode "A" on v2 signHash and
	// signDoc and mounts v2 signatures/signPolling (csc/async.go).
	Async AsyncRunner
	// Idempotency, when set, honours the Idempotency-Key header on
	// signHash and signDoc for IdempotencyTTL (default 24h).
	Idempotency    IdempotencyStore
	IdempotencyTTL time.Duration
	// OAuth2URL, when set, is the base URI of the OAuth2 authorization
	// server (package oauth: PublicURL + "/csc/v2/oauth2"); v2 info then
	// advertises it as oauth2, with authType oauth2code and oauth2client.
	OAuth2URL string
}

// API serves the CSC API. Create it with New, mount it with Register.
type API struct {
	svc     Service
	opts    Options
	log     *slog.Logger
	metrics *metrics
	keys    *keyCache
}

// New returns the API over svc. It panics if the signature counter cannot
// be registered (a duplicate registration is a wiring bug).
func New(svc Service, opts Options) *API {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxHashes <= 0 {
		opts.MaxHashes = DefaultMaxHashes
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = httpx.MaxBody
	}
	if opts.Name == "" {
		opts.Name = "sigillo"
	}
	if opts.Lang == "" {
		opts.Lang = "en-US"
	}
	if opts.Description == "" {
		opts.Description = "sigillo remote signing service"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &API{svc: svc, opts: opts, log: opts.Log, metrics: newMetrics(opts.Registerer), keys: newKeyCache(opts.Now)}
}

// Register mounts /csc/v1 and /csc/v2 under r.
func (a *API) Register(r gin.IRouter) {
	for _, d := range []*dialect{dialectV1, dialectV2} {
		v := &version{a: a, d: d}
		g := r.Group(fmt.Sprintf("/csc/v%d", d.version))
		g.GET("/info", v.info)
		g.POST("/info", v.info)
		g.POST("/auth/login", v.login)
		auth := g.Group("", a.authenticate)
		auth.POST("/auth/revoke", v.revoke)
		auth.POST("/credentials/list", a.aliasUserID(v), v.list)
		auth.POST("/credentials/info", v.credInfo)
		auth.POST("/credentials/authorize", v.authorize)
		auth.POST("/credentials/extendTransaction", v.extend)
		auth.POST("/signatures/signHash", a.idempotent("signHash", func() int64 { return a.opts.MaxBody }), a.asyncHash(v), v.signHash)
		if d.version == 1 {
			auth.POST("/credentials/sendOTP", v.sendOTP)
		} else {
			auth.POST("/credentials/getChallenge", v.sendOTP)
		}
		if a.opts.TSA != nil {
			auth.POST("/signatures/timestamp", v.timestamp)
		}
		// A method we do not implement is 501 in the CSC shape, not gin's
		// plain-text 404 (clients probe, e.g. signDoc).
		if d.version == 2 && (a.opts.Async != nil || a.opts.SignDoc != nil) {
			var sync gin.HandlerFunc = notImplemented
			if a.opts.SignDoc != nil {
				sync = a.signDoc(a.opts.SignDoc)
			}
			auth.POST("/signatures/signDoc", a.signDocChain(sync)...)
		} else {
			g.POST("/signatures/signDoc", notImplemented)
		}
		if d.version == 2 && a.opts.Async != nil {
			auth.POST("/signatures/signPolling", a.signPolling)
		} else {
			g.POST("/signatures/signPolling", notImplemented)
		}
		g.POST("/credentials/authorizeCheck", notImplemented)
	}
}

// methods lists what info advertises for a version: exactly the routes
// Register mounts (info itself may be left out, CSC.md §4).
func (a *API) methods(d *dialect) []string {
	m := []string{"auth/login", "auth/revoke", "credentials/list", "credentials/info",
		"credentials/authorize", "credentials/extendTransaction", "signatures/signHash"}
	if d.version == 1 {
		m = append(m, "credentials/sendOTP")
	} else {
		m = append(m, "credentials/getChallenge")
	}
	if a.opts.TSA != nil {
		m = append(m, "signatures/timestamp")
	}
	if d.version == 2 && a.opts.SignDoc != nil {
		m = append(m, "signatures/signDoc")
	}
	if d.version == 2 && a.opts.Async != nil {
		m = append(m, "signatures/signPolling")
	}
	return m
}

func notImplemented(c *gin.Context) {
	c.JSON(http.StatusNotImplemented, httpx.ErrorBody{Error: "not_implemented", Description: "Method not implemented"})
}

// principalKey is where authenticate leaves the caller in the gin context.
const principalKey = "csc.principal"

// authenticate resolves the Bearer token. A malformed header is 400
// invalid_request; a missing, bad or expired token is 401.
func (a *API) authenticate(c *gin.Context) {
	tok, err := httpx.Bearer(c.Request)
	if err != nil {
		httpx.WriteError(c, a.log, httpx.CSC, err)
		return
	}
	p, err := a.svc.Authenticate(c.Request.Context(), tok)
	if err != nil {
		httpx.WriteError(c, a.log, httpx.CSC, err)
		return
	}
	if p == nil {
		httpx.WriteError(c, a.log, httpx.CSC, errs.New(errs.Internal, "", "authenticate returned no principal"))
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

func principal(c *gin.Context) *sam.Principal {
	p, _ := c.Get(principalKey)
	return p.(*sam.Principal)
}

// readBody reads the request body, bounded by MaxBody.
func (a *API) readBody(c *gin.Context) ([]byte, error) {
	return readBounded(c, a.opts.MaxBody, "")
}

// readBounded reads the request body, at most limit bytes: every route
// bounds what it buffers so that a client cannot make us hold more
// memory than the route needs. A longer body is an invalid_request that
// names the limit, followed by why when why is not empty; a body that
// cannot be read is an invalid_request too.
func readBounded(c *gin.Context, limit int64, why string) ([]byte, error) {
	if c.Request.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			return nil, errs.Wrap(errs.Invalid, "Unreadable request body", err)
		}
		if why != "" {
			return nil, errs.Invalidf("Request body larger than %d bytes: %s", limit, why)
		}
		return nil, errs.Invalidf("Request body larger than %d bytes", limit)
	}
	return data, nil
}

// Production passes *sam.Service.
var _ Service = (*sam.Service)(nil)
