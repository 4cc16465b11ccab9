// Package projections turns the event log into read models: caseloads, case
// detail and history, response monitoring, the subject index, organisations,
// the audit trail.
//
// Each projection is a deterministic apply function over decoded events. Only
// open work is held in memory (open cases, caseload indexes, monitoring
// rows); history (closed cases, the audit trail, subjects) lives in the
// read-model store (ReadStore, one per replica), written in batches that
// carry each read model's checkpoint, so a restart loads the open work and
// catches up from the checkpoints instead of replaying the log. A read
// model whose code version changed, or whose checkpoint does not name the
// log's own event there (another log), is rebuilt from position 0.
//
// A Runner feeds them from a catch-up subscription to the log. Delivery is at
// least once, so the runner applies an event only when its position is past
// the read model's checkpoint: replays and duplicates change nothing. It
// applies events in batches: the in-memory part under its write lock, a few
// hundred events at a time, then one write of the batch to the store outside
// the lock. Queries never read the log; they read projections under the
// runner's read lock and can wait for a position (WaitFor) to read their own
// writes; the position advances once a batch is written.
//
// Projections hold personal data only as ciphertext (domain.Sealed).
package projections

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// Envelope is a decoded event with where and when it was stored.
type Envelope struct {
	Position uint64
	Stream   string
	Revision uint64
	Event    domain.Event
	Meta     eventlog.Metadata
	At       time.Time // occurred-at from the metadata, else the commit time
}

// Projection is a read model. Apply must be deterministic and must not fail:
// the runner calls it once per event, in log order, under its write lock.
type Projection interface {
	Apply(e Envelope)
}

// Decode turns a recorded event into an envelope. It returns KindInternal
// errors for events that do not decode.
func Decode(reg *domain.Registry, re eventlog.RecordedEvent) (Envelope, error) {
	ev, err := reg.DecodeVersion(re.Type, re.Metadata.SchemaVersion, re.Data)
	if err != nil {
		return Envelope{}, err
	}
	at := re.Metadata.OccurredAt
	if at.IsZero() {
		at = re.RecordedAt
	}
	return Envelope{Position: re.Position, Stream: re.StreamID, Revision: re.Revision, Event: ev, Meta: re.Metadata, At: at.UTC()}, nil
}

// Runner applies the log to a set of projections.
type Runner struct {
	store eventlog.Store
	reg   *domain.Registry
	projs []Projection

	rs       ReadStore
	batch    Batch
	models   []model
	modelPos []uint64 // each model's checkpoint; touched by the applying goroutine only
	isModel  []int    // per projection: its index in models, or -1

	mu      sync.RWMutex
	pos     atomic.Uint64
	applied atomic.Uint64 // events applied since start, for metrics
	lastAt  atomic.Int64  // commit time (unix nanos) of the last applied event
	writes  atomic.Uint64 // batches written to the store

	applyMu sync.Mutex // one applier at a time (Run, or Apply in tests)

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced when pos advances

	caughtUp atomic.Bool
	failed   atomic.Pointer[error]
	// broken is set when a batch was applied in memory but not written:
	// the memory is then ahead of the store, and only Open (which reloads
	// it from the store) makes the runner usable again.
	broken error
}

// NewRunner returns a runner over the projections, keeping their state in
// a fresh memory store (Open attaches an on-disk one); call Run to start it.
func NewRunner(store eventlog.Store, reg *domain.Registry, projs ...Projection) *Runner {
	r := &Runner{store: store, reg: reg, projs: projs, notify: make(chan struct{})}
	for _, p := range projs {
		if m, ok := p.(model); ok {
			r.isModel = append(r.isModel, len(r.models))
			r.models = append(r.models, m)
		} else {
			r.isModel = append(r.isModel, -1)
		}
	}
	r.modelPos = make([]uint64, len(r.models))
	if err := r.attach(NewMemoryStore()); err != nil {
		panic(fmt.Sprintf("projections: an empty memory store: %v", err)) // never: nothing to load
	}
	return r
}

// Run catches up with the log and follows it until ctx ends. It returns
// ctx's error, or the first failure of the subscription, of decoding or of
// the read-model store.
func (r *Runner) Run(ctx context.Context) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if r.broken != nil {
		return r.broken
	}
	err := r.run(ctx)
	if err != nil && ctx.Err() == nil {
		r.failed.Store(&err)
	}
	return err
}

// maxLiveBatch bounds the events of one batch taken from the subscription.
const maxLiveBatch = 2048

