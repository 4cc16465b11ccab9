// Package loglease is the lease port (domain.Lease) on the event log: one
// stream per lease, lease-<name>, that only the holder appends to.
//
// # Protocol
//
//   - A contender reads the stream's last event every PollEvery. The lease
//     is free when the stream is empty, when its last event is
//     LeaseReleased, or when the contender has seen the same last event for
//     the TTL the holder declared. It then appends LeaseAcquired with the
//     next term and the expected revision it read: of several contenders,
//     exactly one append succeeds.
//   - The holder appends LeaseRenewed every RenewEvery, each with the
//     revision it wrote last. A renewal that meets another revision means
//     the lease was taken over: the term is lost at once. A holder that has
//     not renewed successfully for RenewDeadline (counted from the start of
//     its last successful renewal) gives the term up by itself.
//   - LeaseReleased hands the lease over at once (a clean shutdown).
//
// # Clocks
//
// No clock is compared across machines. A contender measures on its own
// clock how long it has seen the lease unchanged; the holder measures on
// its own clock how long ago its last successful renewal began. A
// contender first sees a renewal after that renewal began, so it takes over
// at least TTL after the holder's last successful renewal began, while the
// holder has stopped at RenewDeadline (default 13 s, against a TTL of 20
// s): the 7 s between them absorb the holder's stopping and any difference
// in the two clocks' rates. Only rates matter, and computer clocks agree
// on rates to within a fraction of a percent; a clock stepped by NTP does
// not matter either, since durations use Go's monotonic clock. The store's
// recorded times are not used.
//
// The lease alone does not make a deposed holder harmless: a process
// frozen past its deadline (a long pause, a stalled disk) may wake up and
// act before it notices. What it writes is fenced by the expected versions
// of its own streams (domain.Outbox.Claim), so the worst it does is send a
// notification its successor also sends, under the same idempotency key.
//
// # Takeover time
//
// With the defaults (TTL 20 s, RenewEvery 6 s, PollEvery 2 s) a holder that
// dies is replaced 20 to 24 s after its last renewal, 14 to 24 s after it
// died, plus the new holder's start-up. A restarted process of the same replica (the same
// replica name, a new process id) takes the lease over at once on its
// first Acquire: replica names are unique, so the holder is its own dead
// predecessor.
//
// Each renewal is an event in the log: about 14,400 a day with the
// defaults, which every replica's projections read and skip.
package loglease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// Defaults of Options.
const (
	DefaultTTL           = 20 * time.Second
	DefaultRenewEvery    = 6 * time.Second
	DefaultRenewDeadline = 13 * time.Second
	DefaultPollEvery     = 2 * time.Second
)

// Clock is the lease's time: durations measured on it, and timers.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options tune a lease. Replica is required.
type Options struct {
	// Replica names this replica; the holder is "<replica>/<random id of
	// the process>".
	Replica string
	// TTL: a contender takes over a lease it has seen unchanged this long
	// (default 20 s). The holder declares it in its events.
	TTL time.Duration
	// RenewEvery is the time between renewals (default 6 s).
	RenewEvery time.Duration
	// RenewDeadline: the holder gives the term up when it has not renewed
	// for this long (default 13 s). It must be well below TTL.
	RenewDeadline time.Duration
	// PollEvery is the time between a contender's reads (default 2 s).
	PollEvery time.Duration
	// Clock measures the durations (default: the real clock).
	Clock Clock
	// Log receives the lease's changes (nil: discarded).
	Log *slog.Logger
}

// Lease is a lease on the event log. It is safe for concurrent use; a
// process holds at most one term of it at a time.
type Lease struct {
	store  eventlog.Store
	name   string
	opts   Options
	holder string

	mu      sync.Mutex
	started bool // the first Acquire began: no more reclaiming at once
}

var _ domain.Lease = (*Lease)(nil)

