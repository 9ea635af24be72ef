// Package smshttp delivers SMS codes through an HTTP webhook of a real SMS
// gateway. It is separate from package otp so that the domain code does not
// import net/http (STYLE.md); cmd/ wires it in when configured.
package smshttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sigillo/sigillo/otp"
)

// Sender POSTs {"to": phone, "message": text} as JSON to URL, with an
// optional bearer token. Any 2xx is success.
type Sender struct {
	URL    string
	Token  string
	Client *http.Client
}

var _ otp.Sender = (*Sender)(nil)

// New returns a webhook sender with a 10 s timeout.
func New(url, token string) *Sender {
	return &Sender{URL: url, Token: token, Client: &http.Client{Timeout: 10 * time.Second}}
}

// Send delivers one message.
func (s *Sender) Send(ctx context.Context, phone, message string) error {
	body, err := json.Marshal(map[string]string{"to": phone, "message": message})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sms webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("sms webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sms webhook: status %d", resp.StatusCode)
	}
	return nil
}
