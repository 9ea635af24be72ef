package portal

import (
	"errors"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
)

// checks collects per-field problems (message keys shared with enroll)
// before any domain call, so a bad form changes nothing and the holder
// sees every problem at once, next to its field.
type checks map[string]string

func (c checks) set(field, key string) {
	if _, ok := c[field]; !ok {
		c[field] = key
	}
}

func (c checks) err() error {
	if len(c) == 0 {
		return nil
	}
	return &enroll.FieldError{Fields: c}
}

var (
	rePIN    = regexp.MustCompile(`^[0-9]{8}$`)
	reOTP    = regexp.MustCompile(`^[0-9]{6,8}$`)
	rePhone  = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	reCredID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
)

func (c checks) required(field, v string, max int) bool {
	switch {
	case v == "":
		c.set(field, "required")
	case utf8.RuneCountInString(v) > max:
		c.set(field, "too_long")
	default:
		return true
	}
	return false
}

func (c checks) pin(field, v string) {
	if c.required(field, v, 64) && !rePIN.MatchString(v) {
		c.set(field, "pin_format")
	}
}

func (c checks) newPIN(field, v, confirmField, confirm string) {
	c.pin(field, v)
	if confirm != v {
		c.set(confirmField, "mismatch")
	}
}

func (c checks) otp(field, v string) {
	if c.required(field, v, 16) && !reOTP.MatchString(v) {
		c.set(field, "otp_format")
	}
}

func (c checks) puk(field, v string) {
	if c.required(field, v, 64) && !rePIN.MatchString(v) {
		c.set(field, "puk_format")
	}
}

func (c checks) credential(v string) {
	if c.required("credentialID", v, 64) && !reCredID.MatchString(v) {
		c.set("credentialID", "choice")
	}
}

func (c checks) password(field, v string) {
	if c.required(field, v, 128) && len(sam.PasswordViolations(v)) > 0 {
		c.set(field, "password_policy")
	}
}

func normPhone(v string) string {
	return strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(v))
}

func (c checks) phone(field, v string) {
	if c.required(field, v, 20) && !rePhone.MatchString(v) {
		c.set(field, "phone_format")
	}
}

// fieldOf says which form field a domain error belongs to, so a wrong PIN
// shows under the PIN box; "" means the page-level message.
func fieldOf(err error, pinField string) string {
	e, ok := errs.As(err)
	if !ok {
		return ""
	}
	switch {
	case e.Code == "invalid_pin" || errors.Is(err, sam.ErrPINLocked):
		return pinField
	case e.Code == "invalid_otp":
		return "otp"
	case e.Code == "invalid_puk" || e.Code == "puk_locked":
		return "puk"
	case errors.Is(err, sam.ErrSamePIN):
		return "newPIN"
	case errors.Is(err, sam.ErrAuthentication):
		return "currentPassword"
	}
	return ""
}
