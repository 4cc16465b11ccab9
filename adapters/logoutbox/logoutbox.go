// Package logoutbox is the notification outbox kept in the event log, so the
// replicas of a cluster share it: the checkpoint, the pending deliveries,
// the dead letters and the marks live in the cluster, and a replica that
// takes the notifier over resumes from them. It runs on any event log
// adapter (domain/eventlog): KurrentDB in a cluster, and the embedded store
// in its tests.
//
// # Streams
//
// The outbox called name is a chain of segment streams outbox-<name>-1,
// outbox-<name>-2, ... Each segment starts with a snapshot of the whole
// state (domain.OutboxSnapshot, in parts of at most 128 KiB, in one append)
// and holds the changes since: OutboxClaimed, OutboxQueued, OutboxDone,
// OutboxFailed, OutboxRetried. The owner seals a segment that holds
// Options.SegmentEvents events (OutboxSealed naming the next) and starts the
// next with a snapshot, so a replica taking over reads one segment, never
// the whole history. Segment k+1 is only written after segment k is sealed,
// so the segments that exist are 1..K and the head is found in a few reads
// (an exponential then binary search on existence).
//
// # Fencing
//
// Every append carries the revision its handle last read (no_stream for a
// new segment). Claim appends OutboxClaimed; from then on a write of
// another handle that claimed before fails its expected revision, reloads
// the segment, finds the newer claim and answers domain.ErrFenced, and so
// does every later write of that handle: a deposed writer cannot change the
// state its successor works from. A conflict caused by anything else (an
// admin's retry through another replica) is merged: the handle reads what
// it missed and decides its writes again. Writes of one handle are
// group-committed: callers that arrive while an append is in flight share
// the next one. Done, the one write per delivery, is written behind: the
// removal is hidden from the handle at once and appended within
// Options.DoneDelay (20 ms) together with the others of that moment, as the
// local outbox does not sync it either; a crash or takeover before then
// sends the delivery again, under its key.
//
// Reads of the owner's hot paths (IsPending, Marked, Checkpoint) answer from
// memory, which the owner alone changes; Pending, DeadLetters and Count, and
// every read of a handle that is not the owner, first read what the stream
// gained since. Pending and IsPending, the delivery pool's reads, answer
// ErrFenced to a handle that is not the owner.
package logoutbox

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// DefaultSegmentEvents is the number of events after which a segment is
// sealed and the next one started.
const DefaultSegmentEvents = 4096

// maxPartBytes bounds the encoded deliveries and marks of one event, well
// under the log's limit of an event.
const maxPartBytes = 128 << 10

// maxAttempts bounds the rounds of a write whose appends keep meeting
// others' events.
const maxAttempts = 50

// Options tune an outbox. The zero value is usable.
type Options struct {
	// SegmentEvents: a segment is sealed once it holds this many events
	// (default DefaultSegmentEvents).
	SegmentEvents int
	// Replica names the writer in the events' metadata (actor
	// system:outbox/<replica>).
	Replica string
	// Now is the clock of the events' metadata (default time.Now).
	Now func() time.Time
	// Log receives warnings (nil: discarded).
	Log *slog.Logger
	// DoneDelay: a removal (Done) is written at most this long after it,
	// with whatever else is waiting (default 20 ms).
	DoneDelay time.Duration
}

// lazyMax bounds the removals a handle keeps unwritten: beyond it, Done
// writes them at once.
const lazyMax = 512

// Outbox is one handle on an outbox in the log; each replica opens its
// own. It is safe for concurrent use.
type Outbox struct {
	store eventlog.Store
	name  string
	opts  Options
	actor string

	qmu   sync.Mutex
	queue []*op

	io sync.Mutex // held while the handle reads or writes the store

	mu      sync.Mutex // guards what follows; never held across a store call
	st      state
	at      head
	loaded  bool // st is the store's state at at.rev (false: reload)
	myClaim uuid.UUID
	closed  bool
	lazy    []string        // delivered, but the removal is not written yet
	hidden  map[string]bool // the same ids: no longer pending to this handle
	timer   *time.Timer     // writes the removals kept back
}

// head is where the handle is in the chain of segments.
type head struct {
	segNo  uint64 // the head segment (from 1)
	exists bool   // it has events
	rev    uint64 // its last revision, when it exists
	segLen int    // its number of events
}

