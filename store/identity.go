package store

// Identity: users, credentials, access tokens, SADs, signature history.
// The OTP state (TOTP step, SMS challenges, send rate, outbox) is in
// identity_otp.go. Security counters change with one conditional UPDATE.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SAD consumption failures, distinguished so that the CSC edge can give
// the specified message. A SAD of another user or credential, a revoked
// one and an unknown one all give ErrSADInvalid.
var (
	ErrSADInvalid           = errors.New("store: SAD invalid")
	ErrSADExpired           = errors.New("store: SAD expired")
	ErrSADExhausted         = errors.New("store: SAD budget exhausted")
	ErrSADHashNotAuthorized = errors.New("store: hash not authorized by the SAD")
)

// User is a signer's account. ID is the username.
type User struct {
	ID                 string
	PasswordHash       string
	Email, Phone       string
	GivenName, Surname string
	FiscalCode         string
	// Status is "active" or "disabled".
	Status             string
	PasswordChangedAt  time.Time
	MustChangePassword bool
	CreatedAt          time.Time
}

// Credential is a signing credential: a key in the HSM (key id = ID), its
// certificate and the factors that activate it.
type Credential struct {
	ID, UserID, Description string
	KeyAlgo                 string
	CertSerial              string
	// CertChain is DER, leaf first.
	CertChain                 [][]byte
	PINHash, PUKHash, ERCHash string
	IUT                       string
	// OTPType is "totp", "sms" or "none"; TOTPSecret is the sealed seed.
	OTPType      string
	TOTPSecret   []byte
	TOTPLastStep int64
	SCAL         int
	Multisign    int
	// Domain and Alias are "" when unset (stored NULL).
	Domain, Alias string
	// KeyStatus is "enabled" or "disabled".
	KeyStatus          string
	Activated          bool
	PINTries, PUKTries int
	// OTPTries counts wrong OTPs in a row (reset by a right one).
	OTPTries  int
	CreatedAt time.Time
}

