package portal

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
)

// maxJSON bounds self-care request bodies: every form is small.
const maxJSON = 16 << 10

func (p *Portal) registerAPI(r gin.IRouter) {
	r.Use(func(c *gin.Context) {
		// Answers carry codes and secrets (TOTP seeds): never cache them.
		c.Header("Cache-Control", "no-store")
		c.Next()
	})
	r.POST("/register", p.apiRegister)
	r.POST("/verify", p.apiVerify)
	r.POST("/verify/resend", p.apiResendVerification)
	r.POST("/login", p.apiLogin)
	r.POST("/password/check", p.apiPasswordCheck)
	r.POST("/emergency", p.apiEmergency)

	a := r.Group("", p.apiAuth)
	a.POST("/logout", p.apiLogout)
	a.GET("/me", p.apiMe)
	a.POST("/password", p.apiChangePassword)
	a.GET("/credentials", p.apiCredentials)
	a.POST("/credentials/:id/otp", p.apiSendOTP)
	a.POST("/credentials/:id/otp/test", p.apiTestOTP)
	a.POST("/credentials/:id/pin", p.apiChangePIN)
	a.POST("/credentials/:id/unblock", p.apiUnblock)
	a.POST("/credentials/:id/activate", p.apiActivate)
	a.POST("/credentials/:id/suspend", p.apiSuspend)
	a.POST("/credentials/:id/reactivate", p.apiReactivate)
	a.POST("/credentials/:id/revoke", p.apiRevoke)
	a.POST("/credentials/:id/renew", p.apiRenew)
	a.POST("/credentials/:id/envelope", p.apiNewEnvelope)
	a.POST("/credentials/:id/phone", p.apiPhone)
	a.POST("/credentials/:id/totp/start", p.apiTOTPStart)
	a.POST("/credentials/:id/totp", p.apiTOTPConfirm)
	a.GET("/credentials/:id/history", p.apiHistory)
	a.GET("/request", p.apiCurrentRequest)
	a.POST("/request", p.apiSubmitRequest)
	a.POST("/request/otp", p.apiRequestOTP)
	a.POST("/request/complete", p.apiComplete)
}

// apiError is the CSC error shape plus, for form problems, the fields.
type apiError struct {
	Error       string            `json:"error"`
	Description string            `json:"error_description,omitempty"`
	Fields      map[string]string `json:"fields,omitempty"`
}

func (p *Portal) apiFail(c *gin.Context, err error) {
	var fe *enroll.FieldError
	if errors.As(err, &fe) {
		c.AbortWithStatusJSON(http.StatusBadRequest, apiError{Error: "invalid_request", Description: fe.Error(), Fields: fe.Fields})
		return
	}
	httpx.WriteError(c, p.log, httpx.REST, err)
}

func (p *Portal) decode(c *gin.Context, v any) bool {
	if err := httpx.DecodeJSON(c, maxJSON, v); err != nil {
		p.apiFail(c, err)
		return false
	}
	return true
}

// apiAuth admits a bearer access token or a session cookie; a cookie
// session must echo its CSRF token on anything but GET, and a session
// that must change its password may do only that.
func (p *Portal) apiAuth(c *gin.Context) {
	if c.GetHeader("Authorization") != "" {
		tok, err := httpx.Bearer(c.Request)
		if err != nil {
			p.apiFail(c, err)
			return
		}
		pr, err := p.sam.Authenticate(c.Request.Context(), tok)
		if err != nil {
			p.apiFail(c, err)
			return
		}
		c.Set(ctxPrincipal, pr)
		c.Next()
		return
	}
	s := p.session(c)
	if s == nil {
		p.apiFail(c, errs.New(errs.Unauthenticated, "invalid_token", "Log in first"))
		return
	}
	if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead && !sameToken(c.GetHeader(csrfHeader), s.CSRF) {
		p.apiFail(c, errs.New(errs.Forbidden, "csrf", "Missing or wrong "+csrfHeader+" header"))
		return
	}
	if s.MustChange && !strings.HasSuffix(c.FullPath(), "/password") && !strings.HasSuffix(c.FullPath(), "/logout") {
		p.apiFail(c, errs.New(errs.Forbidden, "password_change_required", "Change your password first"))
		return
	}
	c.Set(ctxPrincipal, principalOf(s))
	c.Next()
}

