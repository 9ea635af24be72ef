package oauth_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sigillo/sigillo/admin"
	"github.com/sigillo/sigillo/csc"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/oauth"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

const adminToken = "operator-token"

// stack is a real sam (SQLite, keys as the test chooses, test CA) with
// the CSC API, the OAuth server and the operator's client registry on one
// HTTP server, and a client's redirect endpoint on another.
type stack struct {
	t   *testing.T
	env *samtest.Env
	URL string
	cb  *catcher
}

// catcher is the client's redirect_uri: it records the query it got.
type catcher struct {
	srv  *httptest.Server
	mu   sync.Mutex
	last url.Values
}

func (c *catcher) URL(path string) string { return c.srv.URL + path }

func (c *catcher) got() url.Values {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func newStack(t *testing.T, opts ...samtest.Option) *stack {
	t.Helper()
	gin.SetMode(gin.TestMode)
	env := samtest.New(t, opts...)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	r := gin.New()
	csc.New(env.Service, csc.Options{OAuth2URL: base + oauth.Base}).Register(r)
	o, err := oauth.New(oauth.Config{}, oauth.Deps{SAM: env.Service, Requests: env.Store, Now: env.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	o.Register(r)
	admin.RegisterClients(r.Group("/admin/v1", httpx.RequireToken(adminToken)), env.Service, nil)
	// The portal's stylesheet, as the real server serves it.
	r.StaticFile("/portal/static/style.css", "../portal/static/style.css")
	srv.Config.Handler = r
	srv.Start()
	t.Cleanup(srv.Close)

	cb := &catcher{}
	cb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		cb.mu.Lock()
		cb.last = r.URL.Query()
		cb.mu.Unlock()
		io.WriteString(w, "<!doctype html><title>client</title><p id=done>back at the client</p>")
	}))
	t.Cleanup(cb.srv.Close)
	return &stack{t: t, env: env, URL: base, cb: cb}
}

// client is a registered OAuth client.
type client struct{ ID, Secret string }

// register registers a client through the operator API.
func (s *stack) register(body map[string]any) client {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/admin/v1/clients", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ClientID, ClientSecret string }
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(data, &out) != nil || out.ClientID == "" || out.ClientSecret == "" {
		s.t.Fatalf("register client: %d %s", resp.StatusCode, data)
	}
	return client{out.ClientID, out.ClientSecret}
}

// pkce returns a fresh verifier and its S256 challenge.
func pkce(seed string) (verifier, challenge string) {
	v := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat(seed, 48)[:48]))
	sum := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(sum[:])
}

// form posts a form with optional Basic client authentication and
// returns the status and JSON body (nil for 204).
func (s *stack) form(path string, cl *client, f url.Values) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cl != nil {
		req.SetBasicAuth(url.QueryEscape(cl.ID), url.QueryEscape(cl.Secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, nil
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		s.t.Fatalf("POST %s: %d, not JSON: %q", path, resp.StatusCode, data)
	}
	return resp.StatusCode, m
}

// api calls a CSC JSON method with a bearer token.
func (s *stack) api(path, token string, body any) (int, map[string]any) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		s.t.Fatalf("POST %s: %d, not JSON: %q", path, resp.StatusCode, data)
	}
	return resp.StatusCode, m
}

// totpCode computes the current TOTP at the service's fake time and moves
// the clock one period on (sam refuses a replayed time step).
func (s *stack) totpCode(uri string) string {
	s.t.Helper()
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		s.t.Fatal(err)
	}
	code, err := totp.GenerateCodeCustom(key.Secret(), s.env.Clock.Now(), totp.ValidateOpts{
		Period: uint(key.Period()), Digits: key.Digits(), Algorithm: key.Algorithm(),
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.env.Clock.Advance(time.Duration(key.Period()) * time.Second)
	return code
}

// agent is a browser without JavaScript: a cookie jar that does not
// follow redirects, for driving the login and consent forms over HTTP.
type agent struct {
	s *stack
	c *http.Client
}

func (s *stack) agent() *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{s: s, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an HTTP answer: status, Location and body.
type page struct {
	Status   int
	Location string
	Body     string
}

func (a *agent) do(req *http.Request) page {
	a.s.t.Helper()
	resp, err := a.c.Do(req)
	if err != nil {
		a.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header.Get("Location"), string(b)}
}

func (a *agent) get(u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return a.do(req)
}

func (a *agent) post(path string, f url.Values) page {
	req, _ := http.NewRequest(http.MethodPost, a.s.URL+path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.do(req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="(flow|csrf)" value="([^"]*)">`)

// hidden returns the flow and csrf fields of a page's form.
func (p page) hidden(t *testing.T) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.Body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("flow") == "" || v.Get("csrf") == "" {
		t.Fatalf("no flow/csrf in page %d: %.300s", p.Status, p.Body)
	}
	return v
}

// credentialQuery is an authorization request for scope credential bound
// to the SHA-256 digest of doc.
func credentialQuery(clientID, cb, challenge, credentialID, doc string) url.Values {
	d := sha256.Sum256([]byte(doc))
	return url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {cb}, "scope": {"credential"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "credentialID": {credentialID},
		"hashes": {base64.RawURLEncoding.EncodeToString(d[:])}, "hashAlgorithmOID": {"2.16.840.1.101.3.4.2.1"}}
}

// authorizeURL builds an authorization request.
func (s *stack) authorizeURL(params url.Values) string {
	return s.URL + oauth.Base + "/authorize?" + params.Encode()
}

// consent runs login and consent (PIN and OTP when given) and returns
// the final answer (a 302 to the client on success).
func (a *agent) consent(authorize string, user, pin, otpCode string) page {
	t := a.s.t
	t.Helper()
	p := a.get(authorize)
	if p.Status != http.StatusOK {
		t.Fatalf("authorize: %d %s %.300s", p.Status, p.Location, p.Body)
	}
	f := p.hidden(t)
	f.Set("username", user)
	f.Set("password", samtest.Password)
	p = a.post(oauth.Base+"/authorize/login", f)
	if p.Status != http.StatusSeeOther {
		t.Fatalf("login: %d %.300s", p.Status, p.Body)
	}
	p = a.get(a.s.URL + p.Location)
	if p.Status != http.StatusOK {
		t.Fatalf("consent page: %d %.300s", p.Status, p.Body)
	}
	f = p.hidden(t)
	f.Set("action", "allow")
	f.Set("pin", pin)
	f.Set("otp", otpCode)
	return a.post(oauth.Base+"/authorize/consent", f)
}

// codeFrom returns the query of the redirect to the client.
func codeFrom(t *testing.T, p page, cb string) url.Values {
	t.Helper()
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, cb) {
		t.Fatalf("want a redirect to %s, got %d %q %.300s", cb, p.Status, p.Location, p.Body)
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// user enrolls a holder with one TOTP credential of the given SCAL.
func (s *stack) user(name string, nc sam.NewCredential) (string, *sam.CreatedCredential) {
	s.t.Helper()
	id := s.env.User(s.t, name)
	return id, s.env.Credential(s.t, id, nc)
}
