package domain

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

var (
	now      = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	sigID    = uuid.MustParse("00000000-0000-0000-0000-0000000000a1")
	subjID   = uuid.MustParse("00000000-0000-0000-0000-0000000000b1")
	refID    = uuid.MustParse("00000000-0000-0000-0000-0000000000c1")
	fuID     = uuid.MustParse("00000000-0000-0000-0000-0000000000d1")
	otherSig = uuid.MustParse("00000000-0000-0000-0000-0000000000a2")
	secret   = Sealed("ciphertext")

	carla = Principal{ID: "carla", Roles: []Role{RoleBuurtsteun}, Organisation: "buurtsteun", Network: "net"}
	dirk  = Principal{ID: "dirk", Roles: []Role{RoleBuurtsteun}, Network: "net"}
	eva   = Principal{ID: "eva", Roles: []Role{RolePartner}, Organisation: "school", Network: "net"}
	femke = Principal{ID: "femke", Roles: []Role{RolePartner}, Organisation: "housing", Network: "net"}
	anna  = Principal{ID: "anna", Roles: []Role{RoleProfessional}, Teams: []string{"team-a"}, Network: "net"}
	bob   = Principal{ID: "bob", Roles: []Role{RoleProfessional}, Teams: []string{"team-b"}, Network: "net"}
	gert  = Principal{ID: "gert", Roles: []Role{RoleCoordinator}, Network: "net"}
	hanna = Principal{ID: "hanna", Roles: []Role{RolePrivacyOfficer}, Network: "net"}
	alien = Principal{ID: "zed", Roles: []Role{RoleProfessional}, Teams: []string{"team-a"}, Network: "other"}
)

// given folds events into a signal state.
func given(events ...Event) Signal {
	var s Signal
	for _, e := range events {
		s = Evolve(s, e)
	}
	return s
}

var (
	raised = SignalRaised{SignalID: sigID, SubjectID: subjID, RaisedBy: "carla", Source: RoleBuurtsteun, Organisation: "buurtsteun",
		Network: "net", Neighbourhood: "centrum", Categories: []string{"debt", "loneliness"}, Urgency: "high", Consent: "informed",
		Description: secret, RaisedAt: now}
	handed   = SignalHandedOver{TeamID: "team-a"}
	accepted = HandoverAccepted{TeamID: "team-a"}
	referred = ReferralMade{ReferralID: refID, OrganisationID: "school", Reason: secret}
	closed   = CaseClosed{Outcome: "resolved"}
)

// The states a signal can be in, as histories.
var states = map[string][]Event{
	"none":        nil,
	"raised":      {raised},
	"handed_over": {raised, handed},
	"in_care":     {raised, handed, accepted},
	"closed":      {raised, handed, accepted, closed},
	"withdrawn":   {raised, SignalWithdrawn{Reason: secret}},
	"declined":    {raised, handed, HandoverDeclined{TeamID: "team-a", Reason: secret}},
	"reopened":    {raised, handed, accepted, closed, CaseReopened{Reason: secret}},
}

type decideCase struct {
	name     string
	given    []Event
	actor    Principal
	cmd      Command
	want     []Event
	wantKind Kind
	wantCode string
}

func runDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decide(given(tc.given...), tc.actor, tc.cmd, now)
			if tc.want != nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Fatalf("events (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, events %v", got)
			}
			if got != nil {
				t.Fatalf("a failed command returned events %v", got)
			}
			e := AsError(err)
			if e == nil || e.Kind != tc.wantKind || (tc.wantCode != "" && e.Code != tc.wantCode) {
				t.Fatalf("err = %v (%v), want kind %s code %q", err, KindOf(err), tc.wantKind, tc.wantCode)
			}
		})
	}
}

