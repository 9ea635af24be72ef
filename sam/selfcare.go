package sam

// Holder (self-care) operations: the factors a holder presents to manage
// their own credential — change the PIN (current PIN + OTP), unblock it
// with the PUK, activate an "issued, not activated" credential with the
// PUK, suspend / reactivate / revoke / renew the certificate, and the
// emergency suspension or revocation with the ERC and no login. The same
// invariants as signing hold: counters move with one conditional UPDATE,
// secrets are only compared with their argon2id hashes, every outcome is
// audited.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// PUKMaxTries is how many wrong PUKs in a row block the PUK for good: the
// credential must then be reissued. It is deliberately larger than the
// PIN limit (the PUK is long and is the holder's only way back).
const PUKMaxTries = 10

// Errors of the holder operations.
var (
	ErrInvalidPUK = errs.New(errs.Invalid, "invalid_puk", "The PUK is invalid")
	ErrPUKLocked  = errs.New(errs.Invalid, "puk_locked", "The PUK is blocked: the credential must be reissued")
	// ErrEmergencyCode is a wrong IUT / UserID or ERC: one answer for all,
	// so the endpoint is no oracle for which codes exist.
	ErrEmergencyCode    = errs.New(errs.Forbidden, "access_denied", "Invalid identifying code or emergency code")
	ErrAlreadyActivated = errs.New(errs.Conflict, "", "The credential is already activated")
	ErrNotBlocked       = errs.New(errs.Conflict, "", "The PIN is not blocked")
	ErrSamePIN          = errs.Invalidf("The new PIN must differ from the current one")
	errBadNewPIN        = errs.Invalidf("Invalid parameter newPIN (8 digits)")
	errNoLifecycle      = errs.Wrap(errs.Unavailable, "Certificate management is not available", errors.New("sam: Issuer does not implement CertLifecycle"))
	errNoSelfcareStore  = errs.Wrap(errs.Internal, "Internal error", errors.New("sam: Store does not implement the self-care methods"))
)

// CertLifecycle is what holder operations need of the CA beyond Issuer.
// The adapter the server passes as Deps.Issuer implements it (ca.Authority
// has Suspend, Reactivate and Revoke with these signatures).
type CertLifecycle interface {
	Suspend(ctx context.Context, serial, actor string) error
	Reactivate(ctx context.Context, serial, actor string) error
	Revoke(ctx context.Context, serial, reason, actor string) error
	// RenewCert certifies the same key again with the same subject and
	// revokes the old certificate (superseded); it returns the new serial
	// and chain (leaf first, DER).
	RenewCert(ctx context.Context, serial string) (newSerial string, chainDER [][]byte, err error)
}

// selfcareStore is the persistence the holder operations need beyond
// Store; *store.Store satisfies it (store/selfcare.go).
type selfcareStore interface {
	AddPUKTry(ctx context.Context, id string, max int) (int, bool, error)
	SetPINHash(ctx context.Context, id, pinHash string, max int) (bool, error)
	UnblockPIN(ctx context.Context, id, pinHash string, pukMax int) (bool, error)
	SetRecoveryHashes(ctx context.Context, id, pukHash, ercHash string, pinMax int) (bool, error)
	ActivateCredential(ctx context.Context, id, pinHash string, pukMax int) (bool, error)
	CredentialByIUT(ctx context.Context, iut string) (*store.Credential, error)
	SetCredentialCert(ctx context.Context, id, oldSerial, serial string, chain [][]byte) error
	HistoryPage(ctx context.Context, credentialID string, offset, limit int) ([]store.HistoryEntry, error)
	SignatureCounts(ctx context.Context, credentialID string, since time.Time) (int, int, error)
	SetPhone(ctx context.Context, userID, phone string) error
	TakeSendToken(ctx context.Context, key string, window time.Duration, max int, now time.Time) (bool, time.Duration, error)
	SetTOTPSecret(ctx context.Context, id string, sealed []byte) error
}

var _ selfcareStore = (*store.Store)(nil)

