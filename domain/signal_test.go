package domain

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
)

// The fixed clock, ids and principals of the domain tests.
var (
	now      = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	sigID    = uuid.MustParse("00000000-0000-0000-0000-0000000000a1")
	otherSig = uuid.MustParse("00000000-0000-0000-0000-0000000000a2")
	subjID   = uuid.MustParse("00000000-0000-0000-0000-0000000000b1")
	refID    = uuid.MustParse("00000000-0000-0000-0000-0000000000c1")
	refID2   = uuid.MustParse("00000000-0000-0000-0000-0000000000c2")
	fuID     = uuid.MustParse("00000000-0000-0000-0000-0000000000d1")
	secret   = Sealed("ciphertext")

	carla    = Principal{ID: "carla", Roles: []Role{RoleBuurtsteun}, Organisation: "buurtsteun", Network: "net"} // the signaller
	dirk     = Principal{ID: "dirk", Roles: []Role{RoleBuurtsteun}, Network: "net"}
	eva      = Principal{ID: "eva", Roles: []Role{RolePartner}, Organisation: "school", Network: "net"} // the referral's addressee
	femke    = Principal{ID: "femke", Roles: []Role{RolePartner}, Organisation: "housing", Network: "net"}
	anna     = Principal{ID: "anna", Roles: []Role{RoleProfessional}, Teams: []string{"team-a"}, Network: "net"} // the signal's team
	bob      = Principal{ID: "bob", Roles: []Role{RoleProfessional}, Teams: []string{"team-b"}, Network: "net"}
	gert     = Principal{ID: "gert", Roles: []Role{RoleCoordinator}, Network: "net"}
	hanna    = Principal{ID: "hanna", Roles: []Role{RolePrivacyOfficer}, Network: "net"}
	adam     = Principal{ID: "adam", Roles: []Role{RoleAdmin}, Network: "net"}
	alien    = Principal{ID: "zed", Roles: []Role{RoleProfessional}, Teams: []string{"team-a"}, Network: "other"}
	alienEva = Principal{ID: "eva", Roles: []Role{RolePartner}, Organisation: "school", Network: "other"}
	exCarla  = Principal{ID: "carla", Network: "net"} // the signaller, no roles any more

	everyone = []Principal{carla, dirk, eva, femke, anna, bob, gert, hanna, adam, alien, exCarla}
)

// given folds events into a signal state with Evolve.
func given(events ...Event) Signal {
	var s Signal
	for _, e := range events {
		s = Evolve(s, e)
	}
	return s
}

// history joins event lists into a new slice (no shared backing arrays).
func history(parts ...[]Event) []Event {
	var out []Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var (
	raised = SignalRaised{SignalID: sigID, SubjectID: subjID, RaisedBy: "carla", Source: RoleBuurtsteun, Organisation: "buurtsteun",
		Network: "net", Neighbourhood: "centrum", Categories: []string{"debt", "loneliness"}, Urgency: "high", Consent: "informed",
		Description: secret, RaisedAt: now}
	handed      = SignalHandedOver{TeamID: "team-a"}
	accepted    = HandoverAccepted{TeamID: "team-a"}
	declined    = HandoverDeclined{TeamID: "team-a", Reason: secret}
	withdrawn   = SignalWithdrawn{Reason: secret}
	referred    = ReferralMade{ReferralID: refID, OrganisationID: "school", Reason: secret}
	refAccepted = ReferralAccepted{ReferralID: refID}
	closed      = CaseClosed{Outcome: "resolved"}
	reopened    = CaseReopened{Reason: secret}

	validRaise = RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "centrum", Categories: []string{"loneliness", "debt", "debt"},
		Urgency: "high", Consent: "informed", Description: secret}
)

// statuses are the lifecycle's statuses, each with a history that reaches it.
var statuses = []struct {
	name    string
	history []Event
}{
	{"none", nil},
	{"raised", []Event{raised}},
	{"handed_over", []Event{raised, handed}},
	{"in_care", []Event{raised, handed, accepted}},
	{"closed", []Event{raised, handed, accepted, closed}},
	{"withdrawn", []Event{raised, withdrawn}},
}

func statusHistory(name string) []Event {
	for _, s := range statuses {
		if s.name == name {
			return history(s.history)
		}
	}
	panic("no status " + name)
}

// outcome is what a command should come to: events, or an error of a kind and code.
type outcome struct {
	events []Event
	kind   Kind
	code   string
}

func ok(events ...Event) outcome { return outcome{events: events} }

var (
	notFound    = outcome{kind: KindNotFound, code: "signal_not_found"}
	noReferral  = outcome{kind: KindNotFound, code: "referral_not_found"}
	badMove     = outcome{kind: KindConflict, code: "invalid_transition"}
	exists      = outcome{kind: KindConflict, code: "signal_exists"}
	forbiddenTo = outcome{kind: KindForbidden, code: "forbidden"}
)

type decideCase struct {
	name  string
	given []Event
	actor Principal
	cmd   Command
	want  outcome
}