func TestDecideHappyPaths(t *testing.T) {
	raise := RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "centrum", Categories: []string{"loneliness", "debt", "debt"},
		Urgency: "high", Consent: "informed", Description: secret}
	withMatch := raise
	withMatch.Matched = []uuid.UUID{otherSig, sigID}
	runDecide(t, []decideCase{
		{name: "raise", actor: carla, cmd: raise, want: []Event{raised}},
		{name: "raise with a match", actor: carla, cmd: withMatch, want: []Event{raised, SignalsMatched{SubjectID: subjID, SignalIDs: []uuid.UUID{otherSig}}}},
		{name: "withdraw", given: states["raised"], actor: carla, cmd: WithdrawSignal{Reason: secret}, want: []Event{SignalWithdrawn{Reason: secret}}},
		{name: "hand over", given: states["raised"], actor: carla, cmd: HandOver{TeamID: "team-a", Note: secret}, want: []Event{SignalHandedOver{TeamID: "team-a", Note: secret}}},
		{name: "hand over after decline", given: states["declined"], actor: gert, cmd: HandOver{TeamID: "team-b"}, want: []Event{SignalHandedOver{TeamID: "team-b"}}},
		{name: "accept", given: states["handed_over"], actor: anna, cmd: AcceptHandover{}, want: []Event{accepted}},
		{name: "decline", given: states["handed_over"], actor: anna, cmd: DeclineHandover{Reason: secret}, want: []Event{HandoverDeclined{TeamID: "team-a", Reason: secret}}},
		{name: "assign by professional", given: states["in_care"], actor: anna, cmd: AssignCase{ProfessionalID: "anna"}, want: []Event{CaseAssigned{ProfessionalID: "anna"}}},
		{name: "assign by coordinator", given: states["handed_over"], actor: gert, cmd: AssignCase{ProfessionalID: "anna"}, want: []Event{CaseAssigned{ProfessionalID: "anna"}}},
		{name: "follow-up", given: states["in_care"], actor: anna, cmd: RecordFollowUp{FollowUpID: fuID, Kind: "home_visit", Outcome: "reached", Note: secret, NextDue: "2026-12-01"},
			want: []Event{FollowUpRecorded{FollowUpID: fuID, Kind: "home_visit", Outcome: "reached", Note: secret, NextDue: "2026-12-01"}}},
		{name: "refer", given: states["in_care"], actor: anna, cmd: MakeReferral{ReferralID: refID, OrganisationID: "school", Reason: secret}, want: []Event{referred}},
		{name: "partner accepts referral", given: append(states["in_care"], referred), actor: eva, cmd: AnswerReferral{ReferralID: refID, Answer: RefAccepted}, want: []Event{ReferralAccepted{ReferralID: refID}}},
		{name: "partner declines referral", given: append(states["in_care"], referred), actor: eva, cmd: AnswerReferral{ReferralID: refID, Answer: RefDeclined, Note: secret}, want: []Event{ReferralDeclined{ReferralID: refID, Note: secret}}},
		{name: "partner completes referral", given: append(states["in_care"], referred, ReferralAccepted{ReferralID: refID}), actor: eva, cmd: AnswerReferral{ReferralID: refID, Answer: RefCompleted}, want: []Event{ReferralCompleted{ReferralID: refID}}},
		{name: "feedback", given: states["in_care"], actor: anna, cmd: GiveFeedback{Code: "received"}, want: []Event{FeedbackGiven{Code: "received"}}},
		{name: "feedback after closing", given: states["closed"], actor: anna, cmd: GiveFeedback{Code: "closed"}, want: []Event{FeedbackGiven{Code: "closed"}}},
		{name: "close", given: states["in_care"], actor: anna, cmd: CloseCase{Outcome: "resolved"}, want: []Event{closed}},
		{name: "close a reopened case", given: states["reopened"], actor: anna, cmd: CloseCase{Outcome: "referred"}, want: []Event{CaseClosed{Outcome: "referred"}}},
		{name: "reopen", given: states["closed"], actor: anna, cmd: ReopenCase{Reason: secret}, want: []Event{CaseReopened{Reason: secret}}},
	})
}