func (s *Service) scStore() (selfcareStore, error) {
	st, ok := s.st.(selfcareStore)
	if !ok {
		return nil, errNoSelfcareStore
	}
	return st, nil
}

func (s *Service) lifecycle() (CertLifecycle, error) {
	l, ok := s.issuer.(CertLifecycle)
	if !ok {
		return nil, errNoLifecycle
	}
	return l, nil
}

// HolderAccount is a holder who registers in the portal: the user exists
// with status "pending" (no login anywhere) until the e-mail is verified.
type HolderAccount struct {
	UserID, Email, Password string
}

// CreateHolder creates a pending user for a portal registration. Names and
// mobile number come later, with the certificate request.
func (s *Service) CreateHolder(ctx context.Context, h HolderAccount) error {
	if !reUsername.MatchString(h.UserID) {
		return errs.Invalidf("Invalid parameter userID")
	}
	if !reEmail.MatchString(h.Email) || len(h.Email) > 254 {
		return errs.Invalidf("Invalid parameter email")
	}
	if err := CheckPassword(h.Password); err != nil {
		return err
	}
	hash, err := s.hash(ctx, h.Password)
	if err != nil {
		return err
	}
	now := s.now()
	err = s.st.CreateUser(ctx, store.User{ID: h.UserID, PasswordHash: hash, Email: h.Email, Status: "pending",
		PasswordChangedAt: now, CreatedAt: now})
	if errors.Is(err, store.ErrConflict) {
		return errs.New(errs.Conflict, "", "Username already taken")
	}
	if err != nil {
		return storeErr("create holder", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + h.UserID, Action: "selfcare.register", Object: "user:" + h.UserID, Outcome: "success"})
	return nil
}

// Portal login attempts allowed per account and window.
const (
	LoginWindow      = 15 * time.Minute
	LoginMaxAttempts = 10
)

// HolderLogin is the outcome of a portal login.
type HolderLogin struct {
	UserID string
	// MustChangePassword: the password is temporary or older than the
	// maximum age; the portal lets the holder do nothing but change it.
	MustChangePassword bool
	// Pending: the e-mail address is not verified yet.
	Pending bool
}

// LoginHolder checks a portal login. Unlike Login it issues no token and
// lets a holder whose password must change through, flagged, so that the
// portal can ask for the change.
func (s *Service) LoginHolder(ctx context.Context, userID, password string) (*HolderLogin, error) {
	if password == "" || userID == "" || len(userID) > 254 {
		return nil, ErrAuthentication
	}
	st, err := s.scStore()
	if err != nil {
		return nil, err
	}
	// Every attempt counts against the account, in the store (all
	// replicas), so password guessing through the portal is slow.
	ok, wait, err := st.TakeSendToken(ctx, "portal-login:"+strings.ToLower(userID), LoginWindow, LoginMaxAttempts, s.now())
	if err != nil {
		return nil, storeErr("login rate", err)
	}
	if !ok {
		s.record(ctx, audit.Event{Actor: "user:" + userID, Action: "selfcare.login", Object: "user:" + userID, Outcome: "failure:rate_limited"})
		return nil, &errs.Error{Kind: errs.RateLimited, Msg: "Too many login attempts: retry later", RetryAfter: wait}
	}
	u, err := s.st.User(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		_, _ = s.verify(ctx, dummyHash(s.cfg.Argon2), password)
		s.record(ctx, audit.Event{Actor: "user:" + userID, Action: "selfcare.login", Object: "user:" + userID, Outcome: "failure:unknown_user"})
		return nil, ErrAuthentication
	}
	if err != nil {
		return nil, storeErr("login", err)
	}
	ok, err = s.verify(ctx, u.PasswordHash, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "selfcare.login", Object: "user:" + u.ID, Outcome: "failure:bad_password"})
		return nil, ErrAuthentication
	}
	if u.Status != "active" && u.Status != "pending" {
		s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "selfcare.login", Object: "user:" + u.ID, Outcome: "failure:disabled"})
		return nil, ErrUserDisabled
	}
	out := &HolderLogin{UserID: u.ID, Pending: u.Status == "pending",
		MustChangePassword: u.MustChangePassword || s.now().Sub(u.PasswordChangedAt) > s.cfg.PasswordMaxAge}
	s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "selfcare.login", Object: "user:" + u.ID, Outcome: "success"})
	return out, nil
}

