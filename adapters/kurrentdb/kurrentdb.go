// Package kurrentdb is the scale-out event store: the event log port on a
// KurrentDB (EventStoreDB) cluster through EventStore-Client-Go/v4.
//
// Mapping: streams, event ids, types and expected revisions map 1:1; the
// port's metadata travels as JSON in the event's user metadata; the port's
// position is the event's commit position in $all (increasing, not dense);
// reads and subscriptions of "all" skip system streams and events ($...).
// Errors are classified before any wrapping (the client's FromError does not
// unwrap): WrongExpectedVersion is eventlog.ErrWrongExpectedVersion,
// StreamDeleted is eventlog.ErrStreamDeleted, ResourceNotFound on a stream
// read is eventlog.ErrStreamNotFound; connection trouble is ErrUnavailable.
//
// What the client does not give, this adapter adds: a deadline on every
// call; a client that failed its first connection (closed for good by the
// v4 client) is replaced on the next call; writes prefer the leader
// (nodePreference=leader) and an append answered "not leader" is retried
// after the client reconnects to the leader it named; a subscription dropped
// by the server (SubscriptionDropped, raw gRPC Unavailable included) is
// resubscribed from the last delivered position with capped, jittered
// backoff, invisibly to Next.
//
// # Operating notes
//
// Scale-out runs N stateless API replicas against a 3-node KurrentDB
// cluster (serve --store kurrentdb://...). Each replica builds its own
// projections in memory from a catch-up subscription to $all (so each holds
// the caseload, monitoring and audit indexes: plan memory per replica as for
// the embedded store), and writes its own audit streams
// audit-<replica>-<yyyymmdd>, so audit appends never contend across
// replicas. Read-your-writes across replicas: every command answers with its
// position; a GET with min_position waits until the serving replica's
// projections have passed it. Erasure is crypto-shredding: subject keys live
// in the key store, outside the log, so nothing needs to be scavenged from
// KurrentDB for an erasure (the ciphertext left in the log is unreadable).
// Limits: positions are commit positions, not dense; each replica holds one
// $all subscription; the key store must be shared by the replicas (a KMS-
// backed master key and a shared key store) in a real deployment.
package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// Options tune the adapter.
type Options struct {
	// Timeout bounds every unary call (default 10 s).
	Timeout time.Duration
	// MaxBackoff caps the resubscribe backoff (default 5 s).
	MaxBackoff time.Duration
	// Log receives the client's log lines (nil: discarded).
	Log *slog.Logger
}

// Store is the KurrentDB adapter.
type Store struct {
	cfg  *esdb.Configuration
	opts Options

	mu     sync.Mutex
	client *esdb.Client
	closed bool
}

var _ eventlog.Store = (*Store)(nil)

// ParseURL turns a kurrentdb:// or kurrent:// connection string into the
// esdb:// form the v4 client parses, and prefers the leader unless the
// string says otherwise.
func ParseURL(conn string) (*esdb.Configuration, error) {
	for from, to := range map[string]string{"kurrentdb+discover://": "esdb+discover://", "kurrent+discover://": "esdb+discover://", "kurrentdb://": "esdb://", "kurrent://": "esdb://"} {
		if strings.HasPrefix(conn, from) {
			conn = to + strings.TrimPrefix(conn, from)
		}
	}
	cfg, err := esdb.ParseConnectionString(conn)
	if err != nil {
		return nil, errors.New("kurrentdb: the connection string does not parse") // never echo: it may hold credentials
	}
	if !strings.Contains(strings.ToLower(conn), "nodepreference=") {
		cfg.NodePreference = esdb.NodePreferenceLeader
	}
	if cfg.KeepAliveInterval <= 0 {
		cfg.KeepAliveInterval = 10 * time.Second
	}
	if cfg.KeepAliveTimeout <= 0 {
		cfg.KeepAliveTimeout = 10 * time.Second
	}
	return cfg, nil
}

