package sam

import "github.com/sigillo/sigillo/errs"

// Errors sam returns, with the CSC codes and messages (CSC.md §3/§4). They
// are sentinel values: compare with errors.Is; the csc layer may re-code
// them for v2 (e.g. ErrPINLocked → "Credential locked").
var (
	ErrInvalidPIN     = errs.New(errs.Invalid, "invalid_pin", "The PIN is invalid")
	ErrInvalidOTP     = errs.New(errs.Invalid, "invalid_otp", "The OTP is invalid")
	ErrPINLocked      = errs.New(errs.Invalid, "", "PIN locked")
	ErrOTPLocked      = errs.New(errs.Invalid, "", "OTP locked")
	ErrCredentialGone = errs.New(errs.NotFound, "", "Invalid parameter credentialID")
	ErrDisabled       = errs.New(errs.Invalid, "", "The credential identified by credentialID is disabled")
	ErrNotActivated   = errs.New(errs.Invalid, "", "The credential is not activated")
	ErrTooMany        = errs.New(errs.Invalid, "", "Numbers of signatures is too high")
	ErrBadNumSig      = errs.New(errs.Invalid, "", "Invalid value for parameter numSignatures")
	ErrSADExpired     = errs.New(errs.Invalid, "", "SAD expired")
	ErrSADInvalid     = errs.New(errs.Invalid, "", "Invalid parameter SAD")
	ErrHashNotAuth    = errs.New(errs.Invalid, "", "Hash is not authorized by the SAD")
	ErrDigestLength   = errs.New(errs.Invalid, "", "Invalid digest value length")
	ErrEmptyHashes    = errs.New(errs.Invalid, "", "Empty hash array")
	ErrHashesRequired = errs.New(errs.Invalid, "", "Missing (or invalid type) array parameter hashes")
	ErrHashAlgo       = errs.New(errs.Invalid, "", "Invalid parameter hashAlgorithmOID")
	ErrOTPUnavailable = errs.New(errs.Invalid, "", "The credential has no online OTP")
	// ErrAuthentication is a wrong username or password at login.
	ErrAuthentication = errs.New(errs.Invalid, "authentication_error", "Invalid username or password")
	// ErrPasswordChange is returned by Login when the password expired or
	// is a temporary one: the user must change it (self-care portal) first.
	ErrPasswordChange = errs.New(errs.Invalid, "authentication_error", "Password change required: change it in the self-care portal")
	ErrUserDisabled   = errs.New(errs.Invalid, "authentication_error", "The user is disabled")
	ErrInvalidToken   = errs.New(errs.Unauthenticated, "invalid_token", "The access token is not valid")
	ErrExpiredToken   = errs.New(errs.Unauthenticated, "expired_token", "The access token expired")
	ErrInvalidGrant   = errs.New(errs.Invalid, "invalid_request", "Invalid parameter refresh_token")
)

// certStatusError is the refusal for a certificate that is not valid.
func certStatusError(status string) error {
	switch status {
	case "expired":
		return errs.New(errs.Invalid, "", "Signing certificate is expired")
	case "revoked":
		return errs.New(errs.Invalid, "", "Signing certificate is revoked")
	case "suspended":
		return errs.New(errs.Invalid, "", "Signing certificate is suspended")
	}
	return errs.New(errs.Invalid, "", "Signing certificate is not valid")
}