// HolderUser returns the user's own profile (no secrets).
func (s *Service) HolderUser(ctx context.Context, p *Principal) (*UserView, error) {
	if p == nil || p.UserID == "" {
		return nil, ErrInvalidToken
	}
	return s.User(ctx, p.UserID)
}

// checkNewPIN validates a new PIN and its confirmation.
func checkNewPIN(pin, confirm string) error {
	if !rePIN.MatchString(pin) {
		return errBadNewPIN
	}
	if pin != confirm {
		return errs.Invalidf("The new PIN and its confirmation differ")
	}
	return nil
}

// checkPUK verifies the PUK against its own counter (PUKMaxTries).
func (s *Service) checkPUK(ctx context.Context, st selfcareStore, c *store.Credential, puk string) (string, error) {
	if c.PUKTries >= PUKMaxTries {
		return "puk_locked", ErrPUKLocked
	}
	if puk == "" {
		return "puk_missing", ErrInvalidPUK
	}
	ok, err := s.verify(ctx, c.PUKHash, puk)
	if err != nil {
		return "internal", err
	}
	if ok {
		return "", nil
	}
	tries, recorded, err := st.AddPUKTry(ctx, c.ID, PUKMaxTries)
	if err != nil {
		return "store", storeErr("puk try", err)
	}
	if !recorded || tries >= PUKMaxTries {
		s.record(ctx, audit.Event{Actor: "user:" + c.UserID, Action: "puk.blocked", Object: "credential:" + c.ID, Outcome: "success"})
		return "puk_locked", ErrPUKLocked
	}
	return "invalid_puk", ErrInvalidPUK
}

// holderFail audits a refused holder operation and returns err.
func (s *Service) holderFail(ctx context.Context, p *Principal, action, credID, reason string, err error) error {
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: action, Object: "credential:" + credID, Outcome: "failure:" + reason})
	return err
}

// ChangePIN replaces the PIN after checking the current PIN (three wrong
// ones block it, as for signing) and the OTP the credential requires.
func (s *Service) ChangePIN(ctx context.Context, p *Principal, credentialID, currentPIN, newPIN, newPINConfirm, otpCode string) error {
	st, err := s.scStore()
	if err != nil {
		return err
	}
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return err
	}
	const action = "selfcare.pin_change"
	if err := checkNewPIN(newPIN, newPINConfirm); err != nil {
		return s.holderFail(ctx, p, action, c.ID, "bad_request", err)
	}
	if !c.Activated {
		return s.holderFail(ctx, p, action, c.ID, "not_activated", ErrNotActivated)
	}
	if newPIN == currentPIN {
		return s.holderFail(ctx, p, action, c.ID, "bad_request", ErrSamePIN)
	}
	if reason, err := s.checkPIN(ctx, c, currentPIN); err != nil {
		return s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	if reason, err := s.checkOTP(ctx, c, otpCode, nil); err != nil {
		return s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	h, err := s.hash(ctx, newPIN)
	if err != nil {
		return err
	}
	ok, err := st.SetPINHash(ctx, c.ID, h, s.cfg.PINMaxTries)
	if err != nil {
		return storeErr("change pin", err)
	}
	if !ok {
		return s.holderFail(ctx, p, action, c.ID, "pin_locked", ErrPINLocked)
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: action, Object: "credential:" + c.ID, Outcome: "success"})
	return nil
}

// RecoveryCodes are a credential's new PUK and ERC, shown once for a new
// envelope, with what identifies the credential on it.
type RecoveryCodes struct {
	PUK, ERC   string
	IUT        string
	CertSerial string
}

