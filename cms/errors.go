package cms

import "errors"

// Error kinds. Callers test them with errors.Is; the detail is in the
// wrapping message.
var (
	// ErrUnsupported: an algorithm, key type or structure this package does
	// not produce or accept.
	ErrUnsupported = errors.New("cms: unsupported")
	// ErrMalformed: the input is not a well-formed SignedData.
	ErrMalformed = errors.New("cms: malformed SignedData")
	// ErrBadSignature: a signature value does not verify against the signer
	// certificate (wrong key, wrong hash, wrong encoding, tampering).
	ErrBadSignature = errors.New("cms: signature does not verify")
	// ErrDigestMismatch: the message-digest attribute differs from the
	// digest of the content.
	ErrDigestMismatch = errors.New("cms: message digest mismatch")
	// ErrTimestamp: a time-stamp token is missing, malformed or does not
	// cover the signature value.
	ErrTimestamp = errors.New("cms: bad time-stamp")
)
