package sam

// Enrolling an authenticator app (TOTP) for a credential from the
// self-care portal. The new seed travels to the browser and back sealed
// with the OTP key (bound to the credential and the holder, with a short
// life), so nothing half-enrolled is stored; the switch needs the PIN, the
// current OTP and a code from the new app.

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/otp"
)

// TOTPEnrollmentTTL is how long a started app enrollment can be confirmed.
const TOTPEnrollmentTTL = 10 * time.Minute

// TOTPEnrollment is a new authenticator seed to show the holder.
type TOTPEnrollment struct {
	// Secret (base32) for manual entry; URI (otpauth://) for the QR code.
	Secret, URI string
	// Pending is the sealed seed to send back to ConfirmTOTP.
	Pending string
}

func pendingAAD(p *Principal, credentialID string) []byte {
	return []byte("totp-enroll:" + p.UserID + ":" + credentialID)
}

// StartTOTP makes a new authenticator seed for the caller's credential.
func (s *Service) StartTOTP(ctx context.Context, p *Principal, credentialID string) (*TOTPEnrollment, error) {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return nil, err
	}
	secret, uri, err := s.totp.Generate(c.UserID)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	plain := secret + "|" + strconv.FormatInt(s.now().Unix(), 10)
	sealed, err := otp.Seal(s.cfg.OTPKey, []byte(plain), pendingAAD(p, c.ID))
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	return &TOTPEnrollment{Secret: secret, URI: uri, Pending: base64.RawURLEncoding.EncodeToString(sealed)}, nil
}

// ErrTOTPEnrollment is an enrollment that is unknown, tampered with or too old.
var ErrTOTPEnrollment = errs.Invalidf("The authenticator enrollment expired: start again")

// ConfirmTOTP switches the credential to the authenticator app after the
// PIN, the current OTP (if any) and a code from the new app.
func (s *Service) ConfirmTOTP(ctx context.Context, p *Principal, credentialID, pending, pin, currentOTP, newCode string) error {
	st, err := s.scStore()
	if err != nil {
		return err
	}
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return err
	}
	const action = "selfcare.totp_enroll"
	raw, err := base64.RawURLEncoding.DecodeString(pending)
	if err != nil || len(pending) > 1024 {
		return s.holderFail(ctx, p, action, c.ID, "bad_request", ErrTOTPEnrollment)
	}
	plain, err := otp.Open(s.cfg.OTPKey, raw, pendingAAD(p, c.ID))
	if err != nil {
		return s.holderFail(ctx, p, action, c.ID, "bad_request", ErrTOTPEnrollment)
	}
	secret, at, ok := strings.Cut(string(plain), "|")
	started, perr := strconv.ParseInt(at, 10, 64)
	if !ok || perr != nil || s.now().Sub(time.Unix(started, 0)) > TOTPEnrollmentTTL {
		return s.holderFail(ctx, p, action, c.ID, "expired", ErrTOTPEnrollment)
	}
	if reason, err := s.checkPIN(ctx, c, pin); err != nil {
		return s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	if reason, err := s.checkOTP(ctx, c, currentOTP, nil); err != nil {
		return s.holderFail(ctx, p, action, c.ID, reason, err)
	}
	if !s.codeMatches(secret, newCode) {
		return s.holderFail(ctx, p, action, c.ID, "invalid_new_otp", errs.New(errs.Invalid, "invalid_new_otp", "The code from the app is wrong: check the app's clock and try the next code"))
	}
	sealed, err := otp.Seal(s.cfg.OTPKey, []byte(secret), []byte(c.ID))
	if err != nil {
		return errs.Wrap(errs.Internal, "Internal error", err)
	}
	if err := st.SetTOTPSecret(ctx, c.ID, sealed); err != nil {
		return storeErr("totp enroll", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: action, Object: "credential:" + c.ID, Outcome: "success",
		Detail: map[string]string{"from": c.OTPType}})
	return nil
}

// codeMatches checks a code of a seed that was never used: one step either
// side, no replay state needed (the seed is not in force yet).
func (s *Service) codeMatches(secret, code string) bool {
	if len(code) != s.cfg.OTP.Digits {
		return false
	}
	now := s.now()
	for d := -1; d <= 1; d++ {
		want, err := s.totp.Code(secret, now.Add(time.Duration(d)*s.cfg.OTP.Period))
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return true
		}
	}
	return false
}