func principal(c *gin.Context) *sam.Principal {
	v, _ := c.Get(ctxPrincipal)
	pr, _ := v.(*sam.Principal)
	return pr
}

// RegisterRequest is the body of POST /selfcare/v1/register.
type RegisterRequest struct {
	Email             string `json:"email"`
	Password          string `json:"password"`
	PasswordConfirm   string `json:"passwordConfirm"`
	Country           string `json:"country"`
	ConsentProcessing bool   `json:"consentProcessing"`
	ConsentMarketing  bool   `json:"consentMarketing"`
	Lang              string `json:"lang"`
}

func (p *Portal) apiRegister(c *gin.Context) {
	var req RegisterRequest
	if !p.decode(c, &req) {
		return
	}
	id, err := p.enr.Register(c.Request.Context(), enroll.Registration{Email: req.Email, Password: req.Password,
		PasswordConfirm: req.PasswordConfirm, Country: req.Country, ConsentProcessing: req.ConsentProcessing,
		ConsentMarketing: req.ConsentMarketing, Lang: req.Lang})
	if err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"userID": id})
}

func (p *Portal) apiVerify(c *gin.Context) {
	var req struct {
		Token string `json:"token"`
	}
	if !p.decode(c, &req) {
		return
	}
	id, err := p.enr.VerifyEmail(c.Request.Context(), req.Token)
	if err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"userID": id})
}

// apiResendVerification answers 202 whether or not the address belongs to
// an account waiting for confirmation (enroll.ResendVerification).
func (p *Portal) apiResendVerification(c *gin.Context) {
	var req struct {
		Email string `json:"email"`
	}
	if !p.decode(c, &req) {
		return
	}
	if err := p.enr.ResendVerification(c.Request.Context(), req.Email, clientIP(c)); err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"status": "If this address belongs to an account not confirmed yet, a new link is on its way."})
}

// LoginRequest is the body of POST /selfcare/v1/login (login = e-mail or UserID).
type LoginRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

func (p *Portal) apiLogin(c *gin.Context) {
	var req LoginRequest
	if !p.decode(c, &req) {
		return
	}
	ck := checks{}
	ck.required("login", strings.TrimSpace(req.Login), 254)
	ck.required("password", req.Password, 128)
	if err := ck.err(); err != nil {
		p.apiFail(c, err)
		return
	}
	s, hl, err := p.login(c, req.Login, req.Password)
	if err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"userID": hl.UserID, "mustChangePassword": hl.MustChangePassword, "csrfToken": s.CSRF})
}

// login checks the credentials and starts a session.
func (p *Portal) login(c *gin.Context, login, password string) (*store.Session, *sam.HolderLogin, error) {
	ctx := c.Request.Context()
	uid, err := p.enr.ResolveLogin(ctx, login)
	if err != nil {
		return nil, nil, err
	}
	hl, err := p.sam.LoginHolder(ctx, uid, password)
	if err != nil {
		return nil, nil, err
	}
	if hl.Pending {
		return nil, nil, errs.New(errs.Forbidden, "email_not_verified", "Confirm your e-mail address first: open the link we sent you")
	}
	p.endSession(c)
	s, err := p.startSession(c, hl.UserID, hl.MustChangePassword)
	if err != nil {
		return nil, nil, err
	}
	return s, hl, nil
}

func (p *Portal) apiLogout(c *gin.Context) {
	p.endSession(c)
	c.Status(http.StatusNoContent)
}

