package sam

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strconv"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/ratelimit"
	"github.com/sigillo/sigillo/store"
)

// allowedHash reports whether h may be signed: SHA-256 or stronger (CSC.md §1).
func allowedHash(h crypto.Hash) bool {
	switch h {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
		return true
	}
	return false
}

func algoName(h crypto.Hash) string {
	if h == 0 {
		return ""
	}
	return h.String()
}

// checkAuthorization applies the rules every authorization of c for n
// signatures obeys, whichever way it arrives (credentials/authorize or
// an OAuth2 credential-scope consent), so the two cannot drift apart: n
// covers the hashes and stays within Multisign, SCAL 2 needs hashes,
// hashes are digests of an allowed algorithm, the credential is usable,
// then the PIN and the OTP (last, because they count tries). On failure
// it returns the reason that labels the metric and the audit event, and
// the error.
func (s *Service) checkAuthorization(ctx context.Context, c *store.Credential, n int, hashes [][]byte, algo crypto.Hash, pin, otpCode string) (string, error) {
	switch {
	case n < 1 || len(hashes) > n:
		return "bad_request", ErrBadNumSig
	case n > c.Multisign:
		return "too_many", ErrTooMany
	case c.SCAL >= 2 && len(hashes) == 0:
		return "bad_request", ErrHashesRequired
	}
	if err := checkHashes(hashes, algo); err != nil {
		return "bad_request", err
	}
	if _, err := s.usable(ctx, c); err != nil {
		return "not_usable", err
	}
	if reason, err := s.checkPIN(ctx, c, pin); err != nil {
		return reason, err
	}
	if reason, err := s.checkOTP(ctx, c, otpCode, hashes); err != nil {
		return reason, err
	}
	return "", nil
}

// checkHashes validates that hashes are digests of h.
func checkHashes(hashes [][]byte, h crypto.Hash) error {
	if len(hashes) == 0 {
		return nil
	}
	if !allowedHash(h) {
		return ErrHashAlgo
	}
	for _, d := range hashes {
		if len(d) != h.Size() {
			return ErrDigestLength
		}
	}
	return nil
}

// Authorize verifies the PIN and the OTP the credential requires and
// issues a SAD for NumSignatures signatures (bound to Hashes when given;
// required for SCAL 2). Three wrong PINs in a row block the PIN.
func (s *Service) Authorize(ctx context.Context, p *Principal, r AuthorizeRequest) (*SAD, error) {
	c, err := s.loadOwned(ctx, p, r.CredentialID)
	if err != nil {
		return nil, err
	}
	// Counted after the ownership check (nobody can use up another
	// user's quota) and before argon2 of the PIN.
	if err := s.limit(ctx, ratelimit.Authorize, ratelimit.Cred(c.ID)); err != nil {
		s.met.authorize.WithLabelValues("rate_limited").Inc()
		return nil, err
	}
	n := r.NumSignatures
	if n == 0 && len(r.Hashes) > 0 {
		n = len(r.Hashes)
	}
	fail := func(reason string, err error) (*SAD, error) {
		s.met.authorize.WithLabelValues(reason).Inc()
		s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "credential.authorize", Object: "credential:" + c.ID,
			Outcome: "failure:" + reason, Detail: map[string]string{"numSignatures": strconv.Itoa(n)},
			With: store.AuditExtras{History: []store.HistoryEntry{s.historyEntry(c, "authorize", r.HashAlgo, n, "failure:"+reason)}}})
		return nil, err
	}
	if reason, err := s.checkAuthorization(ctx, c, n, r.Hashes, r.HashAlgo, r.PIN, r.OTP); err != nil {
		return fail(reason, err)
	}
	value, err := randomToken()
	if err != nil {
		return nil, err
	}
	now := s.now()
	rec := store.SADRecord{
		Hash: tokenHash(value), UserID: p.UserID, CredentialID: c.ID, Remaining: n,
		Bound: len(r.Hashes) > 0, Hashes: r.Hashes, ExpiresAt: now.Add(s.cfg.SADTTL), CreatedAt: now,
	}
	if rec.Bound {
		rec.HashAlgo = algoName(r.HashAlgo)
	}
	if err := s.st.PutSAD(ctx, rec); err != nil {
		return fail("store", storeErr("authorize", err))
	}
	if err := s.recordStrict(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "credential.authorize", Object: "credential:" + c.ID,
		Outcome: "success", Detail: map[string]string{"numSignatures": strconv.Itoa(n), "hashAlgo": algoName(r.HashAlgo), "bound": strconv.FormatBool(rec.Bound)},
		With: store.AuditExtras{History: []store.HistoryEntry{s.historyEntry(c, "authorize", r.HashAlgo, n, "success")}}}); err != nil {
		return nil, err
	}
	s.met.authorize.WithLabelValues("success").Inc()
	s.met.sadIssued.WithLabelValues(credType(c)).Inc()
	return &SAD{Value: value, ExpiresIn: int(s.cfg.SADTTL.Seconds())}, nil
}

