package kurrentconn

import (
	"errors"
	"io"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Code is what a client error means.
type Code int

// The codes Classify answers.
const (
	Failed               Code = iota // anything else
	WrongExpectedVersion             // the stream is not at the expected revision
	StreamDeleted                    // the stream is tombstoned
	StreamNotFound                   // the stream has no events (or is soft-deleted)
	Unavailable                      // no server, no leader, a connection lost: try again later
	Timeout                          // no answer within the call's deadline
	Denied                           // the server refused the credentials
	TooLarge                         // over the server's maximum append size
	EventTooLarge                    // an event over the server's maximum event size
	InvalidPosition                  // a position that is not one of the log's
	Invalid                          // the server refused the request as invalid
	Closed                           // the Client is closed
)

// Fault is a client error classified: what it means, words safe to show,
// and what to do.
type Fault struct {
	Code       Code
	Message    string
	Retry      bool // the same call may succeed now (with UnknownOutcome: if idempotent)
	Replace    bool // use a new client (this one is closed for good, or leaks)
	Reconnects bool // the client is reconnecting
	Answered   bool // the server answered: the connection works
	Unsent     bool // an append ended before it was sent: nothing was written
	// Election: no node is the leader now, or this one no longer is; Call
	// waits it out until the deadline instead of counting it as a try.
	Election bool
	// UnknownOutcome: the call may or may not have happened; only an
	// idempotent call may be retried (Policy.Idempotent; every call
	// through Call is).
	UnknownOutcome bool
}

// Classify tells what an error of the v4 client (or of Do) is. It looks
// at the client's *esdb.Error first (errors.As: the client wraps some of
// them with fmt.Errorf, and its FromError does not unwrap), then at the
// gRPC status it carries. A nil error is the zero Fault.
func Classify(err error) Fault {
	if err == nil {
		return Fault{}
	}
	var te *timeoutError
	if errors.As(err, &te) {
		return Fault{Code: Timeout, Message: "the event store did not answer in time"}
	}
	if errors.Is(err, ErrClosed) {
		return Fault{Code: Closed, Message: "the event store client is closed"}
	}
	var e *esdb.Error
	code := esdb.ErrorCodeUnknown
	if errors.As(err, &e) {
		code = e.Code()
	}
	switch code {
	case esdb.ErrorCodeWrongExpectedVersion:
		return Fault{Code: WrongExpectedVersion, Message: "the stream is not at the expected revision", Answered: true}
	case esdb.ErrorCodeStreamDeleted:
		return Fault{Code: StreamDeleted, Message: "the stream is deleted", Answered: true}
	case esdb.ErrorCodeResourceNotFound:
		return Fault{Code: StreamNotFound, Message: "the stream does not exist", Answered: true}
	case esdb.ErrorCodeNotLeader:
		return Fault{Code: Unavailable, Message: "the event store node is not the leader", Retry: true, Reconnects: true, Election: true}
	case esdb.ErrorUnavailable:
		// The client now rediscovers on its next call, and then drops its
		// old gRPC connection without closing it: use a new client instead.
		return Fault{Code: Unavailable, Message: "the event store is unavailable", Retry: true, Reconnects: true, Replace: true}
	case esdb.ErrorCodeConnectionClosed:
		return Fault{Code: Unavailable, Message: "the event store client is closed", Retry: true, Replace: true}
	case esdb.ErrorAborted:
		// The server's own timeout: a write may or may not have happened.
		return Fault{Code: Unavailable, Message: "the event store timed out", Retry: true, Answered: true, UnknownOutcome: true}
	case esdb.ErrorCodeDeadlineExceeded:
		// Not the caller's deadline (Do checks that first): the client's
		// own, while connecting. Another try may find the server.
		return Fault{Code: Unavailable, Message: "the event store did not answer in time", Retry: true}
	case esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnauthenticated:
		return Fault{Code: Denied, Message: "the event store refused the credentials", Answered: true}
	}
	if code == esdb.ErrorCodeUnknown && errors.Is(err, io.EOF) {
		// The server ended an append's stream while the client was still
		// sending it: it refused the append before reading all of it (over
		// its maximum append size, access denied), or the connection
		// dropped. The client keeps only the EOF, not the server's status.
		// The server never saw the end of the append, so nothing was
		// written and another try is safe, on a new client: this one does
		// not rediscover after an EOF, and would stay on a node that is
		// gone.
		return Fault{Code: Unavailable, Message: "the event store ended the append before it was sent", Retry: true, Reconnects: true, Replace: true, Unsent: true}
	}
	st, _ := status.FromError(err)
	if st.Code() == codes.Unknown && strings.Contains(st.Message(), "No leader info available") {
		// A node that knows no leader (an election): it handled nothing and
		// names no leader, so rediscover on a new client and retry.
		return Fault{Code: Unavailable, Message: "the event store cluster has no leader (an election)", Retry: true, Replace: true, Election: true}
	}
	switch st.Code() {
	case codes.FailedPrecondition:
		// A delete or tombstone at the wrong expected revision: the client
		// passes the server's status on without its trailers.
		if strings.Contains(st.Message(), "WrongExpectedVersion") {
			return Fault{Code: WrongExpectedVersion, Message: "the stream is not at the expected revision", Answered: true}
		}
		return Fault{Code: Invalid, Message: "the event store refused the request", Answered: true}
	case codes.InvalidArgument:
		msg := st.Message()
		if strings.Contains(msg, "Maximum Append Size") {
			return Fault{Code: TooLarge, Message: "the event store refused an append over its size limit", Answered: true}
		}
		if strings.Contains(msg, "Maximum Append Event Size") {
			return Fault{Code: EventTooLarge, Message: "the event store refused an event over its size limit", Answered: true}
		}
		if strings.Contains(msg, "invalid position") {
			return Fault{Code: InvalidPosition, Message: "the position is not one of the event log's", Answered: true}
		}
		return Fault{Code: Invalid, Message: "the event store refused the request as invalid", Answered: true}
	case codes.Canceled:
		// Not the caller's cancellation (Do checks that first): the
		// client closed the connection under the call to reconnect.
		return Fault{Code: Unavailable, Message: "the event store connection closed", Retry: true}
	case codes.Unavailable:
		return Fault{Code: Unavailable, Message: "the event store is unavailable", Retry: true, Reconnects: true}
	case codes.PermissionDenied, codes.Unauthenticated:
		return Fault{Code: Denied, Message: "the event store refused the credentials", Answered: true}
	case codes.Unimplemented:
		return Fault{Code: Invalid, Message: "the event store does not offer this operation", Answered: true}
	case codes.Unknown:
		return Fault{Code: Unavailable, Message: "the event store failed", Retry: true, UnknownOutcome: true}
	}
	return Fault{Code: Failed, Message: "the event store failed"}
}

// Terminal reports a subscription error that subscribing again cannot
// cure: refused credentials, an invalid request, an operation the server
// does not offer.
func Terminal(err error) bool {
	var e *esdb.Error
	if errors.As(err, &e) && (e.Code() == esdb.ErrorCodeAccessDenied || e.Code() == esdb.ErrorCodeUnauthenticated) {
		return true
	}
	switch status.Code(err) {
	case codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.Unimplemented, codes.FailedPrecondition:
		return true
	}
	return errors.Is(err, ErrClosed)
}
