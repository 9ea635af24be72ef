package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// RFC 5280 CRL reason codes by name. certificateHold is set only by
// Suspend; the rest are what Revoke accepts.
var reasonCodes = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"certificateHold":      6,
}

// ReasonCode returns the RFC 5280 code of a reason name.
func ReasonCode(name string) (int, bool) {
	c, ok := reasonCodes[name]
	return c, ok
}

// RevocationReasons lists the reasons Revoke accepts.
func RevocationReasons() []string {
	var out []string
	for n := range reasonCodes {
		if n != "certificateHold" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// NormalizeSerial turns a serial written in hex (any case, optional 0x,
// colons or leading zeros) into the canonical lower-case form.
func NormalizeSerial(s string) (string, error) {
	t := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	t = strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X")
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || t == "" || len(t) > 40 || n.Sign() <= 0 {
		return "", errs.Invalidf("Malformed certificate serial %q: want hexadecimal", s)
	}
	return n.Text(16), nil
}

// Get returns a certificate and its current state, read from the store.
func (a *Authority) Get(ctx context.Context, serial string) (*Certificate, error) {
	sn, err := NormalizeSerial(serial)
	if err != nil {
		return nil, err
	}
	rec, err := a.st.Cert(ctx, sn)
	if err != nil {
		return nil, lookupErr(sn, err)
	}
	return a.fromRecord(rec)
}

// ByOwner returns the certificates issued for owner, newest first.
func (a *Authority) ByOwner(ctx context.Context, owner string) ([]*Certificate, error) {
	recs, err := a.st.CertsByOwner(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("certificates of %s: %w", owner, err)
	}
	out := make([]*Certificate, 0, len(recs))
	for _, r := range recs {
		c, err := a.fromRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func lookupErr(serial string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errs.New(errs.NotFound, "", fmt.Sprintf("Unknown certificate serial %s", serial))
	}
	return fmt.Errorf("certificate %s: %w", serial, err)
}

func (a *Authority) fromRecord(r store.CertRecord) (*Certificate, error) {
	cert, err := x509.ParseCertificate(r.DER)
	if err != nil {
		return nil, fmt.Errorf("stored certificate %s: %w", r.Serial, err)
	}
	return &Certificate{Serial: r.Serial, DER: r.DER, Cert: cert, Status: a.effective(r), RevokedAt: r.RevokedAt,
		Reason: r.Reason, Owner: r.Owner, SupersededBy: r.SupersededBy, Qualified: IsQualified(cert)}, nil
}

// effective is the status a relying party sees: a revoked certificate
// stays revoked; otherwise one past its notAfter is expired.
func (a *Authority) effective(r store.CertRecord) Status {
	if r.Status == string(StatusRevoked) {
		return StatusRevoked
	}
	if !a.now().Before(r.NotAfter) {
		return StatusExpired
	}
	return Status(r.Status)
}

// Status returns "valid", "suspended", "revoked" or "expired", read from
// the store on every call so a change made on any replica takes effect
// for signing at once.
func (a *Authority) Status(ctx context.Context, serial string) (Status, error) {
	sn, err := NormalizeSerial(serial)
	if err != nil {
		return "", err
	}
	rec, err := a.st.Cert(ctx, sn)
	if err != nil {
		return "", lookupErr(sn, err)
	}
	return a.effective(rec), nil
}

// Suspend puts a valid certificate on hold (CRL reason certificateHold).
func (a *Authority) Suspend(ctx context.Context, serial, actor string) error {
	return a.change(ctx, serial, actor, "cert.suspended", store.CertChange{
		From: []string{string(StatusValid)}, Status: string(StatusSuspended), Reason: "certificateHold"})
}

// Reactivate lifts a suspension. A revoked certificate cannot come back.
func (a *Authority) Reactivate(ctx context.Context, serial, actor string) error {
	return a.change(ctx, serial, actor, "cert.reactivated", store.CertChange{
		From: []string{string(StatusSuspended)}, Status: string(StatusValid)})
}

// Revoke revokes a valid or suspended certificate for good. reason is one
// of RevocationReasons (empty means unspecified).
func (a *Authority) Revoke(ctx context.Context, serial, reason, actor string) error {
	if reason == "" {
		reason = "unspecified"
	}
	if _, ok := reasonCodes[reason]; !ok || reason == "certificateHold" {
		return errs.Invalidf("Unknown revocation reason %q: use one of %s (or suspend for certificateHold)",
			reason, strings.Join(RevocationReasons(), ", "))
	}
	return a.change(ctx, serial, actor, "cert.revoked", store.CertChange{
		From: []string{string(StatusValid), string(StatusSuspended)}, Status: string(StatusRevoked), Reason: reason})
}

func (a *Authority) change(ctx context.Context, serial, actor, action string, c store.CertChange) error {
	sn, err := NormalizeSerial(serial)
	if err != nil {
		return err
	}
	rec, err := a.st.Cert(ctx, sn)
	if err != nil {
		return lookupErr(sn, err)
	}
	if rec.Issuer != RoleIssuing || strings.HasPrefix(rec.Owner, "ca:") {
		return errs.New(errs.Forbidden, "", fmt.Sprintf("Certificate %s belongs to the CA itself; it is not managed here", sn))
	}
	if err := a.transitionAllowed(rec, c); err != nil {
		return err
	}
	now := a.now()
	c.At = now
	if c.Status != string(StatusValid) {
		c.RevokedAt = now.Truncate(time.Second)
	}
	cur, err := a.st.ChangeCert(ctx, sn, c)
	if errors.Is(err, store.ErrConflict) {
		// Lost a race with another change: explain from the state now stored.
		if err := a.transitionAllowed(cur, c); err != nil {
			return err
		}
		return errs.New(errs.Conflict, "", fmt.Sprintf("Certificate %s changed state concurrently; retry", sn))
	}
	if err != nil {
		return lookupErr(sn, err)
	}
	a.log.Info("ca: certificate state changed", "serial", sn, "status", c.Status, "reason", c.Reason, "actor", actor)
	a.met.changes.WithLabelValues(strings.TrimPrefix(action, "cert.")).Inc()
	detail := map[string]string{"from": rec.Status, "to": c.Status}
	if c.Reason != "" {
		detail["reason"] = c.Reason
	}
	aerr := a.record(ctx, actor, action, "cert:"+sn, "success", detail)
	a.refreshCRL(ctx, RoleIssuing)
	if aerr != nil {
		return errs.Wrap(errs.Unavailable, "The change is in effect but the audit log is unavailable", aerr)
	}
	return nil
}

// transitionAllowed explains why rec cannot move as c says, if it cannot.
func (a *Authority) transitionAllowed(rec store.CertRecord, c store.CertChange) error {
	if rec.Status == string(StatusRevoked) {
		if c.Status == string(StatusRevoked) {
			return errs.New(errs.Conflict, "", fmt.Sprintf("Certificate %s is already revoked (%s)", rec.Serial, rec.Reason))
		}
		return errs.New(errs.Conflict, "", fmt.Sprintf("Certificate %s is revoked (%s); revocation is final and cannot be undone", rec.Serial, rec.Reason))
	}
	if !a.now().Before(rec.NotAfter) {
		return errs.New(errs.Conflict, "", fmt.Sprintf("Certificate %s has expired", rec.Serial))
	}
	for _, f := range c.From {
		if rec.Status == f {
			return nil
		}
	}
	switch c.Status {
	case string(StatusSuspended):
		return errs.New(errs.Conflict, "", fmt.Sprintf("Certificate %s is already suspended", rec.Serial))
	case string(StatusValid):
		return errs.New(errs.Conflict, "", fmt.Sprintf("Certificate %s is not suspended (it is %s)", rec.Serial, rec.Status))
	}
	return errs.New(errs.Conflict, "", fmt.Sprintf("Certificate %s is %s", rec.Serial, rec.Status))
}