// ReplaceRecoveryCodes gives an active credential a new PUK and ERC when
// the envelope was lost or never arrived. The holder, logged in, proves
// the PIN (three wrong ones block it, as for signing) and the OTP, so
// nobody gains more than a holder who can already sign; the old PUK and
// ERC stop working and the PUK counter starts again. A blocked PIN is not
// enough (the PUK that would unblock it is what was lost): an operator
// reissues the credential then.
func (s *Service) ReplaceRecoveryCodes(ctx context.Context, p *Principal, credentialID, pin, otpCode string) (*RecoveryCodes, error) {
	st, err := s.scStore()
	if err != nil {
		return nil, err
	}
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return nil, err
	}
	const action = "selfcare.recovery_codes"
	if !c.Activated {
		return nil, s.holderFail(ctx, p, action, c.ID, "not_activated", ErrNotActivated)
	}
	if c.KeyStatus != KeyEnabled {
		return nil, s.holderFail(ctx, p, action, c.ID, "disabled", ErrDisabled)
	}
	if reason, err := s.checkPIN(ctx, c, pin); err != nil {
		return nil, s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	if reason, err := s.checkOTP(ctx, c, otpCode, nil); err != nil {
		return nil, s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	out := &RecoveryCodes{IUT: c.IUT, CertSerial: c.CertSerial}
	var pukHash, ercHash string
	if out.PUK, out.ERC, pukHash, ercHash, err = s.newRecoveryCodes(ctx); err != nil {
		return nil, err
	}
	ok, err := st.SetRecoveryHashes(ctx, c.ID, pukHash, ercHash, s.cfg.PINMaxTries)
	if err != nil {
		return nil, storeErr(action, err)
	}
	if !ok {
		return nil, s.holderFail(ctx, p, action, c.ID, "pin_locked", ErrPINLocked)
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: action, Object: "credential:" + c.ID, Outcome: "success"})
	return out, nil
}

// UnblockPIN sets a new PIN with the PUK and the OTP, clearing the PIN
// counter. The PUK has its own counter: PUKMaxTries wrong PUKs block it.
func (s *Service) UnblockPIN(ctx context.Context, p *Principal, credentialID, puk, newPIN, newPINConfirm, otpCode string) error {
	return s.withPUK(ctx, p, credentialID, "selfcare.pin_unblock", puk, newPIN, newPINConfirm, otpCode, false)
}

// ActivateWithPUK activates an "issued, not activated" credential: the
// holder proves possession of the envelope (PUK) and of the phone or app
// (OTP) and chooses the first PIN.
func (s *Service) ActivateWithPUK(ctx context.Context, p *Principal, credentialID, puk, newPIN, newPINConfirm, otpCode string) error {
	return s.withPUK(ctx, p, credentialID, "selfcare.activate", puk, newPIN, newPINConfirm, otpCode, true)
}

func (s *Service) withPUK(ctx context.Context, p *Principal, credentialID, action, puk, newPIN, confirm, otpCode string, activate bool) error {
	st, err := s.scStore()
	if err != nil {
		return err
	}
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return err
	}
	if err := checkNewPIN(newPIN, confirm); err != nil {
		return s.holderFail(ctx, p, action, c.ID, "bad_request", err)
	}
	if activate && c.Activated {
		return s.holderFail(ctx, p, action, c.ID, "already_active", ErrAlreadyActivated)
	}
	if !activate && !c.Activated {
		return s.holderFail(ctx, p, action, c.ID, "not_activated", ErrNotActivated)
	}
	if c.KeyStatus != KeyEnabled {
		return s.holderFail(ctx, p, action, c.ID, "disabled", ErrDisabled)
	}
	if reason, err := s.checkPUK(ctx, st, c, puk); err != nil {
		return s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	if reason, err := s.checkOTP(ctx, c, otpCode, nil); err != nil {
		return s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	h, err := s.hash(ctx, newPIN)
	if err != nil {
		return err
	}
	var ok bool
	if activate {
		ok, err = st.ActivateCredential(ctx, c.ID, h, PUKMaxTries)
	} else {
		ok, err = st.UnblockPIN(ctx, c.ID, h, PUKMaxTries)
	}
	if err != nil {
		return storeErr(action, err)
	}
	if !ok {
		if activate {
			return s.holderFail(ctx, p, action, c.ID, "already_active", ErrAlreadyActivated)
		}
		return s.holderFail(ctx, p, action, c.ID, "puk_locked", ErrPUKLocked)
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: action, Object: "credential:" + c.ID, Outcome: "success"})
	return nil
}

