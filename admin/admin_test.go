package admin_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/admin"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

const token = "operator-token-0123456789"

func newServer(t *testing.T) (*httptest.Server, *samtest.Env) {
	t.Helper()
	gin.SetMode(gin.TestMode)
	e := samtest.New(t, samtest.WithKeys(softhsmtest.New(t).Manager))
	r := gin.New()
	admin.New(e.Service, e.Store, nil).Register(r.Group("/admin/v1", httpx.RequireToken(token)))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, e
}

func call(t *testing.T, srv *httptest.Server, method, path string, body any, tok string) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

var user = map[string]any{
	"username": "mrossi", "password": "Corr3ct-Horse", "email": "m.rossi@example.test", "phone": "+39 333 1234567",
	"givenName": "Mario", "surname": "Rossi", "fiscalCode": "RSSMRA80A01H501U",
}

func TestUsers(t *testing.T) {
	srv, _ := newServer(t)
	if code, _ := call(t, srv, "POST", "/admin/v1/users", user, ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	code, out := call(t, srv, "POST", "/admin/v1/users", user, token)
	if code != http.StatusCreated || out["userID"] != "mrossi" {
		t.Fatalf("create: %d %v", code, out)
	}
	if code, out := call(t, srv, "POST", "/admin/v1/users", user, token); code != http.StatusConflict {
		t.Fatalf("duplicate: %d %v", code, out)
	}
	code, out = call(t, srv, "POST", "/admin/v1/users", map[string]any{"username": "x", "password": "aaa"}, token)
	desc, _ := out["error_description"].(string)
	if code != http.StatusBadRequest || out["error"] != "invalid_request" {
		t.Fatalf("invalid: %d %v", code, out)
	}
	for _, want := range []string{sam.RuleLength, sam.RuleUpper, sam.RuleDigit, sam.RuleSpecial, sam.RuleRepeated, "email", "phone"} {
		if !strings.Contains(desc, want) {
			t.Errorf("%q does not list %q", desc, want)
		}
	}
	code, out = call(t, srv, "GET", "/admin/v1/users/mrossi", nil, token)
	if code != http.StatusOK || out["phone"] != "+393331234567" || out["surname"] != "Rossi" {
		t.Fatalf("get: %d %v", code, out)
	}
	if _, leak := out["password"]; leak {
		t.Fatal("password in user view")
	}
	if code, _ := call(t, srv, "GET", "/admin/v1/users/ghost", nil, token); code != http.StatusNotFound {
		t.Fatalf("ghost: %d", code)
	}
}

func TestCredentials(t *testing.T) {
	srv, e := newServer(t)
	if code, out := call(t, srv, "POST", "/admin/v1/users", user, token); code != http.StatusCreated {
		t.Fatalf("user: %d %v", code, out)
	}
	code, out := call(t, srv, "POST", "/admin/v1/credentials", map[string]any{
		"userID": "mrossi", "pin": "12345678", "keyAlgo": "ecdsa-p256", "otp": "totp", "scal": 2, "multisign": "5",
		"description": "firma", "domain": "acme.example", "alias": "RSSMRA80A01H501U",
	}, token)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	id, _ := out["credentialID"].(string)
	for _, k := range []string{"credentialID", "puk", "erc", "iut", "otpSecret", "otpURI"} {
		if s, _ := out[k].(string); s == "" {
			t.Errorf("missing %s in %v", k, out)
		}
	}
	certs, _ := out["certificates"].([]any)
	if len(certs) != 2 {
		t.Fatalf("certificates %v", out["certificates"])
	}
	der, _ := base64.StdEncoding.DecodeString(certs[0].(string))
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := e.Keys.Signer(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
		t.Fatal("certificate is not for the HSM key")
	}

	code, out = call(t, srv, "GET", "/admin/v1/credentials/"+id, nil, token)
	if code != http.StatusOK || out["keyStatus"] != "enabled" || out["certStatus"] != "valid" || out["otp"] != "totp" ||
		out["scal"] != float64(2) || out["multisign"] != float64(5) || out["activated"] != true {
		t.Fatalf("get: %d %v", code, out)
	}
	for k := range out {
		switch strings.ToLower(k) {
		case "puk", "erc", "pin", "otpsecret", "otpuri", "iut":
			t.Errorf("credential view has %s", k)
		}
		if strings.Contains(strings.ToLower(k), "hash") {
			t.Errorf("credential view has %s", k)
		}
	}
	if code, out := call(t, srv, "POST", "/admin/v1/credentials/"+id+"/disable", nil, token); code != http.StatusOK || out["keyStatus"] != "disabled" {
		t.Fatalf("disable: %d %v", code, out)
	}
	if _, out := call(t, srv, "GET", "/admin/v1/credentials/"+id, nil, token); out["keyStatus"] != "disabled" {
		t.Fatalf("after disable: %v", out)
	}
	if code, _ := call(t, srv, "POST", "/admin/v1/credentials/"+id+"/enable", nil, token); code != http.StatusOK {
		t.Fatalf("enable: %d", code)
	}
	if code, _ := call(t, srv, "POST", "/admin/v1/credentials/nope/enable", nil, token); code != http.StatusNotFound {
		t.Fatalf("enable unknown: %d", code)
	}

	code, out = call(t, srv, "POST", "/admin/v1/credentials", map[string]any{"userID": "mrossi", "activation": "puk", "keyAlgo": "ecdsa-p256", "otp": "sms"}, token)
	if code != http.StatusCreated || out["activated"] != false {
		t.Fatalf("puk activation: %d %v", code, out)
	}
	code, out = call(t, srv, "POST", "/admin/v1/credentials", map[string]any{"userID": "mrossi", "pin": "12", "keyAlgo": "rsa-512", "otp": "x"}, token)
	if code != http.StatusBadRequest || !strings.Contains(out["error_description"].(string), "keyAlgo") {
		t.Fatalf("invalid: %d %v", code, out)
	}
	if code, _ := call(t, srv, "GET", "/admin/v1/credentials/nope", nil, token); code != http.StatusNotFound {
		t.Fatalf("get unknown: %d", code)
	}
}

func TestOutbox(t *testing.T) {
	srv, e := newServer(t)
	call(t, srv, "POST", "/admin/v1/users", user, token)
	cc := e.Credential(t, "mrossi", sam.NewCredential{OTP: "sms"})
	p := e.Login(t, "mrossi")
	if err := e.Service.SendOTP(context.Background(), p, cc.CredentialID); err != nil {
		t.Fatal(err)
	}
	// An unescaped '+' arrives as a space; both spellings find the message.
	for _, q := range []string{"+393331234567", "%2B393331234567"} {
		code, out := call(t, srv, "GET", "/admin/v1/outbox?to="+q, nil, token)
		msgs, _ := out["messages"].([]any)
		if code != http.StatusOK || len(msgs) != 1 {
			t.Fatalf("outbox?to=%s: %d %v", q, code, out)
		}
		m := msgs[0].(map[string]any)
		if m["to"] != "+393331234567" || !strings.Contains(m["message"].(string), "code is") {
			t.Fatalf("message %v", m)
		}
	}
	if _, out := call(t, srv, "GET", "/admin/v1/outbox?to=%2B390000", nil, token); len(out["messages"].([]any)) != 0 {
		t.Fatalf("other phone: %v", out)
	}
}
