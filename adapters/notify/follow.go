package notify

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// The subscription loop: events of the log turned into deliveries.

// notifyingEvents are the event types that notify.
var notifyingEvents = []string{"SignalHandedOver", "SignalsMatched", "SubjectSignalled", "ReferralMade", "FeedbackGiven"}

func (n *Notifier) follow(ctx context.Context) error {
	cp, ok, err := n.Outbox.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if !ok {
		if cp, err = n.Store.Head(ctx); err != nil {
			return fmt.Errorf("notify: head: %w", err)
		}
		if err := n.Outbox.Start(ctx, cp); err != nil {
			return err
		}
	}
	sub, err := n.Store.Subscribe(ctx, cp, eventlog.Filter{StreamPrefixes: []string{domain.SignalCategory + "-", domain.SubjectCategory + "-"}, EventTypes: notifyingEvents})
	if err != nil {
		return fmt.Errorf("notify: subscribe: %w", err)
	}
	defer sub.Close()
	// A reader goroutine keeps the next events at hand, so a burst of
	// events is checkpointed with its deliveries in one synced batch.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type next struct {
		re  eventlog.RecordedEvent
		err error
	}
	events := make(chan next, 256)
	go func() {
		for {
			re, err := sub.Next(ctx)
			select {
			case events <- next{re, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		var e next
		select {
		case e = <-events:
		case <-ctx.Done():
			return ctx.Err()
		}
		var batch []eventlog.RecordedEvent
		failed := e.err
	drain:
		for failed == nil {
			if e.re.Position > cp { // at-least-once delivery of the subscription
				batch = append(batch, e.re)
			}
			if len(batch) == cap(events) {
				break
			}
			select {
			case e = <-events:
				failed = e.err
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			last := batch[len(batch)-1].Position
			if err := n.Runner.WaitFor(ctx, last); err != nil {
				return err
			}
			var ds []Delivery
			for _, re := range batch {
				env, err := projections.Decode(n.Reg, re)
				if err != nil {
					return err
				}
				n.Runner.Read(func() { ds = append(ds, n.derive(env)...) })
			}
			if err := n.Outbox.Enqueue(ctx, ds, nil, &last); err != nil {
				return err
			}
			cp = last
			if len(ds) > 0 {
				n.Metrics.queued(ds)
				n.signal()
			}
		}
		if failed != nil {
			return failed
		}
	}
}

// derive returns the deliveries of an event, by the domain's rules of who
// hears what (domain.Hears, domain.HearsOfMatch); the caller holds the
// runner's read lock.
func (n *Notifier) derive(env projections.Envelope) []Delivery {
	trigger := fmt.Sprintf("%s@%d", env.Stream, env.Revision)
	var notices []domain.Notice
	switch e := env.Event.(type) {
	case domain.SubjectSignalled: // on the subject's stream
		if len(e.Matched) > 0 {
			notices = domain.HearsOfMatch(n.facts(append([]uuid.UUID{e.SignalID}, e.Matched...)), env.At)
		}
	case domain.SignalsMatched: // written by earlier versions on the newer signal
		if id, ok := projections.SignalID(env.Stream); ok {
			notices = domain.HearsOfMatch(n.facts(append([]uuid.UUID{id}, e.SignalIDs...)), env.At)
		}
	default:
		id, ok := projections.SignalID(env.Stream)
		if !ok {
			return nil
		}
		if f := n.facts([]uuid.UUID{id}); len(f) == 1 {
			notices = domain.Hears(env.Event, f[0], env.At)
		}
	}
	var out []Delivery
	for _, nc := range notices {
		key := trigger
		if nc.PerCase {
			// A match notifies each team about its own case: the case is
			// part of the trigger, so each has its own idempotency key
			// (the other kinds keep the keys they always had).
			key += "/" + nc.Case.String()
		}
		out = append(out, n.deliveries(key, n.notification(nc), nc.Network, nc.Subscriber, nc.SubscriberID)...)
	}
	return out
}

// facts are the rules' view of the cases with these ids (the ones known).
func (n *Notifier) facts(ids []uuid.UUID) []domain.CaseFacts {
	out := make([]domain.CaseFacts, 0, len(ids))
	for _, id := range ids {
		if c, ok := n.Cases.Get(id); ok {
			out = append(out, caseFacts(c))
		}
	}
	return out
}

func caseFacts(c *projections.Case) domain.CaseFacts {
	return domain.CaseFacts{ID: c.ID, Network: c.Network, Team: c.Team, RaisedBy: c.RaisedBy, Matched: len(c.Matched) > 0}
}

// notification is what a notice's receiver gets, with its link.
func (n *Notifier) notification(nc domain.Notice) Notification {
	nt := Notification{Kind: nc.Kind, Signal: nc.Case.String(), Team: nc.Team, Org: nc.Org, Code: nc.Code,
		Network: nc.Network, At: nc.At, Link: n.link(nc.Case)}
	if nc.Referral != uuid.Nil {
		nt.Referral = nc.Referral.String()
	}
	return nt
}

// deliveries addresses a notification to every target of a subscriber
// that wants its kind.
func (n *Notifier) deliveries(trigger string, nt Notification, network, subscriber, subscriberID string) []Delivery {
	var out []Delivery
	for _, t := range domain.TargetsOf(n.Targets.Of(network), nt.Kind, subscriber, subscriberID) {
		d := Delivery{Notification: nt, TargetID: t.ID, Channel: t.Channel, QueuedAt: n.Now().UTC()}
		d.Notification.ID = notificationID(trigger, nt.Kind, t.ID)
		out = append(out, d)
	}
	return out
}

// reviewsLink points to the console's list of overdue reviews.
func (n *Notifier) reviewsLink() string {
	if n.BaseURL == "" {
		return ""
	}
	return strings.TrimSuffix(n.BaseURL, "/") + "/console/privacy/reviews?state=overdue"
}

func (n *Notifier) link(signal uuid.UUID) string {
	if n.BaseURL == "" {
		return ""
	}
	return strings.TrimSuffix(n.BaseURL, "/") + "/console/cases/" + signal.String()
}
