// Package callbackhttp delivers the response_uri notifications of
// asynchronous jobs over HTTP. It is separate from package jobs so that the
// job runner does not import net/http (STYLE.md); the server wires it in.
package callbackhttp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/sigillo/sigillo/jobs"
)

// Poster POSTs a JSON body to a response_uri. Redirects are not followed
// (a callback goes where the client said, nowhere else); any 2xx is
// success.
type Poster struct {
	Client *http.Client
}

var _ jobs.Notifier = (*Poster)(nil)

// New returns a poster whose requests time out after timeout (10 s when 0)
// and connect only where policy allows. Callbacks go direct, never
// through an HTTP proxy from the environment: the policy judges the
// address connected to.
func New(timeout time.Duration, policy Policy) *Poster {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dialer := &net.Dialer{Timeout: timeout, Control: policy.control}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Poster{Client: &http.Client{Timeout: timeout, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// Notify posts body to uri.
func (p *Poster) Notify(ctx context.Context, uri string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("response_uri: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.Client.Do(req)
	if err != nil {
		return fmt.Errorf("response_uri: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("response_uri answered %s", resp.Status)
	}
	return nil
}
