// Package cahttp is the HTTP face of the CA: the certificates and CRLs
// relying parties fetch (AIA caIssuers, CRL distribution points), the
// RFC 6960 OCSP responder, the RFC 3161 time-stamping endpoint and the
// operator's certificate lifecycle API.
//
// It exists so that package ca stays free of net/http and gin. Handlers
// decode, call one ca function and encode; every client mistake (malformed
// DER, wrong content type, unknown serial or reason) is a 4xx in the
// {"error","error_description"} shape, never a 500.
package cahttp

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
)

// Authority is what the handlers need from the CA; *ca.Authority
// satisfies it.
type Authority interface {
	Chain() []*x509.Certificate
	CRL(ctx context.Context, role string) ([]byte, error)
	OCSP(ctx context.Context, reqDER []byte) ([]byte, error)
	TimestampResponse(ctx context.Context, reqDER []byte) ([]byte, error)
	Get(ctx context.Context, serial string) (*ca.Certificate, error)
	IssueCSR(ctx context.Context, csrDER []byte, qualified bool, owner, actor string) (*ca.Certificate, error)
	Suspend(ctx context.Context, serial, actor string) error
	Reactivate(ctx context.Context, serial, actor string) error
	Revoke(ctx context.Context, serial, reason, actor string) error
}

var _ Authority = (*ca.Authority)(nil)

// maxDERBody bounds OCSP and time-stamp request bodies; real ones are a
// few hundred bytes.
const maxDERBody = 64 << 10

// Content types of RFC 6960, RFC 3161 and RFC 2585.
const (
	ctOCSPRequest  = "application/ocsp-request"
	ctOCSPResponse = "application/ocsp-response"
	ctTSQuery      = "application/timestamp-query"
	ctTSReply      = "application/timestamp-reply"
	ctCert         = "application/pkix-cert"
	ctCRL          = "application/pkix-crl"
	ctPEMChain     = "application/pem-certificate-chain"
)

// Handler serves the CA's public and operator routes.
type Handler struct {
	a   Authority
	log *slog.Logger
}

// New returns the handlers for a; log may be nil (slog.Default()).
func New(a Authority, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{a: a, log: log}
}

// Register mounts the public routes: /ca/... and /tsa.
func (h *Handler) Register(r gin.IRouter) {
	r.GET("/ca/chain.pem", h.chainPEM)
	r.GET("/ca/issuer.crt", h.certDER(0))
	r.GET("/ca/root.crt", h.certDER(1))
	r.GET("/ca/crl", h.crl(ca.RoleIssuing))
	r.GET("/ca/root.crl", h.crl(ca.RoleRoot))
	r.POST("/ca/ocsp", h.ocspPost)
	r.GET("/ca/ocsp/*request", h.ocspGet)
	r.POST("/tsa", h.tsa)
}

// RegisterAdmin mounts the operator routes; the caller mounts r under
// /admin/v1 behind the operator token.
func (h *Handler) RegisterAdmin(r gin.IRouter) {
	r.POST("/certificates", h.issue)
	r.GET("/certificates/:serial", h.get)
	r.POST("/certificates/:serial/:action", h.lifecycle)
}

func (h *Handler) fail(c *gin.Context, err error) {
	httpx.WriteError(c, h.log, httpx.REST, err)
}

func (h *Handler) chainPEM(c *gin.Context) {
	var b strings.Builder
	for _, cert := range h.a.Chain() {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	c.Header("Cache-Control", "public, max-age=3600")
	c.Data(http.StatusOK, ctPEMChain, []byte(b.String()))
}

func (h *Handler) certDER(i int) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=3600")
		c.Data(http.StatusOK, ctCert, h.a.Chain()[i].Raw)
	}
}

func (h *Handler) crl(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		format := c.DefaultQuery("format", "der")
		if format != "der" && format != "pem" {
			h.fail(c, errs.Invalidf("Unknown format %q: use der or pem", format))
			return
		}
		der, err := h.a.CRL(c.Request.Context(), role)
		if err != nil {
			h.fail(c, err)
			return
		}
		c.Header("Cache-Control", "no-cache")
		if format == "pem" {
			c.Data(http.StatusOK, "application/x-pem-file", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
			return
		}
		c.Data(http.StatusOK, ctCRL, der)
	}
}

// readDER reads a bounded DER body of the given content type.
func readDER(c *gin.Context, contentType string) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != contentType {
		return nil, errs.Invalidf("Content-Type must be %s", contentType)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxDERBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errs.Invalidf("Request body larger than %d bytes", maxDERBody)
		}
		return nil, errs.Wrap(errs.Invalid, "Unreadable request body", err)
	}
	if len(body) == 0 {
		return nil, errs.Invalidf("Empty request body")
	}
	return body, nil
}

func (h *Handler) ocspPost(c *gin.Context) {
	der, err := readDER(c, ctOCSPRequest)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.ocsp(c, der)
}

