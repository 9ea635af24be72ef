package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// APIError is a non-2xx answer from sigillo, in the CSC / operator API
// error shape {"error","error_description"}.
type APIError struct {
	Status      int
	Code        string
	Description string
}

// Error reports the status, code and description.
func (e *APIError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Description)
	}
	return fmt.Sprintf("HTTP %d %s", e.Status, e.Code)
}

// VerifyError reports a returned signature (or signed document) that does
// not verify against the credential's certificate.
type VerifyError struct {
	CredentialID string
	Err          error
}

// Error names the credential and the reason.
func (e *VerifyError) Error() string {
	return fmt.Sprintf("verify signature of %s: %v", e.CredentialID, e.Err)
}

// Unwrap returns the verification failure.
func (e *VerifyError) Unwrap() error { return e.Err }

// errorKind names the class of a failed operation for the error table:
// stable strings, so runs can be compared.
func errorKind(err error) string {
	var api *APIError
	var ver *VerifyError
	var nerr net.Error
	switch {
	case errors.As(err, &ver):
		return "verify"
	case errors.As(err, &api):
		if api.Code == "" {
			return fmt.Sprintf("http %d", api.Status)
		}
		return fmt.Sprintf("http %d %s", api.Status, api.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &nerr) && nerr.Timeout():
		return "timeout"
	case errors.As(err, &nerr):
		return "transport"
	case errors.Is(err, errDecode):
		return "bad response"
	default:
		return "other"
	}
}

var errDecode = errors.New("undecodable response")

// client talks JSON to one sigillo base URL.
type client struct {
	http *http.Client
	base string // without trailing slash
}

func newClient(hc *http.Client, base string) *client {
	return &client{http: hc, base: strings.TrimRight(base, "/")}
}

// newHTTPClient keeps enough idle connections per host for every worker:
// the default (2) would make most requests open a new connection and
// measure TCP set-up instead of signing.
func newHTTPClient(workers int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 4*workers + 16
	tr.MaxIdleConnsPerHost = 2*workers + 8
	tr.Proxy = nil // a load test must hit the target, not a proxy
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// auth decorates a request with credentials.
type auth func(*http.Request)

func bearer(tok string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func basic(user, pass string) auth {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// post sends in as JSON and decodes a 2xx answer into out (when not nil).
func (c *client) post(ctx context.Context, path string, a auth, in, out any) error {
	data, err := c.postRaw(ctx, path, a, in)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: %w: %v", path, errDecode, err)
	}
	return nil
}

// postRaw sends in as JSON (a []byte is sent as is: it is JSON already)
// and returns the body of a 2xx answer.
func (c *client) postRaw(ctx context.Context, path string, a auth, in any) ([]byte, error) {
	var body io.Reader = http.NoBody
	if b, ok := in.([]byte); ok { // already JSON
		body = bytes.NewReader(b)
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a != nil {
		a(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength < 1<<30 {
		buf.Grow(int(resp.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, 1<<30)); err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", path, err)
	}
	data := buf.Bytes()
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		var eb struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &eb) == nil {
			e.Code, e.Description = eb.Error, eb.Description
		}
		return nil, fmt.Errorf("%s: %w", path, e)
	}
	return data, nil
}

// get fetches path and returns the body of a 2xx answer.
func (c *client) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %w", path, &APIError{Status: resp.StatusCode})
	}
	return data, nil
}
