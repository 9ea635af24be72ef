package server

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"

	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/sam"
)

// caIssuer adapts the CA to what sam needs: certify a credential key for a
// holder, and tell a certificate's status at the moment of use.
type caIssuer struct {
	ca        *ca.Authority
	qualified bool
}

var _ sam.Issuer = caIssuer{}

// Issue certifies pub for h and returns the serial and the chain, leaf first.
func (i caIssuer) Issue(ctx context.Context, pub crypto.PublicKey, h sam.Holder, credentialID string) (string, [][]byte, error) {
	req := ca.IssueRequest{
		PublicKey:  pub,
		CommonName: h.GivenName + " " + h.Surname,
		GivenName:  h.GivenName,
		Surname:    h.Surname,
		Country:    h.Country,
		Qualified:  i.qualified,
		Owner:      credentialID,
	}
	if h.FiscalCode != "" {
		req.SerialNumber = ca.NaturalPersonSerial(h.Country, h.FiscalCode)
	}
	cert, err := i.ca.Issue(ctx, req)
	if err != nil {
		return "", nil, fmt.Errorf("issue certificate for %s: %w", credentialID, err)
	}
	return cert.Serial, i.ca.ChainDER(cert), nil
}

// CertStatus reads the status from the store on every call, so suspension
// takes effect immediately on every replica.
func (i caIssuer) CertStatus(ctx context.Context, serial string) (string, error) {
	st, err := i.ca.Status(ctx, serial)
	if err != nil {
		return "", err
	}
	return string(st), nil
}

var _ sam.CertLifecycle = caIssuer{}

// Suspend puts the certificate on hold (holder self-care, emergency code).
func (i caIssuer) Suspend(ctx context.Context, serial, actor string) error {
	return i.ca.Suspend(ctx, serial, actor)
}

// Reactivate lifts a hold.
func (i caIssuer) Reactivate(ctx context.Context, serial, actor string) error {
	return i.ca.Reactivate(ctx, serial, actor)
}

// Revoke revokes for good.
func (i caIssuer) Revoke(ctx context.Context, serial, reason, actor string) error {
	return i.ca.Revoke(ctx, serial, reason, actor)
}

// RenewCert issues a successor for the same key; the old one is superseded.
func (i caIssuer) RenewCert(ctx context.Context, serial string) (string, [][]byte, error) {
	cert, err := i.ca.Renew(ctx, serial, nil)
	if err != nil {
		return "", nil, err
	}
	return cert.Serial, i.ca.ChainDER(cert), nil
}

// CheckHolder tells sam, before an HSM key is generated, whether the CA
// would certify h: a qualified certificate must name the holder by a
// national identifier (ETSI EN 319 412-1 semantics identifier).
func (i caIssuer) CheckHolder(h sam.Holder) error {
	if i.qualified && strings.TrimSpace(h.FiscalCode) == "" {
		return errors.New("a qualified certificate needs the holder's fiscal code or another national identifier")
	}
	return nil
}
