package loglease

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// ErrReleased is the Err of a term that was released.
var ErrReleased = errors.New("loglease: the term was released")

// term is one holding of the lease; a goroutine renews it until it ends.
type term struct {
	l        *Lease
	n        uint64
	lost     chan struct{}
	stop     chan struct{} // closed by Release
	stopOnce sync.Once
	done     chan struct{} // closed when the renewer has returned

	mu  sync.Mutex
	rev uint64 // the revision of the holder's last event
	err error
}

var _ domain.LeaseTerm = (*term)(nil)

func (l *Lease) hold(ctx context.Context, n, rev uint64, start time.Time) *term {
	t := &term{l: l, n: n, rev: rev, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go t.renew(ctx, start)
	return t
}

func (t *term) Term() uint64          { return t.n }
func (t *term) Holder() string        { return t.l.holder }
func (t *term) Lost() <-chan struct{} { return t.lost }

func (t *term) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// end closes Lost with err, once.
func (t *term) end(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
		close(t.lost)
	}
}

// renew keeps the term until ctx ends, Release stops it, a renewal meets
// another holder's event, or no renewal has succeeded for RenewDeadline
// since lastOK (when the last successful one began).
func (t *term) renew(ctx context.Context, lastOK time.Time) {
	defer close(t.done)
	o := t.l.opts
	wait := o.RenewEvery
	for {
		if left := o.RenewDeadline - o.Clock.Now().Sub(lastOK); left < wait {
			wait = left
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				t.end(ctx.Err()) // a crash, as far as the lease knows: no release
				return
			case <-t.stop:
				return
			case <-o.Clock.After(wait):
			}
		}
		start := o.Clock.Now()
		left := o.RenewDeadline - start.Sub(lastOK)
		if left <= 0 {
			o.Log.Warn("lease lost: not renewed in time", "lease", t.l.name, "holder", t.l.holder, "term", t.n)
			t.end(domain.ErrLeaseLost)
			return
		}
		// The append may not outlast the deadline (real time: a store call
		// is not on the lease's clock).
		actx, cancel := context.WithTimeout(ctx, left)
		t.mu.Lock()
		rev := t.rev
		t.mu.Unlock()
		res, err := t.l.append(actx, eventlog.Revision(rev), domain.LeaseRenewed{Holder: t.l.holder, Term: t.n, TTLms: o.TTL.Milliseconds()})
		cancel()
		switch {
		case err == nil:
			t.mu.Lock()
			t.rev = res.NextRevision
			t.mu.Unlock()
			lastOK, wait = start, o.RenewEvery
		case errors.Is(err, eventlog.ErrWrongExpectedVersion):
			o.Log.Warn("lease lost: taken over", "lease", t.l.name, "holder", t.l.holder, "term", t.n)
			t.end(domain.ErrLeaseLost)
			return
		case ctx.Err() != nil:
			t.end(ctx.Err())
			return
		default:
			o.Log.Warn("lease: renewal failed", "lease", t.l.name, "term", t.n, "err", err)
			wait = min(o.PollEvery, o.RenewEvery) // try again soon
		}
	}
}

// Release stops the renewals and appends LeaseReleased, so another process
// takes over at once. It is fenced like a renewal: when another process has
// taken the lease over meanwhile, it changes nothing. A term that ended
// (its context did, or its renewals failed) is released all the same: if
// nobody took it, nobody holds it.
func (t *term) Release(ctx context.Context) error {
	t.stopOnce.Do(func() { close(t.stop) })
	<-t.done
	t.mu.Lock()
	rev := t.rev
	t.mu.Unlock()
	t.end(ErrReleased)
	_, err := t.l.append(ctx, eventlog.Revision(rev), domain.LeaseReleased{Holder: t.l.holder, Term: t.n})
	if errors.Is(err, eventlog.ErrWrongExpectedVersion) {
		return nil // taken over meanwhile: nothing to release
	}
	if err == nil {
		t.l.opts.Log.Info("lease released", "lease", t.l.name, "holder", t.l.holder, "term", t.n)
	}
	return err
}