// checkPIN verifies the PIN. The counter lives in the store and moves
// with one conditional UPDATE per wrong PIN; a correct PIN resets it only
// if it is not blocked, so a correct PIN after the block is refused.
func (s *Service) checkPIN(ctx context.Context, c *store.Credential, pin string) (string, error) {
	max := s.cfg.PINMaxTries
	if c.PINTries >= max {
		return "pin_locked", ErrPINLocked
	}
	if pin == "" {
		return "pin_missing", ErrInvalidPIN
	}
	ok, err := s.verify(ctx, c.PINHash, pin)
	if err != nil {
		return "internal", err
	}
	if !ok {
		tries, recorded, err := s.st.AddPINTry(ctx, c.ID, max)
		if err != nil {
			return "store", storeErr("pin try", err)
		}
		if !recorded {
			return "pin_locked", ErrPINLocked
		}
		if tries >= max {
			s.met.pinLocked.Inc()
			s.record(ctx, audit.Event{Actor: "user:" + c.UserID, Action: "pin.blocked", Object: "credential:" + c.ID, Outcome: "success"})
			return "pin_locked", ErrPINLocked
		}
		return "invalid_pin", ErrInvalidPIN
	}
	reset, err := s.st.ResetPINTries(ctx, c.ID, max)
	if err != nil {
		return "store", storeErr("pin reset", err)
	}
	if !reset {
		return "pin_locked", ErrPINLocked
	}
	return "", nil
}

// checkOTP verifies the OTP the credential requires (none, TOTP or SMS).
// Wrong OTPs in a row are counted like PIN tries (one conditional UPDATE
// each); OTPMaxTries of them block the OTP ("OTP locked").
func (s *Service) checkOTP(ctx context.Context, c *store.Credential, code string, hashes [][]byte) (string, error) {
	if c.OTPType == "none" || c.OTPType == "" {
		return "", nil
	}
	max := s.cfg.OTPMaxTries
	if c.OTPTries >= max {
		return "otp_locked", ErrOTPLocked
	}
	reason, err := s.verifyOTP(ctx, c, code, hashes)
	if err == nil {
		reset, rerr := s.st.ResetOTPTries(ctx, c.ID, max)
		if rerr != nil {
			return "store", storeErr("otp reset", rerr)
		}
		if !reset {
			return "otp_locked", ErrOTPLocked
		}
		return "", nil
	}
	if !errors.Is(err, ErrInvalidOTP) {
		return reason, err
	}
	tries, recorded, terr := s.st.AddOTPTry(ctx, c.ID, max)
	if terr != nil {
		return "store", storeErr("otp try", terr)
	}
	if !recorded || tries >= max {
		if recorded {
			s.record(ctx, audit.Event{Actor: "user:" + c.UserID, Action: "otp.blocked", Object: "credential:" + c.ID, Outcome: "success"})
		}
		return "otp_locked", ErrOTPLocked
	}
	return reason, err
}

func (s *Service) verifyOTP(ctx context.Context, c *store.Credential, code string, hashes [][]byte) (string, error) {
	var err error
	switch c.OTPType {
	case "totp":
		if code == "" {
			return "invalid_otp", ErrInvalidOTP
		}
		seed, oerr := otp.Open(s.cfg.OTPKey, c.TOTPSecret, []byte(c.ID))
		if oerr != nil {
			return "internal", errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("credential %s totp seed: %w", c.ID, oerr))
		}
		err = s.totp.Verify(ctx, c.ID, string(seed), code)
	case "sms":
		if code == "" {
			return "invalid_otp", ErrInvalidOTP
		}
		err = s.smsOTP.Verify(ctx, c.ID, code, otp.Binding(hashes))
	default:
		return "internal", errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("credential %s: unknown otp type %q", c.ID, c.OTPType))
	}
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, otp.ErrReplayed):
		return "otp_replayed", fmt.Errorf("%w (%v)", ErrInvalidOTP, err)
	case errors.Is(err, otp.ErrInvalid), errors.Is(err, otp.ErrNoChallenge), errors.Is(err, otp.ErrBinding):
		return "invalid_otp", fmt.Errorf("%w (%v)", ErrInvalidOTP, err)
	}
	return "store", storeErr("otp", err)
}

// SendOTP texts an online OTP to the holder of an SMS credential.
func (s *Service) SendOTP(ctx context.Context, p *Principal, credentialID string) error {
	return s.SendOTPFor(ctx, p, credentialID, nil)
}

