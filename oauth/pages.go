package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
)

// browserCookie binds flows to the browser that started them.
const browserCookie = "sigillo_oauth"

func randomHandle() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errs.Wrap(errs.Internal, "Internal error", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// hashOf is how handles and browser binders are stored.
func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func same(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// view is what the templates get.
type view struct {
	// Lang is "en" or "it" (set by render); Title, Error and Flash are
	// English texts the layout translates.
	Lang       string
	Title      string
	Stylesheet string
	Error      string
	Flash      string
	Client     string
	Flow, CSRF string
	Username   string
	Req        *authRequest
	Cred       *sam.CredentialInfo
	// Docs are the documents as shown: label and hex digest of HashName.
	Docs     []docView
	HashName string
}

type docView struct{ Label, Hash string }

func (s *Server) render(c *gin.Context, status int, page string, v *view) {
	if s.cfg.PortalStylesheet != "-" {
		v.Stylesheet = s.cfg.PortalStylesheet
	}
	v.Lang = lang(c, v.Req)
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.Error("oauth page", "page", page, "error", err)
		c.String(http.StatusInternalServerError, "Internal server error")
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	// No form-action: Chrome applies it to the redirect to the client.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// errorPage shows an error that must not go to the client's redirect URI.
func (s *Server) errorPage(c *gin.Context, status int, msg string) {
	s.render(c, status, "error", &view{Title: "Authorization failed", Error: msg})
}

// toClient sends the browser back to the client's redirect URI with
// params (code and state, or error, error_description and state).
func (s *Server) toClient(c *gin.Context, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		s.errorPage(c, http.StatusBadRequest, "The client's redirect URI is invalid")
		return
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, u.String())
}

func (s *Server) errorToClient(c *gin.Context, r *authRequest, code, desc string) {
	s.toClient(c, r.RedirectURI, url.Values{"error": {code}, "error_description": {desc}, "state": {r.State}})
}

// authError renders a refusal of an authorization request.
func (s *Server) authFailure(c *gin.Context, err error) {
	var ae *authError
	if errors.As(err, &ae) {
		if ae.redirect {
			s.toClient(c, ae.redirectURI, url.Values{"error": {ae.code}, "error_description": {ae.desc}, "state": {ae.state}})
			return
		}
		s.errorPage(c, ae.status, ae.desc)
		return
	}
	status := http.StatusInternalServerError
	msg := "Internal error"
	if e, ok := errs.As(err); ok && (e.Kind == errs.Unavailable || e.Kind == errs.RateLimited) {
		status, msg = http.StatusServiceUnavailable, e.Msg
	}
	if status >= 500 {
		s.log.Error("oauth authorize", "error", err)
	}
	s.errorPage(c, status, msg)
}

// browser returns the browser's binder, setting the cookie when absent.
func (s *Server) browser(c *gin.Context) (string, error) {
	if v, err := c.Cookie(browserCookie); err == nil && len(v) == 43 {
		return v, nil
	}
	v, err := randomHandle()
	if err != nil {
		return "", err
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: browserCookie, Value: v, Path: Base, HttpOnly: true,
		Secure: s.cfg.SecureCookies || c.Request.TLS != nil, SameSite: http.SameSiteLaxMode})
	return v, nil
}

func (s *Server) authorize(c *gin.Context) {
	ctx := c.Request.Context()
	var q url.Values
	if c.Request.Method == http.MethodPost {
		f, err := s.form(c)
		if err != nil {
			s.errorPage(c, http.StatusBadRequest, "Malformed request")
			return
		}
		q = f
	} else {
		q = c.Request.URL.Query()
	}
	if ru := q.Get("request_uri"); ru != "" {
		var err error
		if q, err = s.pushed(ctx, q.Get("client_id"), ru); err != nil {
			s.authFailure(c, err)
			return
		}
	}
	r, cl, err := parseAuthorize(ctx, s.sam, q, nil)
	if err != nil {
		s.authFailure(c, err)
		return
	}
	b, err := s.browser(c)
	if err != nil {
		s.authFailure(c, err)
		return
	}
	flow, err1 := randomHandle()
	csrf, err2 := randomHandle()
	params, err3 := json.Marshal(r)
	if err := errors.Join(err1, err2, err3); err != nil {
		s.authFailure(c, errs.Wrap(errs.Internal, "Internal error", err))
		return
	}
	now := s.now()
	if err := s.reqs.PutOAuthRequest(ctx, store.OAuthRequest{Hash: hashOf(flow), ClientID: cl.ID, Params: params,
		BrowserHash: hashOf(b), CSRF: csrf, ExpiresAt: now.Add(s.cfg.FlowTTL), CreatedAt: now}); err != nil {
		s.authFailure(c, errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", err))
		return
	}
	s.render(c, http.StatusOK, "login", &view{Title: "Sign in", Client: cl.Name, Flow: flow, CSRF: csrf, Req: r})
}

// pushed turns a PAR request_uri into the parameters it stands for. The
// pushed request is used once.
func (s *Server) pushed(ctx context.Context, clientID, requestURI string) (url.Values, error) {
	bad := &authError{code: "invalid_request", desc: "Invalid or expired request_uri", status: http.StatusBadRequest}
	handle, ok := strings.CutPrefix(requestURI, requestURIPrefix)
	if !ok || handle == "" {
		return nil, bad
	}
	now := s.now()
	row, err := s.reqs.OAuthRequest(ctx, hashOf(handle), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, bad
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", err)
	}
	if !row.Pushed || row.ClientID != clientID {
		return nil, bad
	}
	if err := s.reqs.UseOAuthRequest(ctx, row.Hash, now); err != nil {
		return nil, bad
	}
	var r authRequest
	if err := json.Unmarshal(row.Params, &r); err != nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	return r.values(), nil
}

// values re-encodes a validated request as authorize parameters, so that
// a pushed request goes through the same checks again (the client or
// the credential may have changed since).
func (r *authRequest) values() url.Values {
	q := url.Values{"client_id": {r.ClientID}, "response_type": {"code"}, "code_challenge": {r.CodeChallenge},
		"code_challenge_method": {"S256"}, "scope": {r.Scope}}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	if r.RedirectGiven {
		q.Set("redirect_uri", r.RedirectURI)
	}
	set("state", r.State)
	set("description", r.Description)
	set("lang", r.Lang)
	if r.Scope != sam.ScopeCredential {
		return q
	}
	if r.RAR {
		q.Del("scope")
		type dd struct {
			Hash  string `json:"hash"`
			Label string `json:"label,omitempty"`
		}
		e := map[string]any{"type": "credential", "numSignatures": r.NumSignatures}
		if r.CredentialID != "" {
			e["credentialID"] = r.CredentialID
		}
		if r.SignatureQualifier != "" {
			e["signatureQualifier"] = r.SignatureQualifier
		}
		if len(r.Documents) > 0 {
			docs := make([]dd, len(r.Documents))
			for i, d := range r.Documents {
				docs[i] = dd{Hash: base64.RawURLEncoding.EncodeToString(d.Hash), Label: d.Label}
			}
			e["documentDigests"], e["hashAlgorithmOID"] = docs, r.HashOID
		}
		b, _ := json.Marshal([]any{e})
		q.Set("authorization_details", string(b))
		return q
	}
	set("credentialID", r.CredentialID)
	set("signatureQualifier", r.SignatureQualifier)
	if r.NumSignatures > 0 {
		q.Set("numSignatures", strconv.Itoa(r.NumSignatures))
	}
	if len(r.Documents) > 0 {
		hs := make([]string, len(r.Documents))
		for i, d := range r.Documents {
			hs[i] = base64.RawURLEncoding.EncodeToString(d.Hash)
		}
		q.Set("hashes", strings.Join(hs, ","))
		q.Set("hashAlgorithmOID", r.HashOID)
	}
	return q
}

// flow is a live browser flow, checked against the browser and the form.
type flow struct {
	handle string
	row    *store.OAuthRequest
	req    authRequest
}

// loadFlow returns the flow named by the form (or query) if it is live
// and belongs to this browser; with checkCSRF, the form's token must match.
func (s *Server) loadFlow(c *gin.Context, handle, csrf string, checkCSRF bool) (*flow, bool) {
	if handle == "" {
		s.errorPage(c, http.StatusBadRequest, "This sign-in page is not valid. Start again from the application.")
		return nil, false
	}
	row, err := s.reqs.OAuthRequest(c.Request.Context(), hashOf(handle), s.now())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.errorPage(c, http.StatusBadRequest, "This sign-in page expired or was already used. Start again from the application.")
		} else {
			s.errorPage(c, http.StatusServiceUnavailable, "The service is temporarily unavailable")
		}
		return nil, false
	}
	b, err := c.Cookie(browserCookie)
	if err != nil || row.Pushed || !same(hashOf(b), row.BrowserHash) || (checkCSRF && !same(csrf, row.CSRF)) {
		s.errorPage(c, http.StatusForbidden, "This request did not come from the sign-in page. Start again from the application.")
		return nil, false
	}
	f := &flow{handle: handle, row: row}
	if err := json.Unmarshal(row.Params, &f.req); err != nil {
		s.errorPage(c, http.StatusInternalServerError, "Internal error")
		return nil, false
	}
	return f, true
}

