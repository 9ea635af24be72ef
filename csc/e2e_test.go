package csc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// e2e is a real sam.Service (SQLite, SoftHSM2, test CA) behind our router
// on a real HTTP server.
type e2e struct {
	t   *testing.T
	env *samtest.Env
	srv *httptest.Server
}

// newE2E uses a fresh SoftHSM2 token unless opts pass other keys.
func newE2E(t *testing.T, opts ...samtest.Option) *e2e {
	t.Helper()
	if len(opts) == 0 {
		opts = []samtest.Option{samtest.WithKeys(softhsmtest.New(t).Manager)}
	}
	env := samtest.New(t, opts...)
	r := gin.New()
	New(env.Service, Options{}).Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &e2e{t: t, env: env, srv: srv}
}

// post sends a JSON body and returns the status and decoded answer.
func (e *e2e) post(path, auth, body string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, nil
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		e.t.Fatalf("POST %s: %d, not JSON: %q", path, resp.StatusCode, data)
	}
	return resp.StatusCode, m
}

// must posts and fails the test unless the answer is 200.
func (e *e2e) must(path, auth string, body any) map[string]any {
	e.t.Helper()
	b, _ := json.Marshal(body)
	st, m := e.post(path, auth, string(b))
	if st != http.StatusOK {
		e.t.Fatalf("POST %s %s: %d %v", path, b, st, m)
	}
	return m
}

// login logs in over HTTP Basic and returns the Authorization header value.
func (e *e2e) login(ver, username string) string {
	e.t.Helper()
	st, m := e.post("/csc/"+ver+"/auth/login", basic(username, samtest.Password), `{"rememberMe":true}`)
	if st != 200 || m["access_token"] == "" || m["refresh_token"] == nil {
		e.t.Fatalf("login %s: %d %v", username, st, m)
	}
	return "Bearer " + m["access_token"].(string)
}

// totpCode computes the current TOTP from the otpauth URI handed out at
// credential creation, at the service's (fake) time, then moves the clock
// one period on so that the next code is a fresh time step (sam refuses
// replays).
func (e *e2e) totpCode(uri string) string {
	e.t.Helper()
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		e.t.Fatal(err)
	}
	alg := key.Algorithm()
	code, err := totp.GenerateCodeCustom(key.Secret(), e.env.Clock.Now(), totp.ValidateOpts{
		Period: uint(key.Period()), Digits: key.Digits(), Algorithm: alg,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.env.Clock.Advance(time.Duration(key.Period()) * time.Second)
	return code
}

func (e *e2e) signedCount() int { return e.env.Audit.Count("signature.sign", "success") }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// verify checks sig over digest with the certificate's key, independently
// of our code (Go's crypto).
func verify(t *testing.T, cert *x509.Certificate, digest []byte, sig []byte, opts crypto.SignerOpts) {
	t.Helper()
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if err := rsa.VerifyPSS(pub, pss.Hash, digest, sig, pss); err != nil {
				t.Fatalf("PSS signature does not verify: %v", err)
			}
			return
		}
		if err := rsa.VerifyPKCS1v15(pub, opts.HashFunc(), digest, sig); err != nil {
			t.Fatalf("PKCS#1 v1.5 signature does not verify: %v", err)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			t.Fatal("ECDSA signature (DER) does not verify")
		}
	default:
		t.Fatalf("unexpected key %T", pub)
	}
}

// signCase is one algorithm to exercise end to end.
type signCase struct {
	name, keyAlgo string
	h             crypto.Hash
	signAlgo      string
	params        []byte // DER RSASSA-PSS-params
	opts          crypto.SignerOpts
}

var signCases = []signCase{
	{name: "RSA-2048 PKCS1v15", keyAlgo: "rsa-2048", h: crypto.SHA256, signAlgo: oidSHA256WithRSA, opts: crypto.SHA256},
	{name: "RSA-2048 PSS", keyAlgo: "rsa-2048", h: crypto.SHA256, signAlgo: oidRSAPSS, params: pssParamsDER(crypto.SHA256, 32, crypto.SHA256), opts: &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 32}},
	{name: "P-256", keyAlgo: "ecdsa-p256", h: crypto.SHA256, signAlgo: oidECDSAWithSHA256, opts: crypto.SHA256},
	{name: "P-384", keyAlgo: "ecdsa-p384", h: crypto.SHA384, signAlgo: oidECDSAWithSHA384, opts: crypto.SHA384},
}

