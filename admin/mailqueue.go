package admin

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/store"
)

// MailQueue lists the outgoing e-mail queue (*store.Store).
type MailQueue interface {
	MailQueueEntries(ctx context.Context, state string, limit int) ([]store.MailQueueEntry, error)
}

// MailQueueMessage is one entry of GET /mail-queue: who, what, and how
// delivery went; never the content.
type MailQueueMessage struct {
	ID             string `json:"id"`
	To             string `json:"to"`
	Subject        string `json:"subject"`
	AttachmentName string `json:"attachmentName,omitempty"`
	CreatedAt      string `json:"createdAt"`
	Attempts       int    `json:"attempts"`
	NextAttemptAt  string `json:"nextAttemptAt,omitempty"`
	SentAt         string `json:"sentAt,omitempty"`
	FailedAt       string `json:"failedAt,omitempty"`
	LastError      string `json:"lastError,omitempty"`
}

type mailQueueHandler struct {
	q   MailQueue
	log *slog.Logger
}

// RegisterMailQueue mounts, on r (already /admin/v1 behind the operator
// token), GET /mail-queue?state=pending|sent|failed&limit= (default
// pending, 100, newest first): what waits for the SMTP server, what went
// out, and what was given up (whose envelope must then be reissued).
// With q nil (e-mail goes to the dev outbox) it answers 404.
func RegisterMailQueue(r gin.IRouter, q MailQueue, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &mailQueueHandler{q: q, log: log}
	r.GET("/mail-queue", h.list)
}

func (h *mailQueueHandler) list(c *gin.Context) {
	if h.q == nil {
		httpx.WriteError(c, h.log, httpx.REST, errs.New(errs.NotFound, "", "E-mail goes to the dev outbox: there is no queue (GET /admin/v1/emails)"))
		return
	}
	state := c.DefaultQuery("state", "pending")
	if state != "pending" && state != "sent" && state != "failed" {
		httpx.WriteError(c, h.log, httpx.REST, errs.Invalidf("Invalid parameter state (pending, sent or failed)"))
		return
	}
	limit, err := queryLimit(c)
	if err != nil {
		httpx.WriteError(c, h.log, httpx.REST, err)
		return
	}
	es, err := h.q.MailQueueEntries(c.Request.Context(), state, limit)
	if err != nil {
		httpx.WriteError(c, h.log, httpx.REST, errs.Wrap(errs.Unavailable, "The store is unavailable", err))
		return
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	out := make([]MailQueueMessage, 0, len(es))
	for _, e := range es {
		m := MailQueueMessage{ID: e.ID, To: e.To, Subject: e.Subject, AttachmentName: e.AttachmentName, CreatedAt: stamp(e.CreatedAt),
			Attempts: e.Attempts, SentAt: stamp(e.SentAt), FailedAt: stamp(e.FailedAt), LastError: e.LastError}
		if state == "pending" {
			m.NextAttemptAt = stamp(e.NextAt)
		}
		out = append(out, m)
	}
	c.JSON(http.StatusOK, gin.H{"messages": out})
}
