package domain

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the caller: adapters translate their errors
// into one of these kinds before wrapping them, and the HTTP adapter maps each
// kind to one status code. Anything unclassified is KindInternal and its text
// never reaches a client.
type Kind uint8

const (
	KindInternal        Kind = iota // a bug or an unexpected failure; 500
	KindInvalid                     // the request is malformed or breaks a rule of the input; 422
	KindNotFound                    // the object does not exist (or is not visible); 404
	KindConflict                    // the state does not allow it, or a stale expected version; 409
	KindForbidden                   // authenticated, but not allowed; 403
	KindUnauthenticated             // no valid credentials; 401
	KindUnavailable                 // try again later: store closed, disk full, projections behind; 503
	KindTooLarge                    // a body or an event over its size limit; 413
	KindTooMany                     // over a rate limit: slow down; 429
)

var kindNames = [...]string{
	KindInternal:        "internal",
	KindInvalid:         "invalid",
	KindNotFound:        "not_found",
	KindConflict:        "conflict",
	KindForbidden:       "forbidden",
	KindUnauthenticated: "unauthenticated",
	KindUnavailable:     "unavailable",
	KindTooLarge:        "too_large",
	KindTooMany:         "too_many_requests",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// FieldError names one invalid input field and why, in words safe to show.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a classified error. Message is safe to show to the client that
// caused it: it never holds personal data or internals. Err, when set, is the
// underlying cause for logs and errors.Is; it is never shown.
type Error struct {
	Kind    Kind
	Code    string // a stable machine-readable reason, e.g. "invalid_transition"
	Message string
	Fields  []FieldError
	Err     error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Kind.String()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches another *Error with the same kind and code, so that sentinel
// errors such as eventlog.ErrWrongExpectedVersion work with errors.Is even
// when a copy carries more detail.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind && t.Code != "" && t.Code == e.Code
}

// Errorf returns a classified error whose message is formatted from safe values.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a KindInvalid error listing the offending fields.
func Invalid(fields ...FieldError) *Error {
	return &Error{Kind: KindInvalid, Code: "validation", Message: "the request has invalid fields", Fields: fields}
}

// Wrap classifies err under kind with a safe message, keeping err as the cause.
func Wrap(kind Kind, code, message string, err error) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, KindInternal if
// there is none, and KindInternal for a nil error's absence of meaning.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// AsError returns the first *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