// CreateUser inserts a user; a taken username gives ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u User) error {
	_, err := s.Exec(ctx, `INSERT INTO users (id, password_hash, email, phone, given_name, surname, fiscal_code,
		status, password_changed_at, must_change_password, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		u.ID, u.PasswordHash, u.Email, u.Phone, u.GivenName, u.Surname, u.FiscalCode, u.Status,
		Millis(u.PasswordChangedAt), Bool(u.MustChangePassword), Millis(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, err)
	}
	return nil
}

// User returns the user with the given id or ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (*User, error) {
	var u User
	var changed, created int64
	var must int
	err := s.QueryRow(ctx, `SELECT id, password_hash, email, phone, given_name, surname, fiscal_code, status,
		password_changed_at, must_change_password, created_at FROM users WHERE id = ?`, id).
		Scan(&u.ID, &u.PasswordHash, &u.Email, &u.Phone, &u.GivenName, &u.Surname, &u.FiscalCode, &u.Status,
			&changed, &must, &created)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", id, s.mapErr(err))
	}
	u.PasswordChangedAt, u.CreatedAt, u.MustChangePassword = FromMillis(changed), FromMillis(created), must != 0
	return &u, nil
}

// SetPassword replaces a user's password hash and whether it must be
// changed at next login.
func (s *Store) SetPassword(ctx context.Context, id, hash string, mustChange bool, at time.Time) error {
	res, err := s.Exec(ctx, `UPDATE users SET password_hash = ?, must_change_password = ?, password_changed_at = ? WHERE id = ?`,
		hash, Bool(mustChange), Millis(at), id)
	if err != nil {
		return fmt.Errorf("set password %s: %w", id, err)
	}
	return oneRow(res, "set password "+id)
}

func oneRow(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func joinDER(chain [][]byte) []byte { return bytes.Join(chain, nil) }

// splitDER cuts the stored concatenation back into its DER certificates.
// It only walks the outer SEQUENCE headers: this runs on every signature
// (the credential load), and parsing whole certificates there cost more
// than the lookup itself. Consumers parse what they use, once.
func splitDER(b []byte) ([][]byte, error) {
	var out [][]byte
	in := cryptobyte.String(b)
	for !in.Empty() {
		var cert cryptobyte.String
		var tag cbasn1.Tag
		whole := []byte(in)
		if !in.ReadAnyASN1Element(&cert, &tag) || tag != cbasn1.SEQUENCE {
			return nil, fmt.Errorf("stored certificate chain: malformed DER at byte %d", len(b)-len(whole))
		}
		out = append(out, whole[:len(whole)-len(in)])
	}
	return out, nil
}

// CreateCredential inserts a credential. A taken domain+alias or IUT gives
// ErrConflict.
func (s *Store) CreateCredential(ctx context.Context, c Credential) error {
	_, err := s.Exec(ctx, `INSERT INTO credentials (id, user_id, description, key_algo, cert_serial, cert_chain,
		pin_hash, puk_hash, erc_hash, iut, otp_type, totp_secret, totp_last_step, scal, multisign, domain, alias,
		key_status, activated, pin_tries, puk_tries, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		c.ID, c.UserID, c.Description, c.KeyAlgo, c.CertSerial, joinDER(c.CertChain),
		c.PINHash, c.PUKHash, c.ERCHash, c.IUT, c.OTPType, c.TOTPSecret, c.TOTPLastStep, c.SCAL, c.Multisign,
		nullable(c.Domain), nullable(c.Alias), c.KeyStatus, Bool(c.Activated), c.PINTries, c.PUKTries, Millis(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create credential %s: %w", c.ID, err)
	}
	return nil
}

const credentialColumns = `id, user_id, description, key_algo, cert_serial, cert_chain, pin_hash, puk_hash, erc_hash,
	iut, otp_type, totp_secret, totp_last_step, scal, multisign, domain, alias, key_status, activated,
	pin_tries, puk_tries, otp_tries, created_at`

type scanner interface{ Scan(dest ...any) error }

func (s *Store) scanCredential(r scanner) (*Credential, error) {
	var c Credential
	var chain []byte
	var domain, alias sql.NullString
	var activated int
	var created int64
	err := r.Scan(&c.ID, &c.UserID, &c.Description, &c.KeyAlgo, &c.CertSerial, &chain, &c.PINHash, &c.PUKHash,
		&c.ERCHash, &c.IUT, &c.OTPType, &c.TOTPSecret, &c.TOTPLastStep, &c.SCAL, &c.Multisign, &domain, &alias,
		&c.KeyStatus, &activated, &c.PINTries, &c.PUKTries, &c.OTPTries, &created)
	if err != nil {
		return nil, s.mapErr(err)
	}
	c.Domain, c.Alias, c.Activated, c.CreatedAt = domain.String, alias.String, activated != 0, FromMillis(created)
	if c.CertChain, err = splitDER(chain); err != nil {
		return nil, err
	}
	return &c, nil
}

// Credential returns the credential with the given id or ErrNotFound.
func (s *Store) Credential(ctx context.Context, id string) (*Credential, error) {
	c, err := s.scanCredential(s.QueryRow(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", id, err)
	}
	return c, nil
}

// CredentialByAlias returns the credential registered under domain+alias.
func (s *Store) CredentialByAlias(ctx context.Context, domain, alias string) (*Credential, error) {
	c, err := s.scanCredential(s.QueryRow(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE domain = ? AND alias = ?`, domain, alias))
	if err != nil {
		return nil, fmt.Errorf("credential %s/%s: %w", domain, alias, err)
	}
	return c, nil
}

// CredentialsByUser returns a user's credentials, oldest first.
func (s *Store) CredentialsByUser(ctx context.Context, userID string) ([]Credential, error) {
	rows, err := s.Query(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("credentials of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []Credential
	for rows.Next() {
		c, err := s.scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("credentials of %s: %w", userID, err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("credentials of %s: %w", userID, s.mapErr(err))
	}
	return out, nil
}

// SetKeyStatus sets a credential's key status ("enabled" / "disabled").
func (s *Store) SetKeyStatus(ctx context.Context, id, status string) error {
	res, err := s.Exec(ctx, `UPDATE credentials SET key_status = ? WHERE id = ?`, status, id)
	if err != nil {
		return fmt.Errorf("set key status %s: %w", id, err)
	}
	return oneRow(res, "set key status "+id)
}

// AddPINTry records one wrong PIN unless the PIN is already blocked
// (tries ≥ max). It returns the new count and whether it was recorded; a
// false ok means the PIN was already blocked (or the credential is gone).
// One conditional UPDATE: concurrent wrong PINs never lose an increment
// and never push the counter past max.
func (s *Store) AddPINTry(ctx context.Context, id string, max int) (tries int, ok bool, err error) {
	return s.addTry(ctx, "pin_tries", id, max)
}

// AddPUKTry is AddPINTry for the PUK.
func (s *Store) AddPUKTry(ctx context.Context, id string, max int) (tries int, ok bool, err error) {
	return s.addTry(ctx, "puk_tries", id, max)
}

// AddOTPTry is AddPINTry for wrong OTPs (the guard against guessing
// TOTP codes once the PIN is known).
func (s *Store) AddOTPTry(ctx context.Context, id string, max int) (tries int, ok bool, err error) {
	return s.addTry(ctx, "otp_tries", id, max)
}

func (s *Store) addTry(ctx context.Context, col, id string, max int) (int, bool, error) {
	var tries int
	err := s.InTx(ctx, func(tx *Tx) error {
		return tx.QueryRow(ctx, `UPDATE credentials SET `+col+` = `+col+` + 1 WHERE id = ? AND `+col+` < ? RETURNING `+col, id, max).Scan(&tries)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return max, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%s %s: %w", col, id, s.mapErr(err))
	}
	return tries, true, nil
}

// ResetPINTries clears the PIN counter after a correct PIN, unless the PIN
// got blocked meanwhile (tries ≥ max): then it reports false and the
// correct PIN must be refused.
func (s *Store) ResetPINTries(ctx context.Context, id string, max int) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE credentials SET pin_tries = 0 WHERE id = ? AND pin_tries < ?`, id, max)
	if err != nil {
		return false, fmt.Errorf("reset pin tries %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("reset pin tries %s: %w", id, err)
	}
	return n == 1, nil
}

// ResetOTPTries clears the OTP counter after a right OTP, unless it is
// blocked (tries ≥ max); then it reports false.
func (s *Store) ResetOTPTries(ctx context.Context, id string, max int) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE credentials SET otp_tries = 0 WHERE id = ? AND otp_tries < ?`, id, max)
	if err != nil {
		return false, fmt.Errorf("reset otp tries %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("reset otp tries %s: %w", id, err)
	}
	return n == 1, nil
}

// Token is a stored access or refresh token (only its hash).
type Token struct {
	Hash string
	// Kind is "access" or "refresh".
	Kind     string
	UserID   string
	ClientID string
	// GrantID groups the tokens of one login: revoking a refresh token
	// revokes its grant.
	GrantID   string
	ExpiresAt time.Time
	Revoked   bool
	CreatedAt time.Time
}

// PutToken stores a token.
func (s *Store) PutToken(ctx context.Context, t Token) error {
	_, err := s.Exec(ctx, `INSERT INTO access_tokens (hash, kind, user_id, client_id, grant_id, expires_at, revoked, created_at)
		VALUES (?,?,?,?,?,?,?,?)`, t.Hash, t.Kind, t.UserID, t.ClientID, t.GrantID, Millis(t.ExpiresAt), Bool(t.Revoked), Millis(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("put token: %w", err)
	}
	return nil
}

// Token returns the token with the given hash or ErrNotFound.
func (s *Store) Token(ctx context.Context, hash string) (*Token, error) {
	var t Token
	var exp, created int64
	var revoked int
	err := s.QueryRow(ctx, `SELECT hash, kind, user_id, client_id, grant_id, expires_at, revoked, created_at
		FROM access_tokens WHERE hash = ?`, hash).Scan(&t.Hash, &t.Kind, &t.UserID, &t.ClientID, &t.GrantID, &exp, &revoked, &created)
	if err != nil {
		return nil, fmt.Errorf("token: %w", s.mapErr(err))
	}
	t.ExpiresAt, t.CreatedAt, t.Revoked = FromMillis(exp), FromMillis(created), revoked != 0
	return &t, nil
}

// RevokeToken revokes one token; it reports whether a live token was revoked.
func (s *Store) RevokeToken(ctx context.Context, hash string) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE access_tokens SET revoked = 1 WHERE hash = ? AND revoked = 0`, hash)
	if err != nil {
		return false, fmt.Errorf("revoke token: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RevokeGrant revokes every token of a grant.
func (s *Store) RevokeGrant(ctx context.Context, grantID string) error {
	if _, err := s.Exec(ctx, `UPDATE access_tokens SET revoked = 1 WHERE grant_id = ? AND revoked = 0`, grantID); err != nil {
		return fmt.Errorf("revoke grant: %w", err)
	}
	return nil
}

// SADRecord is a stored SAD (only its hash). Hashes is the multiset it is
// bound to when Bound.
type SADRecord struct {
	Hash         string
	UserID       string
	CredentialID string
	// HashAlgo is the bound hash algorithm's name ("" = any).
	HashAlgo  string
	Remaining int
	Bound     bool
	Hashes    [][]byte
	ExpiresAt time.Time
	CreatedAt time.Time
}

type digestCount struct {
	digest []byte
	n      int
}

// multiset groups digests by value, in a stable order.
func multiset(hashes [][]byte) []digestCount {
	m := map[string]int{}
	for _, h := range hashes {
		m[string(h)]++
	}
	out := make([]digestCount, 0, len(m))
	for d, n := range m {
		out = append(out, digestCount{[]byte(d), n})
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].digest, out[j].digest) < 0 })
	return out
}

// PutSAD stores a SAD and, when bound, its multiset of hashes.
func (s *Store) PutSAD(ctx context.Context, r SADRecord) error {
	return s.InTx(ctx, func(tx *Tx) error { return putSAD(ctx, tx, r) })
}

func putSAD(ctx context.Context, tx *Tx, r SADRecord) error {
	if _, err := tx.Exec(ctx, `INSERT INTO sads (hash, user_id, credential_id, hash_algo, remaining, bound, revoked, expires_at, created_at)
		VALUES (?,?,?,?,?,?,0,?,?)`, r.Hash, r.UserID, r.CredentialID, r.HashAlgo, r.Remaining, Bool(r.Bound),
		Millis(r.ExpiresAt), Millis(r.CreatedAt)); err != nil {
		return fmt.Errorf("put SAD: %w", err)
	}
	if !r.Bound {
		return nil
	}
	for _, dc := range multiset(r.Hashes) {
		if _, err := tx.Exec(ctx, `INSERT INTO sad_hashes (sad_hash, digest, cnt, used) VALUES (?,?,?,0)`, r.Hash, dc.digest, dc.n); err != nil {
			return fmt.Errorf("put SAD hash: %w", err)
		}
	}
	return nil
}

// ConsumeSAD takes len(hashes) signatures from the SAD with the given
// hash: one conditional UPDATE on the remaining count (which also checks
// owner, credential, expiry, revocation and hash algorithm) — alone for an
// unbound SAD — and, for a bound SAD, in the same transaction conditional
// UPDATEs of the per-hash consumption rows (one per distinct
// multiplicity, usually one). Either
// every hash is consumed or none is. Errors: ErrSADInvalid, ErrSADExpired,
// ErrSADExhausted, ErrSADHashNotAuthorized, or a store failure.
func (s *Store) ConsumeSAD(ctx context.Context, sadHash, userID, credentialID, hashAlgo string, hashes [][]byte, now time.Time) error {
	n := len(hashes)
	if n == 0 {
		return fmt.Errorf("consume SAD: %w", ErrSADHashNotAuthorized)
	}
	// Fast path for a SAD not bound to hashes (SCAL 1, batch signing): the
	// one conditional UPDATE is atomic on its own, no transaction needed.
	res, err := s.Exec(ctx, `UPDATE sads SET remaining = remaining - ?
		WHERE hash = ? AND user_id = ? AND credential_id = ? AND revoked = 0 AND expires_at > ?
		AND remaining >= ? AND bound = 0 AND (hash_algo = '' OR hash_algo = ?)`,
		n, sadHash, userID, credentialID, Millis(now), n, hashAlgo)
	if err != nil {
		return fmt.Errorf("consume SAD: %w", err)
	}
	if got, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("consume SAD: %w", err)
	} else if got == 1 {
		return nil
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		var bound int
		err := tx.QueryRow(ctx, `UPDATE sads SET remaining = remaining - ?
			WHERE hash = ? AND user_id = ? AND credential_id = ? AND revoked = 0 AND expires_at > ?
			AND remaining >= ? AND (hash_algo = '' OR hash_algo = ?) RETURNING bound`,
			n, sadHash, userID, credentialID, Millis(now), n, hashAlgo).Scan(&bound)
		if errors.Is(err, sql.ErrNoRows) {
			return classifySAD(ctx, tx, sadHash, userID, credentialID, hashAlgo, n, now)
		}
		if err != nil {
			return s.mapErr(err)
		}
		if bound == 0 {
			return nil
		}
		return consumeHashes(ctx, tx, sadHash, hashes)
	})
	if err != nil {
		return fmt.Errorf("consume SAD: %w", err)
	}
	return nil
}