func (s *Server) clientName(ctx context.Context, id string) string {
	if cl, err := s.sam.OAuthClient(ctx, id); err == nil {
		return cl.Name
	}
	return id
}

func (s *Server) login(c *gin.Context) {
	f, err := s.form(c)
	if err != nil {
		s.errorPage(c, http.StatusBadRequest, "Malformed request")
		return
	}
	fl, ok := s.loadFlow(c, f.Get("flow"), f.Get("csrf"), true)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if fl.row.UserID != "" {
		c.Redirect(http.StatusSeeOther, Base+"/authorize/consent?flow="+url.QueryEscape(fl.handle))
		return
	}
	username := strings.TrimSpace(f.Get("username"))
	userID, err := s.sam.OAuthLogin(ctx, username, f.Get("password"))
	if err != nil {
		v := &view{Title: "Sign in", Client: s.clientName(ctx, fl.req.ClientID), Flow: fl.handle, CSRF: fl.row.CSRF, Req: &fl.req, Username: username}
		status := http.StatusBadRequest
		switch e, _ := errs.As(err); {
		case e == nil || e.Kind == errs.Internal || e.Kind == errs.Unavailable:
			s.log.Error("oauth login", "error", err)
			status, v.Error = http.StatusServiceUnavailable, "The service is temporarily unavailable"
		case e.Kind == errs.RateLimited:
			status, v.Error = http.StatusTooManyRequests, "Too many attempts: retry later"
		default:
			v.Error = e.Msg
		}
		s.render(c, status, "login", v)
		return
	}
	csrf, err := randomHandle()
	if err != nil {
		s.errorPage(c, http.StatusInternalServerError, "Internal error")
		return
	}
	// A new synchronizer token once logged in: a token seen before login
	// is worth nothing after.
	if err := s.reqs.LoginOAuthRequest(ctx, fl.row.Hash, userID, csrf, s.now()); err != nil {
		s.errorPage(c, http.StatusBadRequest, "This sign-in page expired or was already used. Start again from the application.")
		return
	}
	c.Redirect(http.StatusSeeOther, Base+"/authorize/consent?flow="+url.QueryEscape(fl.handle))
}