// Open connects lazily: the first call makes the connection.
func Open(_ context.Context, conn string, opts Options) (*Store, error) {
	cfg, err := ParseURL(conn)
	if err != nil {
		return nil, err
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	d := opts.Timeout
	cfg.DefaultDeadline = &d
	cfg.Logger = esdb.NoopLogging()
	if log := opts.Log; log != nil {
		cfg.Logger = func(level esdb.LogLevel, format string, args ...interface{}) {
			lv := slog.LevelDebug
			if level == esdb.LogWarn || level == esdb.LogError {
				lv = slog.LevelWarn
			}
			log.Log(context.Background(), lv, "kurrentdb client: "+fmt.Sprintf(format, args...))
		}
	}
	s := &Store{cfg: cfg, opts: opts}
	if s.client, err = esdb.NewClient(cfg); err != nil {
		return nil, fmt.Errorf("kurrentdb: client: %w", err)
	}
	return s, nil
}

// get returns the current client.
func (s *Store) get() (*esdb.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventlog.ErrClosed
	}
	return s.client, nil
}

// replace swaps a client the v4 library closed for good (after a failed
// first connection) for a new one.
func (s *Store) replace(old *esdb.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.client != old {
		return
	}
	if c, err := esdb.NewClient(s.cfg); err == nil {
		_ = old.Close()
		s.client = c
	}
}

// classify maps a client error to the port's, before any wrapping.
func classify(err error) (error, esdb.ErrorCode) {
	if err == nil {
		return nil, 0
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err, esdb.ErrorCodeDeadlineExceeded
	}
	var e *esdb.Error
	if !errors.As(err, &e) {
		e, _ = esdb.FromError(err)
	}
	switch e.Code() {
	case esdb.ErrorCodeWrongExpectedVersion:
		return eventlog.ErrWrongExpectedVersion, e.Code()
	case esdb.ErrorCodeStreamDeleted:
		return eventlog.ErrStreamDeleted, e.Code()
	case esdb.ErrorCodeResourceNotFound:
		return eventlog.ErrStreamNotFound, e.Code()
	}
	return domain.Wrap(domain.KindUnavailable, eventlog.ErrUnavailable.Code, eventlog.ErrUnavailable.Message, err), e.Code()
}

// retryable codes: the client reconnects (not leader, unavailable) or must
// be replaced (closed after a failed first connection).
func retryable(code esdb.ErrorCode) bool {
	return code == esdb.ErrorCodeNotLeader || code == esdb.ErrorUnavailable || code == esdb.ErrorCodeConnectionClosed
}

// call runs op with the current client, replacing a closed client and
// retrying a few times on errors the client recovers from by reconnecting.
func (s *Store) call(ctx context.Context, op func(c *esdb.Client) error) error {
	var last error
	for attempt := 0; attempt < 4; attempt++ {
		c, err := s.get()
		if err != nil {
			return err
		}
		err = op(c)
		classified, code := classify(err)
		if err == nil || !retryable(code) {
			return classified
		}
		last = classified
		if code == esdb.ErrorCodeConnectionClosed {
			s.replace(c)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(50*(attempt+1)) * time.Millisecond):
		}
	}
	return last
}

func expected(e eventlog.ExpectedVersion) esdb.ExpectedRevision {
	switch e.Kind {
	case eventlog.ExpectNoStream:
		return esdb.NoStream{}
	case eventlog.ExpectStreamExists:
		return esdb.StreamExists{}
	case eventlog.ExpectRevision:
		return esdb.Revision(e.Revision)
	}
	return esdb.Any{}
}

// Append implements eventlog.Store.
func (s *Store) Append(ctx context.Context, stream string, exp eventlog.ExpectedVersion, events ...eventlog.EventData) (eventlog.AppendResult, error) {
	if err := eventlog.Validate(stream, events); err != nil {
		return eventlog.AppendResult{}, err
	}
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		meta, err := json.Marshal(e.Metadata)
		if err != nil {
			return eventlog.AppendResult{}, fmt.Errorf("kurrentdb: metadata: %w", err)
		}
		data[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeJson, Data: e.Data, Metadata: meta}
	}
	var res *esdb.WriteResult
	err := s.call(ctx, func(c *esdb.Client) error {
		var err error
		res, err = c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expected(exp), RequiresLeader: true}, data...)
		return err
	})
	if err != nil {
		return eventlog.AppendResult{}, err
	}
	return eventlog.AppendResult{NextRevision: res.NextExpectedVersion, Position: res.CommitPosition}, nil
}

