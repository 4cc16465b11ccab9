package kurrentdb

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// Options tune the adapter. The zero value is usable.
type Options struct {
	// Timeout bounds every call, retries included, unless the caller's
	// context ends sooner; it also bounds establishing a subscription
	// (default: the connection string's defaultDeadline, else 10 s).
	Timeout time.Duration
	// MaxBackoff caps the wait between resubscriptions after a dropped
	// subscription (default 5 s; the first waits about 50 ms).
	MaxBackoff time.Duration
	// Log receives the client's log lines (nil: discarded) and the
	// adapter's warnings.
	Log *slog.Logger
	// LogEvery rate-limits warnings and errors: of each kind (the
	// client's message template, or the adapter's message) the first is
	// logged, then at most one per LogEvery, with the number left out
	// (default 1 minute). During an outage every retry logs otherwise.
	LogEvery time.Duration
}

// Store is the event log port on KurrentDB. It is safe for concurrent use.
type Store struct {
	c    *kurrentconn.Client // calls, deadlines, retries and the client's connections
	opts Options
	log  *limitedLog

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
	subsWG sync.WaitGroup
}

var _ eventlog.Store = (*Store)(nil)

// limitedLog passes debug and info lines on, and rate-limits warnings and
// errors by kind: the first of a kind is logged, then at most one per
// every, with the number left out since ("suppressed").
type limitedLog struct {
	log   *slog.Logger
	every time.Duration

	mu   sync.Mutex
	last map[string]*limited // by kind: a message template
}

type limited struct {
	at         time.Time
	suppressed int
}

func (l *limitedLog) Debug(msg string, args ...any) { l.log.Debug(msg, args...) }
func (l *limitedLog) Warn(msg string, args ...any)  { l.logKey(slog.LevelWarn, msg, msg, args...) }
func (l *limitedLog) Error(msg string, args ...any) { l.logKey(slog.LevelError, msg, msg, args...) }

// logKey logs msg at level, rate-limited by key from warnings up.
func (l *limitedLog) logKey(level slog.Level, key, msg string, args ...any) {
	if level >= slog.LevelWarn {
		now := time.Now()
		l.mu.Lock()
		st := l.last[key]
		if st == nil {
			st = &limited{}
			l.last[key] = st
		}
		if !st.at.IsZero() && now.Sub(st.at) < l.every {
			st.suppressed++
			l.mu.Unlock()
			return
		}
		if st.suppressed > 0 {
			args = append(args, "suppressed", st.suppressed)
		}
		st.at, st.suppressed = now, 0
		l.mu.Unlock()
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// Open returns a store on the node or cluster the connection string names
// (see the package doc for the forms it accepts). It does not connect: the
// first call does, and a server that is not there yet is no error here. It
// fails only on a connection string that does not parse.
func Open(_ context.Context, connString string, opts Options) (*Store, error) {
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = time.Minute
	}
	base := opts.Log
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	log := &limitedLog{log: base, every: opts.LogEvery, last: map[string]*limited{}}
	c, err := kurrentconn.Open(connString, kurrentconn.Options{Timeout: opts.Timeout, Log: base,
		ClientLog: func(level slog.Level, kind, line string) { log.logKey(level, kind, line) }})
	if err != nil {
		return nil, err
	}
	opts.Timeout = c.Timeout() // the option, else the connection string's defaultDeadline, else 10 s
	cfg := c.Config()
	if cfg.Username != "" && cfg.DisableTLS {
		log.Warn("kurrentdb: the connection string has credentials but tls=false: the client does not send them without TLS")
	}
	if cfg.KeepAliveInterval < 0 {
		log.Warn("kurrentdb: keepalive pings are disabled: a dead connection under an idle subscription goes unnoticed")
	}
	return &Store{c: c, opts: opts, log: log, subs: map[*subscription]struct{}{}}, nil
}

// Close closes the store: appends and reads return ErrClosed, and
// subscriptions end with ErrClosed. A call in flight finishes (at worst at
// its deadline) before the client is closed. Close is safe to call more
// than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	// Calls fail with ErrClosed from now; the client closes once no call
	// or subscription uses it.
	_ = s.c.Close()
	for _, sub := range subs {
		sub.cancel(eventlog.ErrClosed)
	}
	s.subsWG.Wait()
	return nil
}

