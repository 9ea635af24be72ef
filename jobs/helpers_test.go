package jobs_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
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
)

// api is a client of one sigillo replica over real HTTP.
type api struct {
	t          testing.TB
	base       string
	adminToken string
	hc         *http.Client
}

func newAPI(t testing.TB, base, adminToken string) *api {
	return &api{t: t, base: base, adminToken: adminToken, hc: &http.Client{Timeout: 120 * time.Second}}
}

// do sends a request and returns status, headers and body.
func (a *api) do(method, path string, hdr map[string]string, body []byte) (int, http.Header, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call posts JSON with a bearer token and decodes the answer into out
// (when non-nil), failing unless the status is want.
func (a *api) call(path, token string, body any, want int, out any, hdr ...string) []byte {
	a.t.Helper()
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		h[hdr[i]] = hdr[i+1]
	}
	status, _, data := a.do(http.MethodPost, path, h, mustJSON(a.t, body))
	if status != want {
		a.t.Fatalf("POST %s: %d, want %d: %s", path, status, want, truncate(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("POST %s: %v: %s", path, err, truncate(data))
		}
	}
	return data
}

// admin calls the operator API.
func (a *api) admin(method, path string, body any, want int, out any) {
	a.t.Helper()
	var b []byte
	if body != nil {
		b = mustJSON(a.t, body)
	}
	status, _, data := a.do(method, "/admin/v1"+path, map[string]string{"Authorization": "Bearer " + a.adminToken}, b)
	if status != want {
		a.t.Fatalf("%s /admin/v1%s: %d, want %d: %s", method, path, status, want, truncate(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatal(err)
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}

const testPassword = "Sigill0-Test!pw"

// integration enrolls a user with one automatic-signature credential
// (domain + alias, SCAL 1, PIN, no OTP) and logs in with HTTP Basic as
// the integration does. It returns the access token and credential id.
func (a *api) integration(user, domain, alias, keyAlgo string) (token, credID string) {
	a.t.Helper()
	a.admin(http.MethodPost, "/users", map[string]any{"username": user, "password": testPassword, "email": user + "@example.test",
		"phone": "+390000000000", "givenName": "Integration", "surname": strings.ToUpper(user),
		"fiscalCode": fmt.Sprintf("%X", sha256.Sum256([]byte(user)))[:16]}, http.StatusCreated, nil)
	return a.login(user), a.credential(user, domain, alias, keyAlgo)
}

// credential adds an automatic-signature credential to user.
func (a *api) credential(user, domain, alias, keyAlgo string) string {
	a.t.Helper()
	var cc struct {
		CredentialID string `json:"credentialID"`
	}
	a.admin(http.MethodPost, "/credentials", map[string]any{"userID": user, "pin": "12345678", "keyAlgo": keyAlgo, "otp": "none",
		"scal": 1, "domain": domain, "alias": alias}, http.StatusCreated, &cc)
	return cc.CredentialID
}

func (a *api) login(user string) string {
	a.t.Helper()
	status, _, data := a.do(http.MethodPost, "/csc/v2/auth/login", map[string]string{
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+testPassword))}, []byte(`{}`))
	if status != http.StatusOK {
		a.t.Fatalf("login %s: %d %s", user, status, data)
	}
	var lr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(data, &lr); err != nil {
		a.t.Fatal(err)
	}
	return lr.AccessToken
}

// authorize asks for a SCAL 1 SAD for n signatures with the PIN only.
func (a *api) authorize(token, credID string, n int) string {
	a.t.Helper()
	var out struct {
		SAD string `json:"SAD"`
	}
	a.call("/csc/v2/credentials/authorize", token, map[string]any{"credentialID": credID, "numSignatures": n,
		"authData": []map[string]string{{"id": "PIN", "value": "12345678"}}}, http.StatusOK, &out)
	return out.SAD
}

// leaf returns the credential's certificate.
func (a *api) leaf(token, credID string) *x509.Certificate {
	a.t.Helper()
	var out struct {
		Cert struct {
			Certificates []string `json:"certificates"`
		} `json:"cert"`
	}
	a.call("/csc/v2/credentials/info", token, map[string]any{"credentialID": credID, "certificates": "chain"}, http.StatusOK, &out)
	der, err := base64.StdEncoding.DecodeString(out.Cert.Certificates[0])
	if err != nil {
		a.t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		a.t.Fatal(err)
	}
	return cert
}

// hashes returns n distinct SHA-256 digests.
func hashes(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", prefix, i)))
		out[i] = h[:]
	}
	return out
}

func b64(in [][]byte) []string {
	out := make([]string, len(in))
	for i, b := range in {
		out[i] = base64.StdEncoding.EncodeToString(b)
	}
	return out
}

// verifyRaw checks a raw signature over digest with Go's crypto.
func verifyRaw(t testing.TB, cert *x509.Certificate, digest []byte, sigB64 string) {
	t.Helper()
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(sig) == 0 {
		t.Fatalf("signature %q: %v", sigB64, err)
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig); err != nil {
			t.Fatalf("RSA signature does not verify: %v", err)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			t.Fatal("ECDSA signature does not verify")
		}
	default:
		t.Fatalf("key %T", pub)
	}
}

// Signature algorithm OIDs.
const (
	sha256WithRSA   = "1.2.840.113549.1.1.11"
	ecdsaWithSHA256 = "1.2.840.10045.4.3.2"
)

// makePDF writes a small valid PDF (classic xref) whose text says n.
func makePDF(n int) []byte {
	var b bytes.Buffer
	var offs []int
	obj := func(body string) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), body)
	}
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj("<< /Type /Pages /Kids [5 0 R] /Count 1 >>")
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	content := fmt.Sprintf("BT /F1 18 Tf 72 720 Td (sigillo automatic signature, document %d) Tj ET", n)
	obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>")
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f\r\n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n\r\n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /ID [<%032x> <%032x>] >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, n, n, xref)
	return b.Bytes()
}

// pollResult is signPolling's answer.
type pollResult struct {
	Error                 string   `json:"error"`
	Done                  int      `json:"done"`
	Total                 int      `json:"total"`
	Signatures            []string `json:"signatures"`
	DocumentWithSignature []string `json:"DocumentWithSignature"`
	SignatureObject       []string `json:"SignatureObject"`
	Results               []struct {
		Index       int    `json:"index"`
		Status      string `json:"status"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	} `json:"results"`
}

// poll calls signPolling until the job is done (200) or the deadline.
func (a *api) poll(token, id string, deadline time.Duration) *pollResult {
	a.t.Helper()
	end := time.Now().Add(deadline)
	for {
		status, _, data := a.do(http.MethodPost, "/csc/v2/signatures/signPolling",
			map[string]string{"Authorization": "Bearer " + token}, mustJSON(a.t, map[string]string{"requestID": id}))
		var r pollResult
		if err := json.Unmarshal(data, &r); err != nil {
			a.t.Fatalf("signPolling: %d %s", status, truncate(data))
		}
		switch {
		case status == http.StatusOK:
			return &r
		case status == http.StatusAccepted && r.Error == "accepted_request":
		default:
			a.t.Fatalf("signPolling: %d %s", status, truncate(data))
		}
		if time.Now().After(end) {
			a.t.Fatalf("job %s not done after %s (%d/%d)", id, deadline, r.Done, r.Total)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
