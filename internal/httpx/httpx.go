// Package httpx is what sigillo's HTTP layers (csc, admin, portal, the CA
// routes) share: the CSC error body, the mapping from core error kinds to
// statuses, strict JSON decoding with a size bound, and bearer parsing.
// It exists so that every edge answers a client mistake the same way: a
// clear {"error","error_description"} and a 4xx, never a 500.
package httpx

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// ErrorBody is the CSC / OAuth2 error shape.
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// Flavor selects how NotFound and Conflict are rendered: CSC hides
// existence behind 400 invalid_request; operator APIs use 404 / 409.
type Flavor int

const (
	// CSC renders NotFound and Conflict as 400 invalid_request.
	CSC Flavor = iota
	// REST renders NotFound as 404 and Conflict as 409.
	REST
)

// cscFactorCodes are the CSC codes for a wrong PIN/OTP: 400, not 403.
var cscFactorCodes = map[string]bool{"invalid_pin": true, "invalid_otp": true, "invalid_authentication_data": true}

// Status returns the HTTP status and error code for err.
func Status(err error, f Flavor) (int, ErrorBody) {
	if errors.Is(err, context.Canceled) {
		// The client went away: nobody reads the answer, and it is not a
		// server fault, so it must not count as a 5xx (nginx's 499).
		return StatusClientClosed, ErrorBody{"request_cancelled", "The client closed the request"}
	}
	e, ok := errs.As(err)
	if !ok {
		switch {
		case errors.Is(err, store.ErrUnavailable):
			return http.StatusServiceUnavailable, ErrorBody{"temporarily_unavailable", "The service is temporarily unavailable"}
		case errors.Is(err, store.ErrNotFound):
			e = errs.New(errs.NotFound, "", "Not found")
		default:
			return http.StatusInternalServerError, ErrorBody{"server_error", "Internal server error"}
		}
	}
	body := ErrorBody{Error: e.Code, Description: e.Msg}
	status := http.StatusBadRequest
	def := "invalid_request"
	switch e.Kind {
	case errs.Invalid:
	case errs.Unauthenticated:
		status, def = http.StatusUnauthorized, "invalid_token"
	case errs.Forbidden:
		status, def = http.StatusForbidden, "access_denied"
		if f == CSC && cscFactorCodes[e.Code] {
			// CSC answers wrong authentication factors with 400 (V1 Table 3).
			status = http.StatusBadRequest
		}
	case errs.NotFound:
		if f == REST {
			status, def = http.StatusNotFound, "not_found"
		}
	case errs.Conflict:
		if f == REST {
			status, def = http.StatusConflict, "conflict"
		}
	case errs.RateLimited:
		status, def = http.StatusTooManyRequests, "too_many_requests"
	case errs.Unavailable:
		status, def = http.StatusServiceUnavailable, "temporarily_unavailable"
	default:
		return http.StatusInternalServerError, ErrorBody{"server_error", "Internal server error"}
	}
	if body.Error == "" {
		body.Error = def
	}
	return status, body
}

// WriteError renders err in the CSC error shape and logs causes of 5xx.
func WriteError(c *gin.Context, log *slog.Logger, f Flavor, err error) {
	status, body := Status(err, f)
	if e, ok := errs.As(err); ok && e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int((e.RetryAfter+999_999_999)/1_000_000_000)))
	} else if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		c.Header("Retry-After", "1")
	}
	if log != nil {
		lvl := slog.LevelDebug
		if status >= 500 {
			lvl = slog.LevelError
		}
		log.Log(c.Request.Context(), lvl, "request failed", "path", c.FullPath(), "status", status, "error", body.Error, "cause", err.Error())
	}
	c.Abort()
	c.JSON(status, body)
}

// StatusClientClosed is the status logged and counted for a request whose
// client disconnected before the answer (nginx's convention).
const StatusClientClosed = 499

// MaxBody is the default bound on JSON request bodies.
const MaxBody = 8 << 20

// DecodeJSON reads a JSON object from the request body into v, bounded by
// limit bytes (MaxBody when 0). Unknown fields are ignored (real CSC clients
// send them); a body that is not one JSON object is an Invalid error.
func DecodeJSON(c *gin.Context, limit int64, v any) error {
	if limit <= 0 {
		limit = MaxBody
	}
	r := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	data, err := io.ReadAll(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.Invalidf("Request body larger than %d bytes", limit)
		}
		return errs.Wrap(errs.Invalid, "Unreadable request body", err)
	}
	return Unmarshal(data, v)
}

// Unmarshal decodes one JSON object from data into v, mapping every
// failure to a clear Invalid error.
func Unmarshal(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return errs.Invalidf("Missing JSON request body")
	}
	if data[0] != '{' {
		return errs.Invalidf("Request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return errs.Invalidf("Missing (or invalid type) %s parameter %s", ute.Value, ute.Field)
		}
		return errs.Wrap(errs.Invalid, "Malformed JSON request body", err)
	}
	if dec.More() {
		return errs.Invalidf("Trailing data after the JSON request body")
	}
	return nil
}

// Bearer returns the token of an "Authorization: Bearer X" header. A
// missing header is Unauthenticated; a malformed one is Invalid (CSC §3).
func Bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errs.New(errs.Unauthenticated, "invalid_token", "Missing Authorization header")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", errs.New(errs.Invalid, "invalid_request", "Malformed Authorization header")
	}
	return tok, nil
}

// FlexInt is an integer that real clients send either as a JSON number or
// as a numeric string (CSC.md §7: numSignatures as a string).
type FlexInt struct {
	Value int64
	Set   bool
}

// UnmarshalJSON accepts 3 and "3".
func (f *FlexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = strings.TrimSpace(str)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %q", s)
	}
	f.Value, f.Set = n, true
	return nil
}

// RequireToken is middleware that admits only requests bearing the given
// bearer token (compared in constant time); others get 401 in the CSC
// error shape. The operator API sits behind it.
func RequireToken(token string) gin.HandlerFunc {
	want := []byte(token)
	return func(c *gin.Context) {
		got, err := Bearer(c.Request)
		if err != nil {
			WriteError(c, nil, REST, err)
			return
		}
		if len(want) == 0 || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			WriteError(c, nil, REST, errs.New(errs.Unauthenticated, "invalid_token", "Invalid operator token"))
			return
		}
		c.Next()
	}
}
