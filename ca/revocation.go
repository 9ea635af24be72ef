package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"

	"golang.org/x/crypto/ocsp"

	"github.com/sigillo/sigillo/errs"
)

// Chain returns the issuing CA certificate, then the root.
func (a *Authority) Chain() []*x509.Certificate {
	return []*x509.Certificate{a.issuing.cert, a.root.cert}
}

// ChainDER returns leaf followed by the issuing CA and the root, DER: what
// a signature or a CSC credentials/info response carries.
func (a *Authority) ChainDER(leaf *Certificate) [][]byte {
	return [][]byte{leaf.DER, a.issuing.cert.Raw, a.root.cert.Raw}
}

// Root returns the root CA certificate (the trust anchor).
func (a *Authority) Root() *x509.Certificate { return a.root.cert }

// Issuer returns the issuing CA certificate.
func (a *Authority) Issuer() *x509.Certificate { return a.issuing.cert }

// OCSPCertificate returns the delegated OCSP responder certificate.
func (a *Authority) OCSPCertificate() *x509.Certificate { return a.ocsp.cert }

// TSACertificate returns the time-stamping unit's certificate.
func (a *Authority) TSACertificate() *x509.Certificate { return a.tsa.cert }

// Revocation returns fresh revocation data about cert issued by issuer,
// for embedding in a PAdES signature (pades' ValidationSource): an OCSP
// response (nil for a CA certificate, which only the root CRL covers) and
// the issuer's current CRL. A certificate this CA did not issue is
// errs.NotFound.
func (a *Authority) Revocation(ctx context.Context, cert, issuer *x509.Certificate) (ocspDER, crlDER []byte, err error) {
	if cert == nil || issuer == nil {
		return nil, nil, errs.Invalidf("Missing certificate or issuer")
	}
	var role string
	switch {
	case bytesEqual(issuer.Raw, a.issuing.cert.Raw):
		role = RoleIssuing
	case bytesEqual(issuer.Raw, a.root.cert.Raw):
		role = RoleRoot
	default:
		return nil, nil, errs.New(errs.NotFound, "", fmt.Sprintf("Certificate %q was not issued by this CA", cert.Subject.CommonName))
	}
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return nil, nil, errs.Wrap(errs.Invalid, "Certificate is not signed by the given issuer", err)
	}
	if role == RoleIssuing {
		if ocspDER, err = a.ocspResponse(ctx, []*ocsp.Request{{HashAlgorithm: crypto.SHA256, SerialNumber: cert.SerialNumber}}, nil); err != nil {
			return nil, nil, err
		}
	}
	if crlDER, err = a.CRL(ctx, role); err != nil {
		return nil, nil, err
	}
	return ocspDER, crlDER, nil
}