// call runs op with kurrentconn.Do: under the call's deadline, retrying
// what the client recovers from and, when idempotent (a read, or an append
// the server recognises when it is retried), an answer whose outcome is
// unknown. It returns op's error classified for the port.
func call[T any](ctx context.Context, s *Store, idempotent bool, op func(ctx context.Context, c *esdb.Client) (T, error)) (T, error) {
	if ctx.Err() != nil {
		var zero T
		return zero, unavailable("the call was cancelled", context.Cause(ctx))
	}
	v, err := kurrentconn.Do(ctx, s.c, kurrentconn.Policy{Idempotent: idempotent, Classify: connFault}, op)
	return v, classify(err).err
}

// connFault is how the call loop sees an error: one the adapter made
// itself (a *domain.Error) is final; the client's are kurrentconn's.
func connFault(err error) kurrentconn.Fault {
	if domain.AsError(err) != nil {
		return kurrentconn.Fault{}
	}
	return kurrentconn.Classify(err)
}

// fault is an error classified: the port's error, and what to do.
type fault struct {
	err     error
	retry   bool // the same call may succeed now, idempotent or not
	replace bool // use a new client (this one is closed for good, or leaks)
	unsent  bool // an append ended before it was sent: nothing written
}

// outcomeUnknown marks, in an error's chain, a call that may or may not
// have happened.
type outcomeUnknown struct{ error }

func (e outcomeUnknown) Unwrap() error { return e.error }

// unknownOutcome reports whether err is a call that may or may not have
// happened.
func unknownOutcome(err error) bool {
	var u outcomeUnknown
	return errors.As(err, &u)
}

func unavailable(msg string, cause error) error {
	return domain.Wrap(domain.KindUnavailable, eventlog.ErrUnavailable.Code, msg, cause)
}

func like(sentinel *domain.Error, cause error) error {
	return domain.Wrap(sentinel.Kind, sentinel.Code, sentinel.Message, cause)
}

// classify maps an error of the v4 client (or of kurrentconn.Do) to the
// port's: kurrentconn.Classify tells what it is (from the client's
// *esdb.Error, else the gRPC status it carries); a *domain.Error stays.
func classify(err error) fault {
	if err == nil {
		return fault{}
	}
	if domain.AsError(err) != nil {
		return fault{err: err}
	}
	f := kurrentconn.Classify(err)
	return fault{err: portError(f, err), retry: f.Retry && !f.UnknownOutcome, replace: f.Replace, unsent: f.Unsent}
}

// portError is the port's error for a client error f says what of.
func portError(f kurrentconn.Fault, err error) error {
	switch f.Code {
	case kurrentconn.WrongExpectedVersion:
		return like(eventlog.ErrWrongExpectedVersion, err)
	case kurrentconn.StreamDeleted:
		return like(eventlog.ErrStreamDeleted, err)
	case kurrentconn.StreamNotFound:
		return like(eventlog.ErrStreamNotFound, err)
	case kurrentconn.TooLarge:
		return like(eventlog.ErrAppendTooLarge, err)
	case kurrentconn.EventTooLarge:
		return like(eventlog.ErrEventTooLarge, err)
	case kurrentconn.InvalidPosition:
		return domain.Wrap(domain.KindInvalid, "invalid_position", f.Message, err)
	case kurrentconn.Invalid:
		// A request the server refused as an invalid argument; other
		// refusals (a precondition, an operation it does not offer) are
		// its failure, not the request's: the adapter sends neither.
		if status.Code(err) == codes.InvalidArgument {
			return domain.Wrap(domain.KindInvalid, "invalid_request", f.Message, err)
		}
		return unavailable("the event store failed", err)
	case kurrentconn.Closed:
		return like(eventlog.ErrClosed, err)
	}
	if f.UnknownOutcome {
		err = outcomeUnknown{err}
	}
	return unavailable(f.Message, err) // no server, no leader, timeouts, refused credentials
}