// SuspendCredential puts the caller's certificate on hold (login only: a
// suspension is always safe to grant).
func (s *Service) SuspendCredential(ctx context.Context, p *Principal, credentialID string) error {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return err
	}
	return s.suspend(ctx, c, "user:"+p.UserID)
}

func (s *Service) suspend(ctx context.Context, c *store.Credential, actor string) error {
	l, err := s.lifecycle()
	if err != nil {
		return err
	}
	if err := l.Suspend(ctx, c.CertSerial, actor); err != nil {
		s.record(ctx, audit.Event{Actor: actor, Action: "selfcare.suspend", Object: "credential:" + c.ID, Outcome: "failure:ca"})
		return caErr("suspend", err)
	}
	s.record(ctx, audit.Event{Actor: actor, Action: "selfcare.suspend", Object: "credential:" + c.ID, Outcome: "success",
		Detail: map[string]string{"serial": c.CertSerial}})
	return nil
}

// ReactivateCredential lifts a suspension; it needs the PIN and the OTP,
// because it gives the signing key back.
func (s *Service) ReactivateCredential(ctx context.Context, p *Principal, credentialID, pin, otpCode string) error {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return err
	}
	const action = "selfcare.reactivate"
	l, err := s.lifecycle()
	if err != nil {
		return err
	}
	if reason, err := s.checkPIN(ctx, c, pin); err != nil {
		return s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	if reason, err := s.checkOTP(ctx, c, otpCode, nil); err != nil {
		return s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	if err := l.Reactivate(ctx, c.CertSerial, "user:"+p.UserID); err != nil {
		return s.holderFail(ctx, p, action, c.ID, "ca", caErr("reactivate", err))
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: action, Object: "credential:" + c.ID, Outcome: "success"})
	return nil
}

// RevokeCredential revokes the caller's certificate for good and disables
// the key. The portal asks twice before calling it.
func (s *Service) RevokeCredential(ctx context.Context, p *Principal, credentialID string) error {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return err
	}
	return s.revoke(ctx, c, "user:"+p.UserID, "unspecified")
}

func (s *Service) revoke(ctx context.Context, c *store.Credential, actor, reason string) error {
	l, err := s.lifecycle()
	if err != nil {
		return err
	}
	if err := l.Revoke(ctx, c.CertSerial, reason, actor); err != nil {
		s.record(ctx, audit.Event{Actor: actor, Action: "selfcare.revoke", Object: "credential:" + c.ID, Outcome: "failure:ca"})
		return caErr("revoke", err)
	}
	if err := s.st.SetKeyStatus(ctx, c.ID, KeyDisabled); err != nil {
		// The certificate is revoked: nothing can sign with the key anyway.
		s.log.Error("revoked credential's key not disabled", "credential", c.ID, "error", err)
	}
	s.record(ctx, audit.Event{Actor: actor, Action: "selfcare.revoke", Object: "credential:" + c.ID, Outcome: "success",
		Detail: map[string]string{"serial": c.CertSerial, "reason": reason}})
	return nil
}