// TestDecideInvalidTransitions tries every command from every state where
// the lifecycle does not allow it.
func TestDecideInvalidTransitions(t *testing.T) {
	allowed := map[string][]string{ // command -> states it is allowed in
		"withdraw": {"raised", "declined"}, "handover": {"raised", "declined"}, "accept": {"handed_over"}, "decline": {"handed_over"},
		"assign": {"handed_over", "in_care", "reopened"}, "follow_up": {"in_care", "reopened"}, "refer": {"in_care", "reopened"},
		"feedback": {"in_care", "reopened", "closed"}, "close": {"in_care", "reopened"}, "reopen": {"closed"},
	}
	commands := map[string]struct {
		actor Principal
		cmd   Command
	}{
		"withdraw": {carla, WithdrawSignal{Reason: secret}}, "handover": {gert, HandOver{TeamID: "team-a"}},
		"accept": {anna, AcceptHandover{}}, "decline": {anna, DeclineHandover{Reason: secret}},
		"assign": {gert, AssignCase{ProfessionalID: "someone"}}, "follow_up": {anna, RecordFollowUp{FollowUpID: fuID, Kind: "meeting", Outcome: "other"}},
		"refer": {anna, MakeReferral{ReferralID: refID, OrganisationID: "school", Reason: secret}}, "feedback": {anna, GiveFeedback{Code: "received"}},
		"close": {anna, CloseCase{Outcome: "resolved"}}, "reopen": {anna, ReopenCase{Reason: secret}},
	}
	var cases []decideCase
	for name, c := range commands {
		for state, history := range states {
			ok := false
			for _, a := range allowed[name] {
				ok = ok || a == state
			}
			if ok {
				continue
			}
			want, code := KindConflict, "invalid_transition"
			if state == "none" {
				want, code = KindNotFound, "signal_not_found"
			}
			// Team-scoped commands on a signal without a team are refused by policy first.
			if (state == "raised" || state == "declined" || state == "withdrawn") && c.actor.ID == "anna" {
				want, code = KindForbidden, "forbidden"
			}
			cases = append(cases, decideCase{name: name + " when " + state, given: history, actor: c.actor, cmd: c.cmd, wantKind: want, wantCode: code})
		}
	}
	cases = append(cases,
		decideCase{name: "raise twice", given: states["raised"], actor: carla, cmd: RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "x", Categories: []string{"debt"}, Urgency: "normal", Consent: "informed", Description: secret}, wantKind: KindConflict, wantCode: "signal_exists"},
		decideCase{name: "answer an unknown referral", given: states["in_care"], actor: eva, cmd: AnswerReferral{ReferralID: refID, Answer: RefAccepted}, wantKind: KindNotFound, wantCode: "referral_not_found"},
		decideCase{name: "accept a declined referral", given: append(states["in_care"], referred, ReferralDeclined{ReferralID: refID}), actor: eva, cmd: AnswerReferral{ReferralID: refID, Answer: RefAccepted}, wantKind: KindConflict, wantCode: "referral_not_open"},
		decideCase{name: "accept a referral twice", given: append(states["in_care"], referred, ReferralAccepted{ReferralID: refID}), actor: eva, cmd: AnswerReferral{ReferralID: refID, Answer: RefAccepted}, wantKind: KindConflict, wantCode: "referral_not_open"},
		decideCase{name: "complete an open referral", given: append(states["in_care"], referred), actor: eva, cmd: AnswerReferral{ReferralID: refID, Answer: RefCompleted}, wantKind: KindConflict, wantCode: "referral_not_accepted"},
		decideCase{name: "answer a referral of a closed case", given: append(states["in_care"], referred, closed), actor: eva, cmd: AnswerReferral{ReferralID: refID, Answer: RefAccepted}, wantKind: KindConflict},
		decideCase{name: "refer twice with one id", given: append(states["in_care"], referred), actor: anna, cmd: MakeReferral{ReferralID: refID, OrganisationID: "school", Reason: secret}, wantKind: KindConflict, wantCode: "referral_exists"},
		decideCase{name: "assign to the assignee", given: append(states["in_care"], CaseAssigned{ProfessionalID: "anna"}), actor: anna, cmd: AssignCase{ProfessionalID: "anna"}, wantKind: KindConflict, wantCode: "already_assigned"},
	)
	runDecide(t, cases)
}

func TestDecideWrongActor(t *testing.T) {
	refGiven := append(states["in_care"], referred)
	runDecide(t, []decideCase{
		{name: "coordinator raises", actor: gert, cmd: RaiseSignal{SignalID: sigID, SubjectID: subjID}, wantKind: KindForbidden},
		{name: "privacy officer raises", actor: hanna, cmd: RaiseSignal{SignalID: sigID, SubjectID: subjID}, wantKind: KindForbidden},
		{name: "another volunteer withdraws", given: states["raised"], actor: dirk, cmd: WithdrawSignal{Reason: secret}, wantKind: KindForbidden},
		{name: "another volunteer hands over", given: states["raised"], actor: dirk, cmd: HandOver{TeamID: "team-a"}, wantKind: KindForbidden},
		{name: "partner hands over", given: states["raised"], actor: eva, cmd: HandOver{TeamID: "team-a"}, wantKind: KindForbidden},
		{name: "other team accepts", given: states["handed_over"], actor: bob, cmd: AcceptHandover{}, wantKind: KindForbidden},
		{name: "volunteer accepts", given: states["handed_over"], actor: carla, cmd: AcceptHandover{}, wantKind: KindForbidden},
		{name: "coordinator accepts", given: states["handed_over"], actor: gert, cmd: AcceptHandover{}, wantKind: KindForbidden},
		{name: "other team declines", given: states["handed_over"], actor: bob, cmd: DeclineHandover{Reason: secret}, wantKind: KindForbidden},
		{name: "other team follows up", given: states["in_care"], actor: bob, cmd: RecordFollowUp{FollowUpID: fuID, Kind: "meeting", Outcome: "other"}, wantKind: KindForbidden},
		{name: "other team assigns", given: states["in_care"], actor: bob, cmd: AssignCase{ProfessionalID: "bob"}, wantKind: KindForbidden},
		{name: "other team closes", given: states["in_care"], actor: bob, cmd: CloseCase{Outcome: "resolved"}, wantKind: KindForbidden},
		{name: "other team reopens", given: states["closed"], actor: bob, cmd: ReopenCase{Reason: secret}, wantKind: KindForbidden},
		{name: "other team gives feedback", given: states["in_care"], actor: bob, cmd: GiveFeedback{Code: "received"}, wantKind: KindForbidden},
		{name: "other team refers", given: states["in_care"], actor: bob, cmd: MakeReferral{ReferralID: refID, OrganisationID: "school", Reason: secret}, wantKind: KindForbidden},
		{name: "other organisation answers a referral", given: refGiven, actor: femke, cmd: AnswerReferral{ReferralID: refID, Answer: RefAccepted}, wantKind: KindForbidden},
		{name: "professional answers a referral", given: refGiven, actor: anna, cmd: AnswerReferral{ReferralID: refID, Answer: RefAccepted}, wantKind: KindForbidden},
		{name: "another network accepts", given: states["handed_over"], actor: alien, cmd: AcceptHandover{}, wantKind: KindForbidden},
	})
}