// RefundSAD gives back to the SAD the signatures a call took but never
// made (the HSM failed), so that the client can retry after the outage.
// The remaining count moves with one conditional UPDATE that never lifts
// it above what the SAD could grant (the authorized hashes of a bound SAD,
// the credential's multisign otherwise); a bound SAD's per-hash rows go
// back in the same transaction, each only as far as it was used. Revoked
// and expired SADs are left alone. Either all of it is given back or
// nothing is (ErrConflict).
func (s *Store) RefundSAD(ctx context.Context, sadHash, userID, credentialID string, hashes [][]byte, now time.Time) error {
	n := len(hashes)
	if n == 0 {
		return nil
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		var bound int
		err := tx.QueryRow(ctx, `UPDATE sads SET remaining = remaining + ?
			WHERE hash = ? AND user_id = ? AND credential_id = ? AND revoked = 0 AND expires_at > ?
			AND remaining + ? <= CASE WHEN bound = 0
				THEN (SELECT multisign FROM credentials WHERE credentials.id = sads.credential_id)
				ELSE (SELECT COALESCE(SUM(cnt), 0) FROM sad_hashes WHERE sad_hashes.sad_hash = sads.hash) END
			RETURNING bound`, n, sadHash, userID, credentialID, Millis(now), n).Scan(&bound)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrConflict
		}
		if err != nil {
			return s.mapErr(err)
		}
		if bound == 0 {
			return nil
		}
		return moveHashes(ctx, tx, sadHash, hashes, true, ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("refund SAD: %w", err)
	}
	return nil
}