// RenewCredential certifies the credential's key again (new serial, same
// subject); the old certificate is revoked as superseded. PIN and OTP are
// required.
func (s *Service) RenewCredential(ctx context.Context, p *Principal, credentialID, pin, otpCode string) (string, error) {
	st, err := s.scStore()
	if err != nil {
		return "", err
	}
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return "", err
	}
	const action = "selfcare.renew"
	l, err := s.lifecycle()
	if err != nil {
		return "", err
	}
	if _, err := s.usable(ctx, c); err != nil {
		return "", s.holderFail(ctx, p, action, c.ID, "not_usable", err)
	}
	if reason, err := s.checkPIN(ctx, c, pin); err != nil {
		return "", s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	if reason, err := s.checkOTP(ctx, c, otpCode, nil); err != nil {
		return "", s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	serial, chain, err := l.RenewCert(ctx, c.CertSerial)
	if err != nil {
		return "", s.holderFail(ctx, p, action, c.ID, "ca", caErr("renew", err))
	}
	if len(chain) == 0 {
		return "", errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("renew %s: CA returned no certificate", c.ID))
	}
	if err := st.SetCredentialCert(ctx, c.ID, c.CertSerial, serial, chain); err != nil {
		s.log.Error("renewed certificate not stored", "credential", c.ID, "serial", serial, "error", err)
		return "", storeErr("renew", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: action, Object: "credential:" + c.ID, Outcome: "success",
		Detail: map[string]string{"old": c.CertSerial, "new": serial}})
	return serial, nil
}

// caErr keeps the CA's classified errors (e.g. "already suspended" is a
// Conflict the holder should read) and hides the rest.
func caErr(what string, err error) error {
	if _, ok := errs.As(err); ok {
		return err
	}
	return errs.Wrap(errs.Unavailable, "The certificate authority is temporarily unavailable", fmt.Errorf("%s: %w", what, err))
}

// EmergencyRequest is a suspension or revocation with the envelope's
// codes and no login. ID is the IUT or the UserID.
type EmergencyRequest struct {
	ID, ERC string
	// Action is "suspend" or "revoke".
	Action string
	// ClientIP is the caller's address, for the rate limit.
	ClientIP string
}

// Emergency rate limits: per client IP and per identifier, in the store so
// every replica counts the same attempts.
const (
	EmergencyWindow = 15 * time.Minute
	EmergencyMaxIP  = 20
	EmergencyMaxID  = 5
)

// Emergency suspends or revokes with the ERC: a lost phone or a
// compromised envelope must be stoppable at once, without the password.
// A wrong code, an unknown identifier and another holder's code all give
// ErrEmergencyCode.
func (s *Service) Emergency(ctx context.Context, r EmergencyRequest) error {
	st, err := s.scStore()
	if err != nil {
		return err
	}
	id := strings.TrimSpace(r.ID)
	erc := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(r.ERC), " ", ""))
	var problems []string
	if id == "" || len(id) > 64 {
		problems = append(problems, "Missing or invalid parameter iut")
	}
	if erc == "" || len(erc) > 64 {
		problems = append(problems, "Missing or invalid parameter erc")
	}
	if r.Action != "suspend" && r.Action != "revoke" {
		problems = append(problems, `Invalid parameter action ("suspend" or "revoke")`)
	}
	if err := invalidList(problems); err != nil {
		return err
	}
	now := s.now()
	for _, k := range []struct {
		key string
		max int
	}{{"erc:ip:" + r.ClientIP, EmergencyMaxIP}, {"erc:id:" + strings.ToUpper(id), EmergencyMaxID}} {
		ok, wait, err := st.TakeSendToken(ctx, k.key, EmergencyWindow, k.max, now)
		if err != nil {
			return storeErr("emergency rate", err)
		}
		if !ok {
			s.record(ctx, audit.Event{Actor: "erc:" + r.ClientIP, Action: "selfcare.emergency", Object: "iut:" + id, Outcome: "failure:rate_limited"})
			return &errs.Error{Kind: errs.RateLimited, Msg: "Too many attempts: retry later", RetryAfter: wait}
		}
	}
	cands, err := s.emergencyCandidates(ctx, st, id)
	if err != nil {
		return err
	}
	var match *store.Credential
	for i := range cands {
		ok, err := s.verify(ctx, cands[i].ERCHash, erc)
		if err != nil {
			return err
		}
		if ok {
			match = &cands[i]
			break
		}
	}
	if len(cands) == 0 {
		_, _ = s.verify(ctx, dummyHash(s.cfg.Argon2), erc)
	}
	if match == nil {
		s.record(ctx, audit.Event{Actor: "erc:" + r.ClientIP, Action: "selfcare.emergency", Object: "iut:" + id, Outcome: "failure:bad_code"})
		return ErrEmergencyCode
	}
	actor := "erc:" + match.UserID
	if r.Action == "suspend" {
		return s.suspend(ctx, match, actor)
	}
	return s.revoke(ctx, match, actor, "keyCompromise")
}

