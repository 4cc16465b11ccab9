// Package projections turns the event log into read models: caseloads, case
// detail and history, response monitoring, the subject index, organisations.
//
// Each projection is a pure apply function over decoded events, kept in
// memory. A Runner feeds them from a catch-up subscription to the log: at
// start-up it replays from position 0 (that is `buurtsignaal rebuild`, and
// every start), then follows live events. Delivery is at least once, so the
// runner applies an event only when its position is past the last applied one:
// replays and duplicates change nothing. Queries never read the log; they read
// projections under the runner's read lock and can wait for a position
// (WaitFor) to read their own writes.
//
// Projections hold personal data only as ciphertext (domain.Sealed); nothing
// in them is written to disk.
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

	mu      sync.RWMutex
	pos     atomic.Uint64
	applied atomic.Uint64 // events applied, for metrics
	lastAt  atomic.Int64  // commit time (unix nanos) of the last applied event

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced when pos advances

	caughtUp atomic.Bool
	failed   atomic.Pointer[error]
}

// NewRunner returns a runner over the projections; call Run to start it.
func NewRunner(store eventlog.Store, reg *domain.Registry, projs ...Projection) *Runner {
	return &Runner{store: store, reg: reg, projs: projs, notify: make(chan struct{})}
}

// Run replays the log and follows it until ctx ends. It returns ctx's error,
// or the first failure of the subscription or of decoding.
func (r *Runner) Run(ctx context.Context) error {
	err := r.run(ctx)
	if err != nil && ctx.Err() == nil {
		r.failed.Store(&err)
	}
	return err
}

func (r *Runner) run(ctx context.Context) error {
	head, err := r.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("projections: head: %w", err)
	}
	if head <= r.pos.Load() {
		r.caughtUp.Store(true)
	} else if err := r.catchUp(ctx, head); err != nil {
		return err
	}
	r.caughtUp.Store(true)
	sub, err := r.store.Subscribe(ctx, r.pos.Load(), eventlog.Filter{})
	if err != nil {
		return fmt.Errorf("projections: subscribe: %w", err)
	}
	defer sub.Close()
	// Decoding (JSON) runs in its own goroutine, ahead of applying: on a
	// replay the two share the machine's cores.
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
	for d := range decodedc {
		if d.err != nil {
			return d.err
		}
		r.apply(d.re, d.env)
		if !r.caughtUp.Load() && d.re.Position >= head {
			r.caughtUp.Store(true)
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
		r.applyPage(p.recs, p.envs)
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

// Apply applies one recorded event if it is past the last applied position.
// It is exported so tests can deliver events directly (and twice).
func (r *Runner) Apply(re eventlog.RecordedEvent) error {
	if re.Position <= r.pos.Load() {
		return nil
	}
	env, err := r.decode(re)
	if err != nil {
		return err
	}
	r.apply(re, env)
	return nil
}

// apply applies a decoded event if it is past the last applied position:
// delivery is at least once.
func (r *Runner) apply(re eventlog.RecordedEvent, env Envelope) {
	if re.Position <= r.pos.Load() {
		return
	}
	r.mu.Lock()
	if env.Event != nil {
		for _, p := range r.projs {
			p.Apply(env)
		}
	}
	r.pos.Store(re.Position)
	r.mu.Unlock()
	r.applied.Add(1)
	r.lastAt.Store(re.RecordedAt.UnixNano())
	r.notifyMu.Lock()
	close(r.notify)
	r.notify = make(chan struct{})
	r.notifyMu.Unlock()
}

// applyPage applies a page of decoded events under one lock and wakes
// waiters once.
func (r *Runner) applyPage(recs []eventlog.RecordedEvent, envs []Envelope) {
	if len(recs) == 0 {
		return
	}
	r.mu.Lock()
	n := 0
	for i, re := range recs {
		if re.Position <= r.pos.Load() {
			continue
		}
		if env := envs[i]; env.Event != nil {
			for _, p := range r.projs {
				p.Apply(env)
			}
		}
		r.pos.Store(re.Position)
		n++
	}
	r.mu.Unlock()
	r.applied.Add(uint64(n))
	r.lastAt.Store(recs[len(recs)-1].RecordedAt.UnixNano())
	r.notifyMu.Lock()
	close(r.notify)
	r.notify = make(chan struct{})
	r.notifyMu.Unlock()
}

// Position returns the position of the last applied event.
func (r *Runner) Position() uint64 { return r.pos.Load() }

// Applied returns how many events were applied since start.
func (r *Runner) Applied() uint64 { return r.applied.Load() }

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

// Read runs fn under the read lock, so it sees all projections at one position.
func (r *Runner) Read(fn func()) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn()
}
