// Package otp owns sigillo's one-time passwords: TOTP codes from an
// authenticator app and online codes sent by SMS. Its invariants are the
// ones an attacker probes: a TOTP code is accepted at most once (the last
// accepted time step per credential is advanced with one conditional
// UPDATE in the shared store, so replay is refused across replicas), an SMS
// code is single use, expires quickly, dies after a few wrong attempts and
// may be bound to the hashes being authorized, and sending is rate limited
// per credential. Codes are stored only as hashes; TOTP seeds are kept
// encrypted by the caller (see Seal).
package otp

import (
	"context"
	"time"
)

// Config tunes OTP behaviour. Zero values take the documented defaults.
type Config struct {
	// Issuer is the name shown by authenticator apps (default "sigillo").
	Issuer string
	// Digits of TOTP and SMS codes (default 6).
	Digits int
	// Period of a TOTP time step (default 30 s).
	Period time.Duration
	// Skew is the number of time steps accepted either side of now (default 1).
	// Set NoSkew to accept only the current step.
	Skew   int
	NoSkew bool
	// SMSTTL is how long an SMS code stays valid (default 60 s).
	SMSTTL time.Duration
	// SMSMaxAttempts is how many verification attempts an SMS code
	// survives before it is void (default 5).
	SMSMaxAttempts int
	// SendWindow and SendMax bound how many SMS codes one credential may
	// be sent per window (default 5 per 10 minutes).
	SendWindow time.Duration
	SendMax    int
}

// WithDefaults returns c with zero fields replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = "sigillo"
	}
	if c.Digits == 0 {
		c.Digits = 6
	}
	if c.Period == 0 {
		c.Period = 30 * time.Second
	}
	if c.Skew == 0 && !c.NoSkew {
		c.Skew = 1
	}
	if c.SMSTTL == 0 {
		c.SMSTTL = 60 * time.Second
	}
	if c.SMSMaxAttempts == 0 {
		c.SMSMaxAttempts = 5
	}
	if c.SendWindow == 0 {
		c.SendWindow = 10 * time.Minute
	}
	if c.SendMax == 0 {
		c.SendMax = 5
	}
	return c
}

// Sender delivers a text message to a phone number. The dev outbox and
// the HTTP webhook (package otp/smshttp) implement it.
type Sender interface {
	Send(ctx context.Context, phone, message string) error
}