func (p *Portal) apiPasswordCheck(c *gin.Context) {
	var req struct {
		Password string `json:"password"`
	}
	if !p.decode(c, &req) {
		return
	}
	v := sam.PasswordViolations(req.Password)
	if v == nil {
		v = []string{}
	}
	c.JSON(http.StatusOK, gin.H{"violations": v, "ok": len(v) == 0})
}

// PasswordRequest is the body of POST /selfcare/v1/password.
type PasswordRequest struct {
	CurrentPassword    string `json:"currentPassword"`
	NewPassword        string `json:"newPassword"`
	NewPasswordConfirm string `json:"newPasswordConfirm"`
}

// otpIfAny checks the OTP's format when one is given: whether the
// credential needs one at all is sam's to say (automatic-signature
// credentials have none).
func (c checks) otpIfAny(field, v string) {
	if v != "" {
		c.otp(field, v)
	}
}

func (ck checks) passwordChange(req PasswordRequest) {
	ck.required("currentPassword", req.CurrentPassword, 128)
	ck.password("newPassword", req.NewPassword)
	if req.NewPasswordConfirm != req.NewPassword {
		ck.set("newPasswordConfirm", "mismatch")
	}
}

func (p *Portal) apiChangePassword(c *gin.Context) {
	var req PasswordRequest
	if !p.decode(c, &req) {
		return
	}
	if err := p.changePassword(c, req); err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"changed": true})
}

func (p *Portal) changePassword(c *gin.Context, req PasswordRequest) error {
	ck := checks{}
	ck.passwordChange(req)
	if err := ck.err(); err != nil {
		return err
	}
	pr := principal(c)
	if err := p.sam.ChangePassword(c.Request.Context(), pr.UserID, req.CurrentPassword, req.NewPassword); err != nil {
		return err
	}
	if s := p.session(c); s != nil && s.MustChange {
		if err := p.sess.ClearSessionMustChange(c.Request.Context(), s.Hash); err != nil {
			return errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", err)
		}
		s.MustChange = false
	}
	return nil
}

// CredentialView is a credential as the holder sees it.
type CredentialView struct {
	ID             string `json:"credentialID"`
	Description    string `json:"description,omitempty"`
	KeyStatus      string `json:"keyStatus"`
	CertStatus     string `json:"certStatus"`
	Serial         string `json:"serialNumber"`
	SubjectDN      string `json:"subjectDN"`
	Holder         string `json:"holder"`
	HolderID       string `json:"holderID,omitempty"`
	IssuerDN       string `json:"issuerDN"`
	ValidFrom      string `json:"validFrom"`
	ValidTo        string `json:"validTo"`
	DaysLeft       int    `json:"daysLeft"`
	ValidToText    string `json:"-"`
	OTP            string `json:"otp"`
	Activated      bool   `json:"activated"`
	PINBlocked     bool   `json:"pinBlocked"`
	SignaturesWeek int    `json:"signaturesLast7Days"`
	SignaturesAll  int    `json:"signaturesTotal"`
}

func (p *Portal) credentialViews(c *gin.Context) ([]CredentialView, error) {
	pr := principal(c)
	cs, err := p.sam.ListCredentials(c.Request.Context(), pr)
	if err != nil {
		return nil, err
	}
	out := make([]CredentialView, 0, len(cs))
	for _, ci := range cs {
		v := CredentialView{ID: ci.ID, Description: ci.Description, KeyStatus: ci.KeyStatus, CertStatus: ci.CertStatus,
			OTP: ci.OTPType, Activated: ci.Activated, PINBlocked: ci.PINBlocked}
		if ci.Cert != nil {
			v.Serial = ci.Cert.SerialNumber.Text(16)
			v.SubjectDN = ci.Cert.Subject.String()
			v.Holder, v.HolderID = ci.Cert.Subject.CommonName, ci.Cert.Subject.SerialNumber
			v.IssuerDN = ci.Cert.Issuer.String()
			v.ValidFrom = ci.Cert.NotBefore.UTC().Format(time.RFC3339)
			v.ValidTo = ci.Cert.NotAfter.UTC().Format(time.RFC3339)
			v.ValidToText = ci.Cert.NotAfter.UTC().Format("2006-01-02 15:04 UTC")
			v.DaysLeft = int(ci.Cert.NotAfter.Sub(p.now()).Hours() / 24)
		}
		cnt, err := p.sam.SignatureCounters(c.Request.Context(), pr, ci.ID)
		if err != nil {
			return nil, err
		}
		v.SignaturesWeek, v.SignaturesAll = cnt.Last7Days, cnt.Total
		out = append(out, v)
	}
	return out, nil
}