func (s *Service) emergencyCandidates(ctx context.Context, st selfcareStore, id string) ([]store.Credential, error) {
	c, err := st.CredentialByIUT(ctx, strings.ToUpper(id))
	if err == nil {
		return []store.Credential{*c}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, storeErr("emergency", err)
	}
	cs, err := s.st.CredentialsByUser(ctx, id)
	if err != nil {
		return nil, storeErr("emergency", err)
	}
	return cs, nil
}

// HistoryPage is a page of a credential's signature history with the
// counters the portal's home shows.
type HistoryPage struct {
	Entries []store.HistoryEntry
	// More reports whether older entries exist.
	More bool
}

// CredentialHistory returns page (from 0) of the caller's credential
// history, size entries per page (1..100).
func (s *Service) CredentialHistory(ctx context.Context, p *Principal, credentialID string, page, size int) (*HistoryPage, error) {
	st, err := s.scStore()
	if err != nil {
		return nil, err
	}
	if page < 0 || page > 100000 {
		return nil, errs.Invalidf("Invalid parameter page")
	}
	if size < 1 || size > 100 {
		return nil, errs.Invalidf("Invalid parameter size (1..100)")
	}
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return nil, err
	}
	rows, err := st.HistoryPage(ctx, c.ID, page*size, size+1)
	if err != nil {
		return nil, storeErr("history", err)
	}
	out := &HistoryPage{Entries: rows}
	if len(rows) > size {
		out.Entries, out.More = rows[:size], true
	}
	return out, nil
}

// Counters are a credential's signature counts.
type Counters struct {
	Last7Days, Total int
}

// SignatureCounters returns how many signatures the caller's credential
// made in the last 7 days and in total.
func (s *Service) SignatureCounters(ctx context.Context, p *Principal, credentialID string) (*Counters, error) {
	st, err := s.scStore()
	if err != nil {
		return nil, err
	}
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return nil, err
	}
	recent, total, err := st.SignatureCounts(ctx, c.ID, s.now().Add(-7*24*time.Hour))
	if err != nil {
		return nil, storeErr("counters", err)
	}
	return &Counters{Last7Days: recent, Total: total}, nil
}

// TestOTP checks a code the holder typed on the "test your OTP" page; it
// is consumed like a real one.
func (s *Service) TestOTP(ctx context.Context, p *Principal, credentialID, code string) error {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return err
	}
	if c.OTPType == "none" || c.OTPType == "" {
		return ErrOTPUnavailable
	}
	if reason, err := s.checkOTP(ctx, c, code, nil); err != nil {
		return s.holderFail(ctx, p, "selfcare.otp_test", c.ID, reason, err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "selfcare.otp_test", Object: "credential:" + c.ID, Outcome: "success"})
	return nil
}

// ChangePhone replaces the holder's mobile number, confirmed by an SMS
// code sent (SendOTP) to the old number for the given SMS credential.
func (s *Service) ChangePhone(ctx context.Context, p *Principal, credentialID, newPhone, code string) error {
	st, err := s.scStore()
	if err != nil {
		return err
	}
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return err
	}
	phone := strings.NewReplacer(" ", "", "-", "").Replace(newPhone)
	if !rePhone.MatchString(phone) {
		return errs.Invalidf("Invalid parameter phone")
	}
	if c.OTPType != "sms" {
		return ErrOTPUnavailable
	}
	if reason, err := s.checkOTP(ctx, c, code, nil); err != nil {
		return s.holderFail(ctx, p, "selfcare.phone_change", c.ID, reason, err)
	}
	if err := st.SetPhone(ctx, p.UserID, phone); err != nil {
		return storeErr("change phone", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "selfcare.phone_change", Object: "user:" + p.UserID, Outcome: "success"})
	return nil
}
