package otp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	potp "github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Verification failures. Callers map them all to "invalid OTP" for the
// client; they differ for logs, audit and tests.
var (
	// ErrInvalid: the code is wrong.
	ErrInvalid = errors.New("otp: invalid code")
	// ErrReplayed: the TOTP code (or an older one) was already accepted.
	ErrReplayed = errors.New("otp: code already used")
	// ErrNoChallenge: no SMS code is pending (never sent, expired, used,
	// or voided after too many attempts).
	ErrNoChallenge = errors.New("otp: no pending code")
	// ErrBinding: the SMS code was sent for other hashes.
	ErrBinding = errors.New("otp: code bound to other hashes")
)

// TOTPStore is the replay guard TOTP needs from the store.
type TOTPStore interface {
	// AdvanceTOTPStep stores step as the credential's last accepted time
	// step if it is newer, reporting whether it was (conditional UPDATE).
	AdvanceTOTPStep(ctx context.Context, credentialID string, step int64) (bool, error)
}

// TOTP generates and verifies time-based codes (RFC 6238, HMAC-SHA1 as
// authenticator apps expect).
type TOTP struct {
	cfg Config
	st  TOTPStore
	now func() time.Time
}

// NewTOTP returns a TOTP verifier; now nil means time.Now.
func NewTOTP(cfg Config, st TOTPStore, now func() time.Time) *TOTP {
	if now == nil {
		now = time.Now
	}
	return &TOTP{cfg: cfg.WithDefaults(), st: st, now: now}
}

func (t *TOTP) period() uint { return uint(t.cfg.Period / time.Second) }

// Generate makes a new secret for account and returns it base32-encoded
// with its otpauth:// URI for enrolment in an app.
func (t *TOTP) Generate(account string) (secret, uri string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      t.cfg.Issuer,
		AccountName: account,
		Period:      t.period(),
		Digits:      potp.Digits(t.cfg.Digits),
		Algorithm:   potp.AlgorithmSHA1,
	})
	if err != nil {
		return "", "", fmt.Errorf("generate totp secret: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

// Code returns the code for secret at time at (tests and the portal's
// "test your OTP" page use it).
func (t *TOTP) Code(secret string, at time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, at, t.opts())
}

func (t *TOTP) opts() totp.ValidateOpts {
	return totp.ValidateOpts{Period: t.period(), Digits: potp.Digits(t.cfg.Digits), Algorithm: potp.AlgorithmSHA1}
}

// Verify checks code against secret within ±Skew time steps and accepts
// it only if its time step is newer than the last one accepted for the
// credential, which it then records. A replayed code, or any code of an
// older step than one already used, gives ErrReplayed.
func (t *TOTP) Verify(ctx context.Context, credentialID, secret, code string) error {
	if len(code) != t.cfg.Digits {
		return ErrInvalid
	}
	now := t.now()
	p := int64(t.period())
	cur := now.Unix() / p
	match := int64(-1)
	// Check every step in the window (no early exit) so timing does not
	// say which step matched.
	for d := -int64(t.cfg.Skew); d <= int64(t.cfg.Skew); d++ {
		step := cur + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*p, 0), t.opts())
		if err != nil {
			return fmt.Errorf("totp: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && match < 0 {
			match = step
		}
	}
	if match < 0 {
		return ErrInvalid
	}
	ok, err := t.st.AdvanceTOTPStep(ctx, credentialID, match)
	if err != nil {
		return fmt.Errorf("totp: %w", err)
	}
	if !ok {
		return ErrReplayed
	}
	return nil
}
