package csc

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/sigillo/sigillo/sam"
)

// keyInfo is credentials/info's key object (both versions).
type keyInfo struct {
	Status string   `json:"status"`
	Algo   []string `json:"algo"`
	Len    int      `json:"len"`
	Curve  string   `json:"curve,omitempty"`
}

// certInfo is credentials/info's cert object (both versions).
type certInfo struct {
	Status       string   `json:"status,omitempty"`
	Certificates []string `json:"certificates,omitempty"`
	IssuerDN     string   `json:"issuerDN,omitempty"`
	SerialNumber string   `json:"serialNumber,omitempty"`
	SubjectDN    string   `json:"subjectDN,omitempty"`
	ValidFrom    string   `json:"validFrom,omitempty"`
	ValidTo      string   `json:"validTo,omitempty"`
}

// authObject is one v2 auth.objects entry.
type authObject struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Format      string `json:"format,omitempty"`
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
	Generator   string `json:"generator,omitempty"`
}

// authV2 is the v2 auth object.
type authV2 struct {
	Mode       string       `json:"mode"`
	Expression string       `json:"expression,omitempty"`
	Objects    []authObject `json:"objects,omitempty"`
}

// credInfoV2 is v2 credentials/info's body and a credentialInfos entry.
type credInfoV2 struct {
	CredentialID       string    `json:"credentialID,omitempty"`
	Description        string    `json:"description,omitempty"`
	SignatureQualifier string    `json:"signatureQualifier,omitempty"`
	Key                keyInfo   `json:"key"`
	Cert               *certInfo `json:"cert,omitempty"`
	Auth               authV2    `json:"auth"`
	SCAL               string    `json:"SCAL"`
	Multisign          int       `json:"multisign"`
	Lang               string    `json:"lang,omitempty"`
}

// pinV1 is v1's PIN object.
type pinV1 struct {
	Presence    string `json:"presence"`
	Format      string `json:"format,omitempty"`
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
}

// otpV1 is v1's OTP object.
type otpV1 struct {
	Presence    string `json:"presence"`
	Type        string `json:"type"`
	Format      string `json:"format,omitempty"`
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
	ID          string `json:"ID,omitempty"`
	Provider    string `json:"provider,omitempty"`
}

// credInfoV1 is v1 credentials/info's body.
type credInfoV1 struct {
	Description string    `json:"description,omitempty"`
	Key         keyInfo   `json:"key"`
	Cert        *certInfo `json:"cert,omitempty"`
	AuthMode    string    `json:"authMode"`
	SCAL        string    `json:"SCAL"`
	PIN         *pinV1    `json:"PIN,omitempty"`
	OTP         *otpV1    `json:"OTP,omitempty"`
	Multisign   int       `json:"multisign"`
	Lang        string    `json:"lang,omitempty"`
}

// generalizedTime is CSC's validFrom/validTo format.
const generalizedTime = "20060102150405Z"

func renderKey(ci *sam.CredentialInfo) keyInfo {
	k := keyInfo{Status: ci.KeyStatus, Len: ci.KeyLen, Algo: []string{}}
	switch keyTypeOf(ci.KeyAlgo) {
	case keyRSA:
		k.Algo = rsaAlgos
	case keyEC:
		k.Algo = ecAlgos
		k.Curve = ci.CurveOID
	}
	return k
}

func renderCert(ci *sam.CredentialInfo, req infoReq) *certInfo {
	c := &certInfo{Status: ci.CertStatus}
	switch req.Certificates {
	case certsSingle:
		if len(ci.Certificates) > 0 {
			c.Certificates = []string{base64.StdEncoding.EncodeToString(ci.Certificates[0])}
		}
	case certsChain:
		for _, der := range ci.Certificates {
			c.Certificates = append(c.Certificates, base64.StdEncoding.EncodeToString(der))
		}
	}
	if req.CertInfo {
		leaf := ci.Cert
		if leaf == nil && len(ci.Certificates) > 0 {
			leaf, _ = x509.ParseCertificate(ci.Certificates[0])
		}
		if leaf != nil {
			c.IssuerDN = leaf.Issuer.String()
			c.SubjectDN = leaf.Subject.String()
			c.SerialNumber = serialHex(leaf)
			c.ValidFrom = leaf.NotBefore.UTC().Format(generalizedTime)
			c.ValidTo = leaf.NotAfter.UTC().Format(generalizedTime)
		}
	}
	return c
}

// serialHex is the serial in upper-case hex with an even number of digits.
func serialHex(c *x509.Certificate) string {
	s := fmt.Sprintf("%X", c.SerialNumber)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

func scal(n int) string {
	if n == 2 {
		return "2"
	}
	return "1"
}

func hasOTP(ci *sam.CredentialInfo) bool { return ci.OTPType == "totp" || ci.OTPType == "sms" }

// renderV2 builds the v2 credential description. auth.mode is always
// explicit: the client collects the PIN (and the OTP when the credential
// has one). TOTP is a ChallengeResponse object with generator "totp" (the
// client needs no challenge); an SMS OTP is a ChallengeResponse whose
// challenge goes out of band: the client calls getChallenge (204, the SMS
// is sent) and then sends the code as the OTP value. We do not use
// ChallengeResponseOOB for it because that type tells clients to send no
// value at all.
func renderV2(ci *sam.CredentialInfo, req infoReq, lang string) *credInfoV2 {
	out := &credInfoV2{
		Description:        ci.Description,
		SignatureQualifier: ci.SignatureQualifier,
		Key:                renderKey(ci),
		Cert:               renderCert(ci, req),
		Auth:               authV2{Mode: "explicit"},
		SCAL:               scal(ci.SCAL),
		Multisign:          max(ci.Multisign, 1),
		Lang:               lang,
	}
	if req.AuthInfo {
		out.Auth.Objects = []authObject{{Type: "Password", ID: "PIN", Format: "N", Label: "PIN", Description: "Signature PIN"}}
		out.Auth.Expression = "PIN"
		if hasOTP(ci) {
			o := authObject{Type: "ChallengeResponse", ID: "OTP", Format: "N", Label: "OTP"}
			if ci.OTPType == "totp" {
				o.Generator = "totp"
				o.Description = "One-time password from the authenticator app"
			} else {
				o.Description = "One-time password sent by SMS (call credentials/getChallenge)"
			}
			out.Auth.Objects = append(out.Auth.Objects, o)
			out.Auth.Expression = "PIN AND OTP"
		}
	}
	return out
}

// renderV1 builds the v1 credential description; PIN and OTP objects only
// with authInfo (CSC v1 §11.5).
func renderV1(ci *sam.CredentialInfo, req infoReq, o Options) *credInfoV1 {
	out := &credInfoV1{
		Description: ci.Description,
		Key:         renderKey(ci),
		Cert:        renderCert(ci, req),
		AuthMode:    "explicit",
		SCAL:        scal(ci.SCAL),
		Multisign:   max(ci.Multisign, 1),
		Lang:        o.Lang,
	}
	if req.AuthInfo {
		out.PIN = &pinV1{Presence: "true", Format: "N", Label: "PIN", Description: "Signature PIN"}
		if hasOTP(ci) {
			otp := &otpV1{Presence: "true", Format: "N", Label: "OTP", ID: ci.OTPType, Provider: o.Name}
			if ci.OTPType == "totp" {
				otp.Type = "offline"
				otp.Description = "One-time password from the authenticator app"
			} else {
				otp.Type = "online"
				otp.Description = "One-time password sent by SMS (call credentials/sendOTP)"
			}
			out.OTP = otp
		}
	}
	return out
}