// check runs Decide on the folded history and compares with the expected
// outcome: the exact events, or no events and a *Error of the kind and code.
func (tc decideCase) check(t *testing.T) {
	t.Helper()
	got, err := Decide(given(tc.given...), tc.actor, tc.cmd, now)
	if tc.want.events != nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if diff := cmp.Diff(tc.want.events, got); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, events %v; want %s %q", got, tc.want.kind, tc.want.code)
	}
	if got != nil {
		t.Fatalf("a failed command returned events %v", got)
	}
	e, isErr := err.(*Error)
	if !isErr {
		t.Fatalf("err = %T %v, want a *Error", err, err)
	}
	if e.Kind != tc.want.kind || e.Code != tc.want.code {
		t.Fatalf("err = %v (kind %s, code %q), want kind %s code %q", err, e.Kind, e.Code, tc.want.kind, tc.want.code)
	}
	if e.Message == "" {
		t.Fatal("the error has no message for the client")
	}
}

func runDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, tc.check)
	}
}

func TestDecideHappyPaths(t *testing.T) {
	byPartner := validRaise
	byPartner.Categories = []string{"bullying"}
	byPartner.Urgency, byPartner.Consent = "acute", "vital_interest"
	partnerRaised := SignalRaised{SignalID: sigID, SubjectID: subjID, RaisedBy: "eva", Source: RolePartner, Organisation: "school",
		Network: "net", Neighbourhood: "centrum", Categories: []string{"bullying"}, Urgency: "acute", Consent: "vital_interest",
		Description: secret, RaisedAt: now}
	proRaised := raised
	proRaised.RaisedBy, proRaised.Source, proRaised.Organisation = "anna", RoleProfessional, ""
	inCareRef := history(statusHistory("in_care"), []Event{referred})

	cases := []decideCase{
		{"raise", nil, carla, validRaise, ok(raised)},
		{"raise by a partner", nil, eva, byPartner, ok(partnerRaised)},
		{"raise by a professional", nil, anna, validRaise, ok(proRaised)},
		{"withdraw", statusHistory("raised"), carla, WithdrawSignal{Reason: secret}, ok(withdrawn)},
		{"withdraw after a declined handover", history(statusHistory("handed_over"), []Event{declined}), carla, WithdrawSignal{Reason: secret}, ok(withdrawn)},
		{"hand over by the signaller", statusHistory("raised"), carla, HandOver{TeamID: "team-a", Note: secret}, ok(SignalHandedOver{TeamID: "team-a", Note: secret})},
		{"hand over by a professional of another team", statusHistory("raised"), bob, HandOver{TeamID: "team-a"}, ok(handed)},
		{"hand over by a coordinator with a routing rule", statusHistory("raised"), gert, HandOver{TeamID: "team-a", RuleID: "rule-1"}, ok(SignalHandedOver{TeamID: "team-a", RuleID: "rule-1"})},
		{"hand over again after a decline", history(statusHistory("handed_over"), []Event{declined}), gert, HandOver{TeamID: "team-b"}, ok(SignalHandedOver{TeamID: "team-b"})},
		{"accept", statusHistory("handed_over"), anna, AcceptHandover{}, ok(accepted)},
		{"accept by the second team after a decline", history(statusHistory("handed_over"), []Event{declined, SignalHandedOver{TeamID: "team-b"}}), bob, AcceptHandover{}, ok(HandoverAccepted{TeamID: "team-b"})},
		{"decline", statusHistory("handed_over"), anna, DeclineHandover{Reason: secret}, ok(declined)},
		{"assign by a professional of the team", statusHistory("in_care"), anna, AssignCase{ProfessionalID: "anna"}, ok(CaseAssigned{ProfessionalID: "anna"})},
		{"assign while handed over", statusHistory("handed_over"), anna, AssignCase{ProfessionalID: "anna"}, ok(CaseAssigned{ProfessionalID: "anna"})},
		{"assign by a coordinator", statusHistory("in_care"), gert, AssignCase{ProfessionalID: "anna"}, ok(CaseAssigned{ProfessionalID: "anna"})},
		{"reassign", history(statusHistory("in_care"), []Event{CaseAssigned{ProfessionalID: "anna"}}), gert, AssignCase{ProfessionalID: "ali"}, ok(CaseAssigned{ProfessionalID: "ali"})},
		{"follow-up with every field", statusHistory("in_care"), anna, RecordFollowUp{FollowUpID: fuID, Kind: "home_visit", Outcome: "reached", Note: secret, NextDue: "2026-12-01"},
			ok(FollowUpRecorded{FollowUpID: fuID, Kind: "home_visit", Outcome: "reached", Note: secret, NextDue: "2026-12-01"})},
		{"follow-up with the required fields only", statusHistory("in_care"), anna, RecordFollowUp{FollowUpID: fuID, Kind: "phone_call", Outcome: "not_reached"},
			ok(FollowUpRecorded{FollowUpID: fuID, Kind: "phone_call", Outcome: "not_reached"})},
		{"follow-up on a reopened case", history(statusHistory("closed"), []Event{reopened}), anna, RecordFollowUp{FollowUpID: fuID, Kind: "meeting", Outcome: "other"},
			ok(FollowUpRecorded{FollowUpID: fuID, Kind: "meeting", Outcome: "other"})},
		{"refer", statusHistory("in_care"), anna, MakeReferral{ReferralID: refID, OrganisationID: "school", Reason: secret}, ok(referred)},
		{"refer to a service", statusHistory("in_care"), anna, MakeReferral{ReferralID: refID, OrganisationID: "school", Service: "homework club", Reason: secret},
			ok(ReferralMade{ReferralID: refID, OrganisationID: "school", Service: "homework club", Reason: secret})},
		{"refer a second time", inCareRef, anna, MakeReferral{ReferralID: refID2, OrganisationID: "housing", Reason: secret},
			ok(ReferralMade{ReferralID: refID2, OrganisationID: "housing", Reason: secret})},
		{"the organisation accepts a referral", inCareRef, eva, AnswerReferral{ReferralID: refID, Answer: RefAccepted}, ok(refAccepted)},
		{"the organisation declines a referral", inCareRef, eva, AnswerReferral{ReferralID: refID, Answer: RefDeclined, Note: secret}, ok(ReferralDeclined{ReferralID: refID, Note: secret})},
		{"the organisation completes an accepted referral", history(inCareRef, []Event{refAccepted}), eva, AnswerReferral{ReferralID: refID, Answer: RefCompleted, Note: secret},
			ok(ReferralCompleted{ReferralID: refID, Note: secret})},
		{"answer the second of two referrals", history(inCareRef, []Event{ReferralMade{ReferralID: refID2, OrganisationID: "housing", Reason: secret}}), femke,
			AnswerReferral{ReferralID: refID2, Answer: RefAccepted}, ok(ReferralAccepted{ReferralID: refID2})},
		{"feedback after closing", statusHistory("closed"), anna, GiveFeedback{Code: "closed"}, ok(FeedbackGiven{Code: "closed"})},
		{"close", statusHistory("in_care"), anna, CloseCase{Outcome: "resolved"}, ok(closed)},
		{"close with a note", statusHistory("in_care"), anna, CloseCase{Outcome: "referred", Note: secret}, ok(CaseClosed{Outcome: "referred", Note: secret})},
		{"close a reopened case", history(statusHistory("closed"), []Event{reopened}), anna, CloseCase{Outcome: "unreachable"}, ok(CaseClosed{Outcome: "unreachable"})},
		{"reopen", statusHistory("closed"), anna, ReopenCase{Reason: secret}, ok(reopened)},
	}
	// Every code of the closed lists is accepted.
	for _, code := range FeedbackCodes {
		cases = append(cases, decideCase{"feedback " + code, statusHistory("in_care"), anna, GiveFeedback{Code: code}, ok(FeedbackGiven{Code: code})})
	}
	for _, o := range CloseOutcomes {
		cases = append(cases, decideCase{"close as " + o, statusHistory("in_care"), anna, CloseCase{Outcome: o}, ok(CaseClosed{Outcome: o})})
	}
	for _, k := range FollowUpKinds {
		for _, o := range FollowUpOutcomes {
			cases = append(cases, decideCase{"follow-up " + k + " " + o, statusHistory("in_care"), anna, RecordFollowUp{FollowUpID: fuID, Kind: k, Outcome: o},
				ok(FollowUpRecorded{FollowUpID: fuID, Kind: k, Outcome: o})})
		}
	}
	for _, c := range Categories {
		for _, u := range Urgencies {
			for _, con := range Consents {
				cmd := RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "n", Categories: []string{c}, Urgency: u, Consent: con, Description: secret}
				want := SignalRaised{SignalID: sigID, SubjectID: subjID, RaisedBy: "dirk", Source: RoleBuurtsteun, Network: "net", Neighbourhood: "n",
					Categories: []string{c}, Urgency: u, Consent: con, Description: secret, RaisedAt: now}
				cases = append(cases, decideCase{fmt.Sprintf("raise %s %s %s", c, u, con), nil, dirk, cmd, ok(want)})
			}
		}
	}
	runDecide(t, cases)
}

