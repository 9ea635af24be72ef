// Package admin is the operator API (/admin/v1, behind the operator
// token): enroll users, create credentials (key in the HSM + certificate
// from our CA in one call), look them up without secrets, enable or
// disable a key, and read the dev SMS outbox. Handlers decode, call one
// sam function and encode; the JSON shapes are a contract with the CLI
// (`sigillo admin ...`) and with operators' scripts.
package admin

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
)

// Service is the part of sam the operator API calls.
type Service interface {
	CreateUser(ctx context.Context, u sam.NewUser) (string, error)
	User(ctx context.Context, id string) (*sam.UserView, error)
	CreateCredential(ctx context.Context, c sam.NewCredential) (*sam.CreatedCredential, error)
	AdminCredential(ctx context.Context, id string) (*sam.CredentialInfo, error)
	SetKeyEnabled(ctx context.Context, id string, enabled bool) error
}

// Outbox lists the messages the dev SMS sender stored (*store.Store).
type Outbox interface {
	Outbox(ctx context.Context, to string, limit int) ([]store.OutboxMessage, error)
}

var _ Service = (*sam.Service)(nil)

// Handler serves the operator API.
type Handler struct {
	svc    Service
	outbox Outbox
	log    *slog.Logger
}

// New returns the operator API handler. outbox may be nil when the SMS
// sender is not the dev outbox (GET /outbox then answers 404).
func New(svc Service, outbox Outbox, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{svc: svc, outbox: outbox, log: log}
}

// Register mounts the routes on r, which the server has already put at
// /admin/v1 behind httpx.RequireToken.
func (h *Handler) Register(r gin.IRouter) {
	r.POST("/users", h.createUser)
	r.GET("/users/:id", h.getUser)
	r.POST("/credentials", h.createCredential)
	r.GET("/credentials/:id", h.getCredential)
	r.POST("/credentials/:id/disable", h.setEnabled(false))
	r.POST("/credentials/:id/enable", h.setEnabled(true))
	r.GET("/outbox", h.listOutbox)
}

func (h *Handler) fail(c *gin.Context, err error) { httpx.WriteError(c, h.log, httpx.REST, err) }

// CreateUserRequest is the body of POST /users.
type CreateUserRequest struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	Email      string `json:"email"`
	Phone      string `json:"phone"`
	GivenName  string `json:"givenName"`
	Surname    string `json:"surname"`
	FiscalCode string `json:"fiscalCode,omitempty"`
	// Temporary makes the user change the password at first login.
	Temporary bool `json:"temporary,omitempty"`
}

// CreateUserResponse is the 201 body of POST /users.
type CreateUserResponse struct {
	UserID string `json:"userID"`
}

func (h *Handler) createUser(c *gin.Context) {
	var req CreateUserRequest
	if err := httpx.DecodeJSON(c, 64<<10, &req); err != nil {
		h.fail(c, err)
		return
	}
	id, err := h.svc.CreateUser(c.Request.Context(), sam.NewUser{
		Username: req.Username, Password: req.Password, Email: req.Email, Phone: req.Phone,
		GivenName: req.GivenName, Surname: req.Surname, FiscalCode: req.FiscalCode, Temporary: req.Temporary,
	})
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, CreateUserResponse{UserID: id})
}

// UserResponse is the body of GET /users/{id}.
type UserResponse struct {
	UserID             string `json:"userID"`
	Email              string `json:"email"`
	Phone              string `json:"phone"`
	GivenName          string `json:"givenName"`
	Surname            string `json:"surname"`
	FiscalCode         string `json:"fiscalCode,omitempty"`
	Status             string `json:"status"`
	PasswordChangedAt  string `json:"passwordChangedAt"`
	MustChangePassword bool   `json:"mustChangePassword"`
	CreatedAt          string `json:"createdAt"`
}

func (h *Handler) getUser(c *gin.Context) {
	u, err := h.svc.User(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, UserResponse{
		UserID: u.UserID, Email: u.Email, Phone: u.Phone, GivenName: u.GivenName, Surname: u.Surname,
		FiscalCode: u.FiscalCode, Status: u.Status, PasswordChangedAt: u.PasswordChangedAt.UTC().Format(time.RFC3339),
		MustChangePassword: u.MustChangePassword, CreatedAt: u.CreatedAt.UTC().Format(time.RFC3339),
	})
}

// CreateCredentialRequest is the body of POST /credentials.
type CreateCredentialRequest struct {
	UserID string `json:"userID"`
	PIN    string `json:"pin,omitempty"`
	// Activation "puk" (with no pin) creates an "issued, not activated" credential.
	Activation  string        `json:"activation,omitempty"`
	KeyAlgo     string        `json:"keyAlgo"`
	OTP         string        `json:"otp"`
	SCAL        httpx.FlexInt `json:"scal"`
	Multisign   httpx.FlexInt `json:"multisign"`
	Domain      string        `json:"domain,omitempty"`
	Alias       string        `json:"alias,omitempty"`
	Description string        `json:"description,omitempty"`
}

// CreateCredentialResponse is the 201 body of POST /credentials. PUK and
// ERC are shown only here, once.
type CreateCredentialResponse struct {
	CredentialID string   `json:"credentialID"`
	PUK          string   `json:"puk"`
	ERC          string   `json:"erc"`
	IUT          string   `json:"iut"`
	OTPSecret    string   `json:"otpSecret,omitempty"`
	OTPURI       string   `json:"otpURI,omitempty"`
	Certificates []string `json:"certificates"`
	Serial       string   `json:"serialNumber"`
	Activated    bool     `json:"activated"`
}

