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
		n.Cases.All(func(c *projections.Case) bool {
			if c.Unrouted(now) {
				found = append(found, n.lapse(c, domain.NotifyUnrouted, c.UnroutedDueAt, domain.SubscribeCoordinators, ""))
			}
			if !c.FirstResponseAt.IsZero() || !c.StoppedAt.IsZero() || !c.ClosedAt.IsZero() || !c.WithdrawnAt.IsZero() || c.DueAt.IsZero() {
				return true
			}
			team := func(kind string, at time.Time) {
				sub, id := domain.SubscribeTeam, c.Team
				if c.Team == "" {
					sub, id = domain.SubscribeCoordinators, ""
				}
				found = append(found, n.lapse(c, kind, at, sub, id))
			}
			warnAt := c.RaisedAt.Add(time.Duration(float64(c.DueAt.Sub(c.RaisedAt)) * n.LapsingShare))
			switch {
			case now.Before(warnAt):
			case now.Before(c.DueAt):
				team(domain.NotifyNormLapsing, warnAt)
			default:
				team(domain.NotifyNormLapsed, c.DueAt)
			}
			if !now.Before(c.Due3xAt) {
				found = append(found, n.lapse(c, domain.NotifyNormEscalated, c.Due3xAt, domain.SubscribeCoordinators, ""))
			}
			return true
		})
	})
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

func (n *Notifier) lapse(c *projections.Case, kind string, at time.Time, sub, id string) lapse {
	nt := Notification{Kind: kind, Signal: c.ID.String(), Team: c.Team, Network: c.Network, At: at, Link: n.link(c.ID)}
	return lapse{mark: c.ID.String() + "/" + kind, nt: nt, sub: sub, id: id}
}
