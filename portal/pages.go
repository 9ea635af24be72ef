package portal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
)

// view is what every page template gets.
type view struct {
	Lang     string
	Title    string
	CSRF     string
	UserID   string
	LoggedIn bool
	// Flash is a success message; Error a page-level problem.
	Flash, Error string
	// Errors are translated messages per field; Form the values to show
	// again (never secrets).
	Errors map[string]string
	Form   map[string]string
	Data   map[string]any
	Path   string
	tr     map[string]string
}

// T translates a message key (English when the key has no translation).
func (v *view) T(key string) string {
	if s, ok := v.tr[key]; ok {
		return s
	}
	if s, ok := dict["en"][key]; ok {
		return s
	}
	return key
}

// V returns a submitted form value.
func (v *view) V(name string) string { return v.Form[name] }

// Err returns the message for a field.
func (v *view) Err(name string) string { return v.Errors[name] }

// fieldError is one entry of the error summary at the top of a form.
type fieldError struct{ Field, Label, Msg string }

// ErrorList is the error summary: every field problem with a link to the
// field, so keyboard and screen-reader users can jump to it.
func (v *view) ErrorList() []fieldError {
	out := make([]fieldError, 0, len(v.Errors))
	for f, m := range v.Errors {
		label := v.T("f." + f)
		if label == "f."+f {
			label = ""
		}
		out = append(out, fieldError{Field: f, Label: label, Msg: m})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func (p *Portal) lang(c *gin.Context) string {
	if l, err := c.Cookie(langCookie); err == nil && (l == "it" || l == "en") {
		return l
	}
	if strings.HasPrefix(strings.ToLower(c.GetHeader("Accept-Language")), "it") {
		return "it"
	}
	return "en"
}

func (p *Portal) newView(c *gin.Context, title string) *view {
	l := p.lang(c)
	v := &view{Lang: l, Title: title, Errors: map[string]string{}, Form: map[string]string{}, Data: map[string]any{},
		Path: c.Request.URL.Path, tr: dict[l]}
	if s := p.session(c); s != nil {
		v.LoggedIn, v.UserID, v.CSRF = true, s.UserID, s.CSRF
	} else {
		v.CSRF = p.anonCSRF(c)
	}
	if c.Query("sent") == "1" {
		v.Flash = v.T("flash.otp_sent")
	}
	return v
}

func (p *Portal) render(c *gin.Context, status int, page string, v *view) {
	t, ok := p.pages[page]
	if !ok {
		p.log.Error("portal: no template", "page", page)
		c.String(http.StatusInternalServerError, "Internal error")
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		p.log.Error("portal: render", "page", page, "error", err)
		c.String(http.StatusInternalServerError, "Internal error")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("X-Frame-Options", "DENY")
	c.Header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// msg translates a domain error's client message.
func (v *view) msg(err error) string {
	e, ok := errs.As(err)
	if !ok {
		return v.T("err.internal")
	}
	if e.Kind == errs.Internal {
		return v.T("err.internal")
	}
	if s, ok := v.tr["msg."+e.Msg]; ok {
		return s
	}
	if s, ok := dict["en"]["msg."+e.Msg]; ok {
		return s
	}
	return e.Msg
}

// fail shows err on the page: field problems next to their fields, the
// rest at the top. It returns the status to answer with.
func (v *view) fail(err error, pinField string) int {
	var fe *enroll.FieldError
	if errors.As(err, &fe) {
		for f, k := range fe.Fields {
			v.Errors[f] = v.T("err." + k)
		}
		v.Error = v.T("err.form")
		return http.StatusBadRequest
	}
	st, _ := httpx.Status(err, httpx.REST)
	if f := fieldOf(err, pinField); f != "" {
		v.Errors[f] = v.msg(err)
		v.Error = v.T("err.form")
		return st
	}
	v.Error = v.msg(err)
	return st
}

func (p *Portal) registerPages(r gin.IRouter) {
	r.GET("", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/portal/home") })
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/portal/home") })
	r.GET("/lang", p.pageLang)
	r.GET("/register", p.pageRegister)
	r.POST("/register", p.pageRegister)
	r.GET("/verify", p.pageVerify)
	r.GET("/verify/resend", p.pageResend)
	r.POST("/verify/resend", p.pageResend)
	r.GET("/login", p.pageLogin)
	r.POST("/login", p.pageLogin)
	r.GET("/emergency", p.pageEmergency)
	r.POST("/emergency", p.pageEmergency)

	a := r.Group("", p.pageAuth)
	a.POST("/logout", p.pageLogout)
	a.GET("/home", p.pageHome)
	a.GET("/password", p.pagePassword)
	a.POST("/password", p.pagePassword)
	a.GET("/request", p.pageRequest)
	a.POST("/request", p.pageRequest)
	a.POST("/request/otp", p.pageRequestOTP)
	a.POST("/request/complete", p.pageComplete)
	a.POST("/otp/send", p.pageSendOTP)
	a.GET("/pin", p.credPage("pin"))
	a.POST("/pin", p.credPage("pin"))
	a.GET("/unblock", p.credPage("unblock"))
	a.POST("/unblock", p.credPage("unblock"))
	a.GET("/activate", p.credPage("activate"))
	a.POST("/activate", p.credPage("activate"))
	a.GET("/reactivate", p.credPage("reactivate"))
	a.POST("/reactivate", p.credPage("reactivate"))
	a.GET("/renew", p.credPage("renew"))
	a.POST("/renew", p.credPage("renew"))
	a.GET("/envelope", p.credPage("envelope"))
	a.POST("/envelope", p.credPage("envelope"))
	a.GET("/suspend", p.credPage("suspend"))
	a.POST("/suspend", p.credPage("suspend"))
	a.GET("/revoke", p.credPage("revoke"))
	a.POST("/revoke", p.credPage("revoke"))
	a.GET("/otp", p.credPage("otp"))
	a.POST("/otp", p.credPage("otp"))
	a.POST("/phone", p.credPage("phone"))
	a.POST("/totp/start", p.credPage("totpstart"))
	a.POST("/totp", p.credPage("totp"))
	a.GET("/history", p.pageHistory)
}

// pageAuth sends visitors without a session to the login page, sessions
// that must change the password to that page, and refuses a POST whose
// CSRF token is missing or wrong (nothing changes).
func (p *Portal) pageAuth(c *gin.Context) {
	s := p.session(c)
	if s == nil {
		c.Redirect(http.StatusSeeOther, "/portal/login")
		c.Abort()
		return
	}
	if c.Request.Method == http.MethodPost && !sameToken(c.PostForm("csrf"), s.CSRF) {
		p.csrfFailed(c)
		return
	}
	if s.MustChange && c.FullPath() != "/portal/password" && c.FullPath() != "/portal/logout" {
		c.Redirect(http.StatusSeeOther, "/portal/password")
		c.Abort()
		return
	}
	c.Set(ctxPrincipal, principalOf(s))
	c.Next()
}

func (p *Portal) csrfFailed(c *gin.Context) {
	v := p.newView(c, "title.error")
	v.Error = v.T("err.csrf")
	p.render(c, http.StatusBadRequest, "error", v)
	c.Abort()
}

// safeBack accepts only local portal paths as redirect targets.
func safeBack(s string) string {
	if !strings.HasPrefix(s, "/portal/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n") || len(s) > 200 {
		return "/portal/home"
	}
	return s
}

func (p *Portal) pageLang(c *gin.Context) {
	l := c.Query("to")
	if l != "it" {
		l = "en"
	}
	p.setCookie(c, langCookie, l, 365*24*3600)
	c.Redirect(http.StatusSeeOther, safeBack(c.Query("back")))
}

// keep copies the named submitted values into the view.
func keep(c *gin.Context, v *view, names ...string) {
	for _, n := range names {
		v.Form[n] = c.PostForm(n)
	}
}

func (p *Portal) pageRegister(c *gin.Context) {
	v := p.newView(c, "title.register")
	v.Data["Countries"] = enroll.Countries
	v.Data["Rules"] = []string{sam.RuleLength, sam.RuleUpper, sam.RuleLower, sam.RuleDigit, sam.RuleSpecial, sam.RuleRepeated}
	if c.Request.Method == http.MethodGet {
		v.Form["country"] = "IT"
		p.render(c, http.StatusOK, "register", v)
		return
	}
	keep(c, v, "email", "country", "consentMarketing", "consentProcessing")
	if !p.checkAnonCSRF(c, c.PostForm("csrf")) {
		v.Error = v.T("err.csrf")
		p.render(c, http.StatusBadRequest, "register", v)
		return
	}
	id, err := p.enr.Register(c.Request.Context(), enroll.Registration{Email: c.PostForm("email"), Password: c.PostForm("password"),
		PasswordConfirm: c.PostForm("passwordConfirm"), Country: c.PostForm("country"),
		ConsentProcessing: c.PostForm("consentProcessing") == "on", ConsentMarketing: c.PostForm("consentMarketing") == "on", Lang: v.Lang})
	if err != nil {
		p.render(c, v.fail(err, ""), "register", v)
		return
	}
	v.Title = "title.registered"
	v.Data["UserID"] = id
	v.Data["Email"] = strings.ToLower(strings.TrimSpace(c.PostForm("email")))
	p.render(c, http.StatusOK, "registered", v)
}

func (p *Portal) pageVerify(c *gin.Context) {
	v := p.newView(c, "title.verify")
	if _, err := p.enr.VerifyEmail(c.Request.Context(), c.Query("token")); err != nil {
		v.Error = v.msg(err)
		p.render(c, http.StatusBadRequest, "verify", v)
		return
	}
	v.Flash = v.T("flash.verified")
	p.render(c, http.StatusOK, "verify", v)
}

// pageResend asks for a new confirmation link; the answer does not say
// whether the address is registered (enroll.ResendVerification).
func (p *Portal) pageResend(c *gin.Context) {
	v := p.newView(c, "title.resend")
	if c.Request.Method == http.MethodGet {
		p.render(c, http.StatusOK, "resend", v)
		return
	}
	keep(c, v, "email")
	if !p.checkAnonCSRF(c, c.PostForm("csrf")) {
		v.Error = v.T("err.csrf")
		p.render(c, http.StatusBadRequest, "resend", v)
		return
	}
	if err := p.enr.ResendVerification(c.Request.Context(), c.PostForm("email"), clientIP(c)); err != nil {
		p.render(c, v.fail(err, ""), "resend", v)
		return
	}
	v.Flash = v.T("flash.resent")
	p.render(c, http.StatusOK, "resend", v)
}

func (p *Portal) pageLogin(c *gin.Context) {
	v := p.newView(c, "title.login")
	if c.Request.Method == http.MethodGet {
		if v.LoggedIn {
			c.Redirect(http.StatusSeeOther, "/portal/home")
			return
		}
		p.render(c, http.StatusOK, "login", v)
		return
	}
	keep(c, v, "login")
	if !p.checkAnonCSRF(c, c.PostForm("csrf")) {
		v.Error = v.T("err.csrf")
		p.render(c, http.StatusBadRequest, "login", v)
		return
	}
	ck := checks{}
	ck.required("login", strings.TrimSpace(c.PostForm("login")), 254)
	ck.required("password", c.PostForm("password"), 128)
	if err := ck.err(); err != nil {
		p.render(c, v.fail(err, ""), "login", v)
		return
	}
	s, _, err := p.login(c, c.PostForm("login"), c.PostForm("password"))
	if err != nil {
		// One page-level message: which of login and password was wrong
		// is not said.
		st, _ := httpx.Status(err, httpx.REST)
		if errors.Is(err, sam.ErrAuthentication) {
			st = http.StatusUnauthorized
		}
		v.Error = v.msg(err)
		p.render(c, st, "login", v)
		return
	}
	if s.MustChange {
		c.Redirect(http.StatusSeeOther, "/portal/password")
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/home")
}

func (p *Portal) pageLogout(c *gin.Context) {
	p.endSession(c)
	c.Redirect(http.StatusSeeOther, "/portal/login")
}

func (p *Portal) pagePassword(c *gin.Context) {
	v := p.newView(c, "title.password")
	v.Data["Rules"] = []string{sam.RuleLength, sam.RuleUpper, sam.RuleLower, sam.RuleDigit, sam.RuleSpecial, sam.RuleRepeated}
	s := p.session(c)
	v.Data["Forced"] = s != nil && s.MustChange
	if c.Request.Method == http.MethodGet {
		p.render(c, http.StatusOK, "password", v)
		return
	}
	err := p.changePassword(c, PasswordRequest{CurrentPassword: c.PostForm("currentPassword"),
		NewPassword: c.PostForm("newPassword"), NewPasswordConfirm: c.PostForm("newPasswordConfirm")})
	if err != nil {
		p.render(c, v.fail(err, ""), "password", v)
		return
	}
	v.Data["Forced"] = false
	v.Flash = v.T("flash.password_changed")
	p.render(c, http.StatusOK, "password", v)
}

func (p *Portal) pageHome(c *gin.Context) {
	v := p.newView(c, "title.home")
	ctx := c.Request.Context()
	pr := principal(c)
	u, err := p.sam.HolderUser(ctx, pr)
	if err != nil {
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	v.Data["User"] = u
	cs, err := p.credentialViews(c)
	if err != nil {
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	v.Data["Credentials"] = cs
	req, err := p.enr.CurrentRequest(ctx, pr.UserID)
	if err != nil {
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	if req != nil {
		v.Data["Request"] = requestView(req)
	}
	acc, err := p.enr.Account(ctx, pr.UserID)
	if err != nil {
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	v.Data["CanRequest"] = acc != nil && (req == nil || req.Status == "rejected" || req.Status == "issued") && !anyLive(cs)
	if f := c.Query("done"); f != "" {
		if _, ok := dict["en"]["flash."+f]; ok {
			v.Flash = v.T("flash." + f)
		}
	}
	p.render(c, http.StatusOK, "home", v)
}

func anyLive(cs []CredentialView) bool {
	for _, c := range cs {
		if c.CertStatus == "valid" || c.CertStatus == "suspended" {
			return true
		}
	}
	return false
}

func (p *Portal) pageRequest(c *gin.Context) {
	v := p.newView(c, "title.request")
	ctx := c.Request.Context()
	uid := principal(c).UserID
	acc, err := p.enr.Account(ctx, uid)
	if err != nil {
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	v.Data["Italian"] = acc != nil && acc.Country == "IT"
	v.Data["Countries"] = enroll.Countries
	v.Data["Methods"] = enroll.Methods
	v.Data["DocTypes"] = enroll.DocTypes
	fields := []string{"givenName", "surname", "fiscalCode", "birthDate", "phone", "method", "docType", "docNumber", "docCountry", "docExpiry"}
	if c.Request.Method == http.MethodPost {
		keep(c, v, fields...)
		in := CertRequestBody{GivenName: c.PostForm("givenName"), Surname: c.PostForm("surname"), FiscalCode: c.PostForm("fiscalCode"),
			BirthDate: c.PostForm("birthDate"), Phone: c.PostForm("phone"), Method: c.PostForm("method"), DocType: c.PostForm("docType"),
			DocNumber: c.PostForm("docNumber"), DocCountry: c.PostForm("docCountry"), DocExpiry: c.PostForm("docExpiry")}
		if _, err := p.enr.SubmitRequest(ctx, uid, in.input()); err != nil {
			v.Data["Step"] = "form"
			p.render(c, v.fail(err, ""), "request", v)
			return
		}
		c.Redirect(http.StatusSeeOther, "/portal/request")
		return
	}
	req, err := p.enr.CurrentRequest(ctx, uid)
	if err != nil {
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	p.requestStepFor(v, req)
	if v.Form["docCountry"] == "" && acc != nil {
		v.Form["docCountry"] = acc.Country
	}
	p.render(c, http.StatusOK, "request", v)
}

// requestStepFor chooses what the request page shows from the request's state.
func (p *Portal) requestStepFor(v *view, req *store.CertRequest) {
	step := "form"
	if req != nil {
		v.Data["Request"] = requestView(req)
		switch req.Status {
		case "pending", "issuing":
			step = "pending"
		case "approved":
			step = "contract"
		case "issued":
			step = "issued"
		case "rejected":
			v.Data["Rejected"] = req.DecisionReason
		}
	}
	v.Data["Step"] = step
}

func (p *Portal) pageRequestOTP(c *gin.Context) {
	if err := p.enr.SendContractOTP(c.Request.Context(), principal(c).UserID); err != nil {
		v := p.newView(c, "title.request")
		st := v.fail(err, "")
		p.render(c, st, "error", v)
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/request?sent=1")
}

func (p *Portal) pageComplete(c *gin.Context) {
	v := p.newView(c, "title.request")
	ctx := c.Request.Context()
	uid := principal(c).UserID
	keep(c, v, "acceptContract", "acceptPrivacy")
	is, err := p.enr.Complete(ctx, uid, enroll.Completion{AcceptContract: c.PostForm("acceptContract") == "on",
		AcceptPrivacy: c.PostForm("acceptPrivacy") == "on", PIN: c.PostForm("pin"), PINConfirm: c.PostForm("pinConfirm"),
		Passphrase: c.PostForm("passphrase"), PassphraseConfirm: c.PostForm("passphraseConfirm"), OTP: c.PostForm("otp")})
	if err != nil {
		st := v.fail(err, "pin")
		req, rerr := p.enr.CurrentRequest(ctx, uid)
		if rerr != nil {
			p.render(c, v.fail(rerr, ""), "error", v)
			return
		}
		p.requestStepFor(v, req)
		p.render(c, st, "request", v)
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/home?done=issued&env="+url.QueryEscape(is.EnvelopeNumber))
}

func (p *Portal) pageSendOTP(c *gin.Context) {
	back := safeBack(c.PostForm("back"))
	cred := c.PostForm("cred")
	ck := checks{}
	ck.credential(cred)
	if err := ck.err(); err != nil {
		v := p.newView(c, "title.error")
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	if err := p.sam.SendOTP(c.Request.Context(), principal(c), cred); err != nil {
		v := p.newView(c, "title.error")
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	c.Redirect(http.StatusSeeOther, back+sep+"sent=1&cred="+url.QueryEscape(cred))
}

func (p *Portal) pageHistory(c *gin.Context) {
	v := p.newView(c, "title.history")
	cred, _, ok := p.pickCredential(c, v)
	if !ok {
		return
	}
	page, size, err := pageParams(c)
	if err != nil {
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	h, err := p.sam.CredentialHistory(c.Request.Context(), principal(c), cred.ID, page, size)
	if err != nil {
		p.render(c, v.fail(err, ""), "error", v)
		return
	}
	v.Data["History"] = h.Entries
	v.Data["Page"] = page
	v.Data["More"] = h.More
	p.render(c, http.StatusOK, "history", v)
}

// pickCredential loads the holder's credentials and selects the one named
// by ?cred= / cred= (default: the first). It renders the page itself and
// reports false when there is none.
func (p *Portal) pickCredential(c *gin.Context, v *view) (*CredentialView, []CredentialView, bool) {
	cs, err := p.credentialViews(c)
	if err != nil {
		p.render(c, v.fail(err, ""), "error", v)
		return nil, nil, false
	}
	if len(cs) == 0 {
		v.Error = v.T("err.no_credential")
		p.render(c, http.StatusNotFound, "error", v)
		return nil, nil, false
	}
	want := c.PostForm("cred")
	if want == "" {
		want = c.Query("cred")
	}
	sel := &cs[0]
	if want != "" {
		sel = nil
		for i := range cs {
			if cs[i].ID == want {
				sel = &cs[i]
			}
		}
		if sel == nil {
			v.Error = v.T("err.no_credential")
			p.render(c, http.StatusNotFound, "error", v)
			return nil, nil, false
		}
	}
	v.Data["Cred"] = sel
	v.Data["Credentials"] = cs
	return sel, cs, true
}

// credPage serves the pages that act on one credential with factors.
func (p *Portal) credPage(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		page := kind
		switch kind {
		case "phone", "totpstart", "totp":
			page = "otp"
		}
		v := p.newView(c, "title."+page)
		v.Data["Kind"] = kind
		cred, _, ok := p.pickCredential(c, v)
		if !ok {
			return
		}
		if c.Request.Method == http.MethodGet {
			p.render(c, http.StatusOK, page, v)
			return
		}
		ctx := c.Request.Context()
		pr := principal(c)
		f := func(n string) string { return c.PostForm(n) }
		ck := checks{}
		var run func() error
		var done, pinField string
		switch kind {
		case "pin":
			ck.pin("currentPIN", f("currentPIN"))
			ck.newPIN("newPIN", f("newPIN"), "newPINConfirm", f("newPINConfirm"))
			ck.otpIfAny("otp", f("otp"))
			pinField, done = "currentPIN", "pin_changed"
			run = func() error {
				return p.sam.ChangePIN(ctx, pr, cred.ID, f("currentPIN"), f("newPIN"), f("newPINConfirm"), f("otp"))
			}
		case "unblock", "activate":
			r := FactorsRequest{PUK: f("puk"), NewPIN: f("newPIN"), NewPINConfirm: f("newPINConfirm"), OTP: f("otp")}
			pukChecks(ck, &r)
			done = "pin_unblocked"
			run = func() error {
				return p.sam.UnblockPIN(ctx, pr, cred.ID, r.PUK, r.NewPIN, r.NewPINConfirm, r.OTP)
			}
			if kind == "activate" {
				done = "activated"
				run = func() error {
					return p.sam.ActivateWithPUK(ctx, pr, cred.ID, r.PUK, r.NewPIN, r.NewPINConfirm, r.OTP)
				}
			}
		case "reactivate", "renew":
			r := FactorsRequest{PIN: f("pin"), OTP: f("otp")}
			pinOTPChecks(ck, &r)
			pinField, done = "pin", "reactivated"
			run = func() error { return p.sam.ReactivateCredential(ctx, pr, cred.ID, r.PIN, r.OTP) }
			if kind == "renew" {
				done = "renewed"
				run = func() error {
					_, err := p.sam.RenewCredential(ctx, pr, cred.ID, r.PIN, r.OTP)
					return err
				}
			}
		case "envelope":
			r := FactorsRequest{PIN: f("pin"), OTP: f("otp")}
			pinOTPChecks(ck, &r)
			pinField, done = "pin", "new_envelope"
			run = func() error {
				_, err := p.enr.NewEnvelope(ctx, pr.UserID, cred.ID, r.PIN, r.OTP, f("passphrase"), f("passphraseConfirm"))
				return err
			}
		case "suspend":
			if f("confirm") != "on" {
				ck.set("confirm", "acceptance")
			}
			done = "suspended"
			run = func() error { return p.sam.SuspendCredential(ctx, pr, cred.ID) }
		case "revoke":
			if f("step") != "2" {
				// First confirmation: the holder ticked "I understand".
				if f("understand") != "on" {
					ck.set("understand", "acceptance")
					break
				}
				v.Data["Step"] = "2"
				p.render(c, http.StatusOK, page, v)
				return
			}
			v.Data["Step"] = "2"
			if strings.TrimSpace(f("confirm")) != v.T("revoke.word") && strings.TrimSpace(f("confirm")) != "REVOKE" {
				ck.set("confirm", "confirm")
			}
			done = "revoked"
			run = func() error { return p.sam.RevokeCredential(ctx, pr, cred.ID) }
		case "otp":
			ck.otp("otp", f("otp"))
			done = "otp_ok"
			run = func() error { return p.sam.TestOTP(ctx, pr, cred.ID, f("otp")) }
		case "totpstart":
			en, err := p.sam.StartTOTP(ctx, pr, cred.ID)
			if err == nil {
				var png []byte
				if png, err = qrPNG(en.URI); err == nil {
					v.Data["TOTP"] = map[string]any{"Secret": en.Secret, "Pending": en.Pending, "URI": en.URI, "QR": qrURL(png)}
					p.render(c, http.StatusOK, page, v)
					return
				}
			}
			p.render(c, v.fail(err, ""), page, v)
			return
		case "totp":
			r := FactorsRequest{Pending: f("pending"), PIN: f("pin"), OTP: f("currentOTP"), Code: f("code")}
			totpChecks("currentOTP")(ck, &r)
			pinField, done = "pin", "totp_enrolled"
			// Keep the QR code on the page when something is wrong.
			keepTOTP := map[string]any{"Pending": r.Pending, "Secret": f("secret"), "URI": f("uri")}
			if strings.HasPrefix(f("uri"), "otpauth://") && len(f("uri")) < 512 {
				if png, err := qrPNG(f("uri")); err == nil {
					keepTOTP["QR"] = qrURL(png)
				}
			}
			v.Data["TOTP"] = keepTOTP
			run = func() error {
				err := p.sam.ConfirmTOTP(ctx, pr, cred.ID, r.Pending, r.PIN, r.OTP, r.Code)
				if e, ok := errs.As(err); ok {
					switch e.Code {
					case "invalid_new_otp":
						return &enroll.FieldError{Fields: map[string]string{"code": "invalid_new_otp"}}
					case "invalid_otp":
						return &enroll.FieldError{Fields: map[string]string{"currentOTP": "invalid_otp"}}
					}
				}
				return err
			}
		case "phone":
			phone := normPhone(f("phone"))
			keep(c, v, "phone")
			ck.phone("phone", phone)
			ck.otp("phoneOTP", f("phoneOTP"))
			done = "phone_changed"
			run = func() error {
				err := p.sam.ChangePhone(ctx, pr, cred.ID, phone, f("phoneOTP"))
				if e, ok := errs.As(err); ok && e.Code == "invalid_otp" {
					return &enroll.FieldError{Fields: map[string]string{"phoneOTP": "invalid_otp"}}
				}
				return err
			}
		}
		// The forms ask for an OTP only when the credential has one; then
		// it is required here, before anything is checked.
		if cred.OTP != "none" && kind != "suspend" && kind != "revoke" && kind != "phone" && kind != "otp" && kind != "totp" && f("otp") == "" {
			ck.set("otp", "required")
		}
		if err := ck.err(); err != nil {
			p.render(c, v.fail(err, pinField), page, v)
			return
		}
		if err := run(); err != nil {
			p.render(c, v.fail(err, pinField), page, v)
			return
		}
		c.Redirect(http.StatusSeeOther, "/portal/home?done="+done+"&cred="+url.QueryEscape(cred.ID))
	}
}

func (p *Portal) pageEmergency(c *gin.Context) {
	v := p.newView(c, "title.emergency")
	if c.Request.Method == http.MethodGet {
		v.Form["action"] = "suspend"
		p.render(c, http.StatusOK, "emergency", v)
		return
	}
	keep(c, v, "iut", "action")
	if !p.checkAnonCSRF(c, c.PostForm("csrf")) && !(v.LoggedIn && sameToken(c.PostForm("csrf"), v.CSRF)) {
		v.Error = v.T("err.csrf")
		p.render(c, http.StatusBadRequest, "emergency", v)
		return
	}
	req := EmergencyRequest{IUT: c.PostForm("iut"), ERC: c.PostForm("erc"), Action: c.PostForm("action")}
	ck := checks{}
	ck.emergency(req)
	if req.Action == "revoke" && c.PostForm("understand") != "on" {
		ck.set("understand", "acceptance")
	}
	if err := ck.err(); err != nil {
		p.render(c, v.fail(err, ""), "emergency", v)
		return
	}
	err := p.sam.Emergency(c.Request.Context(), sam.EmergencyRequest{ID: req.IUT, ERC: req.ERC, Action: req.Action, ClientIP: clientIP(c)})
	if err != nil {
		st := v.fail(err, "")
		if errors.Is(err, sam.ErrEmergencyCode) {
			v.Errors["erc"] = v.msg(err)
			v.Error = v.T("err.form")
		}
		p.render(c, st, "emergency", v)
		return
	}
	v.Form = map[string]string{}
	v.Flash = v.T("flash.emergency_" + req.Action)
	v.Data["Done"] = true
	p.render(c, http.StatusOK, "emergency", v)
}

// qrURL makes a data: URL of a QR code PNG we generated ourselves (so it
// is safe to mark as a URL for html/template, which otherwise refuses
// data: URLs).
func qrURL(png []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}
