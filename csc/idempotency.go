package csc

// Idempotency-Key on signHash and signDoc: a client that retries a
// request it got no answer for (a timeout, a dropped connection) sends the
// same key and gets the stored answer instead of new signatures (and a
// second spend of SAD budget). Keys are per principal, expire after
// Options.IdempotencyTTL, and are bound to the canonical request body: the
// same key with another body is 422.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
)

// IdempotencyStore keeps Idempotency-Key records; *store.Store implements it.
type IdempotencyStore interface {
	BeginIdempotent(ctx context.Context, r store.IdempotencyRecord) (*store.IdempotencyRecord, error)
	FinishIdempotent(ctx context.Context, userID, key string, status int, response []byte) error
	AbandonIdempotent(ctx context.Context, userID, key string) error
}

var _ IdempotencyStore = (*store.Store)(nil)

// DefaultIdempotencyTTL is how long a key is remembered when
// Options.IdempotencyTTL is 0.
const DefaultIdempotencyTTL = 24 * time.Hour

// maxIdempotencyKey bounds the header's length.
const maxIdempotencyKey = 255

// canonicalHash is the SHA-256 of the body as canonical JSON (members
// sorted, insignificant white space dropped, numbers as written), so that
// a client re-serialising the same request still matches. A body that is
// not JSON is hashed as is.
func canonicalHash(body []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	h := sha256.New()
	if err := dec.Decode(&v); err == nil {
		if b, err := json.Marshal(v); err == nil {
			h.Write(b)
			return hex.EncodeToString(h.Sum(nil))
		}
	}
	h.Write(body)
	return "raw:" + hex.EncodeToString(h.Sum(nil))
}

// idemOwner names the principal an idempotency key belongs to.
func idemOwner(p *sam.Principal) string {
	if p.UserID != "" {
		return "user:" + p.UserID
	}
	return "domain:" + p.Domain
}

// captureWriter keeps a copy of what the handler writes.
type captureWriter struct {
	gin.ResponseWriter
	buf bytes.Buffer
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *captureWriter) WriteString(s string) (int, error) {
	w.buf.WriteString(s)
	return w.ResponseWriter.WriteString(s)
}

// idempotent returns the middleware for one route ("signHash", "signDoc").
// limit bounds the body it reads (the route's own limit).
func (a *API) idempotent(route string, limit func() int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		key := c.GetHeader("Idempotency-Key")
		if key == "" || a.opts.Idempotency == nil {
			c.Next()
			return
		}
		v := &version{a: a, d: dialectV2}
		if len(key) > maxIdempotencyKey {
			c.Abort()
			v.fail(c, errs.Invalidf("Invalid Idempotency-Key header: at most %d characters", maxIdempotencyKey))
			return
		}
		body, err := readBounded(c, limit(), "")
		if err != nil {
			c.Abort()
			v.fail(c, err)
			return
		}
		p := principal(c)
		ctx := c.Request.Context()
		now := a.opts.Now()
		ttl := a.opts.IdempotencyTTL
		if ttl <= 0 {
			ttl = DefaultIdempotencyTTL
		}
		owner := idemOwner(p)
		rec := store.IdempotencyRecord{UserID: owner, Key: key, Route: route, BodyHash: canonicalHash(body),
			CreatedAt: now, ExpiresAt: now.Add(ttl)}
		prev, err := a.opts.Idempotency.BeginIdempotent(ctx, rec)
		if err != nil {
			c.Abort()
			v.fail(c, errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", err))
			return
		}
		if prev != nil {
			c.Abort()
			switch {
			case prev.Route != route || prev.BodyHash != rec.BodyHash:
				c.JSON(http.StatusUnprocessableEntity, httpx.ErrorBody{Error: "invalid_request",
					Description: "Idempotency-Key already used with a different request"})
			case prev.Status == 0:
				c.Header("Retry-After", "1")
				c.JSON(http.StatusConflict, httpx.ErrorBody{Error: "invalid_request",
					Description: "A request with this Idempotency-Key is still being processed"})
			default:
				c.Header("Idempotent-Replayed", "true")
				c.Data(prev.Status, "application/json; charset=utf-8", prev.Response)
			}
			return
		}
		restoreBody(c, body)
		body = nil
		w := &captureWriter{ResponseWriter: c.Writer}
		c.Writer = w
		c.Next()
		c.Writer = w.ResponseWriter
		// Stored even if the client went away: that is the point.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if status := w.Status(); status >= 500 || status == http.StatusTooManyRequests {
			err = a.opts.Idempotency.AbandonIdempotent(sctx, owner, key)
		} else {
			err = a.opts.Idempotency.FinishIdempotent(sctx, owner, key, status, w.buf.Bytes())
		}
		if err != nil {
			a.log.Error("idempotency key not stored", "route", route, "error", err)
		}
	}
}
