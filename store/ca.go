package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CAEntry is one of the CA's own certificates and the HSM key behind it.
// Role is "root", "issuing", "ocsp" or "tsa".
type CAEntry struct {
	Role      string
	KeyID     string
	CertDER   []byte
	CreatedAt time.Time
}

// CertRecord is a certificate the CA issued and its lifecycle state.
// Status is "valid", "suspended" or "revoked"; expiry is not stored but
// derived from NotAfter by the reader.
type CertRecord struct {
	Serial       string
	Issuer       string
	Owner        string
	Subject      string
	DER          []byte
	Status       string
	Reason       string
	RevokedAt    time.Time
	NotBefore    time.Time
	NotAfter     time.Time
	SupersededBy string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// CertChange is a lifecycle transition: the row moves to Status with
// Reason at At, but only if its current status is one of From.
type CertChange struct {
	From      []string
	Status    string
	Reason    string
	RevokedAt time.Time
	At        time.Time
}

// CRLRecord is the latest CRL of one CA.
type CRLRecord struct {
	Issuer     string
	Number     int64
	DER        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
}

// CA returns the CA entry for role, or ErrNotFound.
func (s *Store) CA(ctx context.Context, role string) (CAEntry, error) {
	var e CAEntry
	var created int64
	err := s.QueryRow(ctx, "SELECT role, key_id, cert_der, created_at FROM ca_authorities WHERE role = ?", role).
		Scan(&e.Role, &e.KeyID, &e.CertDER, &created)
	if err != nil {
		return CAEntry{}, fmt.Errorf("ca %s: %w", role, s.mapErr(err))
	}
	e.CreatedAt = FromMillis(created)
	return e, nil
}

// PutCA stores a CA entry. Without replace an existing role is left alone
// and ErrConflict returned, so replicas bootstrapping together keep the
// first writer's hierarchy.
func (s *Store) PutCA(ctx context.Context, e CAEntry, replace bool) error {
	q := "INSERT INTO ca_authorities (role, key_id, cert_der, created_at) VALUES (?, ?, ?, ?)"
	if replace {
		q += " ON CONFLICT (role) DO UPDATE SET key_id = excluded.key_id, cert_der = excluded.cert_der, created_at = excluded.created_at"
	}
	if _, err := s.Exec(ctx, q, e.Role, e.KeyID, e.CertDER, Millis(e.CreatedAt)); err != nil {
		return fmt.Errorf("put ca %s: %w", e.Role, err)
	}
	return nil
}

const certColumns = "serial, issuer, owner, subject, der, status, reason, revoked_at, not_before, not_after, superseded_by, created_at, updated_at"

func scanCert(sc interface{ Scan(...any) error }) (CertRecord, error) {
	var r CertRecord
	var revoked, nb, na, created, updated int64
	err := sc.Scan(&r.Serial, &r.Issuer, &r.Owner, &r.Subject, &r.DER, &r.Status, &r.Reason,
		&revoked, &nb, &na, &r.SupersededBy, &created, &updated)
	if err != nil {
		return CertRecord{}, err
	}
	r.RevokedAt, r.NotBefore, r.NotAfter = FromMillis(revoked), FromMillis(nb), FromMillis(na)
	r.CreatedAt, r.UpdatedAt = FromMillis(created), FromMillis(updated)
	return r, nil
}

// InsertCert stores a newly issued certificate. When supersedes is not
// empty, the same transaction revokes that certificate with reason
// "superseded" (renewal); it must be valid or suspended, otherwise
// ErrConflict and nothing is stored.
func (s *Store) InsertCert(ctx context.Context, r CertRecord, supersedes string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if supersedes != "" {
			res, err := tx.Exec(ctx, `UPDATE ca_certificates SET status = 'revoked', reason = 'superseded',
				revoked_at = ?, superseded_by = ?, updated_at = ?
				WHERE serial = ? AND status IN ('valid', 'suspended')`,
				Millis(r.CreatedAt), r.Serial, Millis(r.CreatedAt), supersedes)
			if err != nil {
				return fmt.Errorf("supersede %s: %w", supersedes, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("supersede %s: %w", supersedes, ErrConflict)
			}
		}
		_, err := tx.Exec(ctx, "INSERT INTO ca_certificates ("+certColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			r.Serial, r.Issuer, r.Owner, r.Subject, r.DER, r.Status, r.Reason, Millis(r.RevokedAt),
			Millis(r.NotBefore), Millis(r.NotAfter), r.SupersededBy, Millis(r.CreatedAt), Millis(r.UpdatedAt))
		if err != nil {
			return fmt.Errorf("insert certificate %s: %w", r.Serial, err)
		}
		return nil
	})
}

// Cert returns the certificate with the given serial, or ErrNotFound.
func (s *Store) Cert(ctx context.Context, serial string) (CertRecord, error) {
	r, err := scanCert(s.QueryRow(ctx, "SELECT "+certColumns+" FROM ca_certificates WHERE serial = ?", serial))
	if err != nil {
		return CertRecord{}, fmt.Errorf("certificate %s: %w", serial, s.mapErr(err))
	}
	return r, nil
}

