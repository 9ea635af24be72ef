package admin

// Usage counters, signature limits and the signature history of a
// credential, for operators:
//
//	GET  /admin/v1/credentials/{id}/usage
//	POST /admin/v1/credentials/{id}/limit    {"maxSignatures": N}  (0 removes it)
//	GET  /admin/v1/credentials/{id}/history?from=&to=&page=&size=

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
)

// UsageService is the part of sam the usage routes call.
type UsageService interface {
	AdminUsage(ctx context.Context, credentialID string) (*sam.UsageView, error)
	SetUsageLimit(ctx context.Context, credentialID string, max int64) (*sam.UsageView, error)
	AdminHistory(ctx context.Context, credentialID string, f sam.HistoryFilter) (*sam.SignatureHistory, error)
}

var _ UsageService = (*sam.Service)(nil)

// UsageHandler serves the usage routes.
type UsageHandler struct {
	svc UsageService
	log *slog.Logger
}

// NewUsage returns the usage routes' handler.
func NewUsage(svc UsageService, log *slog.Logger) *UsageHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &UsageHandler{svc: svc, log: log}
}

// Register mounts the routes on r (the /admin/v1 group behind the
// operator token).
func (h *UsageHandler) Register(r gin.IRouter) {
	r.GET("/credentials/:id/usage", h.usage)
	r.POST("/credentials/:id/limit", h.setLimit)
	r.GET("/credentials/:id/history", h.history)
}

func (h *UsageHandler) fail(c *gin.Context, err error) { httpx.WriteError(c, h.log, httpx.REST, err) }

// DayUsage is one day of UsageResponse.
type DayUsage struct {
	Day        string `json:"day"`
	Signatures int64  `json:"signatures"`
}

// UsageResponse is the body of GET /credentials/{id}/usage and of POST
// /credentials/{id}/limit.
type UsageResponse struct {
	CredentialID string `json:"credentialID"`
	Total        int64  `json:"totalSignatures"`
	Today        int64  `json:"todaySignatures"`
	// MaxSignatures is the limit (0: none); Remaining what is left of it.
	MaxSignatures int64 `json:"maxSignatures"`
	Remaining     int64 `json:"remaining,omitempty"`
	// Days are the last 30 UTC days with signatures, oldest first.
	Days []DayUsage `json:"days"`
}

func renderUsage(u *sam.UsageView) UsageResponse {
	out := UsageResponse{CredentialID: u.CredentialID, Total: u.Total, Today: u.Today, MaxSignatures: u.Limit,
		Remaining: u.Remaining, Days: make([]DayUsage, 0, len(u.Days))}
	for _, d := range u.Days {
		out.Days = append(out.Days, DayUsage{Day: d.Day.Format(time.DateOnly), Signatures: d.Count})
	}
	return out
}

func (h *UsageHandler) usage(c *gin.Context) {
	u, err := h.svc.AdminUsage(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, renderUsage(u))
}

// LimitRequest is the body of POST /credentials/{id}/limit.
type LimitRequest struct {
	MaxSignatures *httpx.FlexInt `json:"maxSignatures"`
}

func (h *UsageHandler) setLimit(c *gin.Context) {
	var req LimitRequest
	if err := httpx.DecodeJSON(c, 4<<10, &req); err != nil {
		h.fail(c, err)
		return
	}
	if req.MaxSignatures == nil || !req.MaxSignatures.Set {
		h.fail(c, errs.Invalidf("Missing (or invalid type) integer parameter maxSignatures"))
		return
	}
	u, err := h.svc.SetUsageLimit(c.Request.Context(), c.Param("id"), req.MaxSignatures.Value)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, renderUsage(u))
}

// HistoryEntry is one row of HistoryResponse: a signature (count 1), a
// signed batch of hashes (count n, with every digest in Digests, in
// order) or a refused batch. No document content is ever kept.
type HistoryEntry struct {
	At       string   `json:"at"`
	Client   string   `json:"client"`
	Document string   `json:"document,omitempty"`
	Digests  []string `json:"digests,omitempty"`

	Format     string `json:"format"`
	Level      string `json:"level,omitempty"`
	HashAlgo   string `json:"hashAlgo,omitempty"`
	Signatures int    `json:"signatures"`
	Outcome    string `json:"outcome"`
	JobID      string `json:"jobID,omitempty"`
}

// HistoryResponse is the body of GET /credentials/{id}/history.
type HistoryResponse struct {
	CredentialID string         `json:"credentialID"`
	Page         int            `json:"page"`
	Size         int            `json:"size"`
	Matching     int            `json:"matching"`
	More         bool           `json:"more"`
	Last7Days    int64          `json:"last7DaysSignatures"`
	Total        int64          `json:"totalSignatures"`
	Entries      []HistoryEntry `json:"entries"`
}

// parseTime reads a from/to bound: RFC 3339 or a UTC date (YYYY-MM-DD).
func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, errs.Invalidf("Invalid parameter %s (RFC 3339 time or YYYY-MM-DD)", name)
}

func (h *UsageHandler) history(c *gin.Context) {
	var f sam.HistoryFilter
	var err error
	if f.From, err = parseTime("from", c.Query("from")); err != nil {
		h.fail(c, err)
		return
	}
	if f.To, err = parseTime("to", c.Query("to")); err != nil {
		h.fail(c, err)
		return
	}
	for name, dst := range map[string]*int{"page": &f.Page, "size": &f.Size} {
		if s := c.Query(name); s != "" {
			if *dst, err = strconv.Atoi(s); err != nil {
				h.fail(c, errs.Invalidf("Invalid parameter %s", name))
				return
			}
		}
	}
	hist, err := h.svc.AdminHistory(c.Request.Context(), c.Param("id"), f)
	if err != nil {
		h.fail(c, err)
		return
	}
	size := f.Size
	if size == 0 {
		size = 100
	}
	out := HistoryResponse{CredentialID: c.Param("id"), Page: f.Page, Size: size, Matching: hist.Matching, More: hist.More,
		Last7Days: hist.Last7Days, Total: hist.Total, Entries: make([]HistoryEntry, 0, len(hist.Entries))}
	for _, e := range hist.Entries {
		he := HistoryEntry{At: e.At.UTC().Format(time.RFC3339Nano), Client: e.Client, Document: e.Document,
			Format: e.Format, Level: e.Level, HashAlgo: e.HashAlgo, Signatures: e.Count, Outcome: e.Outcome, JobID: e.JobID}
		for _, d := range e.Digests {
			he.Digests = append(he.Digests, hex.EncodeToString(d))
		}
		out.Entries = append(out.Entries, he)
	}
	c.JSON(http.StatusOK, out)
}
