package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/sigillo/sigillo/store"
)

// Import stores an existing certificate for a key already in the HSM as
// the CA's certificate for role (root, issuing, ocsp or tsa), so an
// operator can bring a hierarchy certified elsewhere. The key's public half
// must match the certificate, the certificate must fit the role and chain
// to the stored parent (root for issuing, issuing for ocsp and tsa). An
// existing entry is replaced only with replace.
func Import(ctx context.Context, keys Keys, st Store, role string, certDER []byte, keyID string, replace bool) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("import: certificate: %w", err)
	}
	if err := checkRole(role, cert); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	signer, err := keys.Signer(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("import: HSM key %s: %w", keyID, err)
	}
	if err := checkKeyMatches(signer.Public(), cert); err != nil {
		return nil, fmt.Errorf("import: key %s: %w", keyID, err)
	}
	if role == RoleRoot {
		if err := cert.CheckSignatureFrom(cert); err != nil {
			return nil, fmt.Errorf("import: root is not self-signed: %w", err)
		}
	} else {
		parentRole := RoleIssuing
		if role == RoleIssuing {
			parentRole = RoleRoot
		}
		pe, err := st.CA(ctx, parentRole)
		if err != nil {
			return nil, fmt.Errorf("import: %s needs the %s CA first: %w", role, parentRole, err)
		}
		parent, err := x509.ParseCertificate(pe.CertDER)
		if err != nil {
			return nil, fmt.Errorf("import: stored %s: %w", parentRole, err)
		}
		if err := cert.CheckSignatureFrom(parent); err != nil {
			return nil, fmt.Errorf("import: %s certificate is not signed by the stored %s CA: %w", role, parentRole, err)
		}
		now := time.Now()
		rec := store.CertRecord{Serial: serialHex(cert.SerialNumber), Issuer: parentRole, Owner: "ca:" + role,
			Subject: cert.Subject.String(), DER: cert.Raw, Status: string(StatusValid),
			NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, CreatedAt: now, UpdatedAt: now}
		if err := st.InsertCert(ctx, rec, ""); err != nil && !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("import: %w", err)
		}
	}
	if err := st.PutCA(ctx, store.CAEntry{Role: role, KeyID: keyID, CertDER: cert.Raw, CreatedAt: time.Now()}, replace); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("import: a %s CA is already stored (replace it explicitly): %w", role, err)
		}
		return nil, fmt.Errorf("import: %w", err)
	}
	return cert, nil
}

// Stored returns the CA certificates in the store by role, without
// touching the HSM (for `sigillo ca show`).
func Stored(ctx context.Context, st Store) (map[string]store.CAEntry, error) {
	out := map[string]store.CAEntry{}
	for _, role := range []string{RoleRoot, RoleIssuing, RoleOCSP, RoleTSA} {
		e, err := st.CA(ctx, role)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[role] = e
	}
	return out, nil
}