var _ domain.Outbox = (*Outbox)(nil)

// Open returns a handle on the outbox called name in store. It reads
// nothing until it is used.
func Open(store eventlog.Store, name string, opts Options) *Outbox {
	if opts.SegmentEvents <= 0 {
		opts.SegmentEvents = DefaultSegmentEvents
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.DoneDelay <= 0 {
		opts.DoneDelay = 20 * time.Millisecond
	}
	actor := "system:outbox"
	if opts.Replica != "" {
		actor += "/" + opts.Replica
	}
	return &Outbox{store: store, name: name, opts: opts, actor: actor, at: head{segNo: 1}, st: newState(), hidden: map[string]bool{}}
}

// Stream returns the name of segment k of the outbox called name.
func Stream(name string, k uint64) string {
	return domain.OutboxCategory + "-" + name + "-" + strconv.FormatUint(k, 10)
}

// ErrClosed answers calls after Close.
var ErrClosed = &domain.Error{Kind: domain.KindUnavailable, Code: "outbox_closed", Message: "the outbox is closed"}

// closeTimeout bounds writing the last removals at Close.
const closeTimeout = 5 * time.Second

// Close writes the removals Done kept back, then ends the handle (the
// store stays open: it is the caller's).
func (o *Outbox) Close() error {
	o.io.Lock()
	defer o.io.Unlock()
	o.mu.Lock()
	pending := len(o.lazy) > 0 && !o.closed
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	o.mu.Unlock()
	var err error
	if pending {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		if err = o.flush(ctx, nil); errors.Is(err, domain.ErrFenced) {
			err = nil // the new owner sends them again
		}
		cancel()
	}
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	return err
}

// owner reports whether this handle's claim is the one in force; o.mu is
// held.
func (o *Outbox) owner() bool { return o.myClaim != uuid.Nil && o.st.claim == o.myClaim }

// Claim appends OutboxClaimed: this handle writes from now on.
func (o *Outbox) Claim(ctx context.Context, owner string) error {
	return o.write(ctx, false, func(b *batch) error {
		b.claim = b.emit(domain.OutboxClaimed{Owner: owner})
		return nil
	})
}

// Checkpoint returns the last position turned into notifications.
func (o *Outbox) Checkpoint(ctx context.Context) (uint64, bool, error) {
	var (
		cp uint64
		ok bool
	)
	err := o.read(ctx, false, false, func() {
		if o.st.checkpoint != nil {
			cp, ok = *o.st.checkpoint, true
		}
	})
	return cp, ok, err
}

// Start records the first checkpoint.
func (o *Outbox) Start(ctx context.Context, pos uint64) error {
	return o.write(ctx, true, func(b *batch) error {
		b.emit(domain.OutboxQueued{Checkpoint: &pos})
		return nil
	})
}

// Marked reports whether a time-triggered notification was queued before.
func (o *Outbox) Marked(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := o.read(ctx, false, false, func() { _, ok = o.st.marks[id] })
	return ok, err
}

// Enqueue stores deliveries, marks and the checkpoint in one append.
func (o *Outbox) Enqueue(ctx context.Context, ds []domain.Delivery, marks []string, checkpoint *uint64) error {
	if len(ds) == 0 && len(marks) == 0 && checkpoint == nil {
		return nil
	}
	return o.write(ctx, true, func(b *batch) error {
		for _, ev := range queuedEvents(ds, marks, checkpoint) {
			b.emit(ev)
		}
		for _, d := range ds {
			b.queued[d.Notification.ID] = true
		}
		return nil
	})
}

// Pending returns up to limit pending deliveries, oldest first, to the
// owner (another handle gets ErrFenced). It writes the removals Done kept
// back.
func (o *Outbox) Pending(ctx context.Context, limit int) ([]domain.Delivery, error) {
	var out []domain.Delivery
	err := o.read(ctx, true, true, func() { out = o.st.list(o.st.pending, limit, o.hidden) })
	return out, err
}

// IsPending reports to the owner whether a delivery is still pending.
func (o *Outbox) IsPending(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := o.read(ctx, false, true, func() { _, ok = o.st.pending[id]; ok = ok && !o.hidden[id] })
	return ok, err
}

// Done removes a delivered (or undeliverable) delivery. Like the local
// outbox's, the removal is not durable at once: it is hidden from this
// handle now and written within DoneDelay, with the removals of other
// deliveries and whatever else is waiting (sooner with the handle's next
// write, Pending or Close). A crash or a takeover before that sends the
// delivery again, under its key. A handle that knows it is not the owner
// gets ErrFenced; one that finds out only when writing drops the removal.
func (o *Outbox) Done(ctx context.Context, id string) error {
	o.mu.Lock()
	switch {
	case o.closed:
		o.mu.Unlock()
		return ErrClosed
	case !o.owner():
		o.mu.Unlock()
		return domain.ErrFenced
	}
	if _, ok := o.st.pending[id]; ok && !o.hidden[id] {
		o.lazy = append(o.lazy, id)
		o.hidden[id] = true
		if o.timer == nil {
			o.timer = time.AfterFunc(o.opts.DoneDelay, o.writeBehind)
		}
	}
	full := len(o.lazy) >= lazyMax
	o.mu.Unlock()
	if full {
		return o.write(ctx, true, func(*batch) error { return nil })
	}
	return nil
}

// writeBehind writes the removals kept back (the timer of Done).
func (o *Outbox) writeBehind() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	o.io.Lock()
	defer o.io.Unlock()
	o.mu.Lock()
	o.timer = nil
	skip := o.closed || len(o.lazy) == 0
	o.mu.Unlock()
	if skip {
		return
	}
	if err := o.flush(ctx, nil); err != nil && !errors.Is(err, domain.ErrFenced) {
		o.opts.Log.Warn("outbox: writing removals", "outbox", o.name, "err", err)
	}
}

