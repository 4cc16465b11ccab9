package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
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
	cfg    *esdb.Configuration
	opts   Options
	leader bool // send requires-leader on every call
	log    *limitedLog

	mu     sync.Mutex
	cur    *conn
	closed bool
	subs   map[*subscription]struct{}
	subsWG sync.WaitGroup
}

var _ eventlog.Store = (*Store)(nil)

// conn is one client, shared by calls, and closed when retired and unused.
type conn struct {
	client  *esdb.Client
	refs    int  // calls and subscriptions using it; guarded by Store.mu
	retired bool // replaced or the store closed; guarded by Store.mu
	// healthy: the client has answered since it last (re)connected. Until
	// then calls enter it one at a time (gate).
	healthy atomic.Bool
	gate    chan struct{}
}

func newConn(c *esdb.Client) *conn { return &conn{client: c, gate: make(chan struct{}, 1)} }

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

// parseConn parses a connection string into the client's configuration
// (kurrentconn.Parse, shared with the cluster key store). Its errors never
// quote the string, which may hold credentials.
func parseConn(connString string) (*esdb.Configuration, error) { return kurrentconn.Parse(connString) }

// Open returns a store on the node or cluster the connection string names
// (see the package doc for the forms it accepts). It does not connect: the
// first call does, and a server that is not there yet is no error here. It
// fails only on a connection string that does not parse.
func Open(_ context.Context, connString string, opts Options) (*Store, error) {
	cfg, err := parseConn(connString)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
		if cfg.DefaultDeadline != nil { // defaultDeadline in the connection string
			opts.Timeout = *cfg.DefaultDeadline
		}
	}
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
	// The call's context carries the deadline; the client's own comes
	// later, so that a timeout is always the context's.
	deadline := opts.Timeout + time.Second
	cfg.DefaultDeadline = &deadline
	cfg.Logger = func(level esdb.LogLevel, format string, args ...interface{}) {
		lv := slog.LevelDebug
		switch level {
		case esdb.LogWarn:
			lv = slog.LevelWarn
		case esdb.LogError:
			lv = slog.LevelError
		}
		if base.Enabled(context.Background(), lv) {
			log.logKey(lv, format, "kurrentdb client: "+fmt.Sprintf(format, args...))
		}
	}
	if cfg.Username != "" && cfg.DisableTLS {
		log.Warn("kurrentdb: the connection string has credentials but tls=false: the client does not send them without TLS")
	}
	if cfg.KeepAliveInterval < 0 {
		log.Warn("kurrentdb: keepalive pings are disabled: a dead connection under an idle subscription goes unnoticed")
	}
	c, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: client: %w", err)
	}
	return &Store{cfg: cfg, opts: opts, leader: cfg.NodePreference == esdb.NodePreferenceLeader, log: log,
		cur: newConn(c), subs: map[*subscription]struct{}{}}, nil
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
	cn := s.cur
	cn.retired = true
	s.mu.Unlock()
	for _, sub := range subs {
		sub.cancel(eventlog.ErrClosed)
	}
	s.subsWG.Wait()
	s.mu.Lock()
	unused := cn.refs == 0
	s.mu.Unlock()
	if unused {
		_ = cn.client.Close()
	}
	return nil
}

// acquire returns the current client with a reference the caller releases.
func (s *Store) acquire() (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventlog.ErrClosed
	}
	s.cur.refs++
	return s.cur, nil
}

func (s *Store) hold(cn *conn) {
	s.mu.Lock()
	cn.refs++
	s.mu.Unlock()
}

// release drops a reference, closing a retired client when it was the last.
func (s *Store) release(cn *conn) {
	s.mu.Lock()
	cn.refs--
	last := cn.retired && cn.refs == 0
	s.mu.Unlock()
	if last {
		_ = cn.client.Close()
	}
}

// replace swaps the current client for a new one: after it closed itself
// for good (the v4 client does after a failed discovery, and never connects
// again), or when it would rediscover and leak its old connection. The old
// one is closed once no call uses it.
func (s *Store) replace(old *conn) {
	s.mu.Lock()
	if s.closed || s.cur != old {
		s.mu.Unlock()
		return // closed, or replaced already
	}
	c, err := esdb.NewClient(s.cfg)
	if err != nil {
		s.mu.Unlock()
		return // cannot happen: the configuration was validated by Open
	}
	s.cur = newConn(c)
	old.retired = true
	unused := old.refs == 0 // else the last release closes it
	s.mu.Unlock()
	s.log.Debug("kurrentdb: replacing the client after a connection failure")
	if unused {
		_ = old.client.Close()
	}
}

