package admin

// The operator's side of enrollment: list the identification evidence of
// certificate requests, approve or reject it (approval is required before
// the holder can have the certificate issued), and read the dev e-mail
// outbox (verification links, envelopes).

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/store"
)

// Identifications is the part of enroll the operator calls.
type Identifications interface {
	Identifications(ctx context.Context, status string, limit int) ([]store.CertRequest, error)
	Identification(ctx context.Context, id string) (*store.CertRequest, error)
	Decide(ctx context.Context, id string, approve bool, operator, reason string) error
}

var _ Identifications = (*enroll.Service)(nil)

// Emails lists the dev e-mail outbox (*store.Store); nil when e-mail is
// really sent.
type Emails interface {
	Emails(ctx context.Context, to string, limit int) ([]store.Email, error)
}

type identHandler struct {
	svc    Identifications
	emails Emails
	log    *slog.Logger
}

// RegisterIdentifications mounts, on r (already /admin/v1 behind the
// operator token): GET /identifications?status=&limit=,
// GET /identifications/{id}, POST /identifications/{id}/approve,
// POST /identifications/{id}/reject ({"reason"}), and GET /emails?to=&limit=
// (404 when emails is nil).
func RegisterIdentifications(r gin.IRouter, svc Identifications, emails Emails, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &identHandler{svc: svc, emails: emails, log: log}
	r.GET("/identifications", h.list)
	r.GET("/identifications/:id", h.get)
	r.POST("/identifications/:id/approve", h.decide(true))
	r.POST("/identifications/:id/reject", h.decide(false))
	r.GET("/emails", h.listEmails)
}

func (h *identHandler) fail(c *gin.Context, err error) { httpx.WriteError(c, h.log, httpx.REST, err) }

// Identification is one request's evidence as the operator sees it.
type Identification struct {
	ID             string `json:"id"`
	UserID         string `json:"userID"`
	Status         string `json:"status"`
	GivenName      string `json:"givenName"`
	Surname        string `json:"surname"`
	FiscalCode     string `json:"fiscalCode,omitempty"`
	BirthDate      string `json:"birthDate,omitempty"`
	Phone          string `json:"phone"`
	Email          string `json:"email"`
	Country        string `json:"country"`
	Method         string `json:"method"`
	DocType        string `json:"docType"`
	DocNumber      string `json:"docNumber"`
	DocCountry     string `json:"docCountry"`
	DocExpiry      string `json:"docExpiry"`
	Operator       string `json:"operator,omitempty"`
	Reason         string `json:"reason,omitempty"`
	DecidedAt      string `json:"decidedAt,omitempty"`
	CredentialID   string `json:"credentialID,omitempty"`
	EnvelopeNumber string `json:"envelopeNumber,omitempty"`
	CreatedAt      string `json:"createdAt"`
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func identView(r store.CertRequest) Identification {
	return Identification{ID: r.ID, UserID: r.UserID, Status: r.Status, GivenName: r.GivenName, Surname: r.Surname,
		FiscalCode: r.FiscalCode, BirthDate: r.BirthDate, Phone: r.Phone, Email: r.Email, Country: r.Country,
		Method: r.Method, DocType: r.DocType, DocNumber: r.DocNumber, DocCountry: r.DocCountry, DocExpiry: r.DocExpiry,
		Operator: r.Operator, Reason: r.DecisionReason, DecidedAt: ts(r.DecidedAt), CredentialID: r.CredentialID,
		EnvelopeNumber: r.EnvelopeNumber, CreatedAt: ts(r.CreatedAt)}
}

func queryLimit(c *gin.Context) (int, error) {
	l := c.Query("limit")
	if l == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 1000 {
		return 0, errs.Invalidf("Invalid parameter limit (1..1000)")
	}
	return n, nil
}

func (h *identHandler) list(c *gin.Context) {
	limit, err := queryLimit(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	rs, err := h.svc.Identifications(c.Request.Context(), c.Query("status"), limit)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]Identification, 0, len(rs))
	for _, r := range rs {
		out = append(out, identView(r))
	}
	c.JSON(http.StatusOK, gin.H{"identifications": out})
}

func (h *identHandler) get(c *gin.Context) {
	r, err := h.svc.Identification(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, identView(*r))
}

// DecisionRequest is the optional body of approve and the body of reject.
type DecisionRequest struct {
	Reason string `json:"reason"`
	// Operator names who decided (default "admin").
	Operator string `json:"operator"`
}

func (h *identHandler) decide(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req DecisionRequest
		if c.Request.ContentLength != 0 {
			if err := httpx.DecodeJSON(c, 16<<10, &req); err != nil {
				h.fail(c, err)
				return
			}
		}
		op := strings.TrimSpace(req.Operator)
		if len(op) > 64 {
			h.fail(c, errs.Invalidf("Invalid parameter operator (at most 64 characters)"))
			return
		}
		if op == "" {
			op = "admin"
		}
		id := c.Param("id")
		if err := h.svc.Decide(c.Request.Context(), id, approve, "operator:"+op, req.Reason); err != nil {
			h.fail(c, err)
			return
		}
		r, err := h.svc.Identification(c.Request.Context(), id)
		if err != nil {
			h.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, identView(*r))
	}
}

// EmailMessage is one entry of GET /emails; the attachment is base64.
type EmailMessage struct {
	ID             string `json:"id"`
	To             string `json:"to"`
	Subject        string `json:"subject"`
	Body           string `json:"body"`
	AttachmentName string `json:"attachmentName,omitempty"`
	Attachment     string `json:"attachment,omitempty"`
	SentAt         string `json:"sentAt"`
}

func (h *identHandler) listEmails(c *gin.Context) {
	if h.emails == nil {
		h.fail(c, errs.New(errs.NotFound, "", "The mailer is not the dev outbox"))
		return
	}
	limit, err := queryLimit(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	ms, err := h.emails.Emails(c.Request.Context(), strings.ToLower(strings.TrimSpace(c.Query("to"))), limit)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]EmailMessage, 0, len(ms))
	for _, m := range ms {
		e := EmailMessage{ID: m.ID, To: m.To, Subject: m.Subject, Body: m.Body, AttachmentName: m.AttachmentName,
			SentAt: m.CreatedAt.UTC().Format(time.RFC3339Nano)}
		if len(m.Attachment) > 0 {
			e.Attachment = base64.StdEncoding.EncodeToString(m.Attachment)
		}
		out = append(out, e)
	}
	c.JSON(http.StatusOK, gin.H{"messages": out})
}