// pickCredential settles the credential of a request that named a
// signatureQualifier: the holder's one credential of that kind (sam
// refuses none or several), or the named credential if it is of that
// kind; it becomes fl.req.CredentialID, and so the token's credentialID.
// It runs on every step of the logged-in flow rather than being stored:
// credentials are never deleted, so the one picked cannot change into
// another between the consent page and the consent (a new credential of
// the same kind makes the choice ambiguous and ends the flow). A failure
// ends the flow with invalid_request to the client and reports false.
func (s *Server) pickCredential(c *gin.Context, fl *flow) bool {
	q := fl.req.SignatureQualifier
	if fl.req.Scope != sam.ScopeCredential || q == "" {
		return true
	}
	ctx := c.Request.Context()
	p := &sam.Principal{UserID: fl.row.UserID}
	var ci *sam.CredentialInfo
	var err error
	if fl.req.CredentialID == "" {
		ci, err = s.sam.CredentialByQualifier(ctx, p, q)
	} else if ci, err = s.sam.Credential(ctx, p, fl.req.CredentialID); err == nil && ci.SignatureQualifier != q {
		err = errs.Invalidf("Invalid parameter signatureQualifier: the credential makes %s signatures", ci.SignatureQualifier)
	}
	if err == nil && ci.SCAL >= 2 && len(fl.req.Documents) == 0 {
		err = errs.Invalidf("Missing parameter hashes: the credential requires SCAL 2")
	}
	if err != nil {
		if k := errs.KindOf(err); k != errs.Invalid && k != errs.NotFound {
			s.authFailure(c, err)
			return false
		}
		_ = s.reqs.UseOAuthRequest(ctx, fl.row.Hash, s.now())
		e, _ := errs.As(err)
		s.errorToClient(c, &fl.req, "invalid_request", e.Msg)
		return false
	}
	fl.req.CredentialID = ci.ID
	return true
}

