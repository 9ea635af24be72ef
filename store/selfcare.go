package store

// Self-care and enrollment: portal accounts, portal sessions, the dev
// e-mail outbox, certificate requests with identification evidence, and
// the credential updates the holder's self-care operations make (PIN
// change, PUK unblock, activation, renewal). Security counters and state
// transitions change with one conditional UPDATE each.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Account is a holder who registered in the portal (the sam user with the
// same id holds the password).
type Account struct {
	UserID            string
	Email             string
	Country           string
	Lang              string
	ConsentProcessing bool
	ConsentMarketing  bool
	// VerifyHash is the SHA-256 (hex) of the e-mail verification token.
	VerifyHash      string
	VerifyExpiresAt time.Time
	VerifiedAt      time.Time
	CreatedAt       time.Time
}

// CreateAccount inserts an account; a taken e-mail gives ErrConflict.
func (s *Store) CreateAccount(ctx context.Context, a Account) error {
	_, err := s.Exec(ctx, `INSERT INTO selfcare_accounts (user_id, email, country, lang, consent_processing,
		consent_marketing, verify_hash, verify_expires_at, verified_at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		a.UserID, a.Email, a.Country, a.Lang, Bool(a.ConsentProcessing), Bool(a.ConsentMarketing), a.VerifyHash,
		Millis(a.VerifyExpiresAt), Millis(a.VerifiedAt), Millis(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("create account %s: %w", a.UserID, s.mapErr(err))
	}
	return nil
}

const accountColumns = `user_id, email, country, lang, consent_processing, consent_marketing, verify_hash,
	verify_expires_at, verified_at, created_at`

func (s *Store) scanAccount(r scanner) (*Account, error) {
	var a Account
	var cp, cm int
	var exp, ver, created int64
	if err := r.Scan(&a.UserID, &a.Email, &a.Country, &a.Lang, &cp, &cm, &a.VerifyHash, &exp, &ver, &created); err != nil {
		return nil, s.mapErr(err)
	}
	a.ConsentProcessing, a.ConsentMarketing = cp != 0, cm != 0
	a.VerifyExpiresAt, a.VerifiedAt, a.CreatedAt = FromMillis(exp), FromMillis(ver), FromMillis(created)
	return &a, nil
}

// AccountByEmail returns the account registered with email or ErrNotFound.
func (s *Store) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	a, err := s.scanAccount(s.QueryRow(ctx, `SELECT `+accountColumns+` FROM selfcare_accounts WHERE email = ?`, email))
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", email, err)
	}
	return a, nil
}

// Account returns the account of userID or ErrNotFound.
func (s *Store) Account(ctx context.Context, userID string) (*Account, error) {
	a, err := s.scanAccount(s.QueryRow(ctx, `SELECT `+accountColumns+` FROM selfcare_accounts WHERE user_id = ?`, userID))
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", userID, err)
	}
	return a, nil
}

// VerifyEmail marks the account whose unexpired, unused verification
// token hashes to verifyHash as verified and activates its user, in one
// transaction. It returns the user id, or ErrNotFound when the token is
// unknown, used or expired.
func (s *Store) VerifyEmail(ctx context.Context, verifyHash string, now time.Time) (string, error) {
	var userID string
	err := s.InTx(ctx, func(tx *Tx) error {
		err := tx.QueryRow(ctx, `UPDATE selfcare_accounts SET verified_at = ?, verify_hash = ''
			WHERE verify_hash = ? AND verify_hash <> '' AND verified_at = 0 AND verify_expires_at > ? RETURNING user_id`,
			Millis(now), verifyHash, Millis(now)).Scan(&userID)
		if err != nil {
			return s.mapErr(err)
		}
		_, err = tx.Exec(ctx, `UPDATE users SET status = 'active' WHERE id = ? AND status = 'pending'`, userID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("verify email: %w", err)
	}
	return userID, nil
}

// RenewVerification replaces the verification token of an account whose
// e-mail address is not confirmed yet (the old link stops working);
// false when the account is confirmed already or does not exist.
func (s *Store) RenewVerification(ctx context.Context, userID, verifyHash string, expires time.Time) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE selfcare_accounts SET verify_hash = ?, verify_expires_at = ? WHERE user_id = ? AND verified_at = 0`,
		verifyHash, Millis(expires), userID)
	if err != nil {
		return false, fmt.Errorf("renew verification %s: %w", userID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetHolderData records the identity a certificate request gave for a
// user (names, fiscal code, mobile number).
func (s *Store) SetHolderData(ctx context.Context, userID, givenName, surname, fiscalCode, phone string) error {
	res, err := s.Exec(ctx, `UPDATE users SET given_name = ?, surname = ?, fiscal_code = ?, phone = ? WHERE id = ?`,
		givenName, surname, fiscalCode, phone, userID)
	if err != nil {
		return fmt.Errorf("set holder data %s: %w", userID, err)
	}
	return oneRow(res, "set holder data "+userID)
}

// SetPhone changes a user's mobile number.
func (s *Store) SetPhone(ctx context.Context, userID, phone string) error {
	res, err := s.Exec(ctx, `UPDATE users SET phone = ? WHERE id = ?`, phone, userID)
	if err != nil {
		return fmt.Errorf("set phone %s: %w", userID, err)
	}
	return oneRow(res, "set phone "+userID)
}

// Session is a portal browser session (only the SHA-256 of its id is stored).
type Session struct {
	Hash   string
	UserID string
	// CSRF is the synchronizer token forms and fetch calls must echo.
	CSRF string
	// MustChange limits the session to the password change page.
	MustChange bool
	ExpiresAt  time.Time
	CreatedAt  time.Time
}

// PutSession stores a session.
func (s *Store) PutSession(ctx context.Context, x Session) error {
	_, err := s.Exec(ctx, `INSERT INTO selfcare_sessions (hash, user_id, csrf, must_change, expires_at, created_at)
		VALUES (?,?,?,?,?,?)`, x.Hash, x.UserID, x.CSRF, Bool(x.MustChange), Millis(x.ExpiresAt), Millis(x.CreatedAt))
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	return nil
}

// Session returns the unexpired session with the given hash or ErrNotFound.
func (s *Store) Session(ctx context.Context, hash string, now time.Time) (*Session, error) {
	var x Session
	var must int
	var exp, created int64
	err := s.QueryRow(ctx, `SELECT hash, user_id, csrf, must_change, expires_at, created_at FROM selfcare_sessions
		WHERE hash = ? AND expires_at > ?`, hash, Millis(now)).Scan(&x.Hash, &x.UserID, &x.CSRF, &must, &exp, &created)
	if err != nil {
		return nil, fmt.Errorf("session: %w", s.mapErr(err))
	}
	x.MustChange, x.ExpiresAt, x.CreatedAt = must != 0, FromMillis(exp), FromMillis(created)
	return &x, nil
}

// ClearSessionMustChange lifts the password-change restriction of a session.
func (s *Store) ClearSessionMustChange(ctx context.Context, hash string) error {
	if _, err := s.Exec(ctx, `UPDATE selfcare_sessions SET must_change = 0 WHERE hash = ?`, hash); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	return nil
}

// DeleteSession ends a session (logout); unknown hashes are ignored.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	if _, err := s.Exec(ctx, `DELETE FROM selfcare_sessions WHERE hash = ?`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Email is a message the dev mailer "sent".
type Email struct {
	ID, To, Subject, Body string
	AttachmentName        string
	Attachment            []byte
	CreatedAt             time.Time
}

// PutEmail appends a message to the dev e-mail outbox.
func (s *Store) PutEmail(ctx context.Context, m Email) error {
	_, err := s.Exec(ctx, `INSERT INTO email_outbox (id, to_email, subject, body, attachment_name, attachment, created_at)
		VALUES (?,?,?,?,?,?,?)`, m.ID, m.To, m.Subject, m.Body, m.AttachmentName, m.Attachment, Millis(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("put email: %w", err)
	}
	return nil
}

// Emails returns the messages sent to an address ("" = all), newest
// first, at most limit (default 100).
func (s *Store) Emails(ctx context.Context, to string, limit int) ([]Email, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.Query(ctx, `SELECT id, to_email, subject, body, attachment_name, attachment, created_at FROM email_outbox
		WHERE (? = '' OR to_email = ?) ORDER BY created_at DESC, id DESC LIMIT ?`, to, to, limit)
	if err != nil {
		return nil, fmt.Errorf("emails: %w", err)
	}
	defer rows.Close()
	var out []Email
	for rows.Next() {
		var m Email
		var at int64
		if err := rows.Scan(&m.ID, &m.To, &m.Subject, &m.Body, &m.AttachmentName, &m.Attachment, &at); err != nil {
			return nil, fmt.Errorf("emails: %w", s.mapErr(err))
		}
		m.CreatedAt = FromMillis(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("emails: %w", s.mapErr(err))
	}
	return out, nil
}

// CertRequest is a holder's certificate request with its identification
// evidence (the identification is recorded, not performed).
type CertRequest struct {
	ID, UserID string
	// Status is "pending" (awaiting the operator), "approved", "rejected" or "issued".
	Status                                 string
	GivenName, Surname, FiscalCode         string
	BirthDate                              string
	Phone, Email, Country                  string
	Method, DocType, DocNumber, DocCountry string
	DocExpiry                              string
	Operator, DecisionReason               string
	DecidedAt                              time.Time
	ContractAcceptedAt, PrivacyAcceptedAt  time.Time
	ContractVersion                        string
	CredentialID, EnvelopeNumber           string
	IssuedAt                               time.Time
	CreatedAt                              time.Time
}

// CreateCertRequest inserts a request.
func (s *Store) CreateCertRequest(ctx context.Context, r CertRequest) error {
	_, err := s.Exec(ctx, `INSERT INTO cert_requests (id, user_id, status, given_name, surname, fiscal_code, birth_date,
		phone, email, country, id_method, doc_type, doc_number, doc_country, doc_expiry, created_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, r.ID, r.UserID, r.Status, r.GivenName, r.Surname, r.FiscalCode,
		r.BirthDate, r.Phone, r.Email, r.Country, r.Method, r.DocType, r.DocNumber, r.DocCountry, r.DocExpiry, Millis(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("create certificate request %s: %w", r.ID, s.mapErr(err))
	}
	return nil
}

const certRequestColumns = `id, user_id, status, given_name, surname, fiscal_code, birth_date, phone, email, country,
	id_method, doc_type, doc_number, doc_country, doc_expiry, operator, decision_reason, decided_at,
	contract_accepted_at, privacy_accepted_at, contract_version, credential_id, envelope_number, issued_at, created_at`

func (s *Store) scanCertRequest(r scanner) (*CertRequest, error) {
	var c CertRequest
	var dec, ca, pa, iss, created int64
	err := r.Scan(&c.ID, &c.UserID, &c.Status, &c.GivenName, &c.Surname, &c.FiscalCode, &c.BirthDate, &c.Phone, &c.Email,
		&c.Country, &c.Method, &c.DocType, &c.DocNumber, &c.DocCountry, &c.DocExpiry, &c.Operator, &c.DecisionReason, &dec,
		&ca, &pa, &c.ContractVersion, &c.CredentialID, &c.EnvelopeNumber, &iss, &created)
	if err != nil {
		return nil, s.mapErr(err)
	}
	c.DecidedAt, c.ContractAcceptedAt, c.PrivacyAcceptedAt = FromMillis(dec), FromMillis(ca), FromMillis(pa)
	c.IssuedAt, c.CreatedAt = FromMillis(iss), FromMillis(created)
	return &c, nil
}

// CertRequest returns a request or ErrNotFound.
func (s *Store) CertRequest(ctx context.Context, id string) (*CertRequest, error) {
	c, err := s.scanCertRequest(s.QueryRow(ctx, `SELECT `+certRequestColumns+` FROM cert_requests WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("certificate request %s: %w", id, err)
	}
	return c, nil
}

// LatestCertRequest returns the user's newest request or ErrNotFound.
func (s *Store) LatestCertRequest(ctx context.Context, userID string) (*CertRequest, error) {
	c, err := s.scanCertRequest(s.QueryRow(ctx, `SELECT `+certRequestColumns+` FROM cert_requests WHERE user_id = ?
		ORDER BY created_at DESC, id DESC LIMIT 1`, userID))
	if err != nil {
		return nil, fmt.Errorf("certificate request of %s: %w", userID, err)
	}
	return c, nil
}

// CertRequests lists requests with the given status ("" = all), oldest
// first, at most limit (default 100).
func (s *Store) CertRequests(ctx context.Context, status string, limit int) ([]CertRequest, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.Query(ctx, `SELECT `+certRequestColumns+` FROM cert_requests WHERE (? = '' OR status = ?)
		ORDER BY created_at, id LIMIT ?`, status, status, limit)
	if err != nil {
		return nil, fmt.Errorf("certificate requests: %w", err)
	}
	defer rows.Close()
	var out []CertRequest
	for rows.Next() {
		c, err := s.scanCertRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("certificate requests: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("certificate requests: %w", s.mapErr(err))
	}
	return out, nil
}

// DecideCertRequest records the operator's decision on a pending request
// (status "approved" or "rejected"). A request that is not pending gives
// ErrConflict (ErrNotFound when it does not exist).
func (s *Store) DecideCertRequest(ctx context.Context, id, status, operator, reason string, at time.Time) error {
	res, err := s.Exec(ctx, `UPDATE cert_requests SET status = ?, operator = ?, decision_reason = ?, decided_at = ?
		WHERE id = ? AND status = 'pending'`, status, operator, reason, Millis(at), id)
	if err != nil {
		return fmt.Errorf("decide certificate request %s: %w", id, err)
	}
	return s.transitioned(ctx, res, id)
}

func (s *Store) transitioned(ctx context.Context, res sql.Result, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("certificate request %s: %w", id, err)
	}
	if n == 1 {
		return nil
	}
	if _, err := s.CertRequest(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("certificate request %s: %w", id, ErrConflict)
}

// ClaimCertRequest moves an approved request to "issuing" so that two
// concurrent completions cannot both create a credential; ReleaseCertRequest
// puts it back when issuance failed.
func (s *Store) ClaimCertRequest(ctx context.Context, id string) error {
	res, err := s.Exec(ctx, `UPDATE cert_requests SET status = 'issuing' WHERE id = ? AND status = 'approved'`, id)
	if err != nil {
		return fmt.Errorf("claim certificate request %s: %w", id, err)
	}
	return s.transitioned(ctx, res, id)
}

// ReleaseCertRequest undoes ClaimCertRequest.
func (s *Store) ReleaseCertRequest(ctx context.Context, id string) error {
	if _, err := s.Exec(ctx, `UPDATE cert_requests SET status = 'approved' WHERE id = ? AND status = 'issuing'`, id); err != nil {
		return fmt.Errorf("release certificate request %s: %w", id, err)
	}
	return nil
}

// FinishCertRequest moves a claimed ("issuing") request to "issued",
// recording the acceptances, the credential and the envelope number.
func (s *Store) FinishCertRequest(ctx context.Context, r CertRequest) error {
	res, err := s.Exec(ctx, `UPDATE cert_requests SET status = 'issued', contract_accepted_at = ?, privacy_accepted_at = ?,
		contract_version = ?, credential_id = ?, envelope_number = ?, issued_at = ? WHERE id = ? AND status = 'issuing'`,
		Millis(r.ContractAcceptedAt), Millis(r.PrivacyAcceptedAt), r.ContractVersion, r.CredentialID, r.EnvelopeNumber,
		Millis(r.IssuedAt), r.ID)
	if err != nil {
		return fmt.Errorf("finish certificate request %s: %w", r.ID, err)
	}
	return s.transitioned(ctx, res, r.ID)
}

// Binding is a credential held by a user with a given e-mail or mobile.
type Binding struct {
	UserID, CredentialID, CertSerial, KeyStatus string
}

// BindingsFor returns the credentials of every user whose e-mail or
// mobile number is one of those given (empty values match nothing).
func (s *Store) BindingsFor(ctx context.Context, email, phone string) ([]Binding, error) {
	rows, err := s.Query(ctx, `SELECT c.user_id, c.id, c.cert_serial, c.key_status FROM credentials c JOIN users u ON u.id = c.user_id
		WHERE (u.email = ? AND ? <> '') OR (u.phone = ? AND ? <> '') ORDER BY c.created_at, c.id`, email, email, phone, phone)
	if err != nil {
		return nil, fmt.Errorf("bindings: %w", err)
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		var b Binding
		if err := rows.Scan(&b.UserID, &b.CredentialID, &b.CertSerial, &b.KeyStatus); err != nil {
			return nil, fmt.Errorf("bindings: %w", s.mapErr(err))
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bindings: %w", s.mapErr(err))
	}
	return out, nil
}

// CredentialByIUT returns the credential with the given identifying code
// (IUT, printed in the envelope) or ErrNotFound.
func (s *Store) CredentialByIUT(ctx context.Context, iut string) (*Credential, error) {
	c, err := s.scanCredential(s.QueryRow(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE iut = ?`, iut))
	if err != nil {
		return nil, fmt.Errorf("credential by IUT: %w", err)
	}
	return c, nil
}

// SetPINHash replaces a credential's PIN hash and clears its PIN counter,
// unless the PIN got blocked meanwhile (pin_tries ≥ max): then it reports
// false and nothing changes.
func (s *Store) SetPINHash(ctx context.Context, id, pinHash string, max int) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE credentials SET pin_hash = ?, pin_tries = 0 WHERE id = ? AND pin_tries < ?`, pinHash, id, max)
	if err != nil {
		return false, fmt.Errorf("set pin %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetRecoveryHashes replaces a credential's PUK and ERC hashes and clears
// the PUK counter, unless the PIN got blocked meanwhile (pin_tries ≥
// pinMax): the holder proved the PIN to get new codes.
func (s *Store) SetRecoveryHashes(ctx context.Context, id, pukHash, ercHash string, pinMax int) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE credentials SET puk_hash = ?, erc_hash = ?, puk_tries = 0 WHERE id = ? AND pin_tries < ?`,
		pukHash, ercHash, id, pinMax)
	if err != nil {
		return false, fmt.Errorf("set recovery codes %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// UnblockPIN sets a new PIN hash after a correct PUK and clears both
// counters, unless the PUK got blocked meanwhile (puk_tries ≥ pukMax).
func (s *Store) UnblockPIN(ctx context.Context, id, pinHash string, pukMax int) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE credentials SET pin_hash = ?, pin_tries = 0, puk_tries = 0 WHERE id = ? AND puk_tries < ?`,
		pinHash, id, pukMax)
	if err != nil {
		return false, fmt.Errorf("unblock pin %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ActivateCredential sets the first PIN of an "issued, not activated"
// credential and activates it, unless it is already active or its PUK is
// blocked; it reports whether it did.
func (s *Store) ActivateCredential(ctx context.Context, id, pinHash string, pukMax int) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE credentials SET pin_hash = ?, activated = 1, pin_tries = 0, puk_tries = 0
		WHERE id = ? AND activated = 0 AND puk_tries < ?`, pinHash, id, pukMax)
	if err != nil {
		return false, fmt.Errorf("activate credential %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetCredentialCert replaces a credential's certificate (renewal), only
// if it still has the serial oldSerial; otherwise ErrConflict.
func (s *Store) SetCredentialCert(ctx context.Context, id, oldSerial, serial string, chain [][]byte) error {
	res, err := s.Exec(ctx, `UPDATE credentials SET cert_serial = ?, cert_chain = ? WHERE id = ? AND cert_serial = ?`,
		serial, joinDER(chain), id, oldSerial)
	if err != nil {
		return fmt.Errorf("set credential certificate %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("set credential certificate %s: %w", id, err)
	}
	if n != 1 {
		return fmt.Errorf("set credential certificate %s: %w", id, ErrConflict)
	}
	return nil
}

// HistoryPage returns a credential's history rows, newest first, skipping
// offset rows, at most limit.
// Rows of the same millisecond are ordered by id: writers give ids that
// grow in write order (sam.seqID), so the order is deterministic.
func (s *Store) HistoryPage(ctx context.Context, credentialID string, offset, limit int) ([]HistoryEntry, error) {
	if limit <= 0 {
		limit = 20
	}
	if offset < 0 {
		offset = 0
	}
	rows, err := s.Query(ctx, `SELECT id, at, user_id, credential_id, action, hash_algo, cnt, outcome
		FROM signature_history WHERE credential_id = ? ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`, credentialID, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", credentialID, err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var h HistoryEntry
		var at int64
		if err := rows.Scan(&h.ID, &at, &h.UserID, &h.CredentialID, &h.Action, &h.HashAlgo, &h.Count, &h.Outcome); err != nil {
			return nil, fmt.Errorf("history %s: %w", credentialID, s.mapErr(err))
		}
		h.At = FromMillis(at)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history %s: %w", credentialID, s.mapErr(err))
	}
	return out, nil
}

// SignatureCounts returns how many signatures a credential made
// successfully since the given time and in total.
func (s *Store) SignatureCounts(ctx context.Context, credentialID string, since time.Time) (recent, total int, err error) {
	var r, t sql.NullInt64
	err = s.QueryRow(ctx, `SELECT SUM(CASE WHEN at >= ? THEN cnt ELSE 0 END), SUM(cnt) FROM signature_history
		WHERE credential_id = ? AND action = 'sign' AND outcome = 'success'`, Millis(since), credentialID).Scan(&r, &t)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("signature counts %s: %w", credentialID, s.mapErr(err))
	}
	return int(r.Int64), int(t.Int64), nil
}

// SetTOTPSecret switches a credential's OTP to an authenticator app with
// the given sealed seed.
func (s *Store) SetTOTPSecret(ctx context.Context, id string, sealed []byte) error {
	res, err := s.Exec(ctx, `UPDATE credentials SET totp_secret = ?, otp_type = 'totp' WHERE id = ?`, sealed, id)
	if err != nil {
		return fmt.Errorf("set totp secret %s: %w", id, err)
	}
	return oneRow(res, "set totp secret "+id)
}