// Fail moves a delivery to the dead letters with its error.
func (o *Outbox) Fail(ctx context.Context, d domain.Delivery) error {
	return o.write(ctx, true, func(b *batch) error {
		b.emit(domain.OutboxFailed{Delivery: d})
		b.failed[d.Notification.ID] = d
		delete(b.retried, d.Notification.ID)
		return nil
	})
}

// DeadLetters returns up to limit dead letters, oldest first.
func (o *Outbox) DeadLetters(ctx context.Context, limit int) ([]domain.Delivery, error) {
	var out []domain.Delivery
	err := o.read(ctx, true, false, func() { out = o.st.list(o.st.dead, limit, nil) })
	return out, err
}

// Retry moves a dead letter back to the pending deliveries, through any
// handle: it is not fenced.
func (o *Outbox) Retry(ctx context.Context, id string) (domain.Delivery, error) {
	var d domain.Delivery
	err := o.write(ctx, false, func(b *batch) error {
		e, ok := o.st.dead[id]
		if f, failed := b.failed[id]; failed {
			e, ok = entry{d: f}, true
		}
		if !ok || b.retried[id] {
			return domain.ErrNoDeadLetter
		}
		d = e.d
		d.FailedAt, d.Error = time.Time{}, ""
		b.emit(domain.OutboxRetried{ID: id})
		b.retried[id] = true
		return nil
	})
	return d, err
}

// Count returns the number of pending deliveries and dead letters.
func (o *Outbox) Count(ctx context.Context) (pending, dead int, err error) {
	err = o.read(ctx, true, false, func() {
		pending, dead = len(o.st.pending), len(o.st.dead)
		for id := range o.hidden {
			if _, ok := o.st.pending[id]; ok {
				pending--
			}
		}
	})
	return pending, dead, err
}

// read runs f with o.mu held, after bringing the state up to the store
// unless this handle is the owner and fresh is false. With ownerOnly, a
// handle that is not the owner gets ErrFenced.
func (o *Outbox) read(ctx context.Context, fresh, ownerOnly bool, f func()) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return ErrClosed
	}
	sync := fresh || !o.loaded || !o.owner()
	o.mu.Unlock()
	if sync {
		o.io.Lock()
		err := o.sync(ctx)
		o.io.Unlock()
		if err != nil {
			return err
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if ownerOnly && !o.owner() {
		return domain.ErrFenced
	}
	f()
	return nil
}

// sync writes the removals kept back, or else reads what the stream
// gained; o.io is held.
func (o *Outbox) sync(ctx context.Context) error {
	o.mu.Lock()
	lazy := len(o.lazy) > 0
	o.mu.Unlock()
	if lazy {
		if err := o.flush(ctx, nil); err != nil && !errors.Is(err, domain.ErrFenced) {
			return err
		}
		return nil
	}
	return o.catchUp(ctx)
}