// consentView builds the consent page for a logged-in flow; for scope
// credential it loads the credential as its owner sees it. A credential
// the holder does not own ends the flow with an error to the client.
func (s *Server) consentView(c *gin.Context, fl *flow) (*view, bool) {
	ctx := c.Request.Context()
	v := &view{Title: "Authorize", Client: s.clientName(ctx, fl.req.ClientID), Flow: fl.handle, CSRF: fl.row.CSRF, Req: &fl.req}
	if fl.req.Scope != sam.ScopeCredential {
		return v, true
	}
	ci, err := s.sam.Credential(ctx, &sam.Principal{UserID: fl.row.UserID}, fl.req.CredentialID)
	if err != nil {
		if k := errs.KindOf(err); k == errs.NotFound || k == errs.Invalid {
			_ = s.reqs.UseOAuthRequest(ctx, fl.row.Hash, s.now())
			s.errorToClient(c, &fl.req, "invalid_request", "Invalid parameter credentialID")
			return nil, false
		}
		s.authFailure(c, err)
		return nil, false
	}
	v.Cred = ci
	if len(fl.req.Documents) > 0 {
		v.HashName = fl.req.hashAlgo().String()
	}
	for _, d := range fl.req.Documents {
		v.Docs = append(v.Docs, docView{Label: d.Label, Hash: hex.EncodeToString(d.Hash)})
	}
	return v, true
}

func (s *Server) consentPage(c *gin.Context) {
	fl, ok := s.loadFlow(c, c.Query("flow"), "", false)
	if !ok {
		return
	}
	if fl.row.UserID == "" {
		s.render(c, http.StatusOK, "login", &view{Title: "Sign in", Client: s.clientName(c.Request.Context(), fl.req.ClientID),
			Flow: fl.handle, CSRF: fl.row.CSRF, Req: &fl.req})
		return
	}
	if !s.pickCredential(c, fl) {
		return
	}
	if v, ok := s.consentView(c, fl); ok {
		s.render(c, http.StatusOK, "consent", v)
	}
}

