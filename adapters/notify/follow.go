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

// derive returns the deliveries of an event; the caller holds the runner's
// read lock.
func (n *Notifier) derive(env projections.Envelope) []Delivery {
	trigger := fmt.Sprintf("%s@%d", env.Stream, env.Revision)
	var out []Delivery
	// about addresses a notification about case c, linking to c, to the
	// targets of a subscriber; edit adds its kind's fields.
	about := func(c *projections.Case, kind, subscriber, subscriberID string, edit func(*Notification)) {
		nt := Notification{Kind: kind, Signal: c.ID.String(), Network: c.Network, At: env.At, Link: n.link(c.ID)}
		if edit != nil {
			edit(&nt)
		}
		key := trigger
		if kind == domain.NotifyMatched {
			// A match notifies each team about its own case: the case is
			// part of the trigger, so each has its own idempotency key
			// (the other kinds keep the keys they always had).
			key += "/" + c.ID.String()
		}
		out = append(out, n.deliveries(key, nt, c.Network, subscriber, subscriberID)...)
	}
	// matched tells every team that holds a case of a match about its own
	// case, which shows the match; only those teams hear of it.
	matched := func(ids []uuid.UUID) {
		network := ""
		for _, id := range ids {
			c, ok := n.Cases.Get(id)
			if !ok {
				continue
			}
			if network == "" {
				network = c.Network // the new signal's: a match never crosses networks
			}
			if c.Team == "" || c.Network != network {
				continue
			}
			about(c, domain.NotifyMatched, domain.SubscribeTeam, c.Team, func(nt *Notification) { nt.Team = c.Team })
		}
	}
	switch e := env.Event.(type) {
	case domain.SubjectSignalled: // on the subject's stream
		if len(e.Matched) > 0 {
			matched(append([]uuid.UUID{e.SignalID}, e.Matched...))
		}
		return out
	case domain.SignalsMatched: // written by earlier versions on the newer signal
		if id, ok := projections.SignalID(env.Stream); ok {
			matched(append([]uuid.UUID{id}, e.SignalIDs...))
		}
		return out
	}
	id, ok := projections.SignalID(env.Stream)
	if !ok {
		return nil
	}
	c, ok := n.Cases.Get(id)
	if !ok {
		return nil
	}
	switch e := env.Event.(type) {
	case domain.SignalHandedOver:
		about(c, domain.NotifyHandedOver, domain.SubscribeTeam, e.TeamID, func(nt *Notification) { nt.Team = e.TeamID })
		if len(c.Matched) > 0 { // the receiving team hears of the match too
			about(c, domain.NotifyMatched, domain.SubscribeTeam, e.TeamID, func(nt *Notification) { nt.Team = e.TeamID })
		}
	case domain.ReferralMade:
		about(c, domain.NotifyReferralMade, domain.SubscribeOrganisation, e.OrganisationID, func(nt *Notification) {
			nt.Org, nt.Referral = e.OrganisationID, e.ReferralID.String()
		})
	case domain.FeedbackGiven:
		about(c, domain.NotifyFeedbackGiven, domain.SubscribePrincipal, c.RaisedBy, func(nt *Notification) { nt.Code = e.Code })
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