// TestDecideEveryCommandFromEveryStatus is the lifecycle as a matrix: every
// command from every status, including the signal that does not exist. Where
// the lifecycle does not allow it, the answer is a conflict; except that
// commands of the signal's team are refused by policy first while the signal
// has no team (raised, withdrawn): no professional is its team.
func TestDecideEveryCommandFromEveryStatus(t *testing.T) {
	openRef := func(status string) []Event { // the histories of a referral answer
		switch status {
		case "in_care":
			return history(statusHistory("in_care"), []Event{referred})
		case "closed":
			return history(statusHistory("in_care"), []Event{referred, closed})
		}
		return statusHistory(status)
	}
	acceptedRef := func(status string) []Event {
		switch status {
		case "in_care":
			return history(statusHistory("in_care"), []Event{referred, refAccepted})
		case "closed":
			return history(statusHistory("in_care"), []Event{referred, refAccepted, closed})
		}
		return statusHistory(status)
	}
	followUp := RecordFollowUp{FollowUpID: fuID, Kind: "meeting", Outcome: "reached"}
	refer := MakeReferral{ReferralID: refID, OrganisationID: "school", Reason: secret}
	rows := []struct {
		command string
		actor   Principal
		cmd     Command
		history func(status string) []Event
		want    map[string]outcome // by status
	}{
		{"RaiseSignal", carla, validRaise, statusHistory, map[string]outcome{
			"none": ok(raised), "raised": exists, "handed_over": exists, "in_care": exists, "closed": exists, "withdrawn": exists}},
		{"WithdrawSignal", carla, WithdrawSignal{Reason: secret}, statusHistory, map[string]outcome{
			"none": notFound, "raised": ok(withdrawn), "handed_over": badMove, "in_care": badMove, "closed": badMove, "withdrawn": badMove}},
		{"HandOver", gert, HandOver{TeamID: "team-a"}, statusHistory, map[string]outcome{
			"none": notFound, "raised": ok(handed), "handed_over": badMove, "in_care": badMove, "closed": badMove, "withdrawn": badMove}},
		{"AcceptHandover", anna, AcceptHandover{}, statusHistory, map[string]outcome{
			"none": notFound, "raised": forbiddenTo, "handed_over": ok(accepted), "in_care": badMove, "closed": badMove, "withdrawn": forbiddenTo}},
		{"DeclineHandover", anna, DeclineHandover{Reason: secret}, statusHistory, map[string]outcome{
			"none": notFound, "raised": forbiddenTo, "handed_over": ok(declined), "in_care": badMove, "closed": badMove, "withdrawn": forbiddenTo}},
		{"AssignCase", gert, AssignCase{ProfessionalID: "anna"}, statusHistory, map[string]outcome{
			"none": notFound, "raised": badMove, "handed_over": ok(CaseAssigned{ProfessionalID: "anna"}), "in_care": ok(CaseAssigned{ProfessionalID: "anna"}),
			"closed": badMove, "withdrawn": badMove}},
		{"RecordFollowUp", anna, followUp, statusHistory, map[string]outcome{
			"none": notFound, "raised": forbiddenTo, "handed_over": badMove, "in_care": ok(FollowUpRecorded{FollowUpID: fuID, Kind: "meeting", Outcome: "reached"}),
			"closed": badMove, "withdrawn": forbiddenTo}},
		{"MakeReferral", anna, refer, statusHistory, map[string]outcome{
			"none": notFound, "raised": forbiddenTo, "handed_over": badMove, "in_care": ok(referred), "closed": badMove, "withdrawn": forbiddenTo}},
		// A referral exists only once the signal was in care, so before that
		// the answer finds none.
		{"AnswerReferral accept", eva, AnswerReferral{ReferralID: refID, Answer: RefAccepted}, openRef, map[string]outcome{
			"none": notFound, "raised": noReferral, "handed_over": noReferral, "in_care": ok(refAccepted), "closed": ok(refAccepted), "withdrawn": noReferral}},
		{"AnswerReferral decline", eva, AnswerReferral{ReferralID: refID, Answer: RefDeclined}, openRef, map[string]outcome{
			"none": notFound, "raised": noReferral, "handed_over": noReferral, "in_care": ok(ReferralDeclined{ReferralID: refID}), "closed": ok(ReferralDeclined{ReferralID: refID}), "withdrawn": noReferral}},
		{"AnswerReferral complete", eva, AnswerReferral{ReferralID: refID, Answer: RefCompleted}, acceptedRef, map[string]outcome{
			"none": notFound, "raised": noReferral, "handed_over": noReferral, "in_care": ok(ReferralCompleted{ReferralID: refID}), "closed": ok(ReferralCompleted{ReferralID: refID}), "withdrawn": noReferral}},
		{"GiveFeedback", anna, GiveFeedback{Code: "in_progress"}, statusHistory, map[string]outcome{
			"none": notFound, "raised": forbiddenTo, "handed_over": badMove, "in_care": ok(FeedbackGiven{Code: "in_progress"}),
			"closed": ok(FeedbackGiven{Code: "in_progress"}), "withdrawn": forbiddenTo}},
		{"CloseCase", anna, CloseCase{Outcome: "resolved"}, statusHistory, map[string]outcome{
			"none": notFound, "raised": forbiddenTo, "handed_over": badMove, "in_care": ok(closed), "closed": badMove, "withdrawn": forbiddenTo}},
		{"ReopenCase", anna, ReopenCase{Reason: secret}, statusHistory, map[string]outcome{
			"none": notFound, "raised": forbiddenTo, "handed_over": badMove, "in_care": badMove, "closed": ok(reopened), "withdrawn": forbiddenTo}},
	}
	var cases []decideCase
	for _, r := range rows {
		for _, st := range statuses {
			want, found := r.want[st.name]
			if !found {
				t.Fatalf("%s: no expectation for status %s", r.command, st.name)
			}
			cases = append(cases, decideCase{r.command + " when " + st.name, r.history(st.name), r.actor, r.cmd, want})
		}
		if len(r.want) != len(statuses) {
			t.Fatalf("%s: expectations for unknown statuses", r.command)
		}
	}
	if len(rows) != 14 {
		t.Fatalf("%d command rows, want 14 (12 commands, three referral answers)", len(rows))
	}
	runDecide(t, cases)
}

