package loadtest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"go.mozilla.org/pkcs7"
)

// fakeSigillo is a stand-in for sigillo's operator and CSC APIs with the
// contract's semantics (PIN, single-use TOTP per step, SAD counters, SCAL 2
// hash binding), so the engine's own logic is tested without the server.
// It listens on loopback only.
type fakeSigillo struct {
	t          *testing.T
	adminToken string
	// corrupt flips a bit in every signature it returns.
	corrupt bool

	mu     sync.Mutex
	users  map[string]*fakeUser // by username
	creds  map[string]*fakeCred
	tokens map[string]string // access token -> username
	sads   map[string]*fakeSAD
	signed int
	n      int
}

type fakeUser struct{ id, username, password string }

type fakeCred struct {
	id, userID, pin, otpSecret string
	scal, multisign            int
	key                        crypto.Signer
	cert                       *x509.Certificate
	lastStep                   int64
}

type fakeSAD struct {
	credID string
	left   int
	hashes map[string]bool // SCAL 2 binding
}

func newFakeSigillo(t *testing.T) (*fakeSigillo, *httptest.Server) {
	f := &fakeSigillo{t: t, adminToken: "op-token", users: map[string]*fakeUser{}, creds: map[string]*fakeCred{},
		tokens: map[string]string{}, sads: map[string]*fakeSAD{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/users", f.admin(f.createUser))
	mux.HandleFunc("POST /admin/v1/credentials", f.admin(f.createCred))
	mux.HandleFunc("POST /csc/v2/auth/login", f.login)
	mux.HandleFunc("POST /csc/v2/credentials/info", f.user(f.info))
	mux.HandleFunc("POST /csc/v2/credentials/authorize", f.user(f.authorize))
	mux.HandleFunc("POST /csc/v2/signatures/signHash", f.user(f.signHash))
	mux.HandleFunc("POST /csc/v2/signatures/signDoc", f.user(f.signDoc))
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		cpu := float64(f.signed) / 1000 // 1 ms of "CPU" per signature
		f.mu.Unlock()
		fmt.Fprintf(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 4.2e+07\nprocess_cpu_seconds_total %g\n", cpu)
	})
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(srv.Close)
	return f, srv
}

func fail(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeSigillo) admin(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.adminToken {
			fail(w, 401, "invalid_token", "bad operator token")
			return
		}
		h(w, r)
	}
}

func (f *fakeSigillo) user(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		u, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		if !ok {
			fail(w, 401, "invalid_token", "bad token")
			return
		}
		h(w, r, u)
	}
}

