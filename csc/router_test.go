package csc

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func init() { gin.SetMode(gin.TestMode) }

// fakeTSA returns the digest as the "token" so tests can see what reached it.
type fakeTSA struct{}

func (fakeTSA) Timestamp(_ context.Context, d []byte, _ crypto.Hash) ([]byte, error) {
	return append([]byte("tst:"), d...), nil
}

// newRouter mounts an API over svc on a fresh gin engine.
func newRouter(t testing.TB, svc Service, opts Options) (*gin.Engine, *API) {
	t.Helper()
	r := gin.New()
	a := New(svc, opts)
	a.Register(r)
	return r, a
}

// call sends one request and decodes a JSON answer into a map (nil for 204).
func call(t testing.TB, h http.Handler, method, path, auth string, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code == http.StatusNoContent {
		if w.Body.Len() != 0 {
			t.Fatalf("%s %s: 204 with a body %q", method, path, w.Body.String())
		}
		return w.Code, nil
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s %s: status %d, body not JSON: %q", method, path, w.Code, w.Body.String())
	}
	if w.Code == http.StatusOK && len(m) == 0 {
		t.Fatalf("%s %s: empty 200", method, path)
	}
	return w.Code, m
}

const bearer = "Bearer " + fakeToken

func basic(u, p string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
}

func TestRouterErrors(t *testing.T) {
	svc := newFakeService(t)
	h, _ := newRouter(t, svc, Options{MaxHashes: 2, MaxBody: 4096})
	sig := `{"credentialID":"cred-ec","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.10045.4.3.2"}`
	cases := []struct {
		name, path, auth, body string
		status                 int
		code, msg              string
	}{
		{"missing bearer", "/csc/v2/credentials/list", "", `{}`, 401, "invalid_token", "Missing Authorization header"},
		{"malformed bearer", "/csc/v2/credentials/list", "Bearer", `{}`, 400, "invalid_request", "Malformed Authorization header"},
		{"wrong scheme", "/csc/v1/credentials/list", "Token abc", `{}`, 400, "invalid_request", "Malformed Authorization header"},
		{"garbage bearer", "/csc/v2/credentials/list", "Bearer nope", `{}`, 401, "invalid_token", "The access token is not valid"},
		{"expired bearer", "/csc/v2/credentials/list", "Bearer " + fakeExpired, `{}`, 401, "expired_token", "The access token expired"},
		{"login without header", "/csc/v2/auth/login", "", ``, 401, "invalid_request", "Malformed authentication parameter."},
		{"login bad password", "/csc/v2/auth/login", basic(fakeUser, "x"), ``, 400, "authentication_error", "Invalid username or password"},
		{"login bad refresh", "/csc/v1/auth/login", "", `{"refresh_token":"x"}`, 400, "invalid_request", "Invalid parameter refresh_token"},
		{"list userID", "/csc/v2/credentials/list", bearer, `{"userID":"bob"}`, 400, "invalid_request", "userID parameter MUST be null"},
		{"info other credential looks missing", "/csc/v2/credentials/info", bearer, `{"credentialID":"bobs"}`, 400, "invalid_request", "Invalid parameter credentialID"},
		{"authorize wrong PIN v2", "/csc/v2/credentials/authorize", bearer, `{"credentialID":"cred-ec","numSignatures":1,"authData":[{"id":"PIN","value":"0"}]}`, 400, "invalid_authentication_data", "The PIN is invalid"},
		{"authorize wrong PIN v1", "/csc/v1/credentials/authorize", bearer, `{"credentialID":"cred-ec","numSignatures":1,"PIN":"0"}`, 400, "invalid_pin", "The PIN is invalid"},
		{"authorize numSignatures abc", "/csc/v2/credentials/authorize", bearer, `{"credentialID":"cred-ec","numSignatures":"abc"}`, 400, "invalid_request", "Missing (or invalid type) integer parameter numSignatures"},
		{"signHash RSA algo on EC key", "/csc/v2/signatures/signHash", bearer, strings.Replace(sig, "1.2.840.10045.4.3.2", "1.2.840.113549.1.1.11", 1), 400, "invalid_request", "Invalid parameter signAlgo"},
		{"signHash ECDSA algo on RSA key", "/csc/v2/signatures/signHash", bearer, strings.Replace(sig, "cred-ec", "cred-rsa", 1), 400, "invalid_request", "Invalid parameter signAlgo"},
		{"signHash PSS on EC key", "/csc/v2/signatures/signHash", bearer, strings.Replace(sig, `"1.2.840.10045.4.3.2"`, `"1.2.840.113549.1.1.10","signAlgoParams":"`+pssGood+`"`, 1), 400, "invalid_request", "Invalid parameter signAlgo"},
		{"signHash too many hashes", "/csc/v2/signatures/signHash", bearer, strings.Replace(sig, `["`+b256+`"]`, `["`+b256+`","`+b256+`","`+b256+`"]`, 1), 400, "invalid_request", "Too many hashes: at most 2 per request"},
		{"signHash huge body", "/csc/v2/signatures/signHash", bearer, `{"x":"` + strings.Repeat("A", 5000) + `"}`, 400, "invalid_request", "Request body larger than 4096 bytes"},
		{"signHash v2 without SAD", "/csc/v2/signatures/signHash", bearer, strings.Replace(sig, `"SAD":"s",`, "", 1), 400, "invalid_request", "Missing (or invalid type) string parameter SAD"},
		{"signHash bad SAD", "/csc/v2/signatures/signHash", bearer, sig, 400, "invalid_request", "Invalid parameter SAD"},
		{"signHash malformed JSON", "/csc/v1/signatures/signHash", bearer, `{"credentialID":`, 400, "invalid_request", "Malformed JSON request body"},
		{"signHash form body", "/csc/v1/signatures/signHash", bearer, `credentialID=cred-ec`, 400, "invalid_request", "Request body must be a JSON object"},
		{"getChallenge on TOTP credential", "/csc/v2/credentials/getChallenge", bearer, `{"credentialID":"cred-ec","authObjectID":"OTP"}`, 400, "invalid_request", "The credential has no online OTP"},
		{"info by POST with garbage", "/csc/v2/info", "", `[1]`, 400, "invalid_request", "Request body must be a JSON object"},
		{"timestamp absent without TSA", "/csc/v2/signatures/timestamp", bearer, `{}`, 404, "", ""},
		{"signDoc not implemented", "/csc/v2/signatures/signDoc", bearer, `{}`, 501, "not_implemented", "Method not implemented"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body.String())
			}
			if c.code == "" {
				return
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			if body["error"] != c.code || body["error_description"] != c.msg {
				t.Fatalf("got %v, want %s %q", body, c.code, c.msg)
			}
		})
	}
	if svc.signed != 0 {
		t.Fatalf("%d signatures made by refused requests", svc.signed)
	}
}