func fromRecorded(r *esdb.RecordedEvent) (eventlog.RecordedEvent, error) {
	re := eventlog.RecordedEvent{StreamID: r.StreamID, Revision: r.EventNumber, Position: r.Position.Commit, ID: r.EventID,
		Type: r.EventType, Data: r.Data, RecordedAt: r.CreatedDate}
	if len(r.UserMetadata) > 0 {
		if err := json.Unmarshal(r.UserMetadata, &re.Metadata); err != nil {
			return re, domain.Wrap(domain.KindInternal, "bad_metadata", "an event's metadata does not decode", err)
		}
	}
	return re, nil
}

func system(r *esdb.RecordedEvent) bool {
	return strings.HasPrefix(r.StreamID, "$") || strings.HasPrefix(r.EventType, "$")
}

// drain reads a read stream to its end.
func drain(rs *esdb.ReadStream, keep func(*esdb.RecordedEvent) bool) ([]eventlog.RecordedEvent, error) {
	defer rs.Close()
	var out []eventlog.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if ev.Event == nil || !keep(ev.Event) {
			continue
		}
		re, err := fromRecorded(ev.Event)
		if err != nil {
			return nil, err
		}
		out = append(out, re)
	}
}

// ReadStream implements eventlog.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, dir eventlog.Direction, from uint64, limit int) ([]eventlog.RecordedEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	opts := esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from)}
	if dir == eventlog.Backwards {
		opts.Direction = esdb.Backwards
		if from == eventlog.End {
			opts.From = esdb.End{}
		}
	}
	var out []eventlog.RecordedEvent
	err := s.call(ctx, func(c *esdb.Client) error {
		rs, err := c.ReadStream(ctx, stream, opts, uint64(limit))
		if err != nil {
			return err
		}
		out, err = drain(rs, func(*esdb.RecordedEvent) bool { return true })
		return err
	})
	if errors.Is(err, eventlog.ErrStreamNotFound) {
		return nil, eventlog.ErrStreamNotFound
	}
	return out, err
}

// ReadAll implements eventlog.Store: events after the position, without
// system events.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventlog.RecordedEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []eventlog.RecordedEvent
	from := esdb.AllPosition(esdb.Start{})
	if after > 0 {
		from = esdb.Position{Commit: after, Prepare: after}
	}
	for len(out) < limit {
		var page []eventlog.RecordedEvent
		var raw int
		err := s.call(ctx, func(c *esdb.Client) error {
			rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: from}, uint64(limit-len(out)+1))
			if err != nil {
				return err
			}
			raw = 0
			page, err = drain(rs, func(r *esdb.RecordedEvent) bool {
				raw++
				return r.Position.Commit > after && !system(r)
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if len(out) < limit && e.Position > after {
				out = append(out, e)
				after = e.Position
			}
		}
		if raw <= 1 || len(page) == 0 {
			return out, nil // the end of the log
		}
		from = esdb.Position{Commit: after, Prepare: after}
	}
	return out, nil
}

// Head implements eventlog.Store: the position of the last non-system event.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	var head uint64
	err := s.call(ctx, func(c *esdb.Client) error {
		rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 64)
		if err != nil {
			return err
		}
		evs, err := drain(rs, func(r *esdb.RecordedEvent) bool { return !system(r) })
		if err == nil && len(evs) > 0 {
			head = evs[0].Position
		}
		return err
	})
	return head, err
}

// Close closes the client; subscriptions end.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.client.Close()
}

// Subscribe implements eventlog.Store: a catch-up subscription to $all,
// filtered on the server (stream prefix, or else event type) and checked
// again here, resubscribing after drops.
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventlog.Filter) (eventlog.Subscription, error) {
	if _, err := s.get(); err != nil {
		return nil, err
	}
	subCtx, cancel := context.WithCancel(context.Background())
	sub := &subscription{s: s, filter: filter, after: after, ctx: subCtx, cancel: cancel, events: make(chan eventlog.RecordedEvent, 256), done: make(chan struct{})}
	go sub.pump()
	return sub, nil
}

