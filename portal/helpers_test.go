package portal_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/admin"
	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/cahttp"
	"github.com/sigillo/sigillo/csc"
	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/internal/testenv"
	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/portal"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

// caIssuer adapts the real CA to sam.Issuer and sam.CertLifecycle, as the
// server's wiring will.
type caIssuer struct{ a *ca.Authority }

func (c caIssuer) Issue(ctx context.Context, pub crypto.PublicKey, h sam.Holder, credentialID string) (string, [][]byte, error) {
	cert, err := c.a.Issue(ctx, ca.IssueRequest{PublicKey: pub, CommonName: h.GivenName + " " + h.Surname, GivenName: h.GivenName,
		Surname: h.Surname, Country: h.Country, Qualified: true, Owner: credentialID,
		SerialNumber: ca.NaturalPersonSerial(h.Country, h.FiscalCode)})
	if err != nil {
		return "", nil, err
	}
	return cert.Serial, c.a.ChainDER(cert), nil
}

func (c caIssuer) CertStatus(ctx context.Context, serial string) (string, error) {
	st, err := c.a.Status(ctx, serial)
	return string(st), err
}

func (c caIssuer) Suspend(ctx context.Context, serial, actor string) error {
	return c.a.Suspend(ctx, serial, actor)
}
func (c caIssuer) Reactivate(ctx context.Context, serial, actor string) error {
	return c.a.Reactivate(ctx, serial, actor)
}
func (c caIssuer) Revoke(ctx context.Context, serial, reason, actor string) error {
	return c.a.Revoke(ctx, serial, reason, actor)
}
func (c caIssuer) RenewCert(ctx context.Context, serial string) (string, [][]byte, error) {
	cert, err := c.a.Renew(ctx, serial, nil)
	if err != nil {
		return "", nil, err
	}
	return cert.Serial, c.a.ChainDER(cert), nil
}

var (
	_ sam.Issuer        = caIssuer{}
	_ sam.CertLifecycle = caIssuer{}
)

