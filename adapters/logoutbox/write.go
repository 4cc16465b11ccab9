package logoutbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// The write path: group commit, fencing by expected revision, and the
// segments' rolling.

// op is one write waiting for an append.
type op struct {
	fenced bool // only the owner may write it
	decide func(b *batch) error
	done   chan error
}

// write decides and appends one write, together with the writes of other
// callers waiting meanwhile (group commit).
func (o *Outbox) write(ctx context.Context, fenced bool, decide func(b *batch) error) error {
	w := &op{fenced: fenced, decide: decide, done: make(chan error, 1)}
	o.qmu.Lock()
	o.queue = append(o.queue, w)
	o.qmu.Unlock()
	o.io.Lock()
	select {
	case err := <-w.done: // a flusher before us took it
		o.io.Unlock()
		return err
	default:
	}
	o.qmu.Lock()
	ops := o.queue
	o.queue = nil
	o.qmu.Unlock()
	o.mu.Lock()
	closed := o.closed
	o.mu.Unlock()
	if closed {
		for _, p := range ops {
			p.done <- ErrClosed
		}
	} else {
		_ = o.flush(ctx, ops)
	}
	o.io.Unlock()
	return <-w.done
}

// flush decides ops against the state, with the removals Done kept back,
// and appends their events with the expected revision; on a conflict it
// reads what it missed and decides again. The state changes only once the
// append succeeded. It answers every op, and returns the append's error
// (ErrFenced when the removals kept back were dropped). o.io is held.
func (o *Outbox) flush(ctx context.Context, ops []*op) error {
	results := make([]error, len(ops))
	answer := func(err error) error {
		for i, p := range ops {
			if err != nil {
				p.done <- err
			} else {
				p.done <- results[i]
			}
		}
		return err
	}
	for attempt := 1; ; attempt++ {
		if err := o.fresh(ctx, attempt > 1); err != nil {
			return answer(err)
		}
		o.mu.Lock()
		b := newBatch(o)
		if !o.at.exists { // a new segment starts with the snapshot
			b.items = o.st.snapshot()
		}
		first := len(b.items)
		var dropped error
		if len(o.lazy) > 0 {
			if o.owner() {
				var ids []string
				for _, id := range o.lazy {
					if _, ok := o.st.pending[id]; ok {
						ids = append(ids, id)
					}
				}
				if len(ids) > 0 {
					b.emit(domain.OutboxDone{IDs: ids})
				}
				b.lazy = len(o.lazy)
			} else { // fenced: the new owner sends them again
				o.lazy, o.hidden, dropped = nil, map[string]bool{}, domain.ErrFenced
			}
		}
		for i, p := range ops {
			if p.fenced && !b.owner() {
				results[i] = domain.ErrFenced
				continue
			}
			results[i] = p.decide(b)
		}
		at := o.at
		o.mu.Unlock()
		if len(b.items) == first {
			o.mu.Lock()
			o.takeLazy(b.lazy)
			o.mu.Unlock()
			answer(nil)
			return dropped
		}
		events, err := o.encode(b.items)
		if err != nil {
			return answer(err)
		}
		expected := eventlog.NoStream()
		if at.exists {
			expected = eventlog.Revision(at.rev)
		}
		res, err := o.store.Append(ctx, Stream(o.name, at.segNo), expected, events...)
		if err == nil {
			o.mu.Lock()
			for _, it := range b.items[first:] {
				o.st.apply(it.id, it.ev)
			}
			if b.claim != uuid.Nil {
				o.myClaim = b.claim
			}
			if !o.at.exists {
				o.at.segLen = 0
			}
			o.at.exists, o.at.rev = true, res.NextRevision
			o.at.segLen += len(events)
			o.takeLazy(b.lazy)
			o.mu.Unlock()
			answer(nil)
			o.roll(ctx)
			return dropped
		}
		if !errors.Is(err, eventlog.ErrWrongExpectedVersion) || attempt == maxAttempts {
			// An append that failed otherwise may still have been written:
			// the next call rereads the segment.
			o.mu.Lock()
			o.loaded = false
			o.mu.Unlock()
			return answer(fmt.Errorf("outbox: append: %w", err))
		}
		if attempt > 2 { // contended: let the others through
			time.Sleep(time.Duration(rand.IntN(attempt*2)+1) * time.Millisecond)
		}
	}
}

// takeLazy forgets the first n removals kept back, now written; o.mu is
// held.
func (o *Outbox) takeLazy(n int) {
	if n == 0 {
		return
	}
	for _, id := range o.lazy[:n] {
		delete(o.hidden, id)
	}
	o.lazy = slices.Delete(o.lazy, 0, n)
}

// fresh makes the state the store's: a reload when it is not, and when
// catchUp (after a conflict) what the stream gained. o.io is held.
func (o *Outbox) fresh(ctx context.Context, catchUp bool) error {
	o.mu.Lock()
	loaded := o.loaded
	o.mu.Unlock()
	if !loaded {
		return o.reload(ctx)
	}
	if catchUp {
		return o.catchUp(ctx)
	}
	return nil
}