// SendOTPFor is SendOTP with the code bound to the hashes about to be
// authorized (when the caller knows them, e.g. OAuth authorize); Authorize
// then accepts the code only for exactly those hashes.
func (s *Service) SendOTPFor(ctx context.Context, p *Principal, credentialID string, hashes [][]byte) error {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return err
	}
	if c.OTPType != "sms" {
		return ErrOTPUnavailable
	}
	if c.KeyStatus != KeyEnabled {
		return ErrDisabled
	}
	if err := s.limit(ctx, ratelimit.OTP, ratelimit.User(p.UserID), ratelimit.Cred(c.ID)); err != nil {
		return err
	}
	u, err := s.st.User(ctx, c.UserID)
	if err != nil {
		return storeErr("send otp", err)
	}
	err = s.smsOTP.Send(ctx, c.ID, u.Phone, otp.Binding(hashes))
	s.met.otpSend(err)
	var rl *otp.RateLimitError
	switch {
	case err == nil:
		s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "otp.send", Object: "credential:" + c.ID, Outcome: "success"})
		return nil
	case errors.As(err, &rl):
		s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "otp.send", Object: "credential:" + c.ID, Outcome: "failure:rate_limited"})
		return &errs.Error{Kind: errs.RateLimited, Msg: "OTP locked: too many codes requested", RetryAfter: rl.RetryAfter, Err: err}
	case errors.Is(err, otp.ErrNoSender):
		return errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", err)
	case errors.Is(err, store.ErrUnavailable):
		return storeErr("send otp", err)
	}
	return errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", err)
}

func sadErr(err error) error {
	switch {
	case errors.Is(err, store.ErrSADExpired):
		return ErrSADExpired
	case errors.Is(err, store.ErrSADInvalid):
		return ErrSADInvalid
	case errors.Is(err, store.ErrSADExhausted):
		return ErrTooMany
	case errors.Is(err, store.ErrSADHashNotAuthorized):
		return ErrHashNotAuth
	}
	return storeErr("SAD", err)
}

// ExtendTransaction voids sad and issues a fresh SAD, with a new expiry,
// for the remaining budget (and, for a bound SAD, the hashes not yet
// signed). hashes, when given, must all still be authorized.
func (s *Service) ExtendTransaction(ctx context.Context, p *Principal, credentialID, sad string, hashes [][]byte, h crypto.Hash) (*SAD, error) {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return nil, err
	}
	fail := func(reason string, err error) (*SAD, error) {
		s.history(ctx, c, "extend", h, len(hashes), "failure:"+reason)
		s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "credential.extend", Object: "credential:" + c.ID, Outcome: "failure:" + reason})
		return nil, err
	}
	if sad == "" {
		return fail("bad_request", errs.Invalidf("Missing (or invalid type) string parameter SAD"))
	}
	if err := checkHashes(hashes, h); err != nil {
		return fail("bad_request", err)
	}
	if _, err := s.usable(ctx, c); err != nil {
		return fail("not_usable", err)
	}
	value, err := randomToken()
	if err != nil {
		return nil, err
	}
	now := s.now()
	rec, err := s.st.ExtendSAD(ctx, tokenHash(sad), p.UserID, c.ID, hashes,
		store.SADRecord{Hash: tokenHash(value), ExpiresAt: now.Add(s.cfg.SADTTL), CreatedAt: now}, now)
	if err != nil {
		return fail("sad", sadErr(err))
	}
	if err := s.recordStrict(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "credential.extend", Object: "credential:" + c.ID,
		Outcome: "success", Detail: map[string]string{"remaining": strconv.Itoa(rec.Remaining)}}); err != nil {
		return nil, err
	}
	s.history(ctx, c, "extend", h, rec.Remaining, "success")
	return &SAD{Value: value, ExpiresIn: int(s.cfg.SADTTL.Seconds())}, nil
}

// historyEntry is one signature history row, for history or for an
// audit record's With.
func (s *Service) historyEntry(c *store.Credential, action string, h crypto.Hash, n int, outcome string) store.HistoryEntry {
	return store.HistoryEntry{ID: s.seqID("h-"), At: s.now(), UserID: c.UserID, CredentialID: c.ID,
		Action: action, HashAlgo: algoName(h), Count: n, Outcome: outcome}
}

// history appends to the signature history; a failure is logged only
// (the audit log is the record that fails closed).
func (s *Service) history(ctx context.Context, c *store.Credential, action string, h crypto.Hash, n int, outcome string) {
	if err := s.st.AddHistory(ctx, s.historyEntry(c, action, h, n, outcome)); err != nil {
		s.log.Error("signature history", "credential", c.ID, "error", err)
	}
}