func (p *Portal) apiCredentials(c *gin.Context) {
	cs, err := p.credentialViews(c)
	if err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"credentials": cs})
}

func (p *Portal) apiMe(c *gin.Context) {
	u, err := p.sam.HolderUser(c.Request.Context(), principal(c))
	if err != nil {
		p.apiFail(c, err)
		return
	}
	cs, err := p.credentialViews(c)
	if err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"userID": u.UserID, "email": u.Email, "phone": u.Phone, "givenName": u.GivenName,
		"surname": u.Surname, "credentials": cs})
}

// FactorsRequest is the body of the credential operations; each uses the
// fields it needs.
type FactorsRequest struct {
	PIN           string `json:"pin"`
	CurrentPIN    string `json:"currentPIN"`
	NewPIN        string `json:"newPIN"`
	NewPINConfirm string `json:"newPINConfirm"`
	PUK           string `json:"puk"`
	OTP           string `json:"otp"`
	Phone         string `json:"phone"`
	// Confirm must be "REVOKE" for a revocation.
	Confirm string `json:"confirm"`
	// Pending and Code confirm an authenticator app enrollment.
	Pending string `json:"pending"`
	Code    string `json:"code"`
	// Passphrase (twice) encrypts a new envelope.
	Passphrase        string `json:"passphrase"`
	PassphraseConfirm string `json:"passphraseConfirm"`
}

// credOp decodes the body, checks it, and runs op on the credential.
func (p *Portal) credOp(c *gin.Context, check func(checks, *FactorsRequest), op func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error)) {
	var req FactorsRequest
	if c.Request.ContentLength != 0 {
		if !p.decode(c, &req) {
			return
		}
	}
	ck := checks{}
	ck.credential(c.Param("id"))
	if check != nil {
		check(ck, &req)
	}
	if err := ck.err(); err != nil {
		p.apiFail(c, err)
		return
	}
	out, err := op(principal(c), c.Param("id"), req)
	if err != nil {
		p.apiFail(c, err)
		return
	}
	if out == nil {
		out = gin.H{"ok": true}
	}
	c.JSON(http.StatusOK, out)
}

func (p *Portal) apiSendOTP(c *gin.Context) {
	p.credOp(c, nil, func(pr *sam.Principal, id string, _ FactorsRequest) (gin.H, error) {
		return gin.H{"sent": true}, p.sam.SendOTP(c.Request.Context(), pr, id)
	})
}

func (p *Portal) apiTestOTP(c *gin.Context) {
	p.credOp(c, func(ck checks, r *FactorsRequest) { ck.otp("otp", r.OTP) },
		func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error) {
			return gin.H{"valid": true}, p.sam.TestOTP(c.Request.Context(), pr, id, r.OTP)
		})
}

func (p *Portal) apiChangePIN(c *gin.Context) {
	p.credOp(c, func(ck checks, r *FactorsRequest) {
		ck.pin("currentPIN", r.CurrentPIN)
		ck.newPIN("newPIN", r.NewPIN, "newPINConfirm", r.NewPINConfirm)
		ck.otpIfAny("otp", r.OTP)
	}, func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error) {
		return nil, p.sam.ChangePIN(c.Request.Context(), pr, id, r.CurrentPIN, r.NewPIN, r.NewPINConfirm, r.OTP)
	})
}