type result[T any] struct {
	v   T
	err error
}

// run runs op on cn in its own goroutine and returns its result, or ctx's
// error when ctx ends first. The client ignores contexts while it
// (re)connects (up to maxDiscoverAttempts x gossipTimeout), so a call stuck
// there is left behind rather than holding the caller past its deadline;
// discard (if not nil) disposes of what such a call returns late. While cn
// has not answered since it (re)connected, one call at a time enters it:
// the v4 client never answers calls queued behind a connection attempt that
// ends by closing the client.
func run[T any](ctx context.Context, s *Store, cn *conn, op func(*esdb.Client) (T, error), discard func(T)) (T, error) {
	var zero T
	gated := false
	if !cn.healthy.Load() {
		select {
		case cn.gate <- struct{}{}:
			gated = true
		case <-ctx.Done():
			return zero, ctx.Err()
		}
		if cn.healthy.Load() { // another call connected it meanwhile
			<-cn.gate
			gated = false
		}
	}
	s.hold(cn)
	var mu sync.Mutex
	abandoned := false
	done := make(chan result[T], 1)
	go func() {
		v, err := op(cn.client)
		mu.Lock()
		if abandoned {
			if err == nil && discard != nil {
				discard(v)
			}
		} else {
			done <- result[T]{v, err}
		}
		mu.Unlock()
		if f := classify(err); err == nil || f.answered {
			cn.healthy.Store(true)
		} else if f.reconnects {
			cn.healthy.Store(false)
		}
		if gated {
			<-cn.gate
		}
		s.release(cn)
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		select {
		case r := <-done: // it answered as the wait ended
			return r.v, r.err
		default:
			abandoned = true
			return zero, ctx.Err()
		}
	}
}

// maxAttempts bounds the tries of one call that meet failures other than
// an election (no leader, or a node that is no longer the leader): those
// are waited out until the call's deadline.
const maxAttempts = 8

// call runs op with the current client under the call's deadline, retrying
// what the client recovers from (not leader, no leader during an election,
// unavailable, a closed client, a connection closed under the call) and,
// when idempotent (a read, or an append the server recognises when it is
// retried), an answer whose outcome is unknown. It returns op's error
// classified for the port.
func call[T any](ctx context.Context, s *Store, idempotent bool, op func(ctx context.Context, c *esdb.Client) (T, error)) (T, error) {
	var zero T
	if ctx.Err() != nil {
		return zero, unavailable("the call was cancelled", context.Cause(ctx))
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	ctx = s.outgoing(ctx)
	wait := backoff{first: 20 * time.Millisecond, max: time.Second}
	for attempt := 1; ; {
		cn, err := s.acquire()
		if err != nil {
			return zero, err
		}
		v, err := run(ctx, s, cn, func(c *esdb.Client) (T, error) { return op(ctx, c) }, nil)
		s.release(cn)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return zero, unavailable("the event store did not answer in time", context.Cause(ctx))
		}
		f := classify(err)
		if f.replace {
			s.replace(cn)
		}
		if !f.election {
			attempt++
		}
		if !(f.retry || f.unknownOutcome && idempotent) || attempt > maxAttempts {
			return zero, f.err
		}
		if !sleep(ctx, wait.next()) {
			return zero, unavailable("the event store did not answer in time", errors.Join(context.Cause(ctx), f.err))
		}
	}
}

// outgoing adds requires-leader to the call's metadata when the connection
// prefers the leader: the v4 client puts it in the wrong (incoming)
// metadata, so the server never sees it otherwise.
func (s *Store) outgoing(ctx context.Context) context.Context {
	if !s.leader {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "requires-leader", "true")
}

// backoff is capped exponential backoff with jitter: waits around first,
// 2 first, 4 first, ... up to max, each drawn from [d/2, 3d/2).
type backoff struct {
	first, max time.Duration
	cur        time.Duration // the next wait's middle; 0: first
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.first
	}
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

