package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Leadership: with a Lease, the notifier runs its loops only while it holds
// the lease. Each term claims the outbox first, so the writes of a replica
// that lost the lease and has not noticed yet fail (domain.ErrFenced); the
// loops stop when the term is lost or the outbox fenced, and the notifier
// competes again. A new term resumes from the outbox's checkpoint, with its
// pending deliveries and dead letters: what was in flight at a takeover may
// be sent twice, under the same idempotency key.

// releaseTimeout bounds the release of the lease at shutdown.
const releaseTimeout = 5 * time.Second

// Run delivers until ctx ends. Without a Lease it runs the loops at once
// and returns when one fails. With one, it waits for the lease, runs the
// loops while it holds it, and competes again after losing it or after a
// loop failed (after a pause that grows with repeated failures); when ctx
// ends it releases the lease, so another replica takes over at once.
func (n *Notifier) Run(ctx context.Context) error {
	n.init()
	if n.Lease == nil {
		if err := n.Outbox.Claim(ctx, "local"); err != nil {
			return err
		}
		n.Metrics.leading(true)
		defer n.Metrics.leading(false)
		return n.lead(ctx)
	}
	pause := time.Duration(0)
	for {
		term, err := n.Lease.Acquire(ctx)
		if err != nil {
			return err
		}
		started := time.Now()
		err = n.runTerm(ctx, term)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		if rerr := term.Release(rctx); rerr != nil {
			n.Log.Warn("notifier: releasing the lease", "err", rerr)
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case errors.Is(err, domain.ErrLeaseLost), errors.Is(err, domain.ErrFenced):
			n.Log.Warn("notifier: another replica delivers now", "holder", term.Holder(), "term", term.Term(), "err", err)
			pause = 0
		default:
			if time.Since(started) > time.Minute {
				pause = 0
			}
			pause = min(max(2*pause, time.Second), 30*time.Second)
			n.Log.Error("notifier: stopped delivering; competing for the lease again", "err", err, "after", pause)
		}
		if pause > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
	}
}

// runTerm claims the outbox and runs the loops until the term is lost, the
// outbox is fenced, a loop fails or ctx ends.
func (n *Notifier) runTerm(ctx context.Context, term domain.LeaseTerm) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-term.Lost():
			cancel(fmt.Errorf("notify: %w", term.Err()))
		case <-ctx.Done():
		}
	}()
	if err := n.Outbox.Claim(ctx, fmt.Sprintf("%s@%d", term.Holder(), term.Term())); err != nil {
		if c := context.Cause(ctx); c != nil {
			return c
		}
		return fmt.Errorf("notify: claim the outbox: %w", err)
	}
	n.Log.Info("notifier: delivering", "holder", term.Holder(), "term", term.Term())
	n.Metrics.leading(true)
	defer n.Metrics.leading(false)
	err := n.lead(ctx)
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c // the term was lost: that, not the loops' ending, is why
	}
	return err
}

// lead runs the loops: it follows the log, scans for lapsing norms and
// delivers until ctx ends or a loop fails.
func (n *Notifier) lead(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context) error{n.follow, n.scanLoop, n.deliverLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}