// apiNewEnvelope replaces a lost envelope: new PUK and ERC, proved with
// the PIN and the OTP, mailed under a new passphrase (enroll.NewEnvelope).
func (p *Portal) apiNewEnvelope(c *gin.Context) {
	p.credOp(c, func(ck checks, r *FactorsRequest) {
		ck.pin("pin", r.PIN)
		ck.otpIfAny("otp", r.OTP)
	}, func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error) {
		n, err := p.enr.NewEnvelope(c.Request.Context(), pr.UserID, id, r.PIN, r.OTP, r.Passphrase, r.PassphraseConfirm)
		if err != nil {
			return nil, err
		}
		return gin.H{"envelopeNumber": n}, nil
	})
}

func pukChecks(ck checks, r *FactorsRequest) {
	ck.puk("puk", r.PUK)
	ck.newPIN("newPIN", r.NewPIN, "newPINConfirm", r.NewPINConfirm)
	ck.otpIfAny("otp", r.OTP)
}

func (p *Portal) apiUnblock(c *gin.Context) {
	p.credOp(c, pukChecks, func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error) {
		return nil, p.sam.UnblockPIN(c.Request.Context(), pr, id, r.PUK, r.NewPIN, r.NewPINConfirm, r.OTP)
	})
}

func (p *Portal) apiActivate(c *gin.Context) {
	p.credOp(c, pukChecks, func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error) {
		return nil, p.sam.ActivateWithPUK(c.Request.Context(), pr, id, r.PUK, r.NewPIN, r.NewPINConfirm, r.OTP)
	})
}

func (p *Portal) apiSuspend(c *gin.Context) {
	p.credOp(c, nil, func(pr *sam.Principal, id string, _ FactorsRequest) (gin.H, error) {
		return gin.H{"certStatus": "suspended"}, p.sam.SuspendCredential(c.Request.Context(), pr, id)
	})
}

func pinOTPChecks(ck checks, r *FactorsRequest) {
	ck.pin("pin", r.PIN)
	ck.otpIfAny("otp", r.OTP)
}

func (p *Portal) apiReactivate(c *gin.Context) {
	p.credOp(c, pinOTPChecks, func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error) {
		return gin.H{"certStatus": "valid"}, p.sam.ReactivateCredential(c.Request.Context(), pr, id, r.PIN, r.OTP)
	})
}

func (p *Portal) apiRevoke(c *gin.Context) {
	p.credOp(c, func(ck checks, r *FactorsRequest) {
		if r.Confirm != "REVOKE" {
			ck.set("confirm", "confirm")
		}
	}, func(pr *sam.Principal, id string, _ FactorsRequest) (gin.H, error) {
		return gin.H{"certStatus": "revoked"}, p.sam.RevokeCredential(c.Request.Context(), pr, id)
	})
}

func (p *Portal) apiRenew(c *gin.Context) {
	p.credOp(c, pinOTPChecks, func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error) {
		serial, err := p.sam.RenewCredential(c.Request.Context(), pr, id, r.PIN, r.OTP)
		return gin.H{"serialNumber": serial}, err
	})
}

func (p *Portal) apiPhone(c *gin.Context) {
	p.credOp(c, func(ck checks, r *FactorsRequest) {
		r.Phone = normPhone(r.Phone)
		ck.phone("phone", r.Phone)
		ck.otp("otp", r.OTP)
	}, func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error) {
		return nil, p.sam.ChangePhone(c.Request.Context(), pr, id, r.Phone, r.OTP)
	})
}

// HistoryEntry is one row of GET /credentials/{id}/history.
type HistoryEntry struct {
	At       string `json:"at"`
	Action   string `json:"action"`
	HashAlgo string `json:"hashAlgo,omitempty"`
	Count    int    `json:"count"`
	Outcome  string `json:"outcome"`
}

