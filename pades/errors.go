package pades

import "errors"

// Error kinds, tested with errors.Is. The HTTP layer maps ErrInvalidPDF and
// ErrNotAllowed to 400 invalid_request; the rest are internal errors.
var (
	// ErrInvalidPDF: the input is not a PDF this package can update safely
	// (not a PDF, truncated, encrypted, broken cross-reference data).
	ErrInvalidPDF = errors.New("pades: invalid PDF")
	// ErrNotAllowed: the request conflicts with the document (certifying an
	// already signed document, signing a document certified with P=1).
	ErrNotAllowed = errors.New("pades: operation not allowed on this document")
	// ErrContentsTooSmall: the CMS or token does not fit in the reserved
	// /Contents; nothing was written.
	ErrContentsTooSmall = errors.New("pades: signature does not fit the reserved /Contents")
	// ErrSelfCheck: the produced PDF failed re-verification; it was not
	// returned.
	ErrSelfCheck = errors.New("pades: self-check of the signed PDF failed")
	// ErrValidationData: revocation data or a certificate needed for B-LT
	// could not be obtained.
	ErrValidationData = errors.New("pades: validation data unavailable")
)