type subscription struct {
	s      *Store
	filter eventlog.Filter
	after  uint64 // last position handed to events
	ctx    context.Context
	cancel context.CancelFunc
	events chan eventlog.RecordedEvent
	done   chan struct{}
	err    error
	once   sync.Once
}

func (sub *subscription) options() esdb.SubscribeToAllOptions {
	o := esdb.SubscribeToAllOptions{From: esdb.Start{}}
	if sub.after > 0 {
		o.From = esdb.Position{Commit: sub.after, Prepare: sub.after}
	}
	switch {
	case len(sub.filter.StreamPrefixes) > 0:
		o.Filter = &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: sub.filter.StreamPrefixes}
	case len(sub.filter.EventTypes) > 0:
		o.Filter = &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: sub.filter.EventTypes}
	}
	return o
}

// pump receives from the client's subscription, resubscribing after drops,
// until Close.
func (sub *subscription) pump() {
	defer close(sub.done)
	backoff := 50 * time.Millisecond
	for sub.ctx.Err() == nil {
		c, err := sub.s.get()
		if err != nil {
			sub.err = err
			return
		}
		es, err := c.SubscribeToAll(sub.ctx, sub.options())
		if err != nil {
			if _, code := classify(err); code == esdb.ErrorCodeConnectionClosed {
				sub.s.replace(c)
			}
			if !sub.sleep(&backoff) {
				return
			}
			continue
		}
		backoff = 50 * time.Millisecond
		dropped := sub.receive(es)
		_ = es.Close()
		if !dropped || !sub.sleep(&backoff) {
			return
		}
	}
}

// receive forwards events until the subscription drops (true) or closes.
func (sub *subscription) receive(es *esdb.Subscription) bool {
	for {
		ev := es.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			if sub.ctx.Err() != nil {
				return false
			}
			if st, ok := status.FromError(ev.SubscriptionDropped.Error); ok && st.Code() == codes.PermissionDenied {
				sub.err = domain.Wrap(domain.KindUnavailable, eventlog.ErrUnavailable.Code, eventlog.ErrUnavailable.Message, ev.SubscriptionDropped.Error)
				return false
			}
			return true
		case ev.EventAppeared != nil && ev.EventAppeared.Event != nil:
			r := ev.EventAppeared.Event
			if r.Position.Commit <= sub.after || system(r) || !sub.filter.Match(r.StreamID, r.EventType) {
				continue
			}
			re, err := fromRecorded(r)
			if err != nil {
				sub.err = err
				return false
			}
			select {
			case sub.events <- re:
				sub.after = re.Position
			case <-sub.ctx.Done():
				return false
			}
		}
	}
}

// sleep waits the backoff (capped, with jitter) and doubles it.
func (sub *subscription) sleep(backoff *time.Duration) bool {
	d := *backoff/2 + time.Duration(rand.Int64N(int64(*backoff)))
	*backoff = min(*backoff*2, sub.s.opts.MaxBackoff)
	select {
	case <-time.After(d):
		return true
	case <-sub.ctx.Done():
		return false
	}
}

// Next implements eventlog.Subscription.
func (sub *subscription) Next(ctx context.Context) (eventlog.RecordedEvent, error) {
	select {
	case e := <-sub.events:
		return e, nil
	case <-ctx.Done():
		return eventlog.RecordedEvent{}, ctx.Err()
	case <-sub.done:
		select {
		case e := <-sub.events:
			return e, nil
		default:
		}
		if sub.err != nil {
			return eventlog.RecordedEvent{}, sub.err
		}
		if sub.ctx.Err() != nil {
			return eventlog.RecordedEvent{}, context.Canceled
		}
		return eventlog.RecordedEvent{}, eventlog.ErrClosed
	}
}

// Close implements eventlog.Subscription.
func (sub *subscription) Close() error {
	sub.once.Do(func() {
		sub.cancel()
		<-sub.done
	})
	return nil
}