// roll seals a full segment and starts the next with a snapshot. A failure
// leaves the state to be reloaded: the next write finds the head again.
// o.io is held.
func (o *Outbox) roll(ctx context.Context) {
	o.mu.Lock()
	at, owner := o.at, o.owner()
	o.mu.Unlock()
	if at.segLen < o.opts.SegmentEvents || !owner {
		return
	}
	fail := func(what string, err error) {
		o.mu.Lock()
		o.loaded = false
		o.mu.Unlock()
		o.opts.Log.Warn("outbox: "+what, "outbox", o.name, "segment", at.segNo, "err", err)
	}
	next := at.segNo + 1
	sealed, err := o.encode([]item{{id: uuid.New(), ev: domain.OutboxSealed{Next: Stream(o.name, next)}}})
	if err == nil {
		_, err = o.store.Append(ctx, Stream(o.name, at.segNo), eventlog.Revision(at.rev), sealed...)
	}
	if err != nil {
		fail("sealing a segment", err)
		return
	}
	o.mu.Lock()
	o.at = head{segNo: next}
	snap, err := o.encode(o.st.snapshot())
	o.mu.Unlock()
	if err == nil {
		var res eventlog.AppendResult
		if res, err = o.store.Append(ctx, Stream(o.name, next), eventlog.NoStream(), snap...); err == nil {
			o.mu.Lock()
			o.at = head{segNo: next, exists: true, rev: res.NextRevision, segLen: len(snap)}
			o.mu.Unlock()
			return
		}
	}
	fail("starting a segment", err)
}

// item is an event of a batch with its id.
type item struct {
	id uuid.UUID
	ev domain.Event
}

// batch collects the events of one append. The state stays as the store
// has it until the append succeeds; what later ops of the batch must see of
// earlier ones is kept here.
type batch struct {
	o       *Outbox
	items   []item
	lazy    int                        // the removals kept back that it writes
	claim   uuid.UUID                  // the batch claims the outbox
	queued  map[string]bool            // ids enqueued
	failed  map[string]domain.Delivery // dead-lettered
	retried map[string]bool            // retried
}

func newBatch(o *Outbox) *batch {
	return &batch{o: o, queued: map[string]bool{}, failed: map[string]domain.Delivery{}, retried: map[string]bool{}}
}

// owner reports whether the handle owns the outbox once the batch is
// written; o.mu is held.
func (b *batch) owner() bool { return b.claim != uuid.Nil || b.o.owner() }

func (b *batch) emit(ev domain.Event) uuid.UUID {
	id := uuid.New()
	b.items = append(b.items, item{id: id, ev: ev})
	return id
}

// encode turns items into events to append, merging consecutive dones.
func (o *Outbox) encode(items []item) ([]eventlog.EventData, error) {
	var out []eventlog.EventData
	now := o.opts.Now().UTC()
	for i := 0; i < len(items); i++ {
		it := items[i]
		if done, ok := it.ev.(domain.OutboxDone); ok {
			ids := slices.Clone(done.IDs)
			for i+1 < len(items) && len(ids) < 2000 {
				next, ok := items[i+1].ev.(domain.OutboxDone)
				if !ok {
					break
				}
				ids = append(ids, next.IDs...)
				i++
			}
			it.ev = domain.OutboxDone{IDs: ids}
		}
		data, err := domain.Encode(it.ev)
		if err != nil {
			return nil, err
		}
		out = append(out, eventlog.EventData{ID: it.id, Type: it.ev.EventType(), Data: data, Metadata: eventlog.Metadata{
			OccurredAt: now, ActorID: o.actor, ActorRole: "system", SchemaVersion: domain.VersionOf(it.ev),
		}})
	}
	if len(out) > eventlog.MaxAppendEvents {
		return nil, fmt.Errorf("outbox: %d events in one append, over the limit of %d", len(out), eventlog.MaxAppendEvents)
	}
	return out, nil
}

// queuedEvents splits an enqueue into events of at most maxPartBytes; the
// marks and the checkpoint go with the last.
func queuedEvents(ds []domain.Delivery, marks []string, checkpoint *uint64) []domain.Event {
	var (
		out  []domain.Event
		cur  domain.OutboxQueued
		size int
	)
	flush := func() {
		out = append(out, cur)
		cur, size = domain.OutboxQueued{}, 0
	}
	for _, d := range ds {
		n := deliverySize(d)
		if size+n > maxPartBytes && size > 0 {
			flush()
		}
		cur.Deliveries = append(cur.Deliveries, d)
		size += n
	}
	for _, m := range marks {
		if size+len(m)+4 > maxPartBytes && size > 0 {
			flush()
		}
		cur.Marks = append(cur.Marks, m)
		size += len(m) + 4
	}
	cur.Checkpoint = checkpoint
	flush()
	return out
}

// deliverySize is an upper bound of a delivery's encoded size.
func deliverySize(d domain.Delivery) int {
	n := d.Notification
	return 400 + len(n.ID) + len(n.Kind) + len(n.Signal) + len(n.Team) + len(n.Org) + len(n.Referral) + len(n.Code) + len(n.Link) +
		len(n.Network) + len(d.TargetID) + len(d.Channel) + len(d.Error)
}