// TestDecideLifecycleRules covers the rules of the lifecycle beyond the
// status: referral states, a second raise, assignment and the variants of
// raised and in care reached by a decline and a reopen.
func TestDecideLifecycleRules(t *testing.T) {
	inCareRef := history(statusHistory("in_care"), []Event{referred})
	declinedRef := history(inCareRef, []Event{ReferralDeclined{ReferralID: refID}})
	acceptedRef := history(inCareRef, []Event{refAccepted})
	completedRef := history(acceptedRef, []Event{ReferralCompleted{ReferralID: refID}})
	notOpen := outcome{kind: KindConflict, code: "referral_not_open"}
	notAccepted := outcome{kind: KindConflict, code: "referral_not_accepted"}
	answer := func(a ReferralStatus) AnswerReferral { return AnswerReferral{ReferralID: refID, Answer: a} }
	runDecide(t, []decideCase{
		{"answer an unknown referral", statusHistory("in_care"), eva, answer(RefAccepted), noReferral},
		{"answer a referral of another signal's id", inCareRef, eva, AnswerReferral{ReferralID: refID2, Answer: RefAccepted}, noReferral},
		{"accept a declined referral", declinedRef, eva, answer(RefAccepted), notOpen},
		{"decline a declined referral", declinedRef, eva, answer(RefDeclined), notOpen},
		{"complete a declined referral", declinedRef, eva, answer(RefCompleted), notAccepted},
		{"accept an accepted referral", acceptedRef, eva, answer(RefAccepted), notOpen},
		{"decline an accepted referral", acceptedRef, eva, answer(RefDeclined), notOpen},
		{"complete an open referral", inCareRef, eva, answer(RefCompleted), notAccepted},
		{"accept a completed referral", completedRef, eva, answer(RefAccepted), notOpen},
		{"decline a completed referral", completedRef, eva, answer(RefDeclined), notOpen},
		{"complete a completed referral", completedRef, eva, answer(RefCompleted), notAccepted},
		{"answer a referral of a reopened case", history(inCareRef, []Event{closed, reopened}), eva, answer(RefAccepted), ok(refAccepted)},
		{"refer twice with one id", inCareRef, anna, MakeReferral{ReferralID: refID, OrganisationID: "housing", Reason: secret}, outcome{kind: KindConflict, code: "referral_exists"}},
		{"raise a signal that exists, by another signaller", statusHistory("in_care"), dirk, validRaise, exists},
		{"assign to the assignee", history(statusHistory("in_care"), []Event{CaseAssigned{ProfessionalID: "anna"}}), anna, AssignCase{ProfessionalID: "anna"},
			outcome{kind: KindConflict, code: "already_assigned"}},
		{"accept after a decline (raised again)", history(statusHistory("handed_over"), []Event{declined}), anna, AcceptHandover{}, forbiddenTo},
		{"reopen a reopened case", history(statusHistory("closed"), []Event{reopened}), anna, ReopenCase{Reason: secret}, badMove},
		{"hand over a reopened case", history(statusHistory("closed"), []Event{reopened}), gert, HandOver{TeamID: "team-b"}, badMove},
		{"withdraw a closed case", statusHistory("closed"), carla, WithdrawSignal{Reason: secret}, badMove},
		{"withdraw after withdrawing", statusHistory("withdrawn"), carla, WithdrawSignal{Reason: secret}, badMove},
		{"assign a withdrawn signal", statusHistory("withdrawn"), gert, AssignCase{ProfessionalID: "anna"}, badMove},
		// The status is checked before the fields: a wrong move is a conflict
		// even when the command is also incomplete.
		{"an incomplete command in the wrong status", statusHistory("closed"), anna, MakeReferral{}, badMove},
	})
}

