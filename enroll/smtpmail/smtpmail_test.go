package smtpmail_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/enroll/smtpmail"
	"github.com/sigillo/sigillo/internal/smtptest"
)

var envelope = enroll.Mail{
	To:      "Maria Rossi <maria.rossi@example.test>",
	Subject: "La tua busta di attivazione — sigillo",
	Body: "Gentile Maria,\n\nin allegato la busta con PUK, ERC e numero di busta.\n" +
		". a line that starts with a dot\n" + strings.Repeat("una riga molto lunga, ", 12) + "fine.\nàèìòù €\n",
	AttachmentName: "busta-0042.pdf",
}

// TestDelivery sends a verification-style text mail and an envelope with
// an attachment through a real SMTP server in each transport mode, and
// reads back exactly what was sent.
func TestDelivery(t *testing.T) {
	att := make([]byte, 10000)
	rand.Read(att)
	mailWith := envelope
	mailWith.Attachment = att
	for _, tc := range []struct {
		name, mode, creds, url string
	}{
		{"starttls_auth", smtptest.StartTLS, "sigillo:s3cret", "smtp://sigillo@127.0.0.1:PORT"},
		{"smtps_auth", smtptest.SMTPS, "sigillo:s3cret", "smtps://sigillo@127.0.0.1:PORT"},
		{"loopback_relay_plain", smtptest.Plain, "", "smtp://127.0.0.1:PORT?tls=none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.mode, tc.creds)
			cfg := smtpmail.Config{URL: strings.Replace(tc.url, "PORT", strconv.Itoa(srv.Port), 1),
				From: "sigillo <noreply@sigillo.test>", TLS: &tls.Config{RootCAs: srv.Roots}}
			if tc.creds != "" {
				cfg.Password = "s3cret"
			}
			s, err := smtpmail.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			text := envelope
			text.Subject, text.AttachmentName = "Verifica il tuo indirizzo", ""
			for _, m := range []enroll.Mail{text, mailWith} {
				if err := s.Send(context.Background(), m); err != nil {
					t.Fatalf("send %q: %v", m.Subject, err)
				}
			}
			got := srv.Messages(t)
			if len(got) != 2 {
				t.Fatalf("%d messages stored, want 2", len(got))
			}
			for _, m := range got {
				subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
				if err != nil {
					t.Fatal(err)
				}
				to, _ := m.Header.AddressList("To")
				if len(to) != 1 || to[0].Address != "maria.rossi@example.test" || m.Header.Get("Message-Id") == "" || m.Header.Get("Date") == "" {
					t.Errorf("headers: %v", m.Header)
				}
				mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
				if err != nil {
					t.Fatal(err)
				}
				switch subject {
				case text.Subject:
					body := readPart(t, m.Header.Get("Content-Transfer-Encoding"), m.Body)
					if mt != "text/plain" || body != text.Body {
						t.Errorf("text mail: %s %q", mt, body)
					}
				case envelope.Subject:
					if mt != "multipart/mixed" {
						t.Fatalf("envelope mail is %s", mt)
					}
					mr := multipart.NewReader(m.Body, params["boundary"])
					p1, err := mr.NextRawPart()
					if err != nil {
						t.Fatal(err)
					}
					if body := readPart(t, p1.Header.Get("Content-Transfer-Encoding"), p1); body != envelope.Body {
						t.Errorf("envelope text: %q", body)
					}
					p2, err := mr.NextRawPart()
					if err != nil {
						t.Fatal(err)
					}
					if p2.FileName() != envelope.AttachmentName || !strings.HasPrefix(p2.Header.Get("Content-Type"), "application/pdf") {
						t.Errorf("attachment part: %v", p2.Header)
					}
					if b := readPart(t, p2.Header.Get("Content-Transfer-Encoding"), p2); b != string(att) {
						t.Errorf("attachment: %d bytes back, %d sent, equal=%v", len(b), len(att), b == string(att))
					}
				default:
					t.Errorf("unexpected subject %q", subject)
				}
			}
		})
	}
}

