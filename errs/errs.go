// Package errs holds the error kinds that sigillo's core returns and its
// HTTP edges translate. The core says what went wrong (a bad parameter, a
// wrong PIN, a locked credential, an unavailable HSM); only the edge decides
// the status code and body. Messages in Error.Msg are safe to show a
// client; the wrapped cause is for the log only.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for the edge.
type Kind int

const (
	// Invalid: the request is malformed or a parameter is wrong (400 invalid_request).
	Invalid Kind = iota + 1
	// Unauthenticated: no, bad or expired credentials of the caller (401).
	Unauthenticated
	// Forbidden: the caller is known but may not do this (403).
	Forbidden
	// NotFound: the object does not exist or is not the caller's. CSC answers
	// 400 invalid_request for it so that another user's credential looks
	// exactly like a missing one; admin APIs answer 404.
	NotFound
	// Conflict: the object exists already or is in a state that forbids the
	// change (409 on admin APIs, 400 on CSC).
	Conflict
	// RateLimited: too many attempts; retry later (429 with Retry-After).
	RateLimited
	// Unavailable: a dependency (HSM, database, audit log) is down (503).
	Unavailable
	// Internal: a bug or an unexpected failure (500, fixed client message).
	Internal
)

// Error is a classified error. Code, when set, is the CSC / OAuth error
// code to send (e.g. "invalid_pin", "invalid_otp", "expired_token",
// "invalid_grant"); otherwise the edge derives it from Kind.
type Error struct {
	Kind       Kind
	Code       string
	Msg        string
	RetryAfter time.Duration
	Err        error
}

// Error returns the client message followed by the cause, for logs.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns a classified error with a client-safe message.
func New(kind Kind, code, msg string) *Error {
	return &Error{Kind: kind, Code: code, Msg: msg}
}

// Invalidf is a 400 invalid_request with a formatted message.
func Invalidf(format string, args ...any) *Error {
	return &Error{Kind: Invalid, Msg: fmt.Sprintf(format, args...)}
}

// Wrap classifies cause with kind and a client-safe message.
func Wrap(kind Kind, msg string, cause error) *Error {
	return &Error{Kind: kind, Msg: msg, Err: cause}
}

// WithCode returns a copy of e with a specific error code.
func (e *Error) WithCode(code string) *Error {
	c := *e
	c.Code = code
	return &c
}

// As returns the classified error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf returns the kind of err, Internal when it is not classified.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}