// TestDecideWhoMay tries every command, in a status that allows it, by every
// principal: those the table names succeed, everyone else is forbidden.
func TestDecideWhoMay(t *testing.T) {
	inCareRef := history(statusHistory("in_care"), []Event{referred})
	rows := []struct {
		command string
		given   []Event
		cmd     Command
		may     []Principal
	}{
		{"RaiseSignal", nil, validRaise, []Principal{carla, dirk, eva, femke, anna, bob, alien}},
		{"WithdrawSignal", statusHistory("raised"), WithdrawSignal{Reason: secret}, []Principal{carla}},
		{"HandOver", statusHistory("raised"), HandOver{TeamID: "team-a"}, []Principal{carla, anna, bob, gert}},
		{"AcceptHandover", statusHistory("handed_over"), AcceptHandover{}, []Principal{anna}},
		{"DeclineHandover", statusHistory("handed_over"), DeclineHandover{Reason: secret}, []Principal{anna}},
		{"AssignCase", statusHistory("in_care"), AssignCase{ProfessionalID: "anna"}, []Principal{anna, gert}},
		{"RecordFollowUp", statusHistory("in_care"), RecordFollowUp{FollowUpID: fuID, Kind: "meeting", Outcome: "reached"}, []Principal{anna}},
		{"MakeReferral", statusHistory("in_care"), MakeReferral{ReferralID: refID2, OrganisationID: "school", Reason: secret}, []Principal{anna}},
		{"AnswerReferral accept", inCareRef, AnswerReferral{ReferralID: refID, Answer: RefAccepted}, []Principal{eva}},
		{"AnswerReferral decline", inCareRef, AnswerReferral{ReferralID: refID, Answer: RefDeclined}, []Principal{eva}},
		{"AnswerReferral complete", history(inCareRef, []Event{refAccepted}), AnswerReferral{ReferralID: refID, Answer: RefCompleted}, []Principal{eva}},
		{"GiveFeedback", statusHistory("in_care"), GiveFeedback{Code: "received"}, []Principal{anna}},
		{"CloseCase", statusHistory("in_care"), CloseCase{Outcome: "resolved"}, []Principal{anna}},
		{"ReopenCase", statusHistory("closed"), ReopenCase{Reason: secret}, []Principal{anna}},
	}
	var cases []decideCase
	for _, r := range rows {
		for _, p := range everyone {
			name := fmt.Sprintf("%s by %s of %s", r.command, p.ID, p.Network)
			if len(p.Roles) == 0 {
				name += " without roles"
			}
			if !slices.ContainsFunc(r.may, func(q Principal) bool { return cmp.Equal(p, q) }) {
				cases = append(cases, decideCase{name, r.given, p, r.cmd, forbiddenTo})
				continue
			}
			want, err := Decide(given(r.given...), p, r.cmd, now)
			if err != nil || len(want) == 0 {
				t.Fatalf("%s: %v", name, err)
			}
			cases = append(cases, decideCase{name, r.given, p, r.cmd, ok(want...)})
		}
	}
	runDecide(t, cases)
}

