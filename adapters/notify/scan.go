package notify

import (
	"context"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// The norm scan: time-triggered notifications from the case projection.

func (n *Notifier) scanLoop(ctx context.Context) error {
	t := time.NewTicker(n.ScanEvery)
	defer t.Stop()
	for {
		if err := n.Scan(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// lapse is one time-triggered notification found by a scan.
type lapse struct {
	mark string
	nt   Notification
	sub  string
	id   string
}

// Scan queues the norm notifications due now that were not queued before.
func (n *Notifier) Scan(ctx context.Context) error {
	n.init()
	now := n.Now().UTC()
	var found []lapse
	n.Runner.Read(func() {
		n.Cases.Awaiting(func(c *projections.Case) bool {
			facts := domain.NormFacts{CaseFacts: caseFacts(c), Status: c.Status, RaisedAt: c.RaisedAt, DueAt: c.DueAt,
				Due3xAt: c.Due3xAt, UnroutedDueAt: c.UnroutedDueAt,
				Answered: !c.FirstResponseAt.IsZero() || !c.StoppedAt.IsZero() || !c.ClosedAt.IsZero() || !c.WithdrawnAt.IsZero()}
			for _, nc := range domain.Lapses(facts, now, n.LapsingShare) {
				found = append(found, lapse{mark: c.ID.String() + "/" + nc.Kind, nt: n.notification(nc), sub: nc.Subscriber, id: nc.SubscriberID})
			}
			return true
		})
	})
	// Access reviews past their term, to the network's privacy officers.
	if n.Reviews != nil {
		if err := n.Reviews.AllOverdue(now, func(it *projections.ReviewItem) bool {
			found = append(found, lapse{mark: "review/" + it.Network + "/" + it.ID,
				nt:  Notification{Kind: domain.NotifyReviewOverdue, ReviewItem: it.ID, Network: it.Network, At: it.DueAt, Link: n.reviewsLink()},
				sub: domain.SubscribePrivacyOfficers})
			return true
		}); err != nil {
			return err
		}
	}
	// What is new is queued, with its marks, in one synced batch: the first
	// scan of a large log may find many lapsed signals at once.
	fresh := found[:0]
	for _, l := range found {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		done, err := n.Outbox.Marked(ctx, l.mark)
		if err != nil {
			return err
		}
		if !done {
			fresh = append(fresh, l)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	var ds []Delivery
	marks := make([]string, len(fresh))
	n.Runner.Read(func() {
		for i, l := range fresh {
			marks[i] = l.mark
			ds = append(ds, n.deliveries(l.mark, l.nt, l.nt.Network, l.sub, l.id)...)
		}
	})
	if err := n.Outbox.Enqueue(ctx, ds, marks, nil); err != nil {
		return err
	}
	if len(ds) > 0 {
		n.Metrics.queued(ds)
		n.signal()
	}
	return nil
}