func pageParams(c *gin.Context) (page, size int, err error) {
	page, size = 0, 20
	if v := c.Query("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 0 || page > 100000 {
			return 0, 0, errs.Invalidf("Invalid parameter page")
		}
	}
	if v := c.Query("size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 100 {
			return 0, 0, errs.Invalidf("Invalid parameter size (1..100)")
		}
	}
	return page, size, nil
}

func (p *Portal) apiHistory(c *gin.Context) {
	page, size, err := pageParams(c)
	if err != nil {
		p.apiFail(c, err)
		return
	}
	h, err := p.sam.CredentialHistory(c.Request.Context(), principal(c), c.Param("id"), page, size)
	if err != nil {
		p.apiFail(c, err)
		return
	}
	out := make([]HistoryEntry, 0, len(h.Entries))
	for _, e := range h.Entries {
		out = append(out, HistoryEntry{At: e.At.UTC().Format(time.RFC3339), Action: e.Action, HashAlgo: e.HashAlgo, Count: e.Count, Outcome: e.Outcome})
	}
	c.JSON(http.StatusOK, gin.H{"entries": out, "page": page, "more": h.More})
}

// EmergencyRequest is the body of POST /selfcare/v1/emergency; iut may be a UserID.
type EmergencyRequest struct {
	IUT    string `json:"iut"`
	ERC    string `json:"erc"`
	Action string `json:"action"`
}

func (ck checks) emergency(r EmergencyRequest) {
	ck.required("iut", strings.TrimSpace(r.IUT), 64)
	ck.required("erc", strings.TrimSpace(r.ERC), 64)
	if r.Action != "suspend" && r.Action != "revoke" {
		ck.set("action", "choice")
	}
}

func (p *Portal) apiEmergency(c *gin.Context) {
	var req EmergencyRequest
	if !p.decode(c, &req) {
		return
	}
	ck := checks{}
	ck.emergency(req)
	if err := ck.err(); err != nil {
		p.apiFail(c, err)
		return
	}
	err := p.sam.Emergency(c.Request.Context(), sam.EmergencyRequest{ID: req.IUT, ERC: req.ERC, Action: req.Action, ClientIP: clientIP(c)})
	if err != nil {
		httpx.WriteError(c, p.log, httpx.CSC, err)
		return
	}
	st := "suspended"
	if req.Action == "revoke" {
		st = "revoked"
	}
	c.JSON(http.StatusOK, gin.H{"certStatus": st})
}

// RequestView is the holder's certificate request.
type RequestView struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Method         string `json:"method"`
	Reason         string `json:"reason,omitempty"`
	CredentialID   string `json:"credentialID,omitempty"`
	EnvelopeNumber string `json:"envelopeNumber,omitempty"`
	CreatedAt      string `json:"createdAt"`
}

func requestView(r *store.CertRequest) RequestView {
	return RequestView{ID: r.ID, Status: r.Status, Method: r.Method, Reason: r.DecisionReason, CredentialID: r.CredentialID,
		EnvelopeNumber: r.EnvelopeNumber, CreatedAt: r.CreatedAt.UTC().Format(time.RFC3339)}
}

func (p *Portal) apiCurrentRequest(c *gin.Context) {
	r, err := p.enr.CurrentRequest(c.Request.Context(), principal(c).UserID)
	if err != nil {
		p.apiFail(c, err)
		return
	}
	if r == nil {
		p.apiFail(c, errs.New(errs.NotFound, "", "No certificate request"))
		return
	}
	c.JSON(http.StatusOK, requestView(r))
}

// CertRequestBody is the body of POST /selfcare/v1/request.
type CertRequestBody struct {
	GivenName  string `json:"givenName"`
	Surname    string `json:"surname"`
	FiscalCode string `json:"fiscalCode"`
	BirthDate  string `json:"birthDate"`
	Phone      string `json:"phone"`
	Method     string `json:"method"`
	DocType    string `json:"docType"`
	DocNumber  string `json:"docNumber"`
	DocCountry string `json:"docCountry"`
	DocExpiry  string `json:"docExpiry"`
}