// readPart decodes a body by its Content-Transfer-Encoding and turns CRLF
// back into LF.
func readPart(t *testing.T, cte string, r io.Reader) string {
	t.Helper()
	var b []byte
	var err error
	switch strings.ToLower(cte) {
	case "quoted-printable":
		b, err = io.ReadAll(quotedprintable.NewReader(r))
		b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	case "base64":
		b, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, r))
	default:
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRefusals: a wrong password, a server without STARTTLS, an untrusted
// certificate and header injection each fail with a clear error, and the
// server stores nothing.
func TestRefusals(t *testing.T) {
	authSrv := smtptest.Start(t, smtptest.StartTLS, "sigillo:s3cret")
	plainSrv := smtptest.Start(t, smtptest.Plain, "")
	roots := authSrv.Roots
	url := func(s *smtptest.Server, pre string) string { return pre + "127.0.0.1:" + strconv.Itoa(s.Port) }
	for _, tc := range []struct {
		name string
		cfg  smtpmail.Config
		mail enroll.Mail
		want string
	}{
		{"wrong_password", smtpmail.Config{URL: url(authSrv, "smtp://sigillo@"), Password: "nope", TLS: &tls.Config{RootCAs: roots}}, envelope, "AUTH"},
		{"no_auth_where_required", smtpmail.Config{URL: url(authSrv, "smtp://"), TLS: &tls.Config{RootCAs: roots}}, envelope, "MAIL FROM"},
		{"untrusted_certificate", smtpmail.Config{URL: url(authSrv, "smtp://sigillo@"), Password: "s3cret"}, envelope, "STARTTLS"},
		{"server_without_starttls", smtpmail.Config{URL: url(plainSrv, "smtp://")}, envelope, "does not offer STARTTLS"},
		{"header_injection", smtpmail.Config{URL: url(plainSrv, "smtp://") + "?tls=none"},
			enroll.Mail{To: "a@example.test", Subject: "hi\r\nBcc: victim@example.test", Body: "x"}, "line break"},
		{"bad_recipient", smtpmail.Config{URL: url(plainSrv, "smtp://") + "?tls=none"},
			enroll.Mail{To: "not an address", Subject: "hi", Body: "x"}, "recipient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.From = "noreply@sigillo.test"
			tc.cfg.Timeout = 10 * time.Second
			s, err := smtpmail.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), tc.mail)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "nope") {
				t.Fatalf("error reveals the password: %v", err)
			}
		})
	}
	if n := len(authSrv.Messages(t)) + len(plainSrv.Messages(t)); n != 0 {
		t.Fatalf("%d messages stored by refused deliveries", n)
	}
}

// TestConfig: settings that would send in clear or cannot work are
// refused before any connection.
func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  smtpmail.Config
		want string
	}{
		{"scheme", smtpmail.Config{URL: "http://mail.example.test", From: "a@b.test"}, "scheme"},
		{"no_host", smtpmail.Config{URL: "smtp://", From: "a@b.test"}, "want smtp://"},
		{"plain_to_remote", smtpmail.Config{URL: "smtp://mail.example.test:25?tls=none", From: "a@b.test"}, "loopback"},
		{"plain_smtps", smtpmail.Config{URL: "smtps://127.0.0.1?tls=none", From: "a@b.test"}, "loopback"},
		{"credentials_in_clear", smtpmail.Config{URL: "smtp://u@127.0.0.1:25?tls=none", From: "a@b.test"}, "without TLS"},
		{"unknown_tls_option", smtpmail.Config{URL: "smtp://mail.example.test?tls=maybe", From: "a@b.test"}, "tls="},
		{"password_twice", smtpmail.Config{URL: "smtp://u:p1@mail.example.test", Password: "p2", From: "a@b.test"}, "both"},
		{"bad_from", smtpmail.Config{URL: "smtp://mail.example.test", From: "nobody"}, "from"},
		{"unparsable_url_hides_password", smtpmail.Config{URL: "smtp://u:sec%zz@host", From: "a@b.test"}, "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := smtpmail.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sec%zz") || strings.Contains(err.Error(), "p1") {
				t.Fatalf("error reveals the password: %v", err)
			}
		})
	}
}
