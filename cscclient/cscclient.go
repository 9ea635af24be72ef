// Package cscclient is a small CSC API v2 client: the calls a signing
// client needs to sign with a remote credential while hashing locally
// (auth/login with Basic credentials, credentials/list, credentials/info,
// credentials/authorize, signatures/signHash, signatures/timestamp). The
// `sigillo sign` command uses it the way a GoSign-like desktop client
// would talk to any CSC service.
//
// Server errors come back as *Error, decoded from the CSC error body
// {"error","error_description"}. The client never logs or keeps the
// password or the PIN/OTP beyond the request that carries them.
package cscclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sigillo/sigillo/cms"
)

// Client talks to one CSC service. Set BaseURL (the service root, e.g.
// "https://sign.example"; "/csc/v2" is added) and call Login, or set Token.
type Client struct {
	BaseURL string
	// HTTP is the client to use (nil: one with a 2-minute timeout).
	HTTP *http.Client
	// Token is the Bearer access token (set by Login).
	Token string
	// MaxResponse bounds a response body (default 64 MiB).
	MaxResponse int64
}

// Error is a CSC error answer.
type Error struct {
	Status      int
	Code        string
	Description string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("csc: %d %s: %s", e.Status, e.Code, e.Description)
	}
	return fmt.Sprintf("csc: %d %s", e.Status, e.Code)
}

var defaultHTTP = &http.Client{Timeout: 2 * time.Minute}

// call POSTs body as JSON to method and decodes the answer into out.
func (c *Client) call(ctx context.Context, method string, body, out any, basic ...string) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("csc %s: %w", method, err)
	}
	url := strings.TrimRight(c.BaseURL, "/") + "/csc/v2/" + method
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("csc %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	switch {
	case len(basic) == 2:
		req.SetBasicAuth(basic[0], basic[1])
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("csc %s: %w", method, err)
	}
	defer resp.Body.Close()
	max := c.MaxResponse
	if max <= 0 {
		max = 64 << 20
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return fmt.Errorf("csc %s: read: %w", method, err)
	}
	if int64(len(data)) > max {
		return fmt.Errorf("csc %s: answer larger than %d bytes", method, max)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		e := &Error{Status: resp.StatusCode}
		var eb struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			e.Code, e.Description = eb.Error, eb.Description
		} else {
			e.Code = http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("csc %s: %w", method, e)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("csc %s: malformed answer: %w", method, err)
	}
	return nil
}

// Login obtains an access token with HTTP Basic credentials (auth/login)
// and keeps it in Token.
func (c *Client) Login(ctx context.Context, username, password string) error {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.call(ctx, "auth/login", struct{}{}, &out, username, password); err != nil {
		return err
	}
	if out.AccessToken == "" {
		return errors.New("csc auth/login: no access_token in the answer")
	}
	c.Token = out.AccessToken
	return nil
}

// List returns the caller's credential IDs.
func (c *Client) List(ctx context.Context) ([]string, error) {
	var out struct {
		CredentialIDs []string `json:"credentialIDs"`
	}
	if err := c.call(ctx, "credentials/list", struct{}{}, &out); err != nil {
		return nil, err
	}
	return out.CredentialIDs, nil
}

// AuthObject is one v2 auth.objects entry (PIN, OTP).
type AuthObject struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Generator string `json:"generator"`
}

// CredentialInfo is the part of credentials/info a signing client uses.
type CredentialInfo struct {
	Key struct {
		Status string   `json:"status"`
		Algo   []string `json:"algo"`
		Len    int      `json:"len"`
	} `json:"key"`
	Cert struct {
		Status       string   `json:"status"`
		Certificates []string `json:"certificates"`
		SubjectDN    string   `json:"subjectDN"`
	} `json:"cert"`
	Auth struct {
		Mode    string       `json:"mode"`
		Objects []AuthObject `json:"objects"`
	} `json:"auth"`
	SCAL      string `json:"SCAL"`
	Multisign int    `json:"multisign"`
}

// Chain parses cert.certificates (end entity first).
func (ci *CredentialInfo) Chain() ([]*x509.Certificate, error) {
	if len(ci.Cert.Certificates) == 0 {
		return nil, errors.New("csc credentials/info: no certificates")
	}
	out := make([]*x509.Certificate, len(ci.Cert.Certificates))
	for i, s := range ci.Cert.Certificates {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("csc credentials/info: certificate %d: %w", i, err)
		}
		if out[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("csc credentials/info: certificate %d: %w", i, err)
		}
	}
	return out, nil
}

// OTPBySMS reports whether the credential's OTP is sent out of band (an
// OTP object without a generator: the client calls getChallenge and then
// sends the code it received), as opposed to one the holder's app
// generates (generator "totp").
func (ci *CredentialInfo) OTPBySMS() bool {
	for _, o := range ci.Auth.Objects {
		if strings.EqualFold(o.ID, "OTP") {
			return o.Generator == ""
		}
	}
	return false
}

