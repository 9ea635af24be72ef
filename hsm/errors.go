package hsm

import (
	"errors"
	"strings"

	"github.com/miekg/pkcs11"
)

// Error kinds callers test with errors.Is. Details are wrapped around them.
var (
	// ErrKeyNotFound: no key pair with that id on the token.
	ErrKeyNotFound = errors.New("hsm: key not found")
	// ErrKeyExists: GenerateKey was asked for an id that is already used.
	ErrKeyExists = errors.New("hsm: key already exists")
	// ErrUnavailable: the token cannot be reached or used right now (library
	// not initialised, device removed, network HSM down, login lost and not
	// recoverable). Callers map it to HTTP 503; the Manager recovers by
	// itself when the token comes back.
	ErrUnavailable = errors.New("hsm: token unavailable")
	// ErrBadDigest: the digest length does not match the hash named in the
	// signer options, or the hash is not one we sign with.
	ErrBadDigest = errors.New("hsm: bad digest")
	// ErrUnsupported: the algorithm or signature scheme is not supported
	// (unknown algo name, PSS on an ECDSA key, missing hash).
	ErrUnsupported = errors.New("hsm: unsupported algorithm or options")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("hsm: manager closed")
	// ErrModuleNotFound: FindSoftHSMModule found no SoftHSM2 library.
	ErrModuleNotFound = errors.New("hsm: SoftHSM2 module not found")
)

// errTokenNotFoundText is how crypto11 v1.6.2 reports that no slot holds a
// token with the configured label (an unexported error value, so we match
// its text). A network HSM that went away looks exactly like this.
const errTokenNotFoundText = "could not find PKCS#11 token"

// p11Code returns the PKCS#11 return value inside err, if any. crypto11
// returns miekg's pkcs11.Error (a uint) wrapped with pkg/errors or %w, both
// of which unwrap.
func p11Code(err error) (pkcs11.Error, bool) {
	var e pkcs11.Error
	if errors.As(err, &e) {
		return e, true
	}
	return 0, false
}

// CodeName is the PKCS#11 return code name in err (e.g. "CKR_DEVICE_REMOVED"),
// "other" when err carries no PKCS#11 code, "" for a nil error. It is the
// "code" label of sigillo_hsm_operation_errors_total and is useful in logs.
func CodeName(err error) string {
	if err == nil {
		return ""
	}
	e, ok := p11Code(err)
	if !ok {
		if isTokenMissing(err) {
			return "token_not_found"
		}
		return "other"
	}
	// miekg formats as "pkcs11: 0xB3: CKR_SESSION_HANDLE_INVALID"; its name
	// table is unexported, so take the last field.
	s := e.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s[i+2:], "CKR_") {
		return s[i+2:]
	}
	return "other"
}

func isTokenMissing(err error) bool {
	return err != nil && strings.Contains(err.Error(), errTokenNotFoundText)
}

// needsReconnect reports whether err means our crypto11 context (its
// sessions, its login, or the library under it) is dead, so the only cure is
// to drop the context and open a new one.
func needsReconnect(err error) bool {
	if isTokenMissing(err) {
		return true
	}
	e, ok := p11Code(err)
	if !ok {
		return false
	}
	switch e {
	case pkcs11.CKR_SESSION_HANDLE_INVALID,
		pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT,
		pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_DEVICE_ERROR,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
		pkcs11.CKR_GENERAL_ERROR,
		pkcs11.CKR_SLOT_ID_INVALID:
		return true
	}
	return false
}

// needsLibraryReinit reports whether err means the library itself (not just
// our sessions) is broken: it must be initialised again, and for a device
// error finalised first. Session-level errors do not need this.
func needsLibraryReinit(err error) bool {
	if isTokenMissing(err) {
		return true
	}
	e, ok := p11Code(err)
	if !ok {
		return false
	}
	switch e {
	case pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT,
		pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_DEVICE_ERROR,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
		pkcs11.CKR_GENERAL_ERROR,
		pkcs11.CKR_SLOT_ID_INVALID:
		return true
	}
	return false
}

// isHandleStale reports whether err means the key object handle we cached is
// gone while the session is fine (the key was destroyed or re-created
// elsewhere): re-resolve the id, do not reconnect.
func isHandleStale(err error) bool {
	e, ok := p11Code(err)
	return ok && (e == pkcs11.CKR_KEY_HANDLE_INVALID || e == pkcs11.CKR_OBJECT_HANDLE_INVALID)
}