func digestOf(h crypto.Hash, s string) []byte {
	switch h {
	case crypto.SHA384:
		d := sha512.Sum384([]byte(s))
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512([]byte(s))
		return d[:]
	}
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// TestE2ESignFlow: login → list → info → authorize (PIN + TOTP) →
// signHash over HTTP, v2 and v1, against real sam and SoftHSM2; every
// signature verified with the certificate from credentials/info.
func TestE2ESignFlow(t *testing.T) {
	e := newE2E(t)
	alice := e.env.User(t, "alice")
	keys := map[string]*sam.CreatedCredential{}
	for _, algo := range []string{"rsa-2048", "ecdsa-p256", "ecdsa-p384"} {
		keys[algo] = e.env.Credential(t, alice, sam.NewCredential{KeyAlgo: algo, OTP: "totp", SCAL: 2, Multisign: 10})
		if keys[algo].OTPURI == "" {
			t.Fatalf("no otpauth URI for %s", algo)
		}
	}
	for _, ver := range []string{"v2", "v1"} {
		t.Run(ver, func(t *testing.T) {
			e.t = t
			auth := e.login(ver, "alice")
			list := e.must("/csc/"+ver+"/credentials/list", auth, map[string]any{})
			ids := toStrings(list["credentialIDs"])
			for _, cc := range keys {
				if !slices.Contains(ids, cc.CredentialID) {
					t.Fatalf("list %v lacks %s", ids, cc.CredentialID)
				}
			}
			for _, sc := range signCases {
				t.Run(sc.name, func(t *testing.T) {
					e.t = t
					cc := keys[sc.keyAlgo]
					info := e.must("/csc/"+ver+"/credentials/info", auth, map[string]any{
						"credentialID": cc.CredentialID, "certificates": "chain", "certInfo": true, "authInfo": true})
					certs := toStrings(info["cert"].(map[string]any)["certificates"])
					der, _ := base64.StdEncoding.DecodeString(certs[0])
					cert, err := x509.ParseCertificate(der)
					if err != nil || len(certs) != 2 {
						t.Fatalf("certificates %d: %v", len(certs), err)
					}
					if !slices.Contains(toStrings(info["key"].(map[string]any)["algo"]), sc.signAlgo) || info["SCAL"] != "2" {
						t.Fatalf("info %v", info)
					}
					if ver == "v2" && info["auth"].(map[string]any)["expression"] != "PIN AND OTP" {
						t.Fatalf("auth %v", info["auth"])
					}
					if ver == "v1" && info["OTP"].(map[string]any)["type"] != "offline" {
						t.Fatalf("v1 OTP %v", info["OTP"])
					}
					digests := [][]byte{digestOf(sc.h, "doc one "+ver), digestOf(sc.h, "doc two "+ver)}
					// Mix alphabets the way real clients do: std for one, url for the other.
					enc := []string{b64(digests[0]), base64.RawURLEncoding.EncodeToString(digests[1])}
					authz := map[string]any{"credentialID": cc.CredentialID, "numSignatures": "2"}
					code := e.totpCode(cc.OTPURI)
					if ver == "v2" {
						authz["hashes"], authz["hashAlgorithmOID"] = enc, hashOIDOf(sc.h)
						authz["authData"] = []map[string]string{{"id": "PIN", "value": samtest.PIN}, {"id": "OTP", "value": code}}
					} else {
						authz["hash"], authz["PIN"], authz["OTP"] = enc, samtest.PIN, code
					}
					sad := e.must("/csc/"+ver+"/credentials/authorize", auth, authz)["SAD"].(string)
					sign := map[string]any{"credentialID": cc.CredentialID, "SAD": sad, "signAlgo": sc.signAlgo}
					// Sign in the opposite order, with the other alphabet: the
					// SAD binds bytes, not strings, and order is the request's.
					order := []string{base64.RawURLEncoding.EncodeToString(digests[1]), b64(digests[0])}
					if ver == "v2" {
						sign["hashes"], sign["hashAlgorithmOID"] = order, hashOIDOf(sc.h)
					} else {
						sign["hash"], sign["hashAlgo"] = order, hashOIDOf(sc.h)
					}
					if sc.params != nil {
						sign["signAlgoParams"] = b64(sc.params)
					}
					sigs := toStrings(e.must("/csc/"+ver+"/signatures/signHash", auth, sign)["signatures"])
					if len(sigs) != 2 {
						t.Fatalf("%d signatures", len(sigs))
					}
					for i, d := range [][]byte{digests[1], digests[0]} {
						raw, err := base64.StdEncoding.DecodeString(sigs[i])
						if err != nil {
							t.Fatal(err)
						}
						verify(t, cert, d, raw, sc.opts)
					}
				})
			}
		})
	}
}

// TestE2ERefusals: each refusal carries the CSC error and signs nothing.
func TestE2ERefusals(t *testing.T) {
	e := newE2E(t)
	alice, bob := e.env.User(t, "alice"), e.env.User(t, "bob")
	scal2 := e.env.Credential(t, alice, sam.NewCredential{KeyAlgo: "ecdsa-p256", OTP: "totp", SCAL: 2, Multisign: 5})
	scal1 := e.env.Credential(t, alice, sam.NewCredential{KeyAlgo: "ecdsa-p256", SCAL: 1, Multisign: 5})
	bobs := e.env.Credential(t, bob, sam.NewCredential{KeyAlgo: "ecdsa-p256"})
	authA := e.login("v2", "alice")
	authB := e.login("v2", "bob")
	dA, dB := digestOf(crypto.SHA256, "A"), digestOf(crypto.SHA256, "B")

	// A SCAL2 SAD bound to hash A, one signature.
	sadA := e.must("/csc/v2/credentials/authorize", authA, map[string]any{
		"credentialID": scal2.CredentialID, "numSignatures": 1, "hashes": []string{b64(dA)}, "hashAlgorithmOID": oidSHA256,
		"authData": []map[string]string{{"id": "PIN", "value": samtest.PIN}, {"id": "OTP", "value": e.totpCode(scal2.OTPURI)}},
	})["SAD"].(string)
	// A SCAL1 SAD for one signature.
	sad1 := e.must("/csc/v2/credentials/authorize", authA, map[string]any{
		"credentialID": scal1.CredentialID, "numSignatures": 1, "authData": []map[string]string{{"id": "PIN", "value": samtest.PIN}},
	})["SAD"].(string)

	signBody := func(cred, sad string, digests ...[]byte) string {
		var hs []string
		for _, d := range digests {
			hs = append(hs, b64(d))
		}
		b, _ := json.Marshal(map[string]any{"credentialID": cred, "SAD": sad, "hashes": hs, "signAlgo": oidECDSAWithSHA256})
		return string(b)
	}
	notFound := map[string]any{"error": "invalid_request", "error_description": "Invalid parameter credentialID"}
	cases := []struct {
		name, path, auth, body string
		status                 int
		want                   map[string]any
	}{
		{"hash not authorized by the SAD", "/csc/v2/signatures/signHash", authA, signBody(scal2.CredentialID, sadA, dB), 400,
			map[string]any{"error": "invalid_request", "error_description": "Hash is not authorized by the SAD"}},
		{"more hashes than numSignatures", "/csc/v2/signatures/signHash", authA, signBody(scal1.CredentialID, sad1, dA, dB), 400, nil},
		{"signAlgo does not fit the key", "/csc/v2/signatures/signHash", authA, strings.Replace(signBody(scal1.CredentialID, sad1, dA), oidECDSAWithSHA256, oidSHA256WithRSA, 1), 400,
			map[string]any{"error": "invalid_request", "error_description": "Invalid parameter signAlgo"}},
		{"other user's credential: info", "/csc/v2/credentials/info", authA, `{"credentialID":"` + bobs.CredentialID + `"}`, 400, notFound},
		{"missing credential: info", "/csc/v2/credentials/info", authA, `{"credentialID":"no-such-credential"}`, 400, notFound},
		{"other user's credential: authorize", "/csc/v2/credentials/authorize", authA, `{"credentialID":"` + bobs.CredentialID + `","numSignatures":1,"authData":[{"id":"PIN","value":"` + samtest.PIN + `"}]}`, 400, notFound},
		{"other user's credential: signHash", "/csc/v2/signatures/signHash", authB, signBody(scal1.CredentialID, sad1, dA), 400, notFound},
		{"other user's SAD on own credential", "/csc/v1/signatures/signHash", authB, signBody(bobs.CredentialID, sad1, dA), 400, nil},
		{"missing bearer", "/csc/v2/signatures/signHash", "", signBody(scal1.CredentialID, sad1, dA), 401, map[string]any{"error": "invalid_token", "error_description": "Missing Authorization header"}},
		{"garbage bearer", "/csc/v2/signatures/signHash", "Bearer garbage", signBody(scal1.CredentialID, sad1, dA), 401, nil},
		{"malformed bearer", "/csc/v1/signatures/signHash", "Bearer a b", signBody(scal1.CredentialID, sad1, dA), 400, map[string]any{"error": "invalid_request", "error_description": "Malformed Authorization header"}},
		{"wrong PIN v2", "/csc/v2/credentials/authorize", authA, `{"credentialID":"` + scal1.CredentialID + `","numSignatures":1,"authData":[{"id":"PIN","value":"00000000"}]}`, 400,
			map[string]any{"error": "invalid_authentication_data", "error_description": "The PIN is invalid"}},
		{"numSignatures above multisign", "/csc/v1/credentials/authorize", authA, `{"credentialID":"` + scal1.CredentialID + `","numSignatures":6,"PIN":"` + samtest.PIN + `"}`, 400,
			map[string]any{"error": "invalid_request", "error_description": "Numbers of signatures is too high"}},
		{"SCAL2 authorize without hashes v1", "/csc/v1/credentials/authorize", authA, `{"credentialID":"` + scal2.CredentialID + `","numSignatures":1,"PIN":"` + samtest.PIN + `"}`, 400,
			map[string]any{"error": "invalid_request", "error_description": "Missing (or invalid type) array parameter hash"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			before := e.signedCount()
			st, m := e.post(c.path, c.auth, c.body)
			if st != c.status {
				t.Fatalf("status %d, want %d: %v", st, c.status, m)
			}
			if m["error"] == nil || m["error_description"] == nil || m["signatures"] != nil {
				t.Fatalf("not a CSC error body: %v", m)
			}
			for k, v := range c.want {
				if m[k] != v {
					t.Fatalf("%s = %v, want %v (%v)", k, m[k], v, m)
				}
			}
			if got := e.signedCount(); got != before {
				t.Fatalf("%d signatures made by a refused request", got-before)
			}
		})
	}

	// The SAD covers exactly numSignatures: the first use signs, the second is refused.
	e.t = t
	if sigs := toStrings(e.must("/csc/v2/signatures/signHash", authA, json.RawMessage(signBody(scal2.CredentialID, sadA, dA)))["signatures"]); len(sigs) != 1 {
		t.Fatalf("%d signatures", len(sigs))
	}
	before := e.signedCount()
	st, m := e.post("/csc/v2/signatures/signHash", authA, signBody(scal2.CredentialID, sadA, dA))
	if st != 400 || m["error"] != "invalid_request" || e.signedCount() != before {
		t.Fatalf("SAD beyond numSignatures: %d %v", st, m)
	}
	t.Logf("SAD reuse refused with %q", m["error_description"])
}

// TestE2EMiscFlows covers extendTransaction, refresh, revoke and v1
// pagination against the real service.
func TestE2EMiscFlows(t *testing.T) {
	e := newE2E(t, samtest.WithKeys(&samtest.MemKeys{}))
	alice := e.env.User(t, "alice")
	var ids []string
	for range 3 {
		ids = append(ids, e.env.Credential(t, alice, sam.NewCredential{KeyAlgo: "ecdsa-p256", Multisign: 5}).CredentialID)
	}
	slices.Sort(ids)
	st, m := e.post("/csc/v1/auth/login", basic("alice", samtest.Password), `{"rememberMe":true}`)
	if st != 200 {
		t.Fatalf("login %d %v", st, m)
	}
	auth := "Bearer " + m["access_token"].(string)
	refresh := m["refresh_token"].(string)

	var got []string
	body := `{"maxResults":2}`
	for range 4 {
		m := e.must("/csc/v1/credentials/list", auth, json.RawMessage(body))
		got = append(got, toStrings(m["credentialIDs"])...)
		next, _ := m["nextPageToken"].(string)
		if next == "" {
			break
		}
		body = fmt.Sprintf(`{"maxResults":2,"pageToken":%q}`, next)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("pages %v, want %v", got, ids)
	}

	d := digestOf(crypto.SHA256, "x")
	sad := e.must("/csc/v2/credentials/authorize", auth, map[string]any{"credentialID": ids[0], "numSignatures": 2,
		"authData": []map[string]string{{"id": "PIN", "value": samtest.PIN}}})["SAD"].(string)
	ext := e.must("/csc/v2/credentials/extendTransaction", auth, map[string]any{"credentialID": ids[0], "SAD": sad})
	if ext["SAD"] == "" {
		t.Fatalf("extend %v", ext)
	}
	sigs := toStrings(e.must("/csc/v2/signatures/signHash", auth, map[string]any{"credentialID": ids[0], "SAD": ext["SAD"],
		"hashes": []string{b64(d)}, "signAlgo": oidECDSAWithSHA256})["signatures"])
	info := e.must("/csc/v2/credentials/info", auth, map[string]any{"credentialID": ids[0]})
	der, _ := base64.StdEncoding.DecodeString(toStrings(info["cert"].(map[string]any)["certificates"])[0])
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sigs[0])
	verify(t, cert, d, raw, crypto.SHA256)

	// Refresh gives a new access token; revoking it makes it 401.
	m = e.must("/csc/v2/auth/login", "", map[string]any{"refresh_token": refresh})
	auth2 := "Bearer " + m["access_token"].(string)
	if st, _ := e.post("/csc/v2/auth/revoke", auth2, `{"token":"`+strings.TrimPrefix(auth2, "Bearer ")+`","token_type_hint":"access_token"}`); st != 204 {
		t.Fatalf("revoke %d", st)
	}
	if st, m := e.post("/csc/v2/credentials/list", auth2, `{}`); st != 401 {
		t.Fatalf("revoked token still works: %d %v", st, m)
	}
}

