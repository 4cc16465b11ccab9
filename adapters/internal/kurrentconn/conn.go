package kurrentconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/metadata"
)

// Options tune a Client. The zero value is usable.
type Options struct {
	// Timeout bounds every call, retries included, unless the caller's
	// context ends sooner (default: the connection string's
	// defaultDeadline, else 10 s).
	Timeout time.Duration
	// Log receives the client's log lines (nil: discarded) and the
	// Client's own (debug).
	Log *slog.Logger
	// ClientLog, when set, writes the client's log lines that Log is
	// enabled for, instead of Log: kind is the client's message template
	// (the same for every line of one sort, for rate limits), line the
	// line itself.
	ClientLog func(level slog.Level, kind, line string)
}

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("kurrentdb: the client is closed")

// Client is a KurrentDB client shared by calls. It is safe for concurrent
// use.
type Client struct {
	cfg    *esdb.Configuration
	opts   Options
	leader bool // send requires-leader on every call
	log    *slog.Logger

	mu     sync.Mutex
	cur    *conn
	closed bool
}

// conn is one v4 client, shared by calls, and closed when retired and unused.
type conn struct {
	client  *esdb.Client
	refs    int  // calls and subscriptions using it; guarded by Client.mu
	retired bool // replaced or the Client closed; guarded by Client.mu
	// healthy: the client has answered since it last (re)connected. Until
	// then calls enter it one at a time (gate).
	healthy atomic.Bool
	gate    chan struct{}
}

func newConn(c *esdb.Client) *conn { return &conn{client: c, gate: make(chan struct{}, 1)} }

// Open returns a client of the node or cluster the connection string names.
// It does not connect: the first call does. It fails only on a connection
// string that does not parse.
func Open(connString string, opts Options) (*Client, error) {
	cfg, err := Parse(connString)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
		if cfg.DefaultDeadline != nil {
			opts.Timeout = *cfg.DefaultDeadline
		}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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
		if !log.Enabled(context.Background(), lv) {
			return
		}
		line := "kurrentdb client: " + fmt.Sprintf(format, args...)
		if opts.ClientLog != nil {
			opts.ClientLog(lv, format, line)
			return
		}
		log.Log(context.Background(), lv, line)
	}
	c, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: client: %w", err)
	}
	return &Client{cfg: cfg, opts: opts, leader: cfg.NodePreference == esdb.NodePreferenceLeader, log: log, cur: newConn(c)}, nil
}

// Config returns the parsed connection string (not to be changed).
func (c *Client) Config() *esdb.Configuration { return c.cfg }

// Timeout is the bound of one call.
func (c *Client) Timeout() time.Duration { return c.opts.Timeout }

// InUse reports how many calls and subscriptions use the current v4 client
// (after Close, the last one), abandoned calls still inside it included.
func (c *Client) InUse() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.refs
}

// Close closes the client once no call uses it; calls then fail with
// ErrClosed. It is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cn := c.cur
	cn.retired = true
	unused := cn.refs == 0
	c.mu.Unlock()
	if unused {
		_ = cn.client.Close()
	}
	return nil
}

// acquire returns the current client with a reference the caller releases.
func (c *Client) acquire() (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	c.cur.refs++
	return c.cur, nil
}

func (c *Client) hold(cn *conn) {
	c.mu.Lock()
	cn.refs++
	c.mu.Unlock()
}

// release drops a reference, closing a retired client when it was the last.
func (c *Client) release(cn *conn) {
	c.mu.Lock()
	cn.refs--
	last := cn.retired && cn.refs == 0
	c.mu.Unlock()
	if last {
		_ = cn.client.Close()
	}
}

// replace swaps the current v4 client for a new one: after it closed itself
// for good (the v4 client does after a failed discovery, and never connects
// again), or when it would rediscover and leak its old connection. The old
// one is closed once no call uses it.
func (c *Client) replace(old *conn) {
	c.mu.Lock()
	if c.closed || c.cur != old {
		c.mu.Unlock()
		return // closed, or replaced already
	}
	nc, err := esdb.NewClient(c.cfg)
	if err != nil {
		c.mu.Unlock()
		return // cannot happen: the configuration was validated by Open
	}
	c.cur = newConn(nc)
	old.retired = true
	unused := old.refs == 0 // else the last release closes it
	c.mu.Unlock()
	c.log.Debug("kurrentdb: replacing the client after a connection failure")
	if unused {
		_ = old.client.Close()
	}
}

type result[T any] struct {
	v   T
	err error
}

