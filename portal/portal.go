// Package portal is the holder's self-care portal: a JSON API under
// /selfcare/v1 and server-rendered pages under /portal, both thin layers
// over the same domain calls (enroll for registration and the certificate
// request, sam for everything that touches a credential).
//
// Sessions: a browser session is a random id in an HttpOnly, SameSite=Lax
// cookie (Secure under TLS), stored only as its SHA-256 in the store with
// an expiry, so any replica serves it. Cookie-authenticated changes need
// the session's synchronizer token (form field "csrf" or header
// X-CSRF-Token); forms shown before login use a double-submit cookie.
// Apps may use a bearer access token from CSC auth/login instead (no CSRF:
// a bearer header is never sent by a browser on its own).
//
// Pages need no JavaScript except the live password-policy feedback.
package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// SAM is the part of the signature activation module the portal calls.
type SAM interface {
	LoginHolder(ctx context.Context, userID, password string) (*sam.HolderLogin, error)
	Authenticate(ctx context.Context, accessToken string) (*sam.Principal, error)
	ChangePassword(ctx context.Context, username, oldPassword, newPassword string) error
	HolderUser(ctx context.Context, p *sam.Principal) (*sam.UserView, error)
	ListCredentials(ctx context.Context, p *sam.Principal) ([]sam.CredentialInfo, error)
	SendOTP(ctx context.Context, p *sam.Principal, credentialID string) error
	TestOTP(ctx context.Context, p *sam.Principal, credentialID, code string) error
	ChangePIN(ctx context.Context, p *sam.Principal, credentialID, currentPIN, newPIN, newPINConfirm, otpCode string) error
	UnblockPIN(ctx context.Context, p *sam.Principal, credentialID, puk, newPIN, newPINConfirm, otpCode string) error
	ActivateWithPUK(ctx context.Context, p *sam.Principal, credentialID, puk, newPIN, newPINConfirm, otpCode string) error
	SuspendCredential(ctx context.Context, p *sam.Principal, credentialID string) error
	ReactivateCredential(ctx context.Context, p *sam.Principal, credentialID, pin, otpCode string) error
	RevokeCredential(ctx context.Context, p *sam.Principal, credentialID string) error
	RenewCredential(ctx context.Context, p *sam.Principal, credentialID, pin, otpCode string) (string, error)
	CredentialHistory(ctx context.Context, p *sam.Principal, credentialID string, page, size int) (*sam.HistoryPage, error)
	SignatureCounters(ctx context.Context, p *sam.Principal, credentialID string) (*sam.Counters, error)
	ChangePhone(ctx context.Context, p *sam.Principal, credentialID, newPhone, code string) error
	Emergency(ctx context.Context, r sam.EmergencyRequest) error
	StartTOTP(ctx context.Context, p *sam.Principal, credentialID string) (*sam.TOTPEnrollment, error)
	ConfirmTOTP(ctx context.Context, p *sam.Principal, credentialID, pending, pin, currentOTP, newCode string) error
}

var _ SAM = (*sam.Service)(nil)

// Enroll is the part of enrollment the portal calls.
type Enroll interface {
	Register(ctx context.Context, r enroll.Registration) (string, error)
	VerifyEmail(ctx context.Context, token string) (string, error)
	ResendVerification(ctx context.Context, email, clientIP string) error
	ResolveLogin(ctx context.Context, login string) (string, error)
	Account(ctx context.Context, userID string) (*store.Account, error)
	SubmitRequest(ctx context.Context, userID string, in enroll.RequestInput) (*store.CertRequest, error)
	CurrentRequest(ctx context.Context, userID string) (*store.CertRequest, error)
	SendContractOTP(ctx context.Context, userID string) error
	Complete(ctx context.Context, userID string, c enroll.Completion) (*enroll.Issued, error)
	NewEnvelope(ctx context.Context, userID, credentialID, pin, otpCode, passphrase, passphraseConfirm string) (string, error)
}

var _ Enroll = (*enroll.Service)(nil)

// Sessions is where browser sessions live (*store.Store).
type Sessions interface {
	PutSession(ctx context.Context, x store.Session) error
	Session(ctx context.Context, hash string, now time.Time) (*store.Session, error)
	ClearSessionMustChange(ctx context.Context, hash string) error
	DeleteSession(ctx context.Context, hash string) error
}

var _ Sessions = (*store.Store)(nil)

// Config tunes the portal.
type Config struct {
	// SessionTTL is how long a browser session lasts (default 30 minutes).
	SessionTTL time.Duration
	// SecureCookies forces the Secure flag even when the request did not
	// arrive over TLS (behind a TLS-terminating proxy).
	SecureCookies bool
}

// Deps are the portal's collaborators.
type Deps struct {
	SAM      SAM
	Enroll   Enroll
	Sessions Sessions
	Log      *slog.Logger
	Now      func() time.Time
}