// stack is a whole replica's worth of parts on one httptest server:
// portal, operator API (with identifications), CSC API and CA routes, on
// SQLite and SoftHSM2, with a real CA.
type stack struct {
	t          *testing.T
	URL        string
	AdminToken string
	Store      *store.Store
	SAM        *sam.Service
	Enroll     *enroll.Service
	CA         *ca.Authority
	Audit      *samtest.Audit
	Clock      *testClock
	Handler    http.Handler
	srv        *httptest.Server
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newStack(t *testing.T) *stack {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	ctx := context.Background()
	st := storetest.NewSQLite(t)
	keys := softhsmtest.New(t).Manager
	au := samtest.NewAudit(t, st)
	clock := &testClock{}
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	authority, err := ca.Open(ctx, ca.Config{PublicURL: url, KeyAlgo: "ecdsa-p256", Organization: "Sigillo Test", Country: "IT"},
		keys, st, ca.WithAudit(au), ca.WithClock(clock.Now), ca.WithLogger(quiet()))
	if err != nil {
		t.Fatalf("ca: %v", err)
	}
	iss := caIssuer{authority}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sms := otp.NewOutbox(st, clock.Now)
	svc, err := sam.New(sam.Config{OTPKey: key, Argon2: samtest.FastArgon2}, sam.Deps{Store: st, Keys: keys, Issuer: iss,
		Audit: au, SMS: sms, Now: clock.Now, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	enr, err := enroll.New(enroll.Config{PublicURL: url}, enroll.Deps{Store: st, SAM: svc, Status: iss,
		Mailer: enroll.OutboxMailer{St: st, Now: clock.Now}, SMS: sms, Audit: au, Now: clock.Now, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := portal.New(portal.Config{}, portal.Deps{SAM: svc, Enroll: enr, Sessions: st, Now: clock.Now, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	e := gin.New()
	e.ContextWithFallback = true
	p.Register(e)
	tokenBytes := make([]byte, 16)
	_, _ = rand.Read(tokenBytes)
	adminToken := fmt.Sprintf("%x", tokenBytes)
	g := e.Group("/admin/v1", httpx.RequireToken(adminToken))
	admin.New(svc, st, quiet()).Register(g)
	admin.RegisterIdentifications(g, enr, st, quiet())
	csc.New(svc, csc.Options{}).Register(e)
	cahttp.New(authority, quiet()).Register(e)
	srv.Config.Handler = e
	srv.Start()
	t.Cleanup(srv.Close)
	return &stack{t: t, URL: url, AdminToken: adminToken, Handler: e, Store: st, SAM: svc, Enroll: enr, CA: authority, Audit: au, Clock: clock, srv: srv}
}

// adminGet calls the operator API and decodes the JSON answer.
func (s *stack) admin(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, s.URL+"/admin/v1"+path, r)
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &m); err != nil {
		s.t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, m
}

// emails returns the dev outbox messages to addr, newest first.
func (s *stack) emails(addr string) []store.Email {
	s.t.Helper()
	ms, err := s.Store.Emails(context.Background(), addr, 10)
	if err != nil {
		s.t.Fatal(err)
	}
	return ms
}

var reLink = regexp.MustCompile(`https?://\S+/portal/verify\?token=[0-9a-f]+`)
var reSMS = regexp.MustCompile(`code is ([0-9]+)`)

// verifyLink finds the verification link mailed to addr.
func (s *stack) verifyLink(addr string) string {
	s.t.Helper()
	for _, m := range s.emails(addr) {
		if l := reLink.FindString(m.Body); l != "" {
			return l
		}
	}
	s.t.Fatalf("no verification e-mail to %s", addr)
	return ""
}

// lastSMS returns the newest code texted to phone.
func (s *stack) lastSMS(phone string) string {
	s.t.Helper()
	ms, err := s.Store.Outbox(context.Background(), phone, 1)
	if err != nil || len(ms) == 0 {
		s.t.Fatalf("no SMS to %s: %v", phone, err)
	}
	m := reSMS.FindStringSubmatch(ms[0].Body)
	if m == nil {
		s.t.Fatalf("no code in %q", ms[0].Body)
	}
	return m[1]
}

// approvePending approves every pending identification through the operator API.
func (s *stack) approvePending() []string {
	s.t.Helper()
	st, m := s.admin(http.MethodGet, "/identifications?status=pending", nil)
	if st != http.StatusOK {
		s.t.Fatalf("list identifications: %d %v", st, m)
	}
	var ids []string
	for _, x := range m["identifications"].([]any) {
		id := x.(map[string]any)["id"].(string)
		if st, m := s.admin(http.MethodPost, "/identifications/"+id+"/approve", map[string]any{"operator": "alice"}); st != http.StatusOK || m["status"] != "approved" {
			s.t.Fatalf("approve %s: %d %v", id, st, m)
		}
		ids = append(ids, id)
	}
	return ids
}

// envelopeCodes opens the envelope PDF mailed to addr with qpdf and
// pdftotext and returns the codes printed in it, and the whole text.
func (s *stack) envelopeCodes(addr, passphrase string) (map[string]string, string) {
	s.t.Helper()
	testenv.Tool(s.t, "qpdf")
	testenv.Tool(s.t, "pdftotext")
	var pdf []byte
	for _, m := range s.emails(addr) {
		if len(m.Attachment) > 0 {
			pdf = m.Attachment
			break
		}
	}
	if pdf == nil {
		s.t.Fatalf("no envelope mailed to %s", addr)
	}
	dir := s.t.TempDir()
	in, plain := filepath.Join(dir, "envelope.pdf"), filepath.Join(dir, "plain.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		s.t.Fatal(err)
	}
	if out, err := exec.Command("qpdf", "--password="+passphrase, "--decrypt", in, plain).CombinedOutput(); err != nil {
		s.t.Fatalf("qpdf --decrypt: %v\n%s", err, out)
	}
	if out, err := exec.Command("qpdf", "--decrypt", in, filepath.Join(dir, "nopass.pdf")).CombinedOutput(); err == nil {
		s.t.Fatalf("the envelope opened without the passphrase:\n%s", out)
	}
	txt, err := exec.Command("pdftotext", plain, "-").Output()
	if err != nil {
		s.t.Fatalf("pdftotext: %v", err)
	}
	codes := map[string]string{}
	for _, k := range []struct{ name, re string }{
		{"PUK", `PUK[^:]*:\s*([0-9]{8})`}, {"ERC", `ERC[^:]*:\s*([A-Z0-9]{12})`},
		{"IUT", `IUT[^:]*:\s*([A-Z0-9]{10})`}, {"envelope", `(?:Envelope number|Numero busta):\s*(E[0-9A-F]{12})`},
	} {
		m := regexp.MustCompile(k.re).FindStringSubmatch(string(txt))
		if m == nil {
			s.t.Fatalf("envelope lacks %s:\n%s", k.name, txt)
		}
		codes[k.name] = m[1]
	}
	return codes, string(txt)
}

// client is a cookie-keeping HTTP client for the JSON API and forms.
type client struct {
	t    *testing.T
	s    *stack
	hc   *http.Client
	csrf string
}

func (s *stack) newClient() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: s.t, s: s, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// api sends a JSON request (with the CSRF header once logged in).
func (c *client) api(method, path string, body any, hdr ...string) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			r = strings.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			r = strings.NewReader(string(j))
		}
	}
	req, _ := http.NewRequest(method, c.s.URL+"/selfcare/v1"+path, r)
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, m
}

// must is api that fails the test on a non-2xx answer.
func (c *client) must(method, path string, body any) map[string]any {
	c.t.Helper()
	st, m := c.api(method, path, body)
	if st/100 != 2 {
		c.t.Fatalf("%s %s: %d %v", method, path, st, m)
	}
	return m
}

// form posts a page form and returns the status and body.
func (c *client) form(path string, vals url.Values) (int, string, http.Header) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.s.URL+path, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// get fetches a page.
func (c *client) get(path string) (int, string) {
	c.t.Helper()
	resp, err := c.hc.Get(c.s.URL + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Password and other values the tests use.
const (
	testPassword   = "Sunny-Day-2026"
	testPassphrase = "my envelope passphrase"
	testFiscal     = "RSSMRA80A01H501U"
)

// holder is a registered, verified, logged-in API client with an issued
// credential (through the JSON API), and the envelope's codes.
type holder struct {
	c            *client
	email, phone string
	userID       string
	credID       string
	pin          string
	codes        map[string]string
}

var phoneSeq int

// enrollHolder runs the whole enrollment over the JSON API.
func (s *stack) enrollHolder(name string) *holder {
	s.t.Helper()
	phoneSeq++
	h := &holder{c: s.newClient(), email: name + "@example.test", phone: fmt.Sprintf("+39333%07d", 1000000+phoneSeq), pin: "24681357"}
	c := h.c
	m := c.must(http.MethodPost, "/register", map[string]any{"email": h.email, "password": testPassword, "passwordConfirm": testPassword,
		"country": "IT", "consentProcessing": true})
	h.userID = m["userID"].(string)
	u, _ := url.Parse(s.verifyLink(h.email))
	c.must(http.MethodPost, "/verify", map[string]any{"token": u.Query().Get("token")})
	m = c.must(http.MethodPost, "/login", map[string]any{"login": h.email, "password": testPassword})
	c.csrf = m["csrfToken"].(string)
	c.must(http.MethodPost, "/request", map[string]any{"givenName": "Mario", "surname": "Rossi " + name, "fiscalCode": testFiscal,
		"phone": h.phone, "method": "cie", "docType": "identity-card", "docNumber": "CA12345AB", "docCountry": "IT",
		"docExpiry": time.Now().AddDate(3, 0, 0).Format("2006-01-02")})
	s.approvePending()
	c.must(http.MethodPost, "/request/otp", nil)
	m = c.must(http.MethodPost, "/request/complete", map[string]any{"acceptContract": true, "acceptPrivacy": true, "pin": h.pin,
		"pinConfirm": h.pin, "passphrase": testPassphrase, "passphraseConfirm": testPassphrase, "otp": s.lastSMS(h.phone)})
	h.credID = m["credentialID"].(string)
	h.codes, _ = s.envelopeCodes(h.email, testPassphrase)
	return h
}

// sendOTP asks for an SMS code for the holder's credential and returns it.
func (h *holder) sendOTP(s *stack) string {
	s.t.Helper()
	h.c.must(http.MethodPost, "/credentials/"+h.credID+"/otp", nil)
	return s.lastSMS(h.phone)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// testClock follows real time (plus an offset tests can advance) and
// never returns the same millisecond twice, so rows ordered by time (the
// dev outboxes) keep the order they were written in.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
	last   time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := time.Now().Add(c.offset).Truncate(time.Millisecond)
	if !t.After(c.last) {
		t = c.last.Add(time.Millisecond)
	}
	c.last = t
	return t
}

// Advance moves the clock forward.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}