func b64All(ders [][]byte) []string {
	out := make([]string, len(ders))
	for i, d := range ders {
		out[i] = base64.StdEncoding.EncodeToString(d)
	}
	return out
}

func (h *Handler) createCredential(c *gin.Context) {
	var req CreateCredentialRequest
	if err := httpx.DecodeJSON(c, 64<<10, &req); err != nil {
		h.fail(c, err)
		return
	}
	if req.OTP == "" {
		req.OTP = "none"
	}
	cc, err := h.svc.CreateCredential(c.Request.Context(), sam.NewCredential{
		UserID: req.UserID, PIN: req.PIN, Activation: req.Activation, KeyAlgo: req.KeyAlgo, OTP: req.OTP,
		SCAL: int(req.SCAL.Value), Multisign: int(req.Multisign.Value), Domain: req.Domain, Alias: req.Alias,
		Description: req.Description,
	})
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, CreateCredentialResponse{
		CredentialID: cc.CredentialID, PUK: cc.PUK, ERC: cc.ERC, IUT: cc.IUT, OTPSecret: cc.OTPSecret,
		OTPURI: cc.OTPURI, Certificates: b64All(cc.Certificates), Serial: cc.Serial, Activated: cc.Activated,
	})
}

// CredentialResponse is the body of GET /credentials/{id}: no secrets.
type CredentialResponse struct {
	CredentialID string   `json:"credentialID"`
	UserID       string   `json:"userID"`
	Description  string   `json:"description,omitempty"`
	KeyStatus    string   `json:"keyStatus"`
	KeyAlgo      string   `json:"keyAlgo"`
	KeyLen       int      `json:"keyLen"`
	CertStatus   string   `json:"certStatus"`
	Serial       string   `json:"serialNumber"`
	SubjectDN    string   `json:"subjectDN"`
	ValidFrom    string   `json:"validFrom"`
	ValidTo      string   `json:"validTo"`
	Certificates []string `json:"certificates"`
	SCAL         int      `json:"scal"`
	Multisign    int      `json:"multisign"`
	OTP          string   `json:"otp"`
	Activated    bool     `json:"activated"`
	PINBlocked   bool     `json:"pinBlocked"`
	Domain       string   `json:"domain,omitempty"`
	Alias        string   `json:"alias,omitempty"`
}

func (h *Handler) getCredential(c *gin.Context) {
	ci, err := h.svc.AdminCredential(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	resp := CredentialResponse{
		CredentialID: ci.ID, UserID: ci.UserID, Description: ci.Description, KeyStatus: ci.KeyStatus,
		KeyAlgo: ci.KeyAlgo, KeyLen: ci.KeyLen, CertStatus: ci.CertStatus, Certificates: b64All(ci.Certificates),
		SCAL: ci.SCAL, Multisign: ci.Multisign, OTP: ci.OTPType, Activated: ci.Activated, PINBlocked: ci.PINBlocked,
		Domain: ci.Domain, Alias: ci.Alias,
	}
	if ci.Cert != nil {
		resp.Serial = ci.Cert.SerialNumber.Text(16)
		resp.SubjectDN = ci.Cert.Subject.String()
		resp.ValidFrom = ci.Cert.NotBefore.UTC().Format(time.RFC3339)
		resp.ValidTo = ci.Cert.NotAfter.UTC().Format(time.RFC3339)
	}
	c.JSON(http.StatusOK, resp)
}

// StatusResponse is the body of POST /credentials/{id}/enable|disable.
type StatusResponse struct {
	CredentialID string `json:"credentialID"`
	KeyStatus    string `json:"keyStatus"`
}

func (h *Handler) setEnabled(enabled bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		if err := h.svc.SetKeyEnabled(c.Request.Context(), id, enabled); err != nil {
			h.fail(c, err)
			return
		}
		st := sam.KeyDisabled
		if enabled {
			st = sam.KeyEnabled
		}
		c.JSON(http.StatusOK, StatusResponse{CredentialID: id, KeyStatus: st})
	}
}

// OutboxMessage is one entry of GET /outbox.
type OutboxMessage struct {
	ID      string `json:"id"`
	To      string `json:"to"`
	Message string `json:"message"`
	SentAt  string `json:"sentAt"`
}

// OutboxResponse is the body of GET /outbox?to=PHONE&limit=N (newest first).
type OutboxResponse struct {
	Messages []OutboxMessage `json:"messages"`
}

func (h *Handler) listOutbox(c *gin.Context) {
	if h.outbox == nil {
		h.fail(c, errs.New(errs.NotFound, "", "The SMS sender is not the dev outbox"))
		return
	}
	limit, err := queryLimit(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	msgs, err := h.outbox.Outbox(c.Request.Context(), phoneQuery(c.Query("to")), limit)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := OutboxResponse{Messages: make([]OutboxMessage, 0, len(msgs))}
	for _, m := range msgs {
		out.Messages = append(out.Messages, OutboxMessage{ID: m.ID, To: m.To, Message: m.Body, SentAt: m.CreatedAt.UTC().Format(time.RFC3339Nano)})
	}
	c.JSON(http.StatusOK, out)
}

// phoneQuery undoes what query decoding does to an unescaped "+39...":
// the plus arrives as a space. Spaces and dashes are dropped, as they are
// when a user's phone is stored.
func phoneQuery(to string) string {
	if strings.HasPrefix(to, " ") {
		to = "+" + strings.TrimLeft(to, " ")
	}
	return strings.NewReplacer(" ", "", "-", "").Replace(to)
}