// TestDecideWrongActor names the rules of who may act on a signal one by one.
func TestDecideWrongActor(t *testing.T) {
	inCareRef := history(statusHistory("in_care"), []Event{referred})
	toTeamB := history(statusHistory("handed_over"), []Event{declined, SignalHandedOver{TeamID: "team-b"}})
	runDecide(t, []decideCase{
		{"a coordinator may not raise", nil, gert, validRaise, forbiddenTo},
		{"a privacy officer may not raise", nil, hanna, validRaise, forbiddenTo},
		{"an admin may not raise", nil, adam, validRaise, forbiddenTo},
		{"policy comes before validation", nil, gert, RaiseSignal{}, forbiddenTo},
		{"another volunteer may not withdraw", statusHistory("raised"), dirk, WithdrawSignal{Reason: secret}, forbiddenTo},
		{"the team may not withdraw", statusHistory("raised"), anna, WithdrawSignal{Reason: secret}, forbiddenTo},
		{"the signaller may not withdraw after the handover", statusHistory("handed_over"), carla, WithdrawSignal{Reason: secret}, badMove},
		{"the signaller without roles may not withdraw", statusHistory("raised"), exCarla, WithdrawSignal{Reason: secret}, forbiddenTo},
		{"the signaller in another network may not withdraw", statusHistory("raised"), Principal{ID: "carla", Roles: []Role{RoleBuurtsteun}, Network: "other"}, WithdrawSignal{Reason: secret}, forbiddenTo},
		{"another volunteer may not hand over", statusHistory("raised"), dirk, HandOver{TeamID: "team-a"}, forbiddenTo},
		{"a partner hands over its own signal", given1(raisedBy(eva)), eva, HandOver{TeamID: "team-a"}, ok(SignalHandedOver{TeamID: "team-a"})},
		{"a partner may not hand over another's signal", statusHistory("raised"), eva, HandOver{TeamID: "team-a"}, forbiddenTo},
		{"only the handed-to team may accept", statusHistory("handed_over"), bob, AcceptHandover{}, forbiddenTo},
		{"the first team may not accept after the handover moved on", toTeamB, anna, AcceptHandover{}, forbiddenTo},
		{"the new team accepts after the handover moved on", toTeamB, bob, AcceptHandover{}, ok(HandoverAccepted{TeamID: "team-b"})},
		{"a volunteer may not accept", statusHistory("handed_over"), carla, AcceptHandover{}, forbiddenTo},
		{"a coordinator may not accept", statusHistory("handed_over"), gert, AcceptHandover{}, forbiddenTo},
		{"another network may not accept", statusHistory("handed_over"), alien, AcceptHandover{}, forbiddenTo},
		{"another team may not decline", statusHistory("handed_over"), bob, DeclineHandover{Reason: secret}, forbiddenTo},
		{"another team may not assign", statusHistory("in_care"), bob, AssignCase{ProfessionalID: "bob"}, forbiddenTo},
		{"another team may not follow up", statusHistory("in_care"), bob, RecordFollowUp{FollowUpID: fuID, Kind: "meeting", Outcome: "other"}, forbiddenTo},
		{"another team may not refer", statusHistory("in_care"), bob, MakeReferral{ReferralID: refID, OrganisationID: "school", Reason: secret}, forbiddenTo},
		{"another team may not give feedback", statusHistory("in_care"), bob, GiveFeedback{Code: "received"}, forbiddenTo},
		{"another team may not close", statusHistory("in_care"), bob, CloseCase{Outcome: "resolved"}, forbiddenTo},
		{"another team may not reopen", statusHistory("closed"), bob, ReopenCase{Reason: secret}, forbiddenTo},
		{"another organisation may not answer a referral", inCareRef, femke, AnswerReferral{ReferralID: refID, Answer: RefAccepted}, forbiddenTo},
		{"the same organisation in another network may not answer", inCareRef, alienEva, AnswerReferral{ReferralID: refID, Answer: RefAccepted}, forbiddenTo},
		{"the team may not answer its own referral", inCareRef, anna, AnswerReferral{ReferralID: refID, Answer: RefAccepted}, forbiddenTo},
		{"a partner without an organisation may not answer", inCareRef, Principal{ID: "p", Roles: []Role{RolePartner}, Network: "net"}, AnswerReferral{ReferralID: refID, Answer: RefAccepted}, forbiddenTo},
		{"a signal that does not exist is not found, whoever asks", nil, alien, AcceptHandover{}, notFound},
	})
}

