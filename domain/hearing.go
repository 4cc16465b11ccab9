package domain

import (
	"time"

	"github.com/google/uuid"
)

// Who hears what: the rules that turn events and the passing of time into
// notifications, pure, beside Decide. The notifier (adapters/notify) feeds
// them the facts of the cases from its projections, addresses what they
// return to the subscribers' targets, and keeps outbox, webhook and mail.

// CaseFacts are what the rules need of a case: ids and codes only.
type CaseFacts struct {
	ID       uuid.UUID
	Network  string
	Team     string // the team that holds it, empty while none does
	RaisedBy string // the signaller's principal id
	Matched  bool   // another open signal about the same resident
}

// Notice is one notification to address: what about which case, to whom.
type Notice struct {
	Kind         string // one of NotificationKinds
	Case         uuid.UUID
	Network      string
	Subscriber   string // SubscribeTeam, SubscribeOrganisation, ...
	SubscriberID string
	Team         string    // the team named in the notification
	Org          string    // for referral_made
	Referral     uuid.UUID // for referral_made
	Code         string    // for feedback_given
	At           time.Time // when it happened (or the norm moment)
	// PerCase marks notices of one event about several cases (a match),
	// whose idempotency keys must name the case.
	PerCase bool
}

// Hears returns the notices of an event on case c at at:
//   - SignalHandedOver: the receiving team; and, when the case is matched,
//     that team hears of the match too;
//   - ReferralMade: the organisation referred to;
//   - FeedbackGiven: the signaller.
//
// Other events notify nobody (matches: HearsOfMatch).
func Hears(e Event, c CaseFacts, at time.Time) []Notice {
	about := func(kind, subscriber, id string) Notice {
		return Notice{Kind: kind, Case: c.ID, Network: c.Network, Subscriber: subscriber, SubscriberID: id, At: at}
	}
	switch e := e.(type) {
	case SignalHandedOver:
		n := about(NotifyHandedOver, SubscribeTeam, e.TeamID)
		n.Team = e.TeamID
		out := []Notice{n}
		if c.Matched {
			m := about(NotifyMatched, SubscribeTeam, e.TeamID)
			m.Team = e.TeamID
			out = append(out, m)
		}
		return out
	case ReferralMade:
		n := about(NotifyReferralMade, SubscribeOrganisation, e.OrganisationID)
		n.Org, n.Referral = e.OrganisationID, e.ReferralID
		return []Notice{n}
	case FeedbackGiven:
		n := about(NotifyFeedbackGiven, SubscribePrincipal, c.RaisedBy)
		n.Code = e.Code
		return []Notice{n}
	}
	return nil
}

// HearsOfMatch returns the notices of a match among cases, the new signal
// first: every team that holds one of them hears about its own case (a
// link it may open), and only those; a match never crosses networks (the
// new signal's decides).
func HearsOfMatch(cases []CaseFacts, at time.Time) []Notice {
	if len(cases) == 0 {
		return nil
	}
	network := cases[0].Network
	var out []Notice
	for _, c := range cases {
		if c.Team == "" || c.Network != network {
			continue
		}
		out = append(out, Notice{Kind: NotifyMatched, Case: c.ID, Network: c.Network, Subscriber: SubscribeTeam,
			SubscriberID: c.Team, Team: c.Team, At: at, PerCase: true})
	}
	return out
}

// NormFacts are what the time-triggered rules need of a case.
type NormFacts struct {
	CaseFacts
	Status        Status
	RaisedAt      time.Time
	DueAt         time.Time // first response due
	Due3xAt       time.Time
	UnroutedDueAt time.Time
	// Answered is true once the case had its first response or stopped
	// waiting (withdrawn, closed): no norm notice after that.
	Answered bool
}

// Lapses returns the time-triggered notices due for a case at now (each
// is sent once; the caller marks what it queued):
//   - unrouted: raised and still without a team past UnroutedDueAt, to the
//     coordinators;
//   - norm_lapsing when lapsingShare of the norm has passed, norm_lapsed
//     when it has: to the team, or to the coordinators while no team has it;
//   - norm_escalated at three times the norm: to the coordinators.
func Lapses(c NormFacts, now time.Time, lapsingShare float64) []Notice {
	var out []Notice
	notice := func(kind string, at time.Time, subscriber, id string) {
		out = append(out, Notice{Kind: kind, Case: c.ID, Network: c.Network, Subscriber: subscriber, SubscriberID: id, Team: c.Team, At: at})
	}
	if Unrouted(c.Status, c.Team, c.UnroutedDueAt, now) {
		notice(NotifyUnrouted, c.UnroutedDueAt, SubscribeCoordinators, "")
	}
	if c.Answered || c.DueAt.IsZero() {
		return out
	}
	sub, id := SubscribeTeam, c.Team
	if c.Team == "" {
		sub, id = SubscribeCoordinators, ""
	}
	warnAt := c.RaisedAt.Add(time.Duration(float64(c.DueAt.Sub(c.RaisedAt)) * lapsingShare))
	switch {
	case now.Before(warnAt):
	case now.Before(c.DueAt):
		notice(NotifyNormLapsing, warnAt, sub, id)
	default:
		notice(NotifyNormLapsed, c.DueAt, sub, id)
	}
	if !now.Before(c.Due3xAt) {
		notice(NotifyNormEscalated, c.Due3xAt, SubscribeCoordinators, "")
	}
	return out
}
