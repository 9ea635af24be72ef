package sam

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// Key status values.
const (
	KeyEnabled  = "enabled"
	KeyDisabled = "disabled"
)

// loadOwned returns the credential if it belongs to the principal; another
// user's credential looks exactly like a missing one.
func (s *Service) loadOwned(ctx context.Context, p *Principal, id string) (*store.Credential, error) {
	if p == nil || (p.UserID == "" && p.Domain == "") {
		return nil, ErrInvalidToken
	}
	if id == "" {
		return nil, errs.Invalidf("Missing (or invalid type) string parameter credentialID")
	}
	c, err := s.st.Credential(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrCredentialGone
	}
	if err != nil {
		return nil, storeErr("credential", err)
	}
	if !owns(p, c) || !inScope(p, c.ID) {
		return nil, ErrCredentialGone
	}
	return c, nil
}

// leaf parses (once per serial) the credential's end-entity certificate.
func (s *Service) leaf(c *store.Credential) (*x509.Certificate, error) {
	if v, ok := s.leaves.Load(c.CertSerial); ok {
		return v.(*x509.Certificate), nil
	}
	if len(c.CertChain) == 0 {
		return nil, errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("credential %s has no certificate", c.ID))
	}
	cert, err := x509.ParseCertificate(c.CertChain[0])
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("credential %s certificate: %w", c.ID, err))
	}
	s.leaves.Store(c.CertSerial, cert)
	return cert, nil
}

// certStatus asks the CA for the certificate's status and also checks the
// validity period against our clock.
func (s *Service) certStatus(ctx context.Context, c *store.Credential, cert *x509.Certificate) (string, error) {
	st, err := s.issuer.CertStatus(ctx, c.CertSerial)
	if err != nil {
		if e, ok := errs.As(err); ok {
			return "", e
		}
		return "", errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", fmt.Errorf("certificate status %s: %w", c.CertSerial, err))
	}
	now := s.now()
	if st == "valid" && (now.After(cert.NotAfter) || now.Before(cert.NotBefore)) {
		st = "expired"
	}
	return st, nil
}

func keyDetails(pub any) (bits int, curveOID string) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen(), ""
	case *ecdsa.PublicKey:
		bits = k.Curve.Params().BitSize
		switch k.Curve.Params().Name {
		case "P-256":
			return bits, "1.2.840.10045.3.1.7"
		case "P-384":
			return bits, "1.3.132.0.34"
		case "P-521":
			return bits, "1.3.132.0.35"
		}
		return bits, ""
	}
	return 0, ""
}

func (s *Service) info(ctx context.Context, c *store.Credential) (*CredentialInfo, error) {
	cert, err := s.leaf(c)
	if err != nil {
		return nil, err
	}
	status, err := s.certStatus(ctx, c, cert)
	if err != nil {
		return nil, err
	}
	bits, curve := keyDetails(cert.PublicKey)
	return &CredentialInfo{
		ID: c.ID, Description: c.Description, KeyStatus: c.KeyStatus, KeyAlgo: c.KeyAlgo,
		KeyLen: bits, CurveOID: curve, CertStatus: status, Certificates: c.CertChain, Cert: cert,
		SCAL: c.SCAL, Multisign: c.Multisign, OTPType: c.OTPType, Activated: c.Activated,
		PINBlocked: c.PINTries >= s.cfg.PINMaxTries, OTPBlocked: c.OTPTries >= s.cfg.OTPMaxTries, Domain: c.Domain, Alias: c.Alias, UserID: c.UserID,
		SignatureQualifier: ca.SignatureQualifier(cert),
	}, nil
}

// IsQualifier reports whether q is a signature qualifier sigillo knows.
func IsQualifier(q string) bool { return slices.Contains(ca.Qualifiers, q) }

// CredentialByQualifier returns the caller's one credential that makes
// signatures of the given qualifier (CSC's signatureQualifier in place of
// a credentialID). None, several, or a qualifier sigillo does not know is
// an invalid parameter: the client must then name the credential.
func (s *Service) CredentialByQualifier(ctx context.Context, p *Principal, qualifier string) (*CredentialInfo, error) {
	if !IsQualifier(qualifier) {
		return nil, errs.Invalidf("Invalid parameter signatureQualifier")
	}
	if p != nil && p.UserID == "" && p.Domain != "" { // an integration names credentials by alias
		return nil, errs.Invalidf("Invalid parameter signatureQualifier: name the credential with credentialID")
	}
	all, err := s.ListCredentials(ctx, p)
	if err != nil {
		return nil, err
	}
	var found []CredentialInfo
	for _, ci := range all {
		if ci.SignatureQualifier == qualifier {
			found = append(found, ci)
		}
	}
	switch len(found) {
	case 0:
		return nil, errs.Invalidf("Invalid parameter signatureQualifier: no credential of the user has it")
	case 1:
		return &found[0], nil
	}
	return nil, errs.Invalidf("Invalid parameter signatureQualifier: %d credentials of the user have it, name one with credentialID", len(found))
}

// ListCredentials returns the caller's credentials (never another user's).
func (s *Service) ListCredentials(ctx context.Context, p *Principal) ([]CredentialInfo, error) {
	if p == nil || p.UserID == "" {
		return nil, ErrInvalidToken
	}
	cs, err := s.st.CredentialsByUser(ctx, p.UserID)
	if err != nil {
		return nil, storeErr("list credentials", err)
	}
	out := make([]CredentialInfo, 0, len(cs))
	for i := range cs {
		if !inScope(p, cs[i].ID) {
			continue
		}
		ci, err := s.info(ctx, &cs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *ci)
	}
	return out, nil
}

// Credential describes one of the caller's credentials; another user's
// gives errs.NotFound like a missing one.
func (s *Service) Credential(ctx context.Context, p *Principal, credentialID string) (*CredentialInfo, error) {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return nil, err
	}
	return s.info(ctx, c)
}

// usable checks what every authorize and sign requires of a credential:
// key enabled, activated, certificate valid (asked of the CA every time).
func (s *Service) usable(ctx context.Context, c *store.Credential) (*x509.Certificate, error) {
	if c.KeyStatus != KeyEnabled {
		return nil, ErrDisabled
	}
	if !c.Activated {
		return nil, ErrNotActivated
	}
	cert, err := s.leaf(c)
	if err != nil {
		return nil, err
	}
	st, err := s.certStatus(ctx, c, cert)
	if err != nil {
		return nil, err
	}
	if st != "valid" {
		return nil, certStatusError(st)
	}
	return cert, nil
}

func parseCert(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return c, nil
}