// Challenge asks the service to send the credential's one-time password
// to the holder (credentials/getChallenge).
func (c *Client) Challenge(ctx context.Context, credentialID string) error {
	return c.call(ctx, "credentials/getChallenge", map[string]string{"credentialID": credentialID, "authObjectID": "OTP"}, nil)
}

// NeedsOTP reports whether authorize needs an OTP value.
func (ci *CredentialInfo) NeedsOTP() bool {
	for _, o := range ci.Auth.Objects {
		if strings.EqualFold(o.ID, "OTP") {
			return true
		}
	}
	return false
}

// Info returns a credential's description with its whole chain.
func (c *Client) Info(ctx context.Context, credentialID string) (*CredentialInfo, error) {
	var out CredentialInfo
	err := c.call(ctx, "credentials/info", map[string]any{
		"credentialID": credentialID, "certificates": "chain", "certInfo": true, "authInfo": true}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// AuthorizeRequest asks for a SAD for NumSignatures signatures of Hashes
// (raw digests of Hash).
type AuthorizeRequest struct {
	CredentialID  string
	NumSignatures int
	Hashes        [][]byte
	Hash          crypto.Hash
	PIN, OTP      string
	Description   string
}

// Authorize runs credentials/authorize and returns the SAD.
func (c *Client) Authorize(ctx context.Context, r AuthorizeRequest) (string, error) {
	body := map[string]any{"credentialID": r.CredentialID, "numSignatures": r.NumSignatures}
	if len(r.Hashes) > 0 {
		oid, err := hashOID(r.Hash)
		if err != nil {
			return "", err
		}
		body["hashes"], body["hashAlgorithmOID"] = b64All(r.Hashes), oid
	}
	var auth []map[string]string
	if r.PIN != "" {
		auth = append(auth, map[string]string{"id": "PIN", "value": r.PIN})
	}
	if r.OTP != "" {
		auth = append(auth, map[string]string{"id": "OTP", "value": r.OTP})
	}
	if auth != nil {
		body["authData"] = auth
	}
	if r.Description != "" {
		body["description"] = r.Description
	}
	var out struct {
		SAD string `json:"SAD"`
	}
	if err := c.call(ctx, "credentials/authorize", body, &out); err != nil {
		return "", err
	}
	if out.SAD == "" {
		return "", errors.New("csc credentials/authorize: no SAD in the answer")
	}
	return out.SAD, nil
}

// SignHash signs raw digests (made with h) with signAlgo (an OID) and
// returns the signatures in input order.
func (c *Client) SignHash(ctx context.Context, credentialID, sad string, hashes [][]byte, h crypto.Hash, signAlgo string) ([][]byte, error) {
	oid, err := hashOID(h)
	if err != nil {
		return nil, err
	}
	var out struct {
		Signatures []string `json:"signatures"`
	}
	err = c.call(ctx, "signatures/signHash", map[string]any{"credentialID": credentialID, "SAD": sad,
		"hashes": b64All(hashes), "hashAlgorithmOID": oid, "signAlgo": signAlgo}, &out)
	if err != nil {
		return nil, err
	}
	if len(out.Signatures) != len(hashes) {
		return nil, fmt.Errorf("csc signatures/signHash: %d signatures for %d hashes", len(out.Signatures), len(hashes))
	}
	sigs := make([][]byte, len(hashes))
	for i, s := range out.Signatures {
		if sigs[i], err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("csc signatures/signHash: signature %d: %w", i, err)
		}
	}
	return sigs, nil
}

var _ cms.Timestamper = (*Client)(nil)

// Timestamp asks the service's TSA (signatures/timestamp) for an RFC 3161
// token over digest; it makes the client a cms.Timestamper. The token's
// imprint is checked against the request.
func (c *Client) Timestamp(ctx context.Context, digest []byte, h crypto.Hash) ([]byte, error) {
	oid, err := hashOID(h)
	if err != nil {
		return nil, err
	}
	var out struct {
		Timestamp string `json:"timestamp"`
	}
	if err := c.call(ctx, "signatures/timestamp", map[string]any{"hash": base64.StdEncoding.EncodeToString(digest), "hashAlgo": oid}, &out); err != nil {
		return nil, err
	}
	tok, err := base64.StdEncoding.DecodeString(out.Timestamp)
	if err != nil {
		return nil, fmt.Errorf("csc signatures/timestamp: %w", err)
	}
	info, err := cms.ParseTimestampToken(tok)
	if err != nil {
		return nil, fmt.Errorf("csc signatures/timestamp: %w", err)
	}
	if info.Hash != h || !bytes.Equal(info.HashedMessage, digest) {
		return nil, fmt.Errorf("csc signatures/timestamp: %w: imprint differs from the request", cms.ErrTimestamp)
	}
	return tok, nil
}

func hashOID(h crypto.Hash) (string, error) {
	oid, err := cms.HashOID(h)
	if err != nil {
		return "", fmt.Errorf("cscclient: %w", err)
	}
	return oid.String(), nil
}

func b64All(in [][]byte) []string {
	out := make([]string, len(in))
	for i, b := range in {
		out[i] = base64.StdEncoding.EncodeToString(b)
	}
	return out
}
