package loadtest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// OIDs sigillo's CSC API takes.
const (
	oidSHA256       = "2.16.840.1.101.3.4.2.1"
	oidSHA256RSA    = "1.2.840.113549.1.1.11"
	oidECDSASHA256  = "1.2.840.10045.4.3.2"
	adminUsersPath  = "/admin/v1/users"
	adminCredsPath  = "/admin/v1/credentials"
	cscLoginPath    = "/csc/v2/auth/login"
	cscInfoPath     = "/csc/v2/credentials/info"
	cscAuthorize    = "/csc/v2/credentials/authorize"
	cscSignHashPath = "/csc/v2/signatures/signHash"
	cscSignDocPath  = "/csc/v2/signatures/signDoc"
)

type newUserReq struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	Email      string `json:"email"`
	Phone      string `json:"phone"`
	GivenName  string `json:"givenName"`
	Surname    string `json:"surname"`
	FiscalCode string `json:"fiscalCode,omitempty"`
}

type newUserResp struct {
	UserID string `json:"userID"`
}

type newCredReq struct {
	UserID    string `json:"userID"`
	PIN       string `json:"pin"`
	KeyAlgo   string `json:"keyAlgo"`
	OTP       string `json:"otp"`
	SCAL      int    `json:"scal"`
	Multisign int    `json:"multisign,omitempty"`
	// Domain and Alias make an automatic-signature credential (higher
	// multisign cap).
	Domain string `json:"domain,omitempty"`
	Alias  string `json:"alias,omitempty"`
}

type newCredResp struct {
	CredentialID string   `json:"credentialID"`
	OTPSecret    string   `json:"otpSecret"`
	OTPURI       string   `json:"otpURI"`
	Certificates []string `json:"certificates"`
}

type loginResp struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

type authData struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

type authorizeReq struct {
	CredentialID     string     `json:"credentialID"`
	NumSignatures    int        `json:"numSignatures"`
	Hashes           []string   `json:"hashes,omitempty"`
	HashAlgorithmOID string     `json:"hashAlgorithmOID,omitempty"`
	AuthData         []authData `json:"authData"`
}

type authorizeResp struct {
	SAD       string `json:"SAD"`
	ExpiresIn int    `json:"expiresIn"`
}

type signHashReq struct {
	CredentialID     string   `json:"credentialID"`
	SAD              string   `json:"SAD"`
	Hashes           []string `json:"hashes"`
	HashAlgorithmOID string   `json:"hashAlgorithmOID"`
	SignAlgo         string   `json:"signAlgo"`
}

type signHashResp struct {
	Signatures []string `json:"signatures"`
}

type signDocDocument struct {
	Document         string `json:"document"`
	SignatureFormat  string `json:"signature_format"`
	ConformanceLevel string `json:"conformance_level"`
	SignAlgo         string `json:"signAlgo"`
}

// signDocReq carries the documents pre-encoded (a []signDocDocument):
// re-encoding the same large Base64 string for every request would cost
// the client CPU that the server, on the same machine, then lacks.
type signDocReq struct {
	CredentialID string          `json:"credentialID"`
	SAD          string          `json:"SAD"`
	Documents    json.RawMessage `json:"documents"`
}

// signDocResp is the signDoc answer.
type signDocResp struct {
	DocumentWithSignature []string `json:"DocumentWithSignature"`
}

// signedDocuments extracts DocumentWithSignature from a signDoc answer.
// Megabytes of Base64 per answer make encoding/json (validate, then
// decode) the client's main CPU cost, which on a shared machine the server
// then lacks; Base64 strings need no unescaping, so they are sliced out
// directly. Anything unusual (an escape, other shapes) falls back to
// encoding/json, so the result is always what encoding/json would give.
func signedDocuments(data []byte) ([]string, error) {
	if docs, ok := sliceDocuments(data); ok {
		return docs, nil
	}
	var r signDocResp
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("signDoc: %w: %v", errDecode, err)
	}
	return r.DocumentWithSignature, nil
}