// run runs op on cn in its own goroutine and returns its result, or ctx's
// error when ctx ends first. The v4 client ignores contexts while it
// (re)connects (up to maxDiscoverAttempts x gossipTimeout), so a call stuck
// there is left behind rather than holding the caller past its deadline;
// discard (if not nil) disposes of what such a call returns late. While cn
// has not answered since it (re)connected, one call at a time enters it:
// the v4 client never answers calls queued behind a connection attempt that
// ends by closing the client. classify tells whether an error shows the
// connection working or reconnecting.
func run[T any](ctx context.Context, c *Client, cn *conn, classify func(error) Fault, op func(*esdb.Client) (T, error), discard func(T)) (T, error) {
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
	c.hold(cn)
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
		if f := classify(err); err == nil || f.Answered {
			cn.healthy.Store(true)
		} else if f.Reconnects {
			cn.healthy.Store(false)
		}
		if gated {
			<-cn.gate
		}
		c.release(cn)
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

// Policy says how Do treats the errors of one operation.
type Policy struct {
	// Idempotent: op may be sent again after an answer whose outcome is
	// unknown (Fault.UnknownOutcome): a read, or a write the server
	// recognises when it is sent again (the same event ids at an exact
	// expected revision or no_stream, a delete at an exact revision).
	Idempotent bool
	// Classify tells what op's errors are (nil: Classify). An op that
	// returns errors of its own makes them final here (the zero Fault).
	Classify func(error) Fault
}

// Do runs op with the current client under the call's deadline
// (Options.Timeout or ctx's, whichever ends first), retrying what the client
// recovers from (not leader, no leader during an election, unavailable, a
// closed client, a connection closed under the call) and, when the op is
// idempotent, an answer whose outcome is unknown, with capped, jittered
// backoff. It returns op's last error unchanged, ErrClosed after Close, or,
// when the deadline ends first, an error for which Classify answers
// Timeout, wrapping ctx's.
func Do[T any](ctx context.Context, c *Client, p Policy, op func(ctx context.Context, cl *esdb.Client) (T, error)) (T, error) {
	var zero T
	classify := p.Classify
	if classify == nil {
		classify = Classify
	}
	if ctx.Err() != nil {
		return zero, &timeoutError{cause: context.Cause(ctx)}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	ctx = c.Outgoing(ctx)
	wait := Backoff{First: 20 * time.Millisecond, Max: time.Second}
	for attempt := 1; ; {
		cn, err := c.acquire()
		if err != nil {
			return zero, err
		}
		v, err := run(ctx, c, cn, classify, func(cl *esdb.Client) (T, error) { return op(ctx, cl) }, nil)
		c.release(cn)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return zero, &timeoutError{cause: errors.Join(context.Cause(ctx), err)}
		}
		f := classify(err)
		if f.Replace {
			c.replace(cn)
		}
		if !f.Election {
			attempt++
		}
		if !f.Retry || f.UnknownOutcome && !p.Idempotent || attempt > maxAttempts {
			return zero, err
		}
		if !Sleep(ctx, wait.Next()) {
			return zero, &timeoutError{cause: errors.Join(context.Cause(ctx), err)}
		}
	}
}

// Call is Do for an idempotent op whose errors are the client's: a read,
// or a write the server recognises when it is sent again (the same event
// ids at an exact expected revision or no_stream, a delete at an exact
// revision).
func Call[T any](ctx context.Context, c *Client, op func(ctx context.Context, cl *esdb.Client) (T, error)) (T, error) {
	return Do(ctx, c, Policy{Idempotent: true}, op)
}

// timeoutError is a call whose deadline ended (or whose context was
// canceled) before the server answered.
type timeoutError struct{ cause error }

func (e *timeoutError) Error() string { return "kurrentdb: no answer in time: " + e.cause.Error() }
func (e *timeoutError) Unwrap() error { return e.cause }

// Subscription is a catch-up subscription to $all on one v4 client, which
// it keeps in use until Close.
type Subscription struct {
	es   *esdb.Subscription
	stop context.CancelFunc
	c    *Client
	cn   *conn
	once sync.Once
}

// Subscribe opens a catch-up subscription to $all on the current client,
// establishing it under the call's deadline (a subscription confirmed late
// is closed). The stream itself runs until ctx ends, it drops or Close.
// Errors are the client's, unchanged, ErrClosed, or, when the deadline ends
// first, an error for which Classify answers Timeout.
func (c *Client) Subscribe(ctx context.Context, opts esdb.SubscribeToAllOptions) (*Subscription, error) {
	cn, err := c.acquire()
	if err != nil {
		return nil, err
	}
	streamCtx, stop := context.WithCancel(c.Outgoing(ctx))
	openCtx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	es, err := run(openCtx, c, cn, Classify, func(cl *esdb.Client) (*esdb.Subscription, error) {
		return cl.SubscribeToAll(streamCtx, opts)
	}, func(es *esdb.Subscription) { _ = es.Close() })
	if err != nil {
		stop()
		if Classify(err).Replace {
			c.replace(cn)
		}
		c.release(cn)
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, &timeoutError{cause: err}
		}
		return nil, err
	}
	return &Subscription{es: es, stop: stop, c: c, cn: cn}, nil
}

// Recv waits for the subscription's next event (or its drop).
func (s *Subscription) Recv() *esdb.SubscriptionEvent { return s.es.Recv() }

// Close ends the subscription and lets its client go. cause is what ended
// it (nil: the caller): when it shows the client closed for good or about
// to leak its connection (Fault.Replace), the client is replaced. Later
// calls do nothing.
func (s *Subscription) Close(cause error) {
	s.once.Do(func() {
		_ = s.es.Close()
		s.stop()
		if Classify(cause).Replace {
			s.c.replace(s.cn)
		}
		s.c.release(s.cn)
	})
}

// Outgoing adds requires-leader to the call's metadata when the connection
// prefers the leader: the v4 client puts it in the wrong (incoming)
// metadata, so the server never sees it otherwise.
func (c *Client) Outgoing(ctx context.Context) context.Context {
	if !c.leader {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "requires-leader", "true")
}

// Backoff is capped exponential backoff with jitter: waits around First,
// 2 First, 4 First, ... up to Max, each drawn from [d/2, 3d/2).
type Backoff struct {
	First, Max time.Duration
	cur        time.Duration // the next wait's middle; 0: First
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.First
	}
	d := b.cur
	b.cur = min(b.cur*2, b.Max)
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

// Reset starts again from First.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx ends; it reports whether it waited d.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