func raisedBy(p Principal) SignalRaised {
	e := raised
	e.RaisedBy, e.Source, e.Organisation, e.Network = p.ID, p.Roles[0], p.Organisation, p.Network
	return e
}

func given1(e Event) []Event { return []Event{e} }

func TestDecideInvalidFields(t *testing.T) {
	inCareRef := history(statusHistory("in_care"), []Event{referred})
	tests := []struct {
		name  string
		given []Event
		actor Principal
		cmd   Command
		want  []string
	}{
		{"empty raise", nil, carla, RaiseSignal{}, []string{"id", "subject", "neighbourhood", "categories", "urgency", "consent", "description"}},
		{"raise with unknown codes", nil, carla, RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "x", Categories: []string{"gossip talk"}, Urgency: "urgent", Consent: "maybe", Description: secret},
			[]string{"categories", "urgency", "consent"}},
		{"raise with one category that is no id among ids", nil, carla, RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "x", Categories: []string{"debt", "gossip", "X Y"}, Urgency: "normal", Consent: "informed", Description: secret},
			[]string{"categories"}},
		{"raise with an empty category list", nil, carla, RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "x", Categories: []string{}, Urgency: "normal", Consent: "informed", Description: secret},
			[]string{"categories"}},
		{"raise with an empty sealed description", nil, carla, RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "x", Categories: []string{"debt"}, Urgency: "normal", Consent: "informed", Description: Sealed{}},
			[]string{"description"}},
		{"raise with codes in the wrong case", nil, carla, RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: "x", Categories: []string{"Debt"}, Urgency: "Normal", Consent: "Informed", Description: secret},
			[]string{"categories", "urgency", "consent"}},
		{"withdraw without a reason", statusHistory("raised"), carla, WithdrawSignal{}, []string{"reason"}},
		{"hand over without a team", statusHistory("raised"), carla, HandOver{Note: secret}, []string{"team_id"}},
		{"decline without a reason", statusHistory("handed_over"), anna, DeclineHandover{}, []string{"reason"}},
		{"assign nobody", statusHistory("in_care"), anna, AssignCase{}, []string{"professional_id"}},
		{"follow-up with nothing", statusHistory("in_care"), anna, RecordFollowUp{}, []string{"kind", "outcome", "id"}},
		{"follow-up with unknown codes and a bad date", statusHistory("in_care"), anna, RecordFollowUp{FollowUpID: fuID, Kind: "visit", Outcome: "fine", NextDue: "tomorrow"}, []string{"kind", "outcome", "next_due"}},
		{"follow-up with an impossible date", statusHistory("in_care"), anna, RecordFollowUp{FollowUpID: fuID, Kind: "meeting", Outcome: "reached", NextDue: "2026-02-30"}, []string{"next_due"}},
		{"follow-up with a time for a date", statusHistory("in_care"), anna, RecordFollowUp{FollowUpID: fuID, Kind: "meeting", Outcome: "reached", NextDue: "2026-12-01T10:00:00Z"}, []string{"next_due"}},
		{"referral with nothing", statusHistory("in_care"), anna, MakeReferral{}, []string{"organisation_id", "reason", "id"}},
		{"referral without a reason", statusHistory("in_care"), anna, MakeReferral{ReferralID: refID, OrganisationID: "school"}, []string{"reason"}},
		{"referral without an organisation", statusHistory("in_care"), anna, MakeReferral{ReferralID: refID, Reason: secret}, []string{"organisation_id"}},
		{"referral without an id", statusHistory("in_care"), anna, MakeReferral{OrganisationID: "school", Reason: secret}, []string{"id"}},
		{"a referral answer that is no answer", inCareRef, eva, AnswerReferral{ReferralID: refID, Answer: "maybe"}, []string{"answer"}},
		{"a referral answer of open", inCareRef, eva, AnswerReferral{ReferralID: refID, Answer: RefOpen}, []string{"answer"}},
		{"a referral answer left out", inCareRef, eva, AnswerReferral{ReferralID: refID}, []string{"answer"}},
		{"feedback with an unknown code", statusHistory("in_care"), anna, GiveFeedback{Code: "details"}, []string{"code"}},
		{"feedback without a code", statusHistory("closed"), anna, GiveFeedback{}, []string{"code"}},
		{"close with an unknown outcome", statusHistory("in_care"), anna, CloseCase{Outcome: "done", Note: secret}, []string{"outcome"}},
		{"close without an outcome", statusHistory("in_care"), anna, CloseCase{}, []string{"outcome"}},
		{"reopen without a reason", statusHistory("closed"), anna, ReopenCase{}, []string{"reason"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Decide(given(tt.given...), tt.actor, tt.cmd, now)
			if evs != nil {
				t.Fatalf("events %v on invalid input", evs)
			}
			e, isErr := err.(*Error)
			if !isErr || e.Kind != KindInvalid || e.Code != "validation" {
				t.Fatalf("err = %v, want a validation error", err)
			}
			var fields []string
			for _, f := range e.Fields {
				if f.Message == "" {
					t.Errorf("field %s without a message", f.Field)
				}
				fields = append(fields, f.Field)
			}
			if diff := cmp.Diff(tt.want, fields); diff != "" {
				t.Fatalf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideIsPure: Decide does not change its command or state, answers the
// same twice and takes its time from the caller, in UTC.
func TestDecideIsPure(t *testing.T) {
	cmd := validRaise
	cmd.Categories = []string{"loneliness", "debt", "debt"}
	before := []string{"loneliness", "debt", "debt"}
	amsterdam := time.FixedZone("CET", 3600)
	first, err := Decide(Signal{}, carla, cmd, now.In(amsterdam))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, cmd.Categories); diff != "" {
		t.Errorf("Decide changed the command's categories (-want +got):\n%s", diff)
	}
	if at := first[0].(SignalRaised).RaisedAt; at.Location() != time.UTC || !at.Equal(now) {
		t.Errorf("raised at %v, want %v in UTC", at, now)
	}
	second, _ := Decide(Signal{}, carla, cmd, now.In(amsterdam))
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("Decide answers differently twice (-first +second):\n%s", diff)
	}

	s := given(history(statusHistory("in_care"), []Event{referred})...)
	snapshot := given(history(statusHistory("in_care"), []Event{referred})...)
	if _, err := Decide(s, eva, AnswerReferral{ReferralID: refID, Answer: RefAccepted}, now); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(snapshot, s); diff != "" {
		t.Errorf("Decide changed the state (-want +got):\n%s", diff)
	}
}

func TestEvolveTracksTheLifecycle(t *testing.T) {
	s := given(raised, handed, accepted, CaseAssigned{ProfessionalID: "anna"}, referred, refAccepted,
		SignalsMatched{SubjectID: subjID, SignalIDs: []uuid.UUID{otherSig}}, FollowUpRecorded{FollowUpID: fuID}, FeedbackGiven{Code: "received"},
		closed, reopened, SignalsMatched{SubjectID: subjID, SignalIDs: []uuid.UUID{otherSig}})
	want := Signal{ID: sigID, SubjectID: subjID, Status: StatusInCare, RaisedBy: "carla", Source: RoleBuurtsteun, Organisation: "buurtsteun",
		Network: "net", Neighbourhood: "centrum", Categories: []string{"debt", "loneliness"}, Urgency: "high", Team: "team-a", Assignee: "anna",
		Referrals: []Referral{{ID: refID, OrganisationID: "school", Status: RefAccepted}}, Matched: []uuid.UUID{otherSig}, Version: 12}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Fatalf("state (-want +got):\n%s", diff)
	}

	// A decline sends the signal back to buurtsteun: no team, no assignee.
	d := given(raised, handed, CaseAssigned{ProfessionalID: "anna"}, declined)
	if d.Status != StatusRaised || d.Team != "" || d.Assignee != "" || d.Version != 4 {
		t.Fatalf("after a decline: %+v", d)
	}

	// Events of other aggregates leave the signal as it is.
	for _, e := range []Event{SubjectRegistered{SubjectID: subjID}, SubjectErased{SubjectID: subjID}, SubjectExported{SubjectID: subjID},
		OrganisationRegistered{OrganisationID: "o"}, ServiceOffered{Name: "s"}, ServiceWithdrawn{Name: "s"}, RecordAccessed{}, AccessDenied{}} {
		if diff := cmp.Diff(s, Evolve(s, e)); diff != "" {
			t.Errorf("%s changed the signal (-want +got):\n%s", e.EventType(), diff)
		}
	}
}