// sliceDocuments is the fast path of signedDocuments. It is ok only when
// the key occurs once, its value is an array of strings of Base64
// characters, and the answer with that array emptied is valid JSON whose
// top-level object has the key: then encoding/json would return exactly
// these strings.
func sliceDocuments(data []byte) (docs []string, ok bool) {
	key := []byte(`"DocumentWithSignature"`)
	at := bytes.Index(data, key)
	if at < 0 || bytes.Contains(data[at+len(key):], key) {
		return nil, false
	}
	p := at + len(key)
	skip := func() {
		for p < len(data) && (data[p] == ' ' || data[p] == '\t' || data[p] == '\n' || data[p] == '\r') {
			p++
		}
	}
	expect := func(c byte) bool {
		skip()
		if p < len(data) && data[p] == c {
			p++
			return true
		}
		return false
	}
	if !expect(':') || !expect('[') {
		return nil, false
	}
	valueStart := p - 1
	skip()
	if p < len(data) && data[p] == ']' {
		p++
	} else {
		for {
			if !expect('"') {
				return nil, false
			}
			start := p
			for p < len(data) && isBase64Char(data[p]) {
				p++
			}
			if p >= len(data) || data[p] != '"' {
				return nil, false // an escape or a stray character
			}
			docs = append(docs, string(data[start:p]))
			p++
			skip()
			if p < len(data) && data[p] == ',' {
				p++
				continue
			}
			if p < len(data) && data[p] == ']' {
				p++
				break
			}
			return nil, false
		}
	}
	rest := make([]byte, 0, valueStart+2+len(data)-p)
	rest = append(append(append(rest, data[:valueStart]...), "[]"...), data[p:]...)
	var top map[string]json.RawMessage
	if json.Unmarshal(rest, &top) != nil || string(top["DocumentWithSignature"]) != "[]" {
		return nil, false
	}
	for k := range top { // encoding/json matches keys case-insensitively
		if k != "DocumentWithSignature" && strings.EqualFold(k, "DocumentWithSignature") {
			return nil, false
		}
	}
	if docs == nil {
		docs = []string{}
	}
	return docs, true
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '='
}

type infoReq struct {
	CredentialID string `json:"credentialID"`
	Certificates string `json:"certificates"`
}

type infoResp struct {
	Cert struct {
		Certificates []string `json:"certificates"`
	} `json:"cert"`
}

// login opens a CSC session for acct and returns the access token and
// when to renew it.
func login(ctx context.Context, c *client, acct *account) (string, time.Time, error) {
	var r loginResp
	if err := c.post(ctx, cscLoginPath, basic(acct.Username, acct.Password), struct{}{}, &r); err != nil {
		return "", time.Time{}, fmt.Errorf("login %s: %w", acct.Username, err)
	}
	if r.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("login %s: %w: no access_token", acct.Username, errDecode)
	}
	ttl := time.Duration(r.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Hour
	}
	return r.AccessToken, time.Now().Add(ttl * 8 / 10), nil
}

// credentialCert reads the credential's leaf certificate through the CSC
// API, the path a real client verifies with.
func credentialCert(ctx context.Context, c *client, token, credID string) (*x509.Certificate, error) {
	var r infoResp
	if err := c.post(ctx, cscInfoPath, bearer(token), infoReq{CredentialID: credID, Certificates: "single"}, &r); err != nil {
		return nil, fmt.Errorf("credentials/info %s: %w", credID, err)
	}
	if len(r.Cert.Certificates) == 0 {
		return nil, fmt.Errorf("credentials/info %s: %w: no certificate", credID, errDecode)
	}
	return parseCertB64(r.Cert.Certificates[0])
}

func parseCertB64(s string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w: %v", errDecode, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w: %v", errDecode, err)
	}
	return cert, nil
}
