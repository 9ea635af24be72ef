// Package smtpmail delivers enrollment e-mail (verification links, the
// encrypted envelope with PUK and ERC) through an SMTP submission server.
// It is separate from package enroll so that the domain code does not
// import the network; server/ wires it in when email.sender is "smtp".
//
// Transport security is not optional: smtps:// speaks TLS from the first
// byte (RFC 8314), smtp:// must upgrade with STARTTLS before anything else
// is sent, and a plain connection is allowed only to a relay on the
// loopback interface. Credentials go only over TLS (AUTH PLAIN).
package smtpmail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigillo/sigillo/enroll"
)

// Config describes the submission server.
type Config struct {
	// URL of the server: smtps://[user@]host[:465] (implicit TLS),
	// smtp://[user@]host[:587] (STARTTLS, required), or
	// smtp://host[:25]?tls=none for a relay on a loopback address.
	URL string
	// Password for AUTH PLAIN, when URL names a user.
	Password string
	// From is the sender, an RFC 5322 address ("sigillo <noreply@example.com>").
	From string
	// Timeout bounds one delivery, connection included (default 30 s).
	Timeout time.Duration
	// TLS is the base TLS configuration (nil: system roots); ServerName is
	// always the URL's host.
	TLS *tls.Config
}

// Sender delivers mail through one submission server.
type Sender struct {
	host, addr string
	implicit   bool // smtps://
	plain      bool // ?tls=none, loopback only
	user, pass string
	from       *mail.Address
	timeout    time.Duration
	tls        *tls.Config
}

var _ enroll.Mailer = (*Sender)(nil)

// New checks cfg and returns a Sender. It does not connect.
func New(cfg Config) (*Sender, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil { // the message would echo the URL, password included
		return nil, errors.New("smtp: the URL does not parse: want smtp://host:port or smtps://host:port")
	}
	if u.Hostname() == "" || u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("smtp: URL %q: want smtp://host:port or smtps://host:port", u.Redacted())
	}
	s := &Sender{host: u.Hostname(), timeout: cfg.Timeout, pass: cfg.Password}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	port := u.Port()
	switch u.Scheme {
	case "smtps":
		s.implicit = true
		if port == "" {
			port = "465"
		}
	case "smtp":
		if port == "" {
			port = "587"
		}
	default:
		return nil, fmt.Errorf("smtp: URL scheme %q: want smtp or smtps", u.Scheme)
	}
	s.addr = net.JoinHostPort(s.host, port)
	q := u.Query()
	switch q.Get("tls") {
	case "":
	case "none":
		if s.implicit || !isLoopback(s.host) {
			return nil, errors.New("smtp: tls=none is only for smtp:// to a relay on a loopback address")
		}
		s.plain = true
	default:
		return nil, fmt.Errorf("smtp: tls=%q: the only option is none", q.Get("tls"))
	}
	if u.User != nil {
		s.user = u.User.Username()
		if p, ok := u.User.Password(); ok {
			if s.pass != "" {
				return nil, errors.New("smtp: password given both in the URL and as the password setting")
			}
			s.pass = p
		}
		if s.plain {
			return nil, errors.New("smtp: no credentials over a connection without TLS")
		}
	}
	if s.from, err = mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp: from %q: %w", cfg.From, err)
	}
	if cfg.TLS != nil {
		s.tls = cfg.TLS.Clone()
	} else {
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	s.tls.ServerName = s.host
	return s, nil
}

// Send delivers m. The error says at which step the server refused it.
func (s *Sender) Send(ctx context.Context, m enroll.Mail) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("smtp: recipient %q: %w", m.To, err)
	}
	msg, err := compose(m, s.from, to, time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.deliver(ctx, to.Address, msg); err != nil {
		return fmt.Errorf("smtp: deliver to %s via %s: %w", to.Address, s.addr, err)
	}
	return nil
}

func (s *Sender) deliver(ctx context.Context, rcpt string, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// net/smtp has no context: the deadline bounds every exchange, and a
	// cancelled context closes the connection.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if s.implicit {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(helloName(s.from)); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if !s.implicit && !s.plain {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the server does not offer STARTTLS")
		}
		if err := c.StartTLS(s.tls); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.user != "" {
		if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

// compose builds the RFC 5322 message: text/plain in quoted-printable, or
// multipart/mixed with the attachment in base64. Lines end in CRLF.
func compose(m enroll.Mail, from, to *mail.Address, now time.Time) ([]byte, error) {
	if strings.ContainsAny(m.Subject, "\r\n") || strings.ContainsAny(m.AttachmentName, "\r\n\"") {
		return nil, errors.New("smtp: line break or quote in the subject or attachment name")
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from.String())
	h("To", to.String())
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", now.Format(time.RFC1123Z))
	h("Message-ID", "<"+hex.EncodeToString(id)+"@"+domainOf(from)+">")
	h("MIME-Version", "1.0")
	if m.Attachment == nil {
		h("Content-Type", "text/plain; charset=utf-8")
		h("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Body); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	h("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	text, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"},
	})
	if err != nil {
		return nil, err
	}
	if err := writeQP(text, m.Body); err != nil {
		return nil, err
	}
	name := m.AttachmentName
	if name == "" {
		name = "attachment"
	}
	ctype := mime.TypeByExtension(filepath.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	att, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {mime.FormatMediaType(ctype, map[string]string{"name": name})},
		"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": name})},
		"Content-Transfer-Encoding": {"base64"},
	})
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString(m.Attachment)
	for len(enc) > 76 {
		fmt.Fprintf(att, "%s\r\n", enc[:76])
		enc = enc[76:]
	}
	fmt.Fprintf(att, "%s\r\n", enc)
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeQP writes body in quoted-printable with CRLF line ends.
func writeQP(w interface{ Write([]byte) (int, error) }, body string) error {
	q := quotedprintable.NewWriter(w)
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	if _, err := q.Write([]byte(body)); err != nil {
		return err
	}
	return q.Close()
}

func domainOf(a *mail.Address) string {
	if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
		return a.Address[i+1:]
	}
	return "localhost"
}

// helloName is the name sent with EHLO: the sender's domain, as servers
// check it is a name at all (the default "localhost" is refused by some).
func helloName(from *mail.Address) string { return domainOf(from) }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
