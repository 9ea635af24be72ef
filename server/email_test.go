package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/sigillo/sigillo/config"
	"github.com/sigillo/sigillo/internal/smtptest"
	"github.com/sigillo/sigillo/server/servertest"
)

// TestRegistrationMailGoesThroughSMTP: with email.sender "smtp" the
// assembled replica sends a registration's verification e-mail, through
// its mail queue, to a real SMTP server (a relay on loopback), not to the
// dev outbox, and the link in it verifies the address.
func TestRegistrationMailGoesThroughSMTP(t *testing.T) {
	relay := smtptest.Start(t, smtptest.Plain, "")
	srv := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) {
		c.Email.Sender = "smtp"
		c.Email.SMTPURL = fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", relay.Port)
		c.Email.From = "sigillo <noreply@sigillo.test>"
	}})
	post := func(path string, body any, want int) {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != want {
			out, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
		}
	}
	post("/selfcare/v1/register", map[string]any{"email": "anna.neri@example.test", "password": "Sunny-Day-2026",
		"passwordConfirm": "Sunny-Day-2026", "country": "IT", "consentProcessing": true}, http.StatusCreated)

	// The mail goes through the store's queue: it arrives shortly after.
	var msgs []*mail.Message
	for deadline := time.Now().Add(15 * time.Second); len(msgs) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		msgs = relay.Messages(t)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages at the SMTP server, want the verification e-mail", len(msgs))
	}
	m := msgs[0]
	to, _ := m.Header.AddressList("To")
	from, _ := m.Header.AddressList("From")
	if len(to) != 1 || to[0].Address != "anna.neri@example.test" || len(from) != 1 || from[0].Address != "noreply@sigillo.test" {
		t.Fatalf("headers: %v", m.Header)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(regexp.QuoteMeta(srv.Config.PublicURL) + `/portal/verify\?token=[A-Za-z0-9_-]+`).Find(body)
	if link == nil {
		t.Fatalf("no verification link in:\n%s", body)
	}
	u, _ := url.Parse(string(link))
	post("/selfcare/v1/verify", map[string]any{"token": u.Query().Get("token")}, http.StatusOK)

	// The development outbox is not the mailer: its list is not served.
	st, out := adminGet(t, srv, "/emails")
	if st != http.StatusNotFound || out["error_description"] != "The mailer is not the dev outbox" {
		t.Fatalf("GET /admin/v1/emails with the SMTP mailer: %d %v", st, out)
	}
	// The queue tells operators what went out, without the content (once
	// the queue has recorded the delivery, just after the server took it).
	var sent []any
	for deadline := time.Now().Add(10 * time.Second); len(sent) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, out = adminGet(t, srv, "/mail-queue?state=sent")
		sent, _ = out["messages"].([]any)
	}
	if st != http.StatusOK || len(sent) != 1 {
		t.Fatalf("sent mail: %d %v", st, out)
	}
	m0 := sent[0].(map[string]any)
	if m0["to"] != "anna.neri@example.test" || m0["subject"] != "Confirm your e-mail address" || m0["sentAt"] == nil || m0["body"] != nil {
		t.Fatalf("sent entry %v", m0)
	}
	if st, out = adminGet(t, srv, "/mail-queue"); st != http.StatusOK || len(out["messages"].([]any)) != 0 {
		t.Fatalf("pending mail: %d %v", st, out)
	}
	if st, out = adminGet(t, srv, "/mail-queue?state=lost"); st != http.StatusBadRequest || out["error"] != "invalid_request" {
		t.Fatalf("unknown state: %d %v", st, out)
	}
}

// TestMailQueueListWithoutQueue: with the dev outbox there is no queue to
// list.
func TestMailQueueListWithoutQueue(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	if st, out := adminGet(t, srv, "/mail-queue"); st != http.StatusNotFound || out["error"] == nil {
		t.Fatalf("GET /admin/v1/mail-queue with the dev outbox: %d %v", st, out)
	}
}

// adminGet calls the operator API and decodes the JSON answer.
func adminGet(t *testing.T, srv *servertest.Server, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
