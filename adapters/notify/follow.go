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
var notifyingEvents = []string{"SignalHandedOver", "SignalsMatched", "ReferralMade", "FeedbackGiven"}

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
	sub, err := n.Store.Subscribe(ctx, cp, eventlog.Filter{StreamPrefixes: []string{domain.SignalCategory + "-"}, EventTypes: notifyingEvents})
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

// derive returns the deliveries of an event; the caller holds the runner's
// read lock.
func (n *Notifier) derive(env projections.Envelope) []Delivery {
	id, ok := projections.SignalID(env.Stream)
	if !ok {
		return nil
	}
	c, ok := n.Cases.Get(id)
	if !ok {
		return nil
	}
	trigger := fmt.Sprintf("%s@%d", env.Stream, env.Revision)
	base := Notification{Signal: id.String(), Network: c.Network, At: env.At, Link: n.link(id)}
	var out []Delivery
	add := func(kind, subscriber, subscriberID string, nt Notification) {
		nt.Kind = kind
		out = append(out, n.deliveries(trigger, nt, c.Network, subscriber, subscriberID)...)
	}
	switch e := env.Event.(type) {
	case domain.SignalHandedOver:
		nt := base
		nt.Team = e.TeamID
		add(domain.NotifyHandedOver, domain.SubscribeTeam, e.TeamID, nt)
	case domain.SignalsMatched:
		teams := map[string]bool{}
		if c.Team != "" {
			teams[c.Team] = true
		}
		for _, other := range e.SignalIDs {
			if oc, ok := n.Cases.Get(other); ok && oc.Team != "" && oc.Network == c.Network {
				teams[oc.Team] = true
			}
		}
		for team := range teams {
			nt := base
			nt.Team = team
			add(domain.NotifyMatched, domain.SubscribeTeam, team, nt)
		}
	case domain.ReferralMade:
		nt := base
		nt.Org, nt.Referral = e.OrganisationID, e.ReferralID.String()
		add(domain.NotifyReferralMade, domain.SubscribeOrganisation, e.OrganisationID, nt)
	case domain.FeedbackGiven:
		nt := base
		nt.Code = e.Code
		add(domain.NotifyFeedbackGiven, domain.SubscribePrincipal, c.RaisedBy, nt)
	}
	return out
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

func (n *Notifier) link(signal uuid.UUID) string {
	if n.BaseURL == "" {
		return ""
	}
	return strings.TrimSuffix(n.BaseURL, "/") + "/console/cases/" + signal.String()
}