// New returns the lease called name, for this process. It panics when
// RenewDeadline is not below TTL or Replica is empty (programming errors).
func New(store eventlog.Store, name string, opts Options) *Lease {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.RenewEvery <= 0 {
		opts.RenewEvery = DefaultRenewEvery
	}
	if opts.RenewDeadline <= 0 {
		opts.RenewDeadline = DefaultRenewDeadline
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = DefaultPollEvery
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RenewDeadline >= opts.TTL || opts.RenewEvery >= opts.RenewDeadline || opts.Replica == "" || strings.Contains(opts.Replica, "/") {
		panic("loglease: want RenewEvery < RenewDeadline < TTL and a replica name without '/'")
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	return &Lease{store: store, name: name, opts: opts, holder: opts.Replica + "/" + hex.EncodeToString(id[:])}
}

// Holder names this process as a holder.
func (l *Lease) Holder() string { return l.holder }

// observed is the lease as a contender last read it.
type observed struct {
	exists   bool
	rev      uint64
	holder   string
	term     uint64
	released bool
	ttl      time.Duration
}

// Acquire waits until the lease is free, takes it and keeps it renewed.
func (l *Lease) Acquire(ctx context.Context) (domain.LeaseTerm, error) {
	l.mu.Lock()
	reclaim := !l.started
	l.started = true
	l.mu.Unlock()
	var (
		seen   observed
		seenAt time.Time
		wait   time.Duration
	)
	for {
		if wait > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-l.opts.Clock.After(wait):
			}
		}
		wait = l.opts.PollEvery
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cur, err := l.read(ctx)
		if err != nil {
			if errors.Is(err, eventlog.ErrClosed) {
				return nil, err
			}
			l.opts.Log.Debug("lease: read", "lease", l.name, "err", err)
			continue
		}
		now := l.opts.Clock.Now()
		if !cur.exists || cur.rev != seen.rev || !seen.exists {
			seenAt = now
		}
		seen = cur
		free := !cur.exists || cur.released || now.Sub(seenAt) >= cur.ttl ||
			reclaim && replicaOf(cur.holder) == l.opts.Replica && cur.holder != l.holder
		if !free {
			continue
		}
		start := l.opts.Clock.Now()
		term := cur.term + 1
		expected := eventlog.NoStream()
		if cur.exists {
			expected = eventlog.Revision(cur.rev)
		}
		res, err := l.append(ctx, expected, domain.LeaseAcquired{Holder: l.holder, Replica: l.opts.Replica, Term: term, TTLms: l.opts.TTL.Milliseconds()})
		switch {
		case err == nil:
			l.opts.Log.Info("lease acquired", "lease", l.name, "holder", l.holder, "term", term, "from", cur.holder)
			return l.hold(ctx, term, res.NextRevision, start), nil
		case errors.Is(err, eventlog.ErrWrongExpectedVersion):
			wait = 0 // someone else was quicker: look again
		case errors.Is(err, eventlog.ErrClosed):
			return nil, err
		default:
			l.opts.Log.Debug("lease: acquire", "lease", l.name, "err", err)
		}
	}
}

func replicaOf(holder string) string {
	r, _, _ := strings.Cut(holder, "/")
	return r
}

// read returns the lease's last event.
func (l *Lease) read(ctx context.Context) (observed, error) {
	res, err := l.store.ReadStream(ctx, domain.LeaseStream(l.name), eventlog.Backwards, eventlog.End, 1)
	if errors.Is(err, eventlog.ErrStreamNotFound) || err == nil && len(res) == 0 {
		return observed{}, nil
	}
	if err != nil {
		return observed{}, err
	}
	re := res[0]
	o := observed{exists: true, rev: re.Revision, ttl: l.opts.TTL}
	switch re.Type {
	case "LeaseAcquired":
		var e domain.LeaseAcquired
		err = json.Unmarshal(re.Data, &e)
		o.holder, o.term = e.Holder, e.Term
		if e.TTLms > 0 {
			o.ttl = e.TTL()
		}
	case "LeaseRenewed":
		var e domain.LeaseRenewed
		err = json.Unmarshal(re.Data, &e)
		o.holder, o.term = e.Holder, e.Term
		if e.TTLms > 0 {
			o.ttl = time.Duration(e.TTLms) * time.Millisecond
		}
	case "LeaseReleased":
		var e domain.LeaseReleased
		err = json.Unmarshal(re.Data, &e)
		o.holder, o.term, o.released = e.Holder, e.Term, true
	default:
		err = fmt.Errorf("unexpected event %s", re.Type)
	}
	if err != nil {
		return observed{}, fmt.Errorf("lease %s: %w", l.name, err)
	}
	return o, nil
}

func (l *Lease) append(ctx context.Context, expected eventlog.ExpectedVersion, ev domain.Event) (eventlog.AppendResult, error) {
	data, err := domain.Encode(ev)
	if err != nil {
		return eventlog.AppendResult{}, err
	}
	return l.store.Append(ctx, domain.LeaseStream(l.name), expected, eventlog.EventData{
		ID: uuid.New(), Type: ev.EventType(), Data: data,
		Metadata: eventlog.Metadata{OccurredAt: time.Now().UTC(), ActorID: "system:lease/" + l.opts.Replica, ActorRole: "system", SchemaVersion: domain.VersionOf(ev)},
	})
}