// reset starts again from first.
func (b *backoff) reset() { b.cur = 0 }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// fault is a client error classified: the port's error and what to do.
type fault struct {
	err        error
	retry      bool // the same call may succeed now
	replace    bool // use a new client (this one is closed for good, or leaks)
	reconnects bool // the client is reconnecting
	answered   bool // the server answered: the connection works
	unsent     bool // an append ended before it was sent: nothing written
	election   bool // no node is the leader now, or this one no longer is
	// unknownOutcome: the call may or may not have happened; retry only
	// what is idempotent.
	unknownOutcome bool
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

// classify maps an error of the v4 client to the port's. It looks at the
// client's *esdb.Error first (errors.As: the client wraps some of them with
// fmt.Errorf, and its FromError does not unwrap), then at the gRPC status
// it carries.
func classify(err error) fault {
	if err == nil {
		return fault{}
	}
	var domErr *domain.Error
	if errors.As(err, &domErr) {
		return fault{err: err}
	}
	var e *esdb.Error
	code := esdb.ErrorCodeUnknown
	if errors.As(err, &e) {
		code = e.Code()
	}
	switch code {
	case esdb.ErrorCodeWrongExpectedVersion:
		return fault{err: like(eventlog.ErrWrongExpectedVersion, err), answered: true}
	case esdb.ErrorCodeStreamDeleted:
		return fault{err: like(eventlog.ErrStreamDeleted, err), answered: true}
	case esdb.ErrorCodeResourceNotFound:
		return fault{err: like(eventlog.ErrStreamNotFound, err), answered: true}
	case esdb.ErrorCodeNotLeader:
		return fault{err: unavailable("the event store node is not the leader", err), retry: true, reconnects: true, election: true}
	case esdb.ErrorUnavailable:
		// The client now rediscovers on its next call, and then drops its
		// old gRPC connection without closing it (a leak per outage): use a
		// new client instead, and close this one once unused.
		return fault{err: unavailable("the event store is unavailable", err), retry: true, reconnects: true, replace: true}
	case esdb.ErrorCodeConnectionClosed:
		return fault{err: unavailable("the event store client is closed", err), retry: true, replace: true}
	case esdb.ErrorAborted:
		// The server's own timeout: a write may or may not have happened.
		return fault{err: unavailable("the event store timed out", outcomeUnknown{err}), unknownOutcome: true, answered: true}
	case esdb.ErrorCodeDeadlineExceeded:
		// Not the caller's deadline (call checks that first): the client's
		// own, while connecting. Another try may find the server.
		return fault{err: unavailable("the event store did not answer in time", err), retry: true}
	case esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnauthenticated:
		return fault{err: unavailable("the event store refused the credentials", err), answered: true}
	}
	if code == esdb.ErrorCodeUnknown && errors.Is(err, io.EOF) {
		// The server ended an append's stream while the client was still
		// sending it: it refused the append before reading all of it (over
		// its maximum append size, access denied), or the connection
		// dropped. The client keeps only the EOF, not the server's status.
		// The server never saw the end of the append, so nothing was
		// written and another try is safe (Append tells the causes apart),
		// on a new client: this one does not rediscover after an EOF, and
		// would stay on a node that is gone.
		return fault{err: unavailable("the event store ended the append before it was sent", err), retry: true, reconnects: true, replace: true, unsent: true}
	}
	st, _ := status.FromError(err)
	if st.Code() == codes.Unknown && strings.Contains(st.Message(), "No leader info available") {
		// A node that knows no leader (an election): it handled nothing.
		// It names no leader, so rediscover (on a new client) and retry
		// until the call's deadline.
		return fault{err: unavailable("the event store cluster has no leader (an election)", err), retry: true, replace: true, election: true}
	}
	switch st.Code() {
	case codes.InvalidArgument:
		msg := st.Message()
		if strings.Contains(msg, "Maximum Append Size") {
			return fault{err: like(eventlog.ErrAppendTooLarge, err), answered: true}
		}
		if strings.Contains(msg, "Maximum Append Event Size") {
			return fault{err: like(eventlog.ErrEventTooLarge, err), answered: true}
		}
		if strings.Contains(msg, "invalid position") {
			return fault{err: domain.Wrap(domain.KindInvalid, "invalid_position", "the position is not one of the event log's", err), answered: true}
		}
		return fault{err: domain.Wrap(domain.KindInvalid, "invalid_request", "the event store refused the request as invalid", err), answered: true}
	case codes.Canceled:
		// Not the caller's cancellation (call checks that first): the
		// client closed the connection under the call to reconnect.
		return fault{err: unavailable("the event store connection closed", err), retry: true}
	case codes.Unavailable:
		return fault{err: unavailable("the event store is unavailable", err), retry: true, reconnects: true}
	case codes.PermissionDenied, codes.Unauthenticated:
		return fault{err: unavailable("the event store refused the credentials", err), answered: true}
	case codes.Unknown:
		return fault{err: unavailable("the event store failed", outcomeUnknown{err}), unknownOutcome: true}
	}
	return fault{err: unavailable("the event store failed", err)}
}
