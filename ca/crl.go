package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

func (a *Authority) caByRole(role string) (*signerCert, error) {
	switch role {
	case RoleRoot:
		return a.root, nil
	case RoleIssuing:
		return a.issuing, nil
	}
	return nil, errs.Invalidf("No CRL for %q", role)
}

// CRL returns the current DER CRL of the root or issuing CA, generating a
// new one when none is stored or the stored one is past half its validity.
func (a *Authority) CRL(ctx context.Context, role string) ([]byte, error) {
	if _, err := a.caByRole(role); err != nil {
		return nil, err
	}
	rec, err := a.st.CRL(ctx, role)
	if err == nil && a.now().Before(rec.ThisUpdate.Add(a.cfg.CRLValidity/2)) {
		return rec.DER, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("crl %s: %w", role, err)
	}
	// One regeneration at a time in this process: concurrent requests for
	// a stale CRL wait for it instead of each signing their own.
	a.crlMu.Lock()
	defer a.crlMu.Unlock()
	if again, err := a.st.CRL(ctx, role); err == nil && a.now().Before(again.ThisUpdate.Add(a.cfg.CRLValidity/2)) {
		return again.DER, nil
	}
	fresh, err := a.GenerateCRL(ctx, role)
	if err != nil {
		if rec.DER != nil && a.now().Before(rec.NextUpdate) {
			a.log.Error("ca: CRL regeneration failed; serving the previous one", "issuer", role, "error", err)
			return rec.DER, nil
		}
		return nil, err
	}
	return fresh.DER, nil
}

// refreshCRL regenerates a CRL after a status change. A failure is logged,
// not returned: the change is already in effect (OCSP answers from the
// store) and the next CRL request or Run tick retries.
func (a *Authority) refreshCRL(ctx context.Context, role string) {
	if _, err := a.GenerateCRL(ctx, role); err != nil {
		a.log.Error("ca: CRL regeneration after a status change failed", "issuer", role, "error", err)
	}
}

// GenerateCRL signs and stores a new CRL of role listing every unexpired
// suspended (certificateHold) or revoked certificate it issued. The CRL
// number is taken from the store before the list is read, so the CRL
// with the highest number is never missing a change.
func (a *Authority) GenerateCRL(ctx context.Context, role string) (store.CRLRecord, error) {
	issuer, err := a.caByRole(role)
	if err != nil {
		return store.CRLRecord{}, err
	}
	num, err := a.st.NextCRLNumber(ctx, role)
	if err != nil {
		return store.CRLRecord{}, fmt.Errorf("crl %s: %w", role, err)
	}
	now := a.now().UTC().Truncate(time.Second)
	revoked, err := a.st.RevokedCerts(ctx, role, now)
	if err != nil {
		return store.CRLRecord{}, fmt.Errorf("crl %s: %w", role, err)
	}
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(num),
		ThisUpdate: now,
		NextUpdate: now.Add(a.cfg.CRLValidity),
	}
	for _, r := range revoked {
		sn, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return store.CRLRecord{}, fmt.Errorf("crl %s: stored serial %q is not hex", role, r.Serial)
		}
		code := reasonCodes[r.Reason]
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: sn, RevocationTime: r.RevokedAt.UTC(), ReasonCode: code,
		})
	}
	der, err := a.signCRL(tmpl, issuer)
	if err != nil {
		return store.CRLRecord{}, fmt.Errorf("crl %s: %w", role, err)
	}
	rec := store.CRLRecord{Issuer: role, Number: num, DER: der, ThisUpdate: tmpl.ThisUpdate, NextUpdate: tmpl.NextUpdate}
	if _, err := a.st.PutCRL(ctx, rec); err != nil {
		return store.CRLRecord{}, fmt.Errorf("crl %s: %w", role, err)
	}
	a.met.crls.WithLabelValues(role).Inc()
	return rec, nil
}

// signCRL pre-signs tmpl with a throwaway key, checks it parses back with
// the expected entries, then has the HSM sign it; the result must carry
// the same TBS and verify against the issuer.
func (a *Authority) signCRL(tmpl *x509.RevocationList, issuer *signerCert) ([]byte, error) {
	lk, err := a.lintKey(issuer.signer.Public())
	if err != nil {
		return nil, err
	}
	lintIssuer := *issuer.cert
	lintIssuer.PublicKey = lk.Public()
	lintDER, err := x509.CreateRevocationList(rand.Reader, tmpl, &lintIssuer, lk)
	if err != nil {
		return nil, fmt.Errorf("pre-sign: %w", err)
	}
	lint, err := x509.ParseRevocationList(lintDER)
	if err != nil {
		return nil, fmt.Errorf("pre-signed CRL does not parse: %w", err)
	}
	if len(lint.RevokedCertificateEntries) != len(tmpl.RevokedCertificateEntries) || lint.Number.Cmp(tmpl.Number) != 0 {
		return nil, errors.New("pre-signed CRL lost entries or its number")
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.cert, issuer.signer)
	if err != nil {
		return nil, errsHSM(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("signed CRL does not parse: %w", err)
	}
	if !bytesEqual(crl.RawTBSRevocationList, lint.RawTBSRevocationList) {
		return nil, errors.New("signed CRL TBS differs from the checked one")
	}
	if err := crl.CheckSignatureFrom(issuer.cert); err != nil {
		return nil, fmt.Errorf("signed CRL does not verify: %w", err)
	}
	return der, nil
}