// consumeHashes marks the hashes used.
func consumeHashes(ctx context.Context, tx *Tx, sadHash string, hashes [][]byte) error {
	return moveHashes(ctx, tx, sadHash, hashes, false, ErrSADHashNotAuthorized)
}

// moveHashes counts the hashes as used (or, with refund, as unused again):
// for each multiplicity k, one UPDATE over the digests that occur k times,
// which must touch every one of them, else the whole move is refused with
// missing (the transaction then rolls back).
func moveHashes(ctx context.Context, tx *Tx, sadHash string, hashes [][]byte, refund bool, missing error) error {
	set, cond := "used = used + ?", "used + ? <= cnt"
	if refund {
		set, cond = "used = used - ?", "used >= ?"
	}
	byCount := map[int][][]byte{}
	for _, dc := range multiset(hashes) {
		byCount[dc.n] = append(byCount[dc.n], dc.digest)
	}
	for k, digests := range byCount {
		args := make([]any, 0, len(digests)+3)
		args = append(args, k, sadHash)
		for _, d := range digests {
			args = append(args, d)
		}
		args = append(args, k)
		res, err := tx.Exec(ctx, `UPDATE sad_hashes SET `+set+` WHERE sad_hash = ? AND digest IN (?`+
			strings.Repeat(",?", len(digests)-1)+`) AND `+cond, args...)
		if err != nil {
			return err
		}
		got, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if int(got) != len(digests) {
			return missing
		}
	}
	return nil
}