func TestDecideInvalidFields(t *testing.T) {
	fields := func(err error) []string {
		var out []string
		if e := AsError(err); e != nil {
			for _, f := range e.Fields {
				out = append(out, f.Field)
			}
		}
		return out
	}
	tests := []struct {
		name  string
		given []Event
		actor Principal
		cmd   Command
		want  []string
	}{
		{"empty raise", nil, carla, RaiseSignal{}, []string{"id", "subject", "neighbourhood", "categories", "urgency", "consent", "description"}},
		{"unknown category and codes", nil, carla, RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "x", Categories: []string{"gossip"}, Urgency: "urgent", Consent: "maybe", Description: secret}, []string{"categories", "urgency", "consent"}},
		{"withdraw without reason", states["raised"], carla, WithdrawSignal{}, []string{"reason"}},
		{"hand over without team", states["raised"], carla, HandOver{}, []string{"team_id"}},
		{"decline without reason", states["handed_over"], anna, DeclineHandover{}, []string{"reason"}},
		{"assign nobody", states["in_care"], anna, AssignCase{}, []string{"professional_id"}},
		{"bad follow-up", states["in_care"], anna, RecordFollowUp{Kind: "visit", Outcome: "fine", NextDue: "tomorrow"}, []string{"kind", "outcome", "next_due", "id"}},
		{"referral without organisation or reason", states["in_care"], anna, MakeReferral{}, []string{"organisation_id", "reason", "id"}},
		{"unknown feedback code", states["in_care"], anna, GiveFeedback{Code: "details"}, []string{"code"}},
		{"unknown close outcome", states["in_care"], anna, CloseCase{Outcome: "done"}, []string{"outcome"}},
		{"reopen without reason", states["closed"], anna, ReopenCase{}, []string{"reason"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Decide(given(tt.given...), tt.actor, tt.cmd, now)
			if KindOf(err) != KindInvalid || evs != nil {
				t.Fatalf("err = %v, events %v; want invalid", err, evs)
			}
			if diff := cmp.Diff(tt.want, fields(err)); diff != "" {
				t.Fatalf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEvolveTracksTheLifecycle(t *testing.T) {
	s := given(raised, handed, accepted, CaseAssigned{ProfessionalID: "anna"}, referred, ReferralAccepted{ReferralID: refID},
		SignalsMatched{SubjectID: subjID, SignalIDs: []uuid.UUID{otherSig}}, closed, CaseReopened{Reason: secret},
		HandoverDeclined{TeamID: "team-a", Reason: secret})
	want := Signal{ID: sigID, SubjectID: subjID, Status: StatusRaised, RaisedBy: "carla", Source: RoleBuurtsteun, Organisation: "buurtsteun",
		Network: "net", Neighbourhood: "centrum", Categories: []string{"debt", "loneliness"}, Urgency: "high",
		Referrals: []Referral{{ID: refID, OrganisationID: "school", Status: RefAccepted}}, Matched: []uuid.UUID{otherSig}, Version: 10}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Fatalf("state (-want +got):\n%s", diff)
	}
	if got := Evolve(s, SubjectErased{SubjectID: subjID}); got.Version != s.Version {
		t.Fatal("an event of another aggregate changed the signal")
	}
}