func (f *fakeSigillo) createUser(w http.ResponseWriter, r *http.Request) {
	var in newUserReq
	json.NewDecoder(r.Body).Decode(&in)
	if !policyOK(in.Password) || in.Email == "" || in.Phone == "" {
		fail(w, 400, "invalid_request", "password policy or missing field")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	u := &fakeUser{id: fmt.Sprintf("u%d", f.n), username: in.Username, password: in.Password}
	f.users[in.Username] = u
	reply(w, 201, newUserResp{UserID: u.id})
}

// policyOK is sigillo's password policy.
func policyOK(p string) bool {
	var up, lo, dig, sp bool
	for i, c := range p {
		switch {
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			lo = true
		case c >= '0' && c <= '9':
			dig = true
		default:
			sp = true
		}
		if i >= 2 && p[i] == p[i-1] && p[i] == p[i-2] {
			return false
		}
	}
	return len(p) >= 8 && up && lo && dig && sp
}

func (f *fakeSigillo) createCred(w http.ResponseWriter, r *http.Request) {
	var in newCredReq
	json.NewDecoder(r.Body).Decode(&in)
	if len(in.PIN) != 8 || strings.Trim(in.PIN, "0123456789") != "" {
		fail(w, 400, "invalid_request", "PIN must be 8 digits")
		return
	}
	var key crypto.Signer
	var err error
	switch in.KeyAlgo {
	case "ecdsa-p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa-2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		fail(w, 400, "invalid_request", "keyAlgo")
		return
	}
	if err != nil {
		fail(w, 500, "server_error", err.Error())
		return
	}
	cert, err := selfSigned(in.UserID, key)
	if err != nil {
		fail(w, 500, "server_error", err.Error())
		return
	}
	der := cert.Raw
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	c := &fakeCred{id: fmt.Sprintf("c%d", f.n), userID: in.UserID, pin: in.PIN, scal: in.SCAL, multisign: max(in.Multisign, 1), key: key, cert: cert, lastStep: -1}
	out := newCredResp{CredentialID: c.id, Certificates: []string{base64.StdEncoding.EncodeToString(der)}}
	if in.OTP == "totp" {
		k, err := totp.Generate(totp.GenerateOpts{Issuer: "fake", AccountName: in.UserID})
		if err != nil {
			fail(w, 500, "server_error", err.Error())
			return
		}
		c.otpSecret, out.OTPSecret, out.OTPURI = k.Secret(), k.Secret(), k.URL()
	}
	f.creds[c.id] = c
	reply(w, 201, out)
}

func (f *fakeSigillo) login(w http.ResponseWriter, r *http.Request) {
	name, pass, ok := r.BasicAuth()
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users[name]
	if !ok || u == nil || u.password != pass {
		fail(w, 400, "authentication_error", "bad credentials")
		return
	}
	tok := randomHex(16)
	f.tokens[tok] = name
	reply(w, 200, loginResp{AccessToken: tok, ExpiresIn: 3600})
}

// cred returns the credential if it belongs to username (caller holds mu).
func (f *fakeSigillo) cred(username, id string) *fakeCred {
	c := f.creds[id]
	if c == nil || f.users[username] == nil || c.userID != f.users[username].id {
		return nil
	}
	return c
}

func (f *fakeSigillo) info(w http.ResponseWriter, r *http.Request, username string) {
	var in infoReq
	json.NewDecoder(r.Body).Decode(&in)
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cred(username, in.CredentialID)
	if c == nil {
		fail(w, 400, "invalid_request", "Invalid parameter credentialID")
		return
	}
	var out infoResp
	out.Cert.Certificates = []string{base64.StdEncoding.EncodeToString(c.cert.Raw)}
	reply(w, 200, out)
}

func (f *fakeSigillo) authorize(w http.ResponseWriter, r *http.Request, username string) {
	var in authorizeReq
	json.NewDecoder(r.Body).Decode(&in)
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cred(username, in.CredentialID)
	if c == nil {
		fail(w, 400, "invalid_request", "Invalid parameter credentialID")
		return
	}
	factors := map[string]string{}
	for _, a := range in.AuthData {
		factors[a.ID] = a.Value
	}
	switch {
	case in.NumSignatures < 1 || in.NumSignatures > c.multisign:
		fail(w, 400, "invalid_request", "Numbers of signatures is too high")
		return
	case factors["PIN"] != c.pin:
		fail(w, 400, "invalid_pin", "The PIN is invalid")
		return
	case c.scal == 2 && len(in.Hashes) == 0:
		fail(w, 400, "invalid_request", "hashes required")
		return
	}
	if c.otpSecret != "" {
		now := time.Now()
		step := now.Unix() / 30
		if !totp.Validate(factors["OTP"], c.otpSecret) || step <= c.lastStep {
			fail(w, 400, "invalid_otp", "The OTP is invalid")
			return
		}
		c.lastStep = step
	}
	s := &fakeSAD{credID: c.id, left: in.NumSignatures}
	if len(in.Hashes) > 0 {
		s.hashes = map[string]bool{}
		for _, h := range in.Hashes {
			s.hashes[h] = true
		}
	}
	sad := randomHex(16)
	f.sads[sad] = s
	reply(w, 200, authorizeResp{SAD: sad, ExpiresIn: 300})
}

// consume takes n signatures from the SAD (caller holds mu).
func (f *fakeSigillo) consume(w http.ResponseWriter, sad, credID string, hashes []string, n int) bool {
	s := f.sads[sad]
	if s == nil || s.credID != credID {
		fail(w, 400, "invalid_request", "Invalid parameter SAD")
		return false
	}
	if s.left < n {
		fail(w, 400, "invalid_request", "SAD exhausted")
		return false
	}
	for _, h := range hashes {
		if s.hashes != nil && !s.hashes[h] {
			fail(w, 400, "invalid_request", "Hash is not authorized by the SAD")
			return false
		}
	}
	s.left -= n
	return true
}

func (f *fakeSigillo) signHash(w http.ResponseWriter, r *http.Request, username string) {
	var in signHashReq
	json.NewDecoder(r.Body).Decode(&in)
	f.mu.Lock()
	c := f.cred(username, in.CredentialID)
	if c == nil {
		f.mu.Unlock()
		fail(w, 400, "invalid_request", "Invalid parameter credentialID")
		return
	}
	if !f.consume(w, in.SAD, c.id, in.Hashes, len(in.Hashes)) {
		f.mu.Unlock()
		return
	}
	f.signed += len(in.Hashes)
	corrupt := f.corrupt
	f.mu.Unlock()
	wantAlgo := oidECDSASHA256
	if _, ok := c.key.(*rsa.PrivateKey); ok {
		wantAlgo = oidSHA256RSA
	}
	if in.SignAlgo != wantAlgo || in.HashAlgorithmOID != oidSHA256 {
		fail(w, 400, "invalid_request", "Invalid parameter signAlgo")
		return
	}
	out := signHashResp{}
	for _, h := range in.Hashes {
		d, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(d) != 32 {
			fail(w, 400, "invalid_request", "Invalid digest value length")
			return
		}
		sig, err := c.key.Sign(rand.Reader, d, crypto.SHA256)
		if err != nil {
			fail(w, 500, "server_error", err.Error())
			return
		}
		if corrupt {
			sig[len(sig)/2] ^= 1
		}
		out.Signatures = append(out.Signatures, base64.StdEncoding.EncodeToString(sig))
	}
	reply(w, 200, out)
}

// signDoc appends a signature object with a detached CMS over the byte
// range: enough PDF for VerifySignedPDF, which is what is under test.
func (f *fakeSigillo) signDoc(w http.ResponseWriter, r *http.Request, username string) {
	var in signDocReq
	json.NewDecoder(r.Body).Decode(&in)
	var documents []signDocDocument
	if err := json.Unmarshal(in.Documents, &documents); err != nil {
		fail(w, 400, "invalid_request", "Invalid parameter documents")
		return
	}
	f.mu.Lock()
	c := f.cred(username, in.CredentialID)
	if c == nil {
		f.mu.Unlock()
		fail(w, 400, "invalid_request", "Invalid parameter credentialID")
		return
	}
	if !f.consume(w, in.SAD, c.id, nil, len(documents)) {
		f.mu.Unlock()
		return
	}
	corrupt := f.corrupt
	f.mu.Unlock()
	var out signDocResp
	for _, d := range documents {
		pdf, err := base64.StdEncoding.DecodeString(d.Document)
		if err != nil || d.SignatureFormat != "P" {
			fail(w, 400, "invalid_request", "bad document")
			return
		}
		signed, err := fakePAdES(pdf, c, corrupt)
		if err != nil {
			fail(w, 500, "server_error", err.Error())
			return
		}
		out.DocumentWithSignature = append(out.DocumentWithSignature, base64.StdEncoding.EncodeToString(signed))
	}
	reply(w, 200, out)
}

func fakePAdES(pdf []byte, c *fakeCred, corrupt bool) ([]byte, error) {
	const holeHex = 8192
	const head = "\n99 0 obj\n<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange [0 %010d %010d %010d] /Contents <"
	tail := ">\n>>\nendobj\n%EOF\n"
	prefixLen := len(pdf) + len(fmt.Sprintf(head, 0, 0, 0))
	b := prefixLen - 1 // up to, excluding, '<'
	cpos := prefixLen + holeHex + 1
	total := cpos + len(tail) - 1
	var doc bytes.Buffer
	doc.Write(pdf)
	fmt.Fprintf(&doc, head, b, cpos, total-cpos)
	doc.WriteString(strings.Repeat("0", holeHex))
	doc.WriteString(tail)
	out := doc.Bytes()
	if len(out) != total {
		return nil, fmt.Errorf("fake PAdES: length %d, want %d", len(out), total)
	}
	content := append(append([]byte{}, out[:b]...), out[cpos:]...)
	if corrupt {
		content[0] ^= 1
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(c.cert, c.key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return nil, err
	}
	copy(out[b+1:], hex.EncodeToString(der))
	return out, nil
}

func selfSigned(cn string, key crypto.Signer) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// newTestCred is a credential with a fresh self-signed certificate for key.
func newTestCred(t *testing.T, key crypto.Signer) *fakeCred {
	t.Helper()
	cert, err := selfSigned("test", key)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeCred{id: "c", key: key, cert: cert}
}