// classifySAD says why a SAD could not be consumed.
func classifySAD(ctx context.Context, tx *Tx, sadHash, userID, credentialID, hashAlgo string, n int, now time.Time) error {
	var uid, cid, algo string
	var remaining, revoked int
	var exp int64
	err := tx.QueryRow(ctx, `SELECT user_id, credential_id, hash_algo, remaining, revoked, expires_at FROM sads WHERE hash = ?`, sadHash).
		Scan(&uid, &cid, &algo, &remaining, &revoked, &exp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrSADInvalid
	case err != nil:
		return tx.s.mapErr(err)
	case uid != userID || cid != credentialID || revoked != 0:
		return ErrSADInvalid
	case exp <= Millis(now):
		return ErrSADExpired
	case algo != "" && hashAlgo != "" && algo != hashAlgo:
		return ErrSADHashNotAuthorized
	case remaining < n:
		return ErrSADExhausted
	}
	// The row changed between the UPDATE and this SELECT: a lost race.
	return ErrSADExhausted
}

// ExtendSAD voids the SAD oldHash and stores next (its Hash, ExpiresAt and
// CreatedAt set by the caller) with the old SAD's remaining budget,
// binding and hash algorithm, in one transaction. When check is non-empty
// and the old SAD is bound, every hash in check must still be authorized.
// It returns the new record. Errors as ConsumeSAD.
func (s *Store) ExtendSAD(ctx context.Context, oldHash, userID, credentialID string, check [][]byte, next SADRecord, now time.Time) (*SADRecord, error) {
	err := s.InTx(ctx, func(tx *Tx) error {
		var bound int
		err := tx.QueryRow(ctx, `UPDATE sads SET revoked = 1
			WHERE hash = ? AND user_id = ? AND credential_id = ? AND revoked = 0 AND expires_at > ? AND remaining > 0
			RETURNING remaining, hash_algo, bound`, oldHash, userID, credentialID, Millis(now)).
			Scan(&next.Remaining, &next.HashAlgo, &bound)
		if errors.Is(err, sql.ErrNoRows) {
			return classifySAD(ctx, tx, oldHash, userID, credentialID, "", 1, now)
		}
		if err != nil {
			return s.mapErr(err)
		}
		next.UserID, next.CredentialID, next.Bound = userID, credentialID, bound != 0
		if _, err := tx.Exec(ctx, `INSERT INTO sads (hash, user_id, credential_id, hash_algo, remaining, bound, revoked, expires_at, created_at)
			VALUES (?,?,?,?,?,?,0,?,?)`, next.Hash, userID, credentialID, next.HashAlgo, next.Remaining, bound,
			Millis(next.ExpiresAt), Millis(next.CreatedAt)); err != nil {
			return fmt.Errorf("put SAD: %w", err)
		}
		if !next.Bound {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sad_hashes (sad_hash, digest, cnt, used)
			SELECT ?, digest, cnt - used, 0 FROM sad_hashes WHERE sad_hash = ? AND cnt > used`, next.Hash, oldHash); err != nil {
			return fmt.Errorf("copy SAD hashes: %w", err)
		}
		for _, dc := range multiset(check) {
			var left int
			err := tx.QueryRow(ctx, `SELECT cnt FROM sad_hashes WHERE sad_hash = ? AND digest = ?`, next.Hash, dc.digest).Scan(&left)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && left < dc.n) {
				return ErrSADHashNotAuthorized
			}
			if err != nil {
				return s.mapErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("extend SAD: %w", err)
	}
	return &next, nil
}

// HistoryEntry is one row of a credential's signature history.
type HistoryEntry struct {
	ID           string
	At           time.Time
	UserID       string
	CredentialID string
	// Action is "authorize", "sign" or "extend".
	Action   string
	HashAlgo string
	Count    int
	// Outcome is "success" or "failure:<reason>".
	Outcome string
}

// AddHistory appends a signature-history row.
func (s *Store) AddHistory(ctx context.Context, h HistoryEntry) error {
	return addHistory(ctx, s, []HistoryEntry{h})
}

// historyChunk is how many rows one INSERT carries (8 parameters each).
const historyChunk = 100

// addHistory inserts rows with one multi-row INSERT per chunk.
func addHistory(ctx context.Context, q execer, hs []HistoryEntry) error {
	for len(hs) > 0 {
		n := min(len(hs), historyChunk)
		var b strings.Builder
		b.WriteString(`INSERT INTO signature_history (id, at, user_id, credential_id, action, hash_algo, cnt, outcome) VALUES `)
		args := make([]any, 0, n*8)
		for i, h := range hs[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?)")
			args = append(args, h.ID, Millis(h.At), h.UserID, h.CredentialID, h.Action, h.HashAlgo, h.Count, h.Outcome)
		}
		if _, err := q.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("add history: %w", err)
		}
		hs = hs[n:]
	}
	return nil
}

// History returns a credential's most recent history rows, newest first.
func (s *Store) History(ctx context.Context, credentialID string, limit int) ([]HistoryEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.Query(ctx, `SELECT id, at, user_id, credential_id, action, hash_algo, cnt, outcome
		FROM signature_history WHERE credential_id = ? ORDER BY at DESC, id DESC LIMIT ?`, credentialID, limit)
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