// TestEvolveDoesNotShareState: a state is a value; evolving it further does
// not change an earlier state through a shared slice.
func TestEvolveDoesNotShareState(t *testing.T) {
	cats := []string{"debt"}
	e := raised
	e.Categories = cats
	s0 := given(e, handed, accepted, referred, SignalsMatched{SubjectID: subjID, SignalIDs: []uuid.UUID{otherSig}})
	want := given(e, handed, accepted, referred, SignalsMatched{SubjectID: subjID, SignalIDs: []uuid.UUID{otherSig}})
	_ = Evolve(s0, refAccepted)
	_ = Evolve(s0, ReferralMade{ReferralID: refID2, OrganisationID: "housing"})
	_ = Evolve(s0, SignalsMatched{SubjectID: subjID, SignalIDs: []uuid.UUID{sigID}})
	cats[0] = "changed"
	if diff := cmp.Diff(want, s0); diff != "" {
		t.Fatalf("an earlier state changed (-want +got):\n%s", diff)
	}
}

// TestSignalled: a raise about a known subject records the match on the
// subject's stream, never matching the signal with itself.
func TestSignalled(t *testing.T) {
	for _, tc := range []struct {
		name string
		open []uuid.UUID
		want []uuid.UUID
	}{
		{"no open signals", nil, nil},
		{"another open signal", []uuid.UUID{otherSig}, []uuid.UUID{otherSig}},
		{"not itself", []uuid.UUID{otherSig, sigID}, []uuid.UUID{otherSig}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Signalled(subjID, sigID, tc.open)
			want := SubjectSignalled{SubjectID: subjID, SignalID: sigID, Matched: tc.want}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