func (r *Runner) run(ctx context.Context) error {
	head, err := r.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("projections: head: %w", err)
	}
	if head > r.pos.Load() {
		if err := r.catchUp(ctx, head); err != nil {
			return err
		}
	}
	r.caughtUp.Store(true)
	sub, err := r.store.Subscribe(ctx, r.pos.Load(), eventlog.Filter{})
	if err != nil {
		return fmt.Errorf("projections: subscribe: %w", err)
	}
	defer sub.Close()
	// Decoding (JSON) runs in its own goroutine, ahead of applying.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	decodedc := make(chan decoded, 4096)
	go func() {
		defer close(decodedc)
		for {
			re, err := sub.Next(ctx)
			d := decoded{re: re, err: err}
			if err == nil {
				d.env, d.err = r.decode(re)
			}
			select {
			case decodedc <- d:
			case <-ctx.Done():
				return
			}
			if d.err != nil {
				return
			}
		}
	}()
	recs := make([]eventlog.RecordedEvent, 0, maxLiveBatch)
	envs := make([]Envelope, 0, maxLiveBatch)
	for d := range decodedc {
		// Take what else is waiting: under load, batches grow while the
		// previous one is written, and one write carries many events.
		recs, envs = recs[:0], envs[:0]
	more:
		for {
			if d.err != nil {
				if len(recs) > 0 {
					if err := r.applyBatch(recs, envs); err != nil {
						return err
					}
				}
				return d.err
			}
			recs, envs = append(recs, d.re), append(envs, d.env)
			if len(recs) == maxLiveBatch {
				break
			}
			select {
			case next, ok := <-decodedc:
				if !ok {
					break more
				}
				d = next
			default:
				break more
			}
		}
		if err := r.applyBatch(recs, envs); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// catchUp replays the log up to head in pages: a reader goroutine reads and
// decodes each page (splitting the JSON decoding over the cores) while the
// previous page is applied. Live events then come from the subscription.
func (r *Runner) catchUp(ctx context.Context, head uint64) error {
	const pageSize = 4096
	type page struct {
		envs []Envelope
		recs []eventlog.RecordedEvent
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan page, 2)
	go func() {
		defer close(pages)
		after := r.pos.Load()
		workers := max(1, runtime.GOMAXPROCS(0))
		for after < head {
			recs, err := r.store.ReadAll(ctx, after, pageSize)
			if err == nil && len(recs) == 0 {
				err = fmt.Errorf("projections: the log ends at %d before its head %d", after, head)
			}
			p := page{recs: recs, err: err, envs: make([]Envelope, len(recs))}
			if err == nil {
				var wg sync.WaitGroup
				errs := make([]error, workers)
				chunk := (len(recs) + workers - 1) / workers
				for w := 0; w < workers; w++ {
					lo, hi := w*chunk, min((w+1)*chunk, len(recs))
					if lo >= hi {
						continue
					}
					wg.Add(1)
					go func(w, lo, hi int) {
						defer wg.Done()
						for i := lo; i < hi; i++ {
							if p.envs[i], errs[w] = r.decode(recs[i]); errs[w] != nil {
								return
							}
						}
					}(w, lo, hi)
				}
				wg.Wait()
				p.err = errors.Join(errs...)
				after = recs[len(recs)-1].Position
			}
			select {
			case pages <- p:
			case <-ctx.Done():
				return
			}
			if p.err != nil {
				return
			}
		}
	}()
	for p := range pages {
		if p.err != nil {
			return p.err
		}
		if err := r.applyBatch(p.recs, p.envs); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

type decoded struct {
	re  eventlog.RecordedEvent
	env Envelope
	err error
}

// decode decodes a registered event; others (from newer code) are skipped
// with an empty envelope.
func (r *Runner) decode(re eventlog.RecordedEvent) (Envelope, error) {
	if !r.reg.Known(re.Type) {
		return Envelope{}, nil
	}
	env, err := Decode(r.reg, re)
	if err != nil {
		return Envelope{}, fmt.Errorf("projections: event at %d: %w", re.Position, err)
	}
	return env, nil
}

// Apply applies one recorded event, in a batch of its own, if it is past
// the last applied position. It is exported so tests can deliver events
// directly (and twice); it must not run beside Run.
func (r *Runner) Apply(re eventlog.RecordedEvent) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if r.broken != nil {
		return r.broken
	}
	if re.Position <= r.pos.Load() {
		return nil
	}
	env, err := r.decode(re)
	if err != nil {
		return err
	}
	return r.applyBatch([]eventlog.RecordedEvent{re}, []Envelope{env})
}

// lockedChunk bounds the events applied in memory under one hold of the
// write lock, so readers wait for at most that many.
const lockedChunk = 256

// applyBatch applies the events past the last applied position, in log
// order: in memory under the write lock, lockedChunk events at a time; then
// it writes the batch (every read model's changes, checkpoint and the log
// mark) to the store in one atomic write, outside the lock; then, under the
// lock again, the read models drop from memory what now lives on disk and
// the position advances. A failed write fails the runner: the memory is
// then ahead of the store, which a restart resumes from.
func (r *Runner) applyBatch(recs []eventlog.RecordedEvent, envs []Envelope) error {
	from := r.pos.Load()
	first := 0
	for first < len(recs) && recs[first].Position <= from {
		first++
	}
	recs, envs = recs[first:], envs[first:]
	// Positions must increase within the batch too (a redelivery inside it).
	n := 0
	for i := range recs {
		if n > 0 && recs[i].Position <= recs[n-1].Position {
			continue
		}
		recs[n], envs[n] = recs[i], envs[i]
		n++
	}
	recs, envs = recs[:n], envs[:n]
	if len(recs) == 0 {
		return nil
	}
	for lo := 0; lo < len(recs); lo += lockedChunk {
		hi := min(lo+lockedChunk, len(recs))
		r.mu.Lock()
		for i := lo; i < hi; i++ {
			env := envs[i]
			if env.Event == nil {
				continue
			}
			for j, p := range r.projs {
				if m := r.isModel[j]; m >= 0 && env.Position <= r.modelPos[m] {
					continue // this read model had it before a restart
				}
				p.Apply(env)
			}
		}
		r.mu.Unlock()
	}
	last := recs[len(recs)-1]
	if err := r.write(recs, from); err != nil {
		r.broken = err
		return err
	}
	r.mu.Lock()
	for _, m := range r.models {
		m.committed()
	}
	r.pos.Store(last.Position)
	r.mu.Unlock()
	r.applied.Add(uint64(len(recs)))
	r.lastAt.Store(last.RecordedAt.UnixNano())
	r.notifyMu.Lock()
	close(r.notify)
	r.notify = make(chan struct{})
	r.notifyMu.Unlock()
	return nil
}

// Position returns the position of the last applied event.
func (r *Runner) Position() uint64 { return r.pos.Load() }

// Applied returns how many events were applied since start.
func (r *Runner) Applied() uint64 { return r.applied.Load() }

// Writes returns how many batches were written to the read-model store.
func (r *Runner) Writes() uint64 { return r.writes.Load() }

// LastCommitted returns the commit time of the last applied event.
func (r *Runner) LastCommitted() time.Time {
	n := r.lastAt.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// CaughtUp reports whether the runner has applied the log as it was at start.
func (r *Runner) CaughtUp() bool { return r.caughtUp.Load() && r.failed.Load() == nil }

// Err returns the failure that stopped the runner, nil while it runs.
func (r *Runner) Err() error {
	if f := r.failed.Load(); f != nil {
		return *f
	}
	return nil
}

// ErrBehind is returned by WaitFor when projections did not reach a position in time.
var ErrBehind = &domain.Error{Kind: domain.KindUnavailable, Code: "projections_behind", Message: "the data is not up to date yet; try again shortly"}

// WaitFor blocks until the projections have applied position pos, ctx ends
// (ErrBehind), or the runner failed.
func (r *Runner) WaitFor(ctx context.Context, pos uint64) error {
	for {
		r.notifyMu.Lock()
		ch := r.notify
		r.notifyMu.Unlock()
		if r.pos.Load() >= pos {
			return nil
		}
		if f := r.failed.Load(); f != nil {
			return errors.Join(ErrBehind, *f)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ErrBehind
		}
	}
}

// CatchUp waits (at most timeout) until the projections have applied the
// log as it is now. It reports whether they had been behind and caught up:
// callers that missed something in a projection look once more only then.
func (r *Runner) CatchUp(ctx context.Context, timeout time.Duration) bool {
	head, err := r.store.Head(ctx)
	if err != nil || r.pos.Load() >= head {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.WaitFor(ctx, head) == nil
}

// Current reports whether the projections hold the log as it is now,
// waiting at most timeout for them to get there: a caller about to act on
// something a projection does not hold (drop a notification whose target
// it does not know) asks first, since the projection may not have read it
// yet.
func (r *Runner) Current(ctx context.Context, timeout time.Duration) bool {
	head, err := r.store.Head(ctx)
	if err != nil {
		return false
	}
	if r.pos.Load() >= head {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.WaitFor(ctx, head) == nil
}

// Read runs fn under the read lock, so it sees all projections at one position.
func (r *Runner) Read(fn func()) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn()
}