func TestRouterInfo(t *testing.T) {
	h, _ := newRouter(t, newFakeService(t), Options{Name: "Test RSSP", Region: "IT", TSA: fakeTSA{}})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		st, m := call(t, h, method, "/csc/v2/info", "", "")
		if st != 200 || m["specs"] != "2.0.0.2" || m["name"] != "Test RSSP" || m["asynchronousOperationMode"] != false {
			t.Fatalf("v2 info %s: %d %v", method, st, m)
		}
		methods := toStrings(m["methods"])
		for _, want := range []string{"auth/login", "credentials/authorize", "credentials/getChallenge", "signatures/signHash", "signatures/timestamp"} {
			if !slices.Contains(methods, want) {
				t.Errorf("v2 methods lack %s: %v", want, methods)
			}
		}
		if slices.Contains(methods, "signatures/signDoc") || slices.Contains(methods, "credentials/sendOTP") {
			t.Errorf("v2 advertises unimplemented methods: %v", methods)
		}
		algos := toStrings(m["signAlgorithms"].(map[string]any)["algos"])
		if !slices.Contains(algos, oidRSAPSS) || !slices.Contains(algos, oidECDSAWithSHA384) {
			t.Errorf("algos %v", algos)
		}
		if len(m["conformance_levels"].([]any)) != 0 {
			t.Errorf("conformance levels advertised without signDoc")
		}
		st, m = call(t, h, method, "/csc/v1/info", "", "")
		if st != 200 || m["specs"] != "1.0.4.0" || !slices.Contains(toStrings(m["methods"]), "credentials/sendOTP") {
			t.Fatalf("v1 info %s: %d %v", method, st, m)
		}
		if _, ok := m["signAlgorithms"]; ok {
			t.Errorf("v1 info has v2 fields")
		}
	}
	// Without a TSA, timestamp is neither advertised nor routed.
	h2, _ := newRouter(t, newFakeService(t), Options{})
	_, m := call(t, h2, http.MethodGet, "/csc/v2/info", "", "")
	if slices.Contains(toStrings(m["methods"]), "signatures/timestamp") {
		t.Fatal("timestamp advertised without a TSA")
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestRouterLoginAndRevoke(t *testing.T) {
	h, _ := newRouter(t, newFakeService(t), Options{})
	st, m := call(t, h, http.MethodPost, "/csc/v2/auth/login", basic(fakeUser, fakePass), "")
	if st != 200 || m["access_token"] != fakeToken || m["refresh_token"] != nil || m["expires_in"] != 3600.0 {
		t.Fatalf("login: %d %v", st, m)
	}
	st, m = call(t, h, http.MethodPost, "/csc/v1/auth/login", basic(fakeUser, fakePass), `{"rememberMe":true}`)
	if st != 200 || m["refresh_token"] != "refresh" {
		t.Fatalf("login rememberMe: %d %v", st, m)
	}
	st, m = call(t, h, http.MethodPost, "/csc/v2/auth/login", "", `{"refresh_token":"refresh"}`)
	if st != 200 || m["access_token"] != fakeToken {
		t.Fatalf("refresh: %d %v", st, m)
	}
	if st, _ := call(t, h, http.MethodPost, "/csc/v2/auth/revoke", bearer, `{"token":"x","token_type_hint":"access_token"}`); st != 204 {
		t.Fatalf("revoke: %d", st)
	}
}

func TestRouterListAndInfo(t *testing.T) {
	h, _ := newRouter(t, newFakeService(t), Options{})
	st, m := call(t, h, http.MethodPost, "/csc/v2/credentials/list", bearer, `{"credentialInfo":true,"certificates":"chain","certInfo":true,"authInfo":true,"onlyValid":true}`)
	if st != 200 || len(m["credentialIDs"].([]any)) != 3 || m["onlyValid"] != true {
		t.Fatalf("list: %d %v", st, m)
	}
	infos := m["credentialInfos"].([]any)
	first := infos[0].(map[string]any)
	if first["credentialID"] != "cred-rsa" || len(first["cert"].(map[string]any)["certificates"].([]any)) != 2 {
		t.Fatalf("credentialInfos[0] %v", first)
	}

	// v1 pagination walks every credential once, in ID order.
	var got []string
	body := `{"maxResults":2}`
	for range 5 {
		st, m := call(t, h, http.MethodPost, "/csc/v1/credentials/list", bearer, body)
		if st != 200 {
			t.Fatalf("v1 list: %d %v", st, m)
		}
		got = append(got, toStrings(m["credentialIDs"])...)
		next, _ := m["nextPageToken"].(string)
		if next == "" {
			break
		}
		body = `{"maxResults":"2","pageToken":"` + next + `"}`
	}
	if want := []string{"cred-b", "cred-ec", "cred-rsa"}; !slices.Equal(got, want) {
		t.Fatalf("pages %v, want %v", got, want)
	}

	st, m = call(t, h, http.MethodPost, "/csc/v2/credentials/info", bearer, `{"credentialID":"cred-ec","certInfo":true,"authInfo":true}`)
	if st != 200 {
		t.Fatalf("info: %d %v", st, m)
	}
	key := m["key"].(map[string]any)
	cert := m["cert"].(map[string]any)
	auth := m["auth"].(map[string]any)
	if key["status"] != "enabled" || key["len"] != 256.0 || key["curve"] != "1.2.840.10045.3.1.7" || !slices.Contains(toStrings(key["algo"]), oidECDSAWithSHA256) {
		t.Errorf("key %v", key)
	}
	if cert["validFrom"] != "20260101000000Z" || cert["validTo"] != "20290101000000Z" || cert["serialNumber"] != "ABCDEF" || len(cert["certificates"].([]any)) != 1 || !strings.Contains(cert["subjectDN"].(string), "CN=Alice cred-ec") {
		t.Errorf("cert %v", cert)
	}
	objs := auth["objects"].([]any)
	otp := objs[1].(map[string]any)
	if auth["mode"] != "explicit" || auth["expression"] != "PIN AND OTP" || otp["generator"] != "totp" || otp["type"] != "ChallengeResponse" || objs[0].(map[string]any)["type"] != "Password" {
		t.Errorf("auth %v", auth)
	}
	if m["SCAL"] != "1" || m["multisign"] != 5.0 {
		t.Errorf("SCAL/multisign %v %v", m["SCAL"], m["multisign"])
	}

	st, m = call(t, h, http.MethodPost, "/csc/v1/credentials/info", bearer, `{"credentialID":"cred-rsa","certificates":"none","authInfo":true}`)
	if st != 200 || m["authMode"] != "explicit" {
		t.Fatalf("v1 info: %d %v", st, m)
	}
	if _, ok := m["cert"].(map[string]any)["certificates"]; ok {
		t.Errorf("certificates none still returned certificates")
	}
	pin, otpObj := m["PIN"].(map[string]any), m["OTP"].(map[string]any)
	if pin["presence"] != "true" || pin["format"] != "N" || otpObj["type"] != "online" || otpObj["presence"] != "true" {
		t.Errorf("v1 PIN/OTP %v %v", pin, otpObj)
	}
}

func TestRouterSignHashAndMetrics(t *testing.T) {
	svc := newFakeService(t)
	reg := prometheus.NewRegistry()
	h, a := newRouter(t, svc, Options{Registerer: reg, TSA: fakeTSA{}})
	st, m := call(t, h, http.MethodPost, "/csc/v2/credentials/authorize", bearer, `{"credentialID":"cred-ec","numSignatures":"2","authData":[{"id":"PIN","value":"12345678"}]}`)
	if st != 200 || m["SAD"] != "sad-cred-ec" || m["expiresIn"] != 300.0 {
		t.Fatalf("authorize: %d %v", st, m)
	}
	d1, d2 := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	// One standard Base64, one unpadded base64url.
	body := `{"credentialID":"cred-ec","SAD":"sad-cred-ec","hashes":["` + base64.StdEncoding.EncodeToString(d1[:]) + `","` +
		base64.RawURLEncoding.EncodeToString(d2[:]) + `"],"signAlgo":"1.2.840.10045.4.3.2"}`
	st, m = call(t, h, http.MethodPost, "/csc/v2/signatures/signHash", bearer, body)
	if st != 200 {
		t.Fatalf("signHash: %d %v", st, m)
	}
	sigs := toStrings(m["signatures"])
	pub := svc.creds["cred-ec"].signer.Public().(*ecdsa.PublicKey)
	for i, d := range [][]byte{d1[:], d2[:]} {
		der, _ := base64.StdEncoding.DecodeString(sigs[i])
		if !ecdsa.VerifyASN1(pub, d, der) {
			t.Fatalf("signature %d does not verify (order?)", i)
		}
	}
	if got := counterValue(t, a, "v2", "ecdsa-sha256", "success"); got != 2 {
		t.Fatalf("success counter %v, want 2", got)
	}
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 1 || mfs[0].GetName() != "sigillo_csc_signatures_total" {
		t.Fatalf("counter not registered on the injected registry: %v %v", mfs, err)
	}
	// The SAD is used up: refused, counted as rejected.
	st, m = call(t, h, http.MethodPost, "/csc/v2/signatures/signHash", bearer, body)
	if st != 400 || m["error_description"] != "Invalid parameter SAD" {
		t.Fatalf("spent SAD: %d %v", st, m)
	}
	if got := counterValue(t, a, "v2", "ecdsa-sha256", "rejected"); got != 2 {
		t.Fatalf("rejected counter %v, want 2", got)
	}
	st, m = call(t, h, http.MethodPost, "/csc/v1/signatures/timestamp", bearer, `{"hash":"`+b256+`","hashAlgo":"2.16.840.1.101.3.4.2.1"}`)
	tok, _ := base64.StdEncoding.DecodeString(m["timestamp"].(string))
	if st != 200 || !bytes.Equal(tok, append([]byte("tst:"), d256[:]...)) {
		t.Fatalf("timestamp: %d %v", st, m)
	}
	st, m = call(t, h, http.MethodPost, "/csc/v1/signatures/timestamp", bearer, `{"hash":"`+b256+`","hashAlgo":"2.16.840.1.101.3.4.2.1","nonce":"0a0b"}`)
	if st != 400 || m["error_description"] != "Invalid parameter nonce" {
		t.Fatalf("nonce without nonce-capable TSA: %d %v", st, m)
	}
	if st, _ := call(t, h, http.MethodPost, "/csc/v1/credentials/sendOTP", bearer, `{"credentialID":"cred-rsa"}`); st != 204 {
		t.Fatalf("sendOTP: %d", st)
	}
	if st, _ := call(t, h, http.MethodPost, "/csc/v2/credentials/getChallenge", bearer, `{"credentialID":"cred-rsa","authObjectID":"OTP"}`); st != 204 {
		t.Fatalf("getChallenge: %d", st)
	}
}

func counterValue(t *testing.T, a *API, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	if err := a.metrics.sigs.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