// ocspGet serves RFC 6960 appendix A.1 GET requests: the base64 DER
// request, URL-encoded, as the last path segment(s).
func (h *Handler) ocspGet(c *gin.Context) {
	raw := strings.TrimPrefix(c.Param("request"), "/")
	if unesc, err := url.PathUnescape(raw); err == nil {
		raw = unesc
	}
	der, err := decodeBase64(raw)
	if err != nil || len(der) == 0 {
		h.fail(c, errs.Invalidf("OCSP GET request is not base64 DER"))
		return
	}
	h.ocsp(c, der)
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxDERBody*2 {
		return nil, errors.New("too long")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func (h *Handler) ocsp(c *gin.Context, der []byte) {
	resp, err := h.a.OCSP(c.Request.Context(), der)
	if err != nil {
		h.fail(c, err)
		return
	}
	// Status changes must be seen at once: no caching by intermediaries.
	c.Header("Cache-Control", "no-cache, no-store, max-age=0")
	c.Data(http.StatusOK, ctOCSPResponse, resp)
}

func (h *Handler) tsa(c *gin.Context) {
	der, err := readDER(c, ctTSQuery)
	if err != nil {
		h.fail(c, err)
		return
	}
	resp, err := h.a.TimestampResponse(c.Request.Context(), der)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, ctTSReply, resp)
}

// certificateView is the admin API's JSON form of a certificate.
type certificateView struct {
	Serial       string `json:"serial"`
	Status       string `json:"status"`
	Subject      string `json:"subject"`
	Issuer       string `json:"issuer"`
	NotBefore    string `json:"not_before"`
	NotAfter     string `json:"not_after"`
	RevokedAt    string `json:"revoked_at,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Owner        string `json:"owner,omitempty"`
	Qualified    bool   `json:"qualified"`
	SupersededBy string `json:"superseded_by,omitempty"`
	Certificate  string `json:"certificate"`
}

func view(cert *ca.Certificate) certificateView {
	v := certificateView{
		Serial: cert.Serial, Status: string(cert.Status), Subject: cert.Cert.Subject.String(), Issuer: cert.Cert.Issuer.String(),
		NotBefore: cert.Cert.NotBefore.UTC().Format(time.RFC3339), NotAfter: cert.Cert.NotAfter.UTC().Format(time.RFC3339),
		Reason: cert.Reason, Owner: cert.Owner, Qualified: cert.Qualified, SupersededBy: cert.SupersededBy,
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.DER})),
	}
	if !cert.RevokedAt.IsZero() {
		v.RevokedAt = cert.RevokedAt.UTC().Format(time.RFC3339)
	}
	return v
}

type issueRequest struct {
	CSR       string `json:"csr"`
	Qualified bool   `json:"qualified"`
	Owner     string `json:"owner"`
}

// issue certifies a PKCS#10 request given as PEM or base64 DER.
func (h *Handler) issue(c *gin.Context) {
	var req issueRequest
	if err := httpx.DecodeJSON(c, 0, &req); err != nil {
		h.fail(c, err)
		return
	}
	der, err := csrDER(req.CSR)
	if err != nil {
		h.fail(c, err)
		return
	}
	cert, err := h.a.IssueCSR(c.Request.Context(), der, req.Qualified, req.Owner, "admin")
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, view(cert))
}

func csrDER(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errs.Invalidf("Missing csr parameter")
	}
	if strings.HasPrefix(s, "-----BEGIN") {
		b, _ := pem.Decode([]byte(s))
		if b == nil || (b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST") {
			return nil, errs.Invalidf("csr is not a PEM CERTIFICATE REQUEST")
		}
		return b.Bytes, nil
	}
	der, err := decodeBase64(s)
	if err != nil {
		return nil, errs.Invalidf("csr must be PEM or base64 DER")
	}
	return der, nil
}

func (h *Handler) get(c *gin.Context) {
	cert, err := h.a.Get(c.Request.Context(), c.Param("serial"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view(cert))
}

type revokeRequest struct {
	Reason string `json:"reason"`
}

func (h *Handler) lifecycle(c *gin.Context) {
	ctx, serial := c.Request.Context(), c.Param("serial")
	var err error
	switch c.Param("action") {
	case "suspend":
		err = h.a.Suspend(ctx, serial, "admin")
	case "reactivate":
		err = h.a.Reactivate(ctx, serial, "admin")
	case "revoke":
		var req revokeRequest
		if err := httpx.DecodeJSON(c, 4<<10, &req); err != nil {
			h.fail(c, err)
			return
		}
		if req.Reason == "" {
			h.fail(c, errs.Invalidf("Missing reason parameter (e.g. keyCompromise)"))
			return
		}
		err = h.a.Revoke(ctx, serial, req.Reason, "admin")
	default:
		h.fail(c, errs.New(errs.NotFound, "", "Unknown action "+c.Param("action")+": use suspend, reactivate or revoke"))
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	cert, err := h.a.Get(ctx, serial)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view(cert))
}
