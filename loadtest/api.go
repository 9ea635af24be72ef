package loadtest

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
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

type signDocReq struct {
	CredentialID string            `json:"credentialID"`
	SAD          string            `json:"SAD"`
	Documents    []signDocDocument `json:"documents"`
}

type signDocResp struct {
	DocumentWithSignature []string `json:"DocumentWithSignature"`
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