// loggedInFlow loads the flow of a consent-page form.
func (s *Server) loggedInFlow(c *gin.Context) (*flow, url.Values, bool) {
	f, err := s.form(c)
	if err != nil {
		s.errorPage(c, http.StatusBadRequest, "Malformed request")
		return nil, nil, false
	}
	fl, ok := s.loadFlow(c, f.Get("flow"), f.Get("csrf"), true)
	if !ok {
		return nil, nil, false
	}
	if fl.row.UserID == "" {
		s.errorPage(c, http.StatusForbidden, "Sign in first. Start again from the application.")
		return nil, nil, false
	}
	return fl, f, true
}

func (s *Server) consent(c *gin.Context) {
	fl, f, ok := s.loggedInFlow(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	now := s.now()
	if f.Get("action") != "allow" {
		if err := s.reqs.UseOAuthRequest(ctx, fl.row.Hash, now); err != nil {
			s.errorPage(c, http.StatusBadRequest, "This request was already completed.")
			return
		}
		s.errorToClient(c, &fl.req, "access_denied", "The user denied the request")
		return
	}
	if !s.pickCredential(c, fl) {
		return
	}
	p := &sam.Principal{UserID: fl.row.UserID}
	code, err := s.sam.IssueCode(ctx, p, fl.req.codeRequest(strings.TrimSpace(f.Get("pin")), strings.TrimSpace(f.Get("otp"))))
	if err != nil {
		s.consentFailed(c, fl, err)
		return
	}
	if err := s.reqs.UseOAuthRequest(ctx, fl.row.Hash, now); err != nil {
		s.errorPage(c, http.StatusBadRequest, "This request was already completed.")
		return
	}
	s.toClient(c, fl.req.RedirectURI, url.Values{"code": {code}, "state": {fl.req.State}})
}

// consentFailed shows a wrong PIN or OTP on the page (the holder may try
// again; sam counts the tries); anything else that the holder cannot fix
// here ends the flow with access_denied to the client.
func (s *Server) consentFailed(c *gin.Context, fl *flow, err error) {
	ctx := c.Request.Context()
	e, _ := errs.As(err)
	switch {
	case errors.Is(err, sam.ErrInvalidPIN), errors.Is(err, sam.ErrInvalidOTP):
		if v, ok := s.consentView(c, fl); ok {
			v.Error = e.Msg
			s.render(c, http.StatusBadRequest, "consent", v)
		}
		return
	case e != nil && e.Kind == errs.RateLimited:
		if v, ok := s.consentView(c, fl); ok {
			v.Error = "Too many attempts: retry later"
			s.render(c, http.StatusTooManyRequests, "consent", v)
		}
		return
	case e == nil || e.Kind == errs.Internal || e.Kind == errs.Unavailable:
		s.authFailure(c, err)
		return
	}
	_ = s.reqs.UseOAuthRequest(ctx, fl.row.Hash, s.now())
	code := "access_denied"
	if e.Kind == errs.Invalid && e.Code == "" {
		code = "invalid_request"
	}
	if errors.Is(err, sam.ErrPINLocked) || errors.Is(err, sam.ErrOTPLocked) {
		code = "access_denied"
	}
	s.errorToClient(c, &fl.req, code, e.Msg)
}

func (s *Server) sendOTP(c *gin.Context) {
	fl, _, ok := s.loggedInFlow(c)
	if !ok {
		return
	}
	if fl.req.Scope != sam.ScopeCredential {
		s.errorPage(c, http.StatusBadRequest, "No one-time code is needed here.")
		return
	}
	if !s.pickCredential(c, fl) {
		return
	}
	ctx := c.Request.Context()
	err := s.sam.SendOTPFor(ctx, &sam.Principal{UserID: fl.row.UserID}, fl.req.CredentialID, fl.req.hashes())
	v, ok := s.consentView(c, fl)
	if !ok {
		return
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusBadRequest
		if e, ok := errs.As(err); ok && e.Kind == errs.RateLimited {
			status = http.StatusTooManyRequests
		}
		v.Error = "The code could not be sent"
		if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
			v.Error = e.Msg
		}
	} else {
		v.Flash = "We sent a one-time code by SMS to your phone."
	}
	s.render(c, status, "consent", v)
}