func (b CertRequestBody) input() enroll.RequestInput {
	return enroll.RequestInput{GivenName: b.GivenName, Surname: b.Surname, FiscalCode: b.FiscalCode, BirthDate: b.BirthDate,
		Phone: b.Phone, Method: b.Method, DocType: b.DocType, DocNumber: b.DocNumber, DocCountry: b.DocCountry, DocExpiry: b.DocExpiry}
}

func (p *Portal) apiSubmitRequest(c *gin.Context) {
	var req CertRequestBody
	if !p.decode(c, &req) {
		return
	}
	r, err := p.enr.SubmitRequest(c.Request.Context(), principal(c).UserID, req.input())
	if err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusCreated, requestView(r))
}

func (p *Portal) apiRequestOTP(c *gin.Context) {
	if err := p.enr.SendContractOTP(c.Request.Context(), principal(c).UserID); err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"sent": true})
}

// CompleteBody is the body of POST /selfcare/v1/request/complete.
type CompleteBody struct {
	AcceptContract    bool   `json:"acceptContract"`
	AcceptPrivacy     bool   `json:"acceptPrivacy"`
	PIN               string `json:"pin"`
	PINConfirm        string `json:"pinConfirm"`
	Passphrase        string `json:"passphrase"`
	PassphraseConfirm string `json:"passphraseConfirm"`
	OTP               string `json:"otp"`
}

func (p *Portal) apiComplete(c *gin.Context) {
	var req CompleteBody
	if !p.decode(c, &req) {
		return
	}
	is, err := p.enr.Complete(c.Request.Context(), principal(c).UserID, enroll.Completion{AcceptContract: req.AcceptContract,
		AcceptPrivacy: req.AcceptPrivacy, PIN: req.PIN, PINConfirm: req.PINConfirm, Passphrase: req.Passphrase,
		PassphraseConfirm: req.PassphraseConfirm, OTP: req.OTP})
	if err != nil {
		p.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"credentialID": is.CredentialID, "serialNumber": is.Serial, "envelopeNumber": is.EnvelopeNumber})
}

func (p *Portal) apiTOTPStart(c *gin.Context) {
	p.credOp(c, nil, func(pr *sam.Principal, id string, _ FactorsRequest) (gin.H, error) {
		en, err := p.sam.StartTOTP(c.Request.Context(), pr, id)
		if err != nil {
			return nil, err
		}
		png, err := qrPNG(en.URI)
		if err != nil {
			return nil, err
		}
		return gin.H{"secret": en.Secret, "uri": en.URI, "pending": en.Pending, "qrPNG": base64.StdEncoding.EncodeToString(png)}, nil
	})
}

// totpChecks checks an app enrollment; otpField names the current-OTP
// field ("otp" in the API, "currentOTP" on the page, which also has the
// test form's "otp").
func totpChecks(otpField string) func(ck checks, r *FactorsRequest) {
	return func(ck checks, r *FactorsRequest) {
		ck.required("pending", r.Pending, 1024)
		ck.pin("pin", r.PIN)
		if r.OTP != "" {
			ck.otp(otpField, r.OTP)
		}
		ck.otp("code", r.Code)
	}
}

func (p *Portal) apiTOTPConfirm(c *gin.Context) {
	p.credOp(c, totpChecks("otp"), func(pr *sam.Principal, id string, r FactorsRequest) (gin.H, error) {
		return gin.H{"otp": "totp"}, p.sam.ConfirmTOTP(c.Request.Context(), pr, id, r.Pending, r.PIN, r.OTP, r.Code)
	})
}

// qrPNG renders an otpauth:// URI as a QR code for authenticator apps.
func qrPNG(uri string) ([]byte, error) {
	png, err := qrcode.Encode(uri, qrcode.Medium, 256)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	return png, nil
}
