package domain

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
)

func TestHears(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := CaseFacts{ID: sigID, Network: "net", Team: "team-a", RaisedBy: "carla"}
	matched := c
	matched.Matched = true
	for _, tc := range []struct {
		name string
		e    Event
		c    CaseFacts
		want []Notice
	}{
		{"a handover: the team", SignalHandedOver{TeamID: "team-b"}, c, []Notice{
			{Kind: NotifyHandedOver, Case: sigID, Network: "net", Subscriber: SubscribeTeam, SubscriberID: "team-b", Team: "team-b", At: at}}},
		{"a matched signal handed over: the team hears of the match too", SignalHandedOver{TeamID: "team-b"}, matched, []Notice{
			{Kind: NotifyHandedOver, Case: sigID, Network: "net", Subscriber: SubscribeTeam, SubscriberID: "team-b", Team: "team-b", At: at},
			{Kind: NotifyMatched, Case: sigID, Network: "net", Subscriber: SubscribeTeam, SubscriberID: "team-b", Team: "team-b", At: at}}},
		{"a referral: the organisation", ReferralMade{ReferralID: refID, OrganisationID: "school"}, c, []Notice{
			{Kind: NotifyReferralMade, Case: sigID, Network: "net", Subscriber: SubscribeOrganisation, SubscriberID: "school", Org: "school", Referral: refID, At: at}}},
		{"feedback: the signaller", FeedbackGiven{Code: "received"}, c, []Notice{
			{Kind: NotifyFeedbackGiven, Case: sigID, Network: "net", Subscriber: SubscribePrincipal, SubscriberID: "carla", Code: "received", At: at}}},
		{"an acceptance: nobody", HandoverAccepted{TeamID: "team-a"}, c, nil},
		{"a follow-up: nobody", FollowUpRecorded{Kind: "phone_call", Outcome: "reached"}, c, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Hears(tc.e, tc.c, at), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHearsOfMatch(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	newSig, a, b, other := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	got := HearsOfMatch([]CaseFacts{
		{ID: newSig, Network: "net"},                 // the new signal: no team yet
		{ID: a, Network: "net", Team: "team-a"},      // team-a hears, about its own case
		{ID: b, Network: "net", Team: "team-b"},      // so does team-b
		{ID: other, Network: "west", Team: "team-w"}, // never across networks
	}, at)
	want := []Notice{
		{Kind: NotifyMatched, Case: a, Network: "net", Subscriber: SubscribeTeam, SubscriberID: "team-a", Team: "team-a", At: at, PerCase: true},
		{Kind: NotifyMatched, Case: b, Network: "net", Subscriber: SubscribeTeam, SubscriberID: "team-b", Team: "team-b", At: at, PerCase: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := HearsOfMatch(nil, at); got != nil {
		t.Errorf("no cases: %v", got)
	}
}

func TestLapses(t *testing.T) {
	raised := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	due, due3x, unrouted := raised.Add(24*time.Hour), raised.Add(72*time.Hour), raised.Add(24*time.Hour)
	base := NormFacts{CaseFacts: CaseFacts{ID: sigID, Network: "net", Team: "team-a"}, Status: StatusHandedOver,
		RaisedAt: raised, DueAt: due, Due3xAt: due3x, UnroutedDueAt: unrouted}
	noTeam := base
	noTeam.Team, noTeam.Status = "", StatusRaised
	answered := base
	answered.Answered = true
	kinds := func(ns []Notice) (out []string) {
		for _, n := range ns {
			out = append(out, n.Kind+">"+n.Subscriber)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		c    NormFacts
		at   time.Duration
		want []string
	}{
		{"early", base, time.Hour, nil},
		{"80% of the norm", base, 20 * time.Hour, []string{"norm_lapsing>team"}},
		{"past the norm", base, 25 * time.Hour, []string{"norm_lapsed>team"}},
		{"three times", base, 73 * time.Hour, []string{"norm_lapsed>team", "norm_escalated>coordinators"}},
		{"no team: the coordinators, and unrouted", noTeam, 25 * time.Hour, []string{"unrouted>coordinators", "norm_lapsed>coordinators"}},
		{"answered: no norm notices", answered, 73 * time.Hour, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, kinds(Lapses(tc.c, raised.Add(tc.at), 0.8)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
