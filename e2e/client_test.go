package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const (
	password = "Corr3ct-Horse-e2e"
	pin      = "48151623"
	// OIDs (CSC v2 hashAlgorithmOID / signAlgo).
	oidSHA256      = "2.16.840.1.101.3.4.2.1"
	oidSHA384      = "2.16.840.1.101.3.4.2.2"
	oidECDSASHA256 = "1.2.840.10045.4.3.2"
	oidRSA         = "1.2.840.113549.1.1.1"
)

// result is one HTTP exchange.
type result struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (r *result) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.raw))
}

// errCode is the CSC "error" member of an error answer.
func (r *result) errCode() string {
	s, _ := r.body["error"].(string)
	return s
}

func (r *result) str(k string) string {
	s, _ := r.body[k].(string)
	return s
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// do sends one JSON request (body nil: no body). Transport errors are
// returned, HTTP errors are in the result.
func do(ctx context.Context, method, url, auth string, body any) (*result, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &result{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r, nil
}

// api talks to one replica on behalf of a test.
type api struct {
	t     testing.TB
	base  string
	admin string // "Bearer <operator token>"
}

func (c *cluster) api(r *replica) *api {
	return &api{t: c.t, base: r.URL, admin: "Bearer " + c.adminToken}
}

// with returns the api reporting to t (a subtest must not fail its parent).
func (a *api) with(t testing.TB) *api {
	cp := *a
	cp.t = t
	return &cp
}

// post sends a request and fails the test on a transport error.
func (a *api) post(path, auth string, body any) *result {
	a.t.Helper()
	r, err := do(context.Background(), http.MethodPost, a.base+path, auth, body)
	if err != nil {
		a.t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

func (a *api) get(path, auth string) *result {
	a.t.Helper()
	r, err := do(context.Background(), http.MethodGet, a.base+path, auth, nil)
	if err != nil {
		a.t.Fatalf("GET %s: %v", path, err)
	}
	return r
}

// must posts and fails unless the status is want.
func (a *api) must(want int, path, auth string, body any) *result {
	a.t.Helper()
	r := a.post(path, auth, body)
	if r.status != want {
		a.t.Fatalf("POST %s: %s (want %d)", path, r, want)
	}
	return r
}

// credential is what the operator API hands out at creation.
type credential struct {
	ID, UserID, Phone, OTPURI, Serial string
	IUT, ERC                          string // emergency identifier and code (envelope)
	Cert                              *x509.Certificate
}

// newUser creates a user and returns its id (= username) and phone.
func (a *api) newUser(name string) (string, string) {
	a.t.Helper()
	phone := fmt.Sprintf("+39333%07d", time.Now().UnixNano()%10_000_000)
	r := a.must(201, "/admin/v1/users", a.admin, map[string]any{
		"username": name, "password": password, "email": name + "@example.test", "phone": phone,
		"givenName": "Test", "surname": strings.ToUpper(name[:1]) + name[1:],
		"fiscalCode": strings.ToUpper(randHex(8)),
	})
	return r.str("userID"), phone
}

// newCredential creates a user and an ECDSA P-256 credential for it.
func (a *api) newCredential(name, otpType string, scal, multisign int) *credential {
	a.t.Helper()
	uid, phone := a.newUser(name)
	r := a.must(201, "/admin/v1/credentials", a.admin, map[string]any{
		"userID": uid, "pin": pin, "keyAlgo": "ecdsa-p256", "otp": otpType, "scal": scal, "multisign": multisign,
	})
	certs, _ := r.body["certificates"].([]any)
	if len(certs) == 0 {
		a.t.Fatalf("no certificate in %s", r)
	}
	der, _ := base64.StdEncoding.DecodeString(certs[0].(string))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		a.t.Fatal(err)
	}
	return &credential{ID: r.str("credentialID"), UserID: uid, Phone: phone, OTPURI: r.str("otpURI"), Serial: r.str("serialNumber"),
		IUT: r.str("iut"), ERC: r.str("erc"), Cert: cert}
}

// login returns the Authorization header value of a fresh access token.
func (a *api) login(user string) string {
	a.t.Helper()
	r := a.loginAs(user, password)
	if r.status != 200 || r.str("access_token") == "" {
		a.t.Fatalf("login %s: %s", user, r)
	}
	return "Bearer " + r.str("access_token")
}

func (a *api) loginAs(user, pass string) *result {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.base+"/csc/v2/auth/login", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, pass)
	resp, err := httpClient.Do(req)
	if err != nil {
		a.t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := &result{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// authorizeReq is a v2 credentials/authorize body.
func authorizeReq(credID string, n int, hashes [][]byte, pinValue, otpValue string) map[string]any {
	body := map[string]any{"credentialID": credID, "numSignatures": n}
	auth := []map[string]string{{"id": "PIN", "value": pinValue}}
	if otpValue != "" {
		auth = append(auth, map[string]string{"id": "OTP", "value": otpValue})
	}
	body["authData"] = auth
	if len(hashes) > 0 {
		body["hashes"] = b64s(hashes)
		body["hashAlgorithmOID"] = oidSHA256
	}
	return body
}

// signHashReq is a v2 signatures/signHash body (ECDSA with SHA-256).
func signHashReq(credID, sad string, hashes [][]byte) map[string]any {
	return map[string]any{"credentialID": credID, "SAD": sad, "hashes": b64s(hashes),
		"hashAlgorithmOID": oidSHA256, "signAlgo": oidECDSASHA256}
}

func b64s(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}

// digests returns n distinct random SHA-256 digests.
func digests(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		h := sha256.Sum256(b)
		out[i] = h[:]
	}
	return out
}

// signatures decodes signHash's answer and verifies every signature with
// the certificate's key (Go's crypto, independently of sigillo).
func signatures(t testing.TB, r *result, cert *x509.Certificate, hashes [][]byte) int {
	t.Helper()
	list, _ := r.body["signatures"].([]any)
	if len(list) != len(hashes) {
		t.Errorf("%d signatures for %d hashes", len(list), len(hashes))
		return 0
	}
	pub := cert.PublicKey.(*ecdsa.PublicKey)
	for i, s := range list {
		sig, err := base64.StdEncoding.DecodeString(s.(string))
		if err != nil || !ecdsa.VerifyASN1(pub, hashes[i], sig) {
			t.Errorf("signature %d does not verify", i)
		}
	}
	return len(list)
}

// totpAt computes the TOTP code of the otpauth URI for time at.
func totpAt(t testing.TB, uri string, at time.Time) string {
	t.Helper()
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCodeCustom(key.Secret(), at, totp.ValidateOpts{
		Period: uint(key.Period()), Digits: key.Digits(), Algorithm: key.Algorithm(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// smsCode reads the newest code texted to phone from the dev outbox.
func (a *api) smsCode(phone string) string {
	a.t.Helper()
	r := a.get("/admin/v1/outbox?to="+strings.ReplaceAll(phone, "+", "%2B")+"&limit=1", a.admin)
	msgs, _ := r.body["messages"].([]any)
	if r.status != 200 || len(msgs) == 0 {
		a.t.Fatalf("outbox for %s: %s", phone, r)
	}
	msg := msgs[0].(map[string]any)["message"].(string)
	for _, f := range strings.FieldsFunc(msg, func(r rune) bool { return r < '0' || r > '9' }) {
		if len(f) == 6 || len(f) == 8 {
			return f
		}
	}
	a.t.Fatalf("no code in SMS %q", msg)
	return ""
}

// retryAfterOK checks a refusal carries a positive Retry-After.
func retryAfterOK(r *result) bool {
	v := r.header.Get("Retry-After")
	return v != "" && v != "0"
}

// wrongFactor: a 400 saying the PIN (or OTP) is invalid, with the v1 or
// v2 error code.
func wrongFactor(r *result, factor string) bool {
	switch r.errCode() {
	case "invalid_pin", "invalid_otp", "invalid_authentication_data":
	default:
		return false
	}
	return r.status == 400 && strings.Contains(r.str("error_description"), "The "+factor+" is invalid")
}

// locked: a 400 saying the PIN / OTP / credential is locked.
func locked(r *result) bool {
	return r.status == 400 && strings.Contains(strings.ToLower(r.str("error_description")), "locked")
}