// CertsByOwner returns the certificates issued to owner, newest first.
func (s *Store) CertsByOwner(ctx context.Context, owner string) ([]CertRecord, error) {
	return s.queryCerts(ctx, "SELECT "+certColumns+" FROM ca_certificates WHERE owner = ? ORDER BY created_at DESC, serial", owner)
}

// RevokedCerts returns the suspended and revoked certificates of issuer
// that have not yet expired at now: the entries of its next CRL.
func (s *Store) RevokedCerts(ctx context.Context, issuer string, now time.Time) ([]CertRecord, error) {
	return s.queryCerts(ctx, "SELECT "+certColumns+` FROM ca_certificates
		WHERE issuer = ? AND status IN ('suspended', 'revoked') AND not_after > ? ORDER BY serial`, issuer, Millis(now))
}

func (s *Store) queryCerts(ctx context.Context, q string, args ...any) ([]CertRecord, error) {
	rows, err := s.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	defer rows.Close()
	var out []CertRecord
	for rows.Next() {
		r, err := scanCert(rows)
		if err != nil {
			return nil, fmt.Errorf("list certificates: %w", s.mapErr(err))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list certificates: %w", s.mapErr(err))
	}
	return out, nil
}

// ChangeCert applies a lifecycle transition with one conditional UPDATE,
// so two operators racing cannot both win. It returns ErrNotFound for an
// unknown serial and ErrConflict when the current status is not in
// c.From; in both cases the returned record (zero for ErrNotFound) is the
// current state.
func (s *Store) ChangeCert(ctx context.Context, serial string, c CertChange) (CertRecord, error) {
	if len(c.From) == 0 {
		return CertRecord{}, errors.New("change certificate: no source status")
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(c.From)), ", ")
	args := []any{c.Status, c.Reason, Millis(c.RevokedAt), Millis(c.At), serial}
	for _, f := range c.From {
		args = append(args, f)
	}
	res, err := s.Exec(ctx, `UPDATE ca_certificates SET status = ?, reason = ?, revoked_at = ?, updated_at = ?
		WHERE serial = ? AND status IN (`+marks+")", args...)
	if err != nil {
		return CertRecord{}, fmt.Errorf("change certificate %s: %w", serial, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return CertRecord{}, fmt.Errorf("change certificate %s: %w", serial, err)
	}
	cur, err := s.Cert(ctx, serial)
	if err != nil {
		return CertRecord{}, err
	}
	if n != 1 {
		return cur, fmt.Errorf("change certificate %s from %s: %w", serial, cur.Status, ErrConflict)
	}
	return cur, nil
}

// NextCRLNumber hands out the next CRL number of issuer (1, 2, ...) with
// one atomic statement, so replicas never reuse a number.
func (s *Store) NextCRLNumber(ctx context.Context, issuer string) (int64, error) {
	var n int64
	err := s.InTx(ctx, func(tx *Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO ca_crls (issuer, last_number, crl_number, der, this_update, next_update)
			VALUES (?, 1, 0, ?, 0, 0)
			ON CONFLICT (issuer) DO UPDATE SET last_number = ca_crls.last_number + 1
			RETURNING last_number`, issuer, []byte{}).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("next crl number %s: %w", issuer, s.mapErr(err))
	}
	return n, nil
}

// PutCRL stores c unless a CRL with a higher or equal number is already
// stored (a slower replica must not replace a newer CRL). It reports
// whether c was stored.
func (s *Store) PutCRL(ctx context.Context, c CRLRecord) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE ca_crls SET crl_number = ?, der = ?, this_update = ?, next_update = ?
		WHERE issuer = ? AND crl_number < ?`,
		c.Number, c.DER, Millis(c.ThisUpdate), Millis(c.NextUpdate), c.Issuer, c.Number)
	if err != nil {
		return false, fmt.Errorf("put crl %s: %w", c.Issuer, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("put crl %s: %w", c.Issuer, err)
	}
	return n == 1, nil
}

// CRL returns the latest stored CRL of issuer, or ErrNotFound when none
// was generated yet.
func (s *Store) CRL(ctx context.Context, issuer string) (CRLRecord, error) {
	var c CRLRecord
	var tu, nu int64
	err := s.QueryRow(ctx, "SELECT issuer, crl_number, der, this_update, next_update FROM ca_crls WHERE issuer = ? AND crl_number > 0", issuer).
		Scan(&c.Issuer, &c.Number, &c.DER, &tu, &nu)
	if err != nil {
		return CRLRecord{}, fmt.Errorf("crl %s: %w", issuer, s.mapErr(err))
	}
	c.ThisUpdate, c.NextUpdate = FromMillis(tu), FromMillis(nu)
	return c, nil
}