// TestE2ESMSOTP: v1 sendOTP and v2 getChallenge answer 204 and send the
// code out of band (the dev outbox); the code then authorizes a signature.
func TestE2ESMSOTP(t *testing.T) {
	e := newE2E(t, samtest.WithKeys(&samtest.MemKeys{}))
	alice := e.env.User(t, "alice")
	cc := e.env.Credential(t, alice, sam.NewCredential{KeyAlgo: "ecdsa-p256", OTP: "sms", SCAL: 1, Multisign: 2})
	code := regexp.MustCompile(`\b\d{6}\b`)
	for _, ver := range []string{"v1", "v2"} {
		t.Run(ver, func(t *testing.T) {
			e.t = t
			auth := e.login(ver, "alice")
			info := e.must("/csc/"+ver+"/credentials/info", auth, map[string]any{"credentialID": cc.CredentialID, "authInfo": true})
			if ver == "v1" && info["OTP"].(map[string]any)["type"] != "online" {
				t.Fatalf("v1 OTP %v", info["OTP"])
			}
			if ver == "v2" {
				objs := info["auth"].(map[string]any)["objects"].([]any)
				if o := objs[1].(map[string]any); o["type"] != "ChallengeResponse" || o["generator"] != nil {
					t.Fatalf("v2 OTP object %v", o)
				}
			}
			path, body := "/csc/v1/credentials/sendOTP", `{"credentialID":"`+cc.CredentialID+`"}`
			if ver == "v2" {
				path, body = "/csc/v2/credentials/getChallenge", `{"credentialID":"`+cc.CredentialID+`","authObjectID":"OTP"}`
			}
			// The outbox orders by time: keep this run's message the newest.
			e.env.Clock.Advance(time.Second)
			if st, m := e.post(path, auth, body); st != http.StatusNoContent {
				t.Fatalf("%s: %d %v", path, st, m)
			}
			msgs, err := e.env.Store.Outbox(context.Background(), "", 1)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("outbox: %v %v", msgs, err)
			}
			otpCode := code.FindString(msgs[0].Body)
			if otpCode == "" {
				t.Fatalf("no code in %q", msgs[0].Body)
			}
			authz := map[string]any{"credentialID": cc.CredentialID, "numSignatures": 1}
			if ver == "v2" {
				authz["authData"] = []map[string]string{{"id": "PIN", "value": samtest.PIN}, {"id": "OTP", "value": otpCode}}
			} else {
				authz["PIN"], authz["OTP"] = samtest.PIN, otpCode
			}
			sad := e.must("/csc/"+ver+"/credentials/authorize", auth, authz)["SAD"].(string)
			d := digestOf(crypto.SHA256, "sms "+ver)
			hashField := map[string]string{"v1": "hash", "v2": "hashes"}[ver]
			sigs := toStrings(e.must("/csc/"+ver+"/signatures/signHash", auth, map[string]any{
				"credentialID": cc.CredentialID, "SAD": sad, hashField: []string{b64(d)}, "signAlgo": oidECDSAWithSHA256})["signatures"])
			der, _ := base64.StdEncoding.DecodeString(toStrings(e.must("/csc/"+ver+"/credentials/info", auth,
				map[string]any{"credentialID": cc.CredentialID})["cert"].(map[string]any)["certificates"])[0])
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := base64.StdEncoding.DecodeString(sigs[0])
			verify(t, cert, d, raw, crypto.SHA256)
			// The code was single-use.
			if st, m := e.post("/csc/"+ver+"/credentials/authorize", auth, mustJSON(authz)); st != 400 {
				t.Fatalf("OTP replay: %d %v", st, m)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