// Portal serves the self-care API and pages.
type Portal struct {
	cfg   Config
	sam   SAM
	enr   Enroll
	sess  Sessions
	log   *slog.Logger
	now   func() time.Time
	pages map[string]*template.Template
}

// New parses the embedded templates and returns the portal.
func New(cfg Config, d Deps) (*Portal, error) {
	var problems []error
	if d.SAM == nil {
		problems = append(problems, errors.New("portal: SAM is required"))
	}
	if d.Enroll == nil {
		problems = append(problems, errors.New("portal: Enroll is required"))
	}
	if d.Sessions == nil {
		problems = append(problems, errors.New("portal: Sessions is required"))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 30 * time.Minute
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	p := &Portal{cfg: cfg, sam: d.SAM, enr: d.Enroll, sess: d.Sessions, log: d.Log, now: d.Now}
	if err := p.parseTemplates(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Portal) parseTemplates() error {
	funcs := template.FuncMap{
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, errors.New("dict: odd arguments")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, errors.New("dict: key not a string")
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"date": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"add": func(a, b int) int { return a + b },
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return err
	}
	p.pages = map[string]*template.Template{}
	base, err := template.New("base").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return fmt.Errorf("portal templates: %w", err)
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, n)
		if err != nil {
			return fmt.Errorf("portal template %s: %w", n, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		p.pages[name] = t
	}
	return nil
}

// Register mounts /selfcare/v1/... and /portal/... on r (the engine's root).
func (p *Portal) Register(r gin.IRouter) {
	static, _ := fs.Sub(assets, "static")
	r.StaticFS("/portal/static", http.FS(static))
	p.registerAPI(r.Group("/selfcare/v1"))
	p.registerPages(r.Group("/portal"))
}

const (
	sessionCookie = "sigillo_session"
	csrfCookie    = "sigillo_csrf"
	langCookie    = "sigillo_lang"
	csrfHeader    = "X-CSRF-Token"
	ctxSession    = "portal.session"
	ctxPrincipal  = "portal.principal"
)

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (p *Portal) secure(c *gin.Context) bool { return p.cfg.SecureCookies || c.Request.TLS != nil }

func (p *Portal) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: p.secure(c), SameSite: http.SameSiteLaxMode})
}

// startSession creates a session for a successful login and sets the cookie.
func (p *Portal) startSession(c *gin.Context, userID string, mustChange bool) (*store.Session, error) {
	id := randomToken()
	now := p.now()
	x := store.Session{Hash: hashToken(id), UserID: userID, CSRF: randomToken(), MustChange: mustChange,
		ExpiresAt: now.Add(p.cfg.SessionTTL), CreatedAt: now}
	if err := p.sess.PutSession(c.Request.Context(), x); err != nil {
		return nil, errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", err)
	}
	p.setCookie(c, sessionCookie, id, int(p.cfg.SessionTTL.Seconds()))
	return &x, nil
}

// session returns the request's live session, or nil.
func (p *Portal) session(c *gin.Context) *store.Session {
	if v, ok := c.Get(ctxSession); ok {
		s, _ := v.(*store.Session)
		return s
	}
	var out *store.Session
	if ck, err := c.Cookie(sessionCookie); err == nil && ck != "" && len(ck) <= 128 {
		s, err := p.sess.Session(c.Request.Context(), hashToken(ck), p.now())
		if err == nil {
			out = s
		} else if !errors.Is(err, store.ErrNotFound) {
			p.log.Error("portal session lookup", "error", err)
		}
	}
	c.Set(ctxSession, out)
	return out
}

func (p *Portal) endSession(c *gin.Context) {
	if s := p.session(c); s != nil {
		if err := p.sess.DeleteSession(c.Request.Context(), s.Hash); err != nil {
			p.log.Error("portal logout", "error", err)
		}
	}
	p.setCookie(c, sessionCookie, "", -1)
	c.Set(ctxSession, (*store.Session)(nil))
}

// anonCSRF returns the double-submit token for forms shown before login,
// setting its cookie when missing.
func (p *Portal) anonCSRF(c *gin.Context) string {
	if v, err := c.Cookie(csrfCookie); err == nil && len(v) == 64 {
		return v
	}
	v := randomToken()
	p.setCookie(c, csrfCookie, v, 0)
	// Make it visible to the rest of this request too.
	c.Request.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return v
}

// checkAnonCSRF checks the double-submit token of a pre-login form.
func (p *Portal) checkAnonCSRF(c *gin.Context, got string) bool {
	v, err := c.Cookie(csrfCookie)
	return err == nil && sameToken(v, got)
}

func principalOf(s *store.Session) *sam.Principal {
	return &sam.Principal{UserID: s.UserID, TokenID: "portal:" + s.Hash[:16]}
}

// clientIP is the caller's address for rate limits (gin honours the
// engine's trusted proxies).
func clientIP(c *gin.Context) string { return c.ClientIP() }
