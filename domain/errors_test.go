package domain

import (
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
)

// errStale is a sentinel in the style of eventlog.ErrWrongExpectedVersion:
// matched by kind and code, whatever the message or cause of the copy.
var errStale = &Error{Kind: KindConflict, Code: "wrong_expected_version", Message: "the stream has moved on"}

func TestErrorKindsAndSentinels(t *testing.T) {
	staleCopy := &Error{Kind: KindConflict, Code: "wrong_expected_version", Message: "expected 3, stream is at 5", Err: io.ErrUnexpectedEOF}
	tests := []struct {
		name  string
		err   error
		kind  Kind
		is    []error // errors.Is(err, each) holds
		isNot []error // errors.Is(err, each) does not hold
	}{
		{"nil", nil, KindInternal, nil, []error{errStale}},
		{"a plain error", io.EOF, KindInternal, []error{io.EOF}, []error{errStale}},
		{"the sentinel itself", errStale, KindConflict, []error{errStale}, nil},
		{"a copy with more detail", staleCopy, KindConflict, []error{errStale, io.ErrUnexpectedEOF}, []error{io.EOF}},
		{"the copy wrapped by fmt", fmt.Errorf("append: %w", staleCopy), KindConflict, []error{errStale, io.ErrUnexpectedEOF}, nil},
		{"joined with another error", errors.Join(io.EOF, staleCopy), KindConflict, []error{errStale, io.EOF}, nil},
		{"same code, other kind", &Error{Kind: KindInvalid, Code: "wrong_expected_version"}, KindInvalid, nil, []error{errStale}},
		{"same kind, other code", &Error{Kind: KindConflict, Code: "invalid_transition"}, KindConflict, nil, []error{errStale}},
		{"same kind, no code", &Error{Kind: KindConflict}, KindConflict, nil, []error{errStale, &Error{Kind: KindConflict}}},
		{"Wrap keeps the cause", Wrap(KindUnavailable, "store_closed", "the store is closed", os.ErrClosed), KindUnavailable,
			[]error{os.ErrClosed, &Error{Kind: KindUnavailable, Code: "store_closed"}}, []error{errStale}},
		{"Wrap of a classified error takes the outer kind", Wrap(KindInternal, "x", "x", staleCopy), KindInternal, []error{errStale}, nil},
		{"Invalid", Invalid(FieldError{"reason", "a reason is required"}), KindInvalid, []error{&Error{Kind: KindInvalid, Code: "validation"}}, nil},
		{"Errorf", Errorf(KindNotFound, "erased", "subject %d", 7), KindNotFound, []error{ErrErased}, nil},
		{"every kind: too large", Errorf(KindTooLarge, "body", "too large"), KindTooLarge, nil, nil},
		{"every kind: unauthenticated", Errorf(KindUnauthenticated, "token", "no token"), KindUnauthenticated, nil, nil},
		{"every kind: forbidden", errForbidden, KindForbidden, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.kind {
				t.Errorf("KindOf = %s, want %s", got, tt.kind)
			}
			for _, target := range tt.is {
				if !errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v, %v) = false", tt.err, target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v, %v) = true", tt.err, target)
				}
			}
			if e := AsError(tt.err); (e != nil) != (tt.err != nil && errors.As(tt.err, new(*Error))) {
				t.Errorf("AsError = %v", e)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: KindConflict, Message: "stale"}, "stale"},
		{&Error{Kind: KindNotFound}, "not_found"},
		{&Error{Kind: KindInvalid, Message: "bad", Err: io.EOF}, "bad: EOF"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	names := map[Kind]string{KindInternal: "internal", KindInvalid: "invalid", KindNotFound: "not_found", KindConflict: "conflict",
		KindForbidden: "forbidden", KindUnauthenticated: "unauthenticated", KindUnavailable: "unavailable", KindTooLarge: "too_large", Kind(99): "kind(99)"}
	for k, want := range names {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
	if AsError(io.EOF) != nil || AsError(nil) != nil {
		t.Error("AsError of an unclassified error is not nil")
	}
}
