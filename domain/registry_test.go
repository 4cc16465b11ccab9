package domain

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
)

// registrySamples holds one event of every registered type, with every field set.
func registrySamples() []Event {
	record := AccessRecord{At: now, ActorID: "anna", ActorRole: "professional", OnBehalfOf: "gert", Action: "read_case", View: "case",
		Purpose: "care", Basis: BasisBreakGlass, BreakGlassReason: secret, Subjects: []uuid.UUID{subjID}, Signals: []uuid.UUID{sigID},
		Outcome: "allowed", ClientAddr: "192.0.2.1", RequestID: "req-1", Network: "net"}
	raisedV2 := raised
	raisedV2.Norms = &SignalNorms{NormsVersion: 3, CategoriesVersion: 2, Response: Norm{WorkingDays: 5},
		ByCategory: map[string]Norm{"debt": {Hours: 48}}, FeedbackWorkDays: 7}
	return []Event{
		RoutingRulesSet{Network: "net", Rules: []RoutingRule{{ID: "acute-centrum", Neighbourhood: "centrum", Urgency: "acute", TeamID: "team-a"}, {ID: "rest", TeamID: "team-b"}}},
		NotificationTargetsSet{Network: "net", Targets: []NotificationTarget{
			{ID: "team-a-hook", Subscriber: SubscribeTeam, SubscriberID: "team-a", Channel: ChannelWebhook, URL: "https://team-a.example/hook", Kinds: []string{NotifyHandedOver}},
			{ID: "coordinators", Subscriber: SubscribeCoordinators, Channel: ChannelEmail, Email: "coordinatie@example.org", Language: "en"},
		}},
		raisedV2, withdrawn, SignalHandedOver{TeamID: "team-a", Note: secret, RuleID: "rule-1"}, accepted, declined,
		CaseAssigned{ProfessionalID: "anna"}, FollowUpRecorded{FollowUpID: fuID, Kind: "meeting", Outcome: "other", Note: secret, NextDue: "2026-12-01"},
		ReferralMade{ReferralID: refID, OrganisationID: "school", Service: "homework club", Reason: secret},
		ReferralAccepted{ReferralID: refID, Note: secret}, ReferralDeclined{ReferralID: refID, Note: secret}, ReferralCompleted{ReferralID: refID, Note: secret},
		FeedbackGiven{Code: "received", Text: &FeedbackText{NL: "We hebben uw signaal.", EN: "We have your signal."}, TextsVersion: 2},
		SignalsMatched{SubjectID: subjID, SignalIDs: []uuid.UUID{otherSig, sigID}},
		SubjectSignalled{SubjectID: subjID, SignalID: sigID, Matched: []uuid.UUID{otherSig}},
		CaseClosed{Outcome: "resolved", Note: secret}, reopened,
		SubjectRegistered{SubjectID: subjID, Network: "net", Data: secret}, SubjectErased{SubjectID: subjID, RequestRef: "req-9", Basis: "request"},
		SubjectExported{SubjectID: subjID, RequestRef: "req-8"},
		OrganisationRegistered{OrganisationID: "school", Network: "net", Name: "De School", Kind: "school"},
		ServiceOffered{Name: "homework club", Description: "after school", Volunteer: true}, ServiceWithdrawn{Name: "homework club"},
		RecordAccessed{AccessRecord: record, Chain: Chain{Seq: 7, Prev: "ab12"}},
		AccessDenied{AccessRecord: record, Chain: Chain{Seq: 8, Prev: "cd34"}},
		AccessReviewed{Network: "net", Item: "break_glass:42", Judgement: "justified", Note: secret, Subject: subjID},
		CategoriesSet{Network: "net", Categories: []Category{{ID: "debt", LabelNL: "Schulden", LabelEN: "Debt", Norms: map[string]Norm{"high": {WorkingDays: 2}}},
			{ID: "gossip", LabelNL: "Roddel", LabelEN: "Gossip", Description: "oud", Retired: true}}},
		NormsSet{Network: "net", Norms: Norms{ByUrgency: map[string]Norm{"acute": {Hours: 12}, "high": {WorkingDays: 2}, "normal": {WorkingDays: 5}}, FeedbackWorkDays: 5}},
		FeedbackTextsSet{Network: "net", Texts: map[string]FeedbackText{"received": {NL: "Ontvangen.", EN: "Received."}}},
		NeighbourhoodsSet{Network: "net", Neighbourhoods: []Neighbourhood{{ID: "centrum", Name: "Centrum"}, {ID: "oud-west", Name: "Oud-West", Retired: true}}},
		SessionKeyCreated{Wrapped: []byte("wrapped-key-bytes")}, SessionEnded{SessionID: "s-1", Until: now.Add(8 * time.Hour)},
		LeaseAcquired{Holder: "replica-a/5f1c2e9a", Replica: "replica-a", Term: 3, TTLms: 20000},
		LeaseRenewed{Holder: "replica-a/5f1c2e9a", Term: 3, TTLms: 20000}, LeaseReleased{Holder: "replica-a/5f1c2e9a", Term: 3},
		OutboxSnapshot{Part: 0, Parts: 2, Checkpoint: &checkpoint, Claim: "5a8e1f0c-2b3d-4e5f-8a9b-0c1d2e3f4a5b", Pending: []Delivery{delivery}, Dead: []Delivery{dead}, Marks: []string{sigID.String() + "/norm_lapsed"}},
		OutboxClaimed{Owner: "replica-a/5f1c2e9a@3"},
		OutboxQueued{Deliveries: []Delivery{delivery}, Marks: []string{sigID.String() + "/norm_lapsing"}, Checkpoint: &checkpoint},
		OutboxDone{IDs: []string{delivery.Notification.ID}}, OutboxFailed{Delivery: dead}, OutboxRetried{ID: dead.Notification.ID},
		OutboxSealed{Next: "outbox-notifier-2"},
	}
}

var (
	checkpoint = uint64(4711)
	delivery   = Delivery{Notification: Notification{ID: "3f0e7c55-0d5b-5a51-9b0c-6d2f1f8e4a10", Kind: NotifyHandedOver, Signal: sigID.String(), Team: "team-a",
		Link: "https://buurtsignaal.example/console/cases/" + sigID.String(), At: now, Network: "net"}, TargetID: "team-a-hook", Channel: ChannelWebhook, QueuedAt: now}
	dead = Delivery{Notification: Notification{ID: "8c1d2e3f-4a5b-5c6d-8e7f-9a0b1c2d3e4f", Kind: NotifyFeedbackGiven, Signal: sigID.String(), Code: "received", At: now, Network: "net"},
		TargetID: "carla-hook", Channel: ChannelWebhook, Attempts: 2, QueuedAt: now, FailedAt: now, Error: "webhook answered 500"}
)

func TestRegistryRoundTripsEveryType(t *testing.T) {
	reg := NewRegistry()
	var types []string
	for _, e := range registrySamples() {
		types = append(types, e.EventType())
		t.Run(e.EventType(), func(t *testing.T) {
			data, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := reg.Decode(e.EventType(), data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(e, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if !reg.Known(e.EventType()) {
				t.Error("not Known")
			}
		})
	}
	slices.Sort(types)
	if diff := cmp.Diff(reg.Types(), types); diff != "" {
		t.Fatalf("registered types and samples differ (-registered +samples):\n%s", diff)
	}
	// Zero values round-trip too (nil slices and sealed values come back nil).
	for _, e := range registrySamples() {
		zero := zeroOf(e)
		data, _ := Encode(zero)
		back, err := reg.Decode(zero.EventType(), data)
		if err != nil {
			t.Fatalf("zero %s: %v", zero.EventType(), err)
		}
		if diff := cmp.Diff(zero, back, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("zero %s round trip (-want +got):\n%s", zero.EventType(), diff)
		}
	}
}

// zeroOf decodes an empty object into the sample's type.
func zeroOf(e Event) Event {
	z, err := NewRegistry().Decode(e.EventType(), []byte(`{}`))
	if err != nil {
		panic(err)
	}
	return z
}

func TestRegistryRefusesWhatItDoesNotKnow(t *testing.T) {
	reg := NewRegistry()
	tests := []struct {
		name, typ string
		data      []byte
		code      string
	}{
		{"unknown type", "SignalExploded", []byte(`{}`), "unknown_event_type"},
		{"empty type", "", []byte(`{}`), "unknown_event_type"},
		{"type in the wrong case", "signalraised", []byte(`{}`), "unknown_event_type"},
		{"a body that is no JSON", "SignalRaised", []byte(`{`), "undecodable_event"},
		{"an empty body", "CaseClosed", nil, "undecodable_event"},
		{"a field of the wrong type", "SignalRaised", []byte(`{"signal_id": 5}`), "undecodable_event"},
		{"a sealed value that is no base64", "SignalWithdrawn", []byte(`{"reason": "not base64!"}`), "undecodable_event"},
		{"a sealed value that is a number", "SignalWithdrawn", []byte(`{"reason": 5}`), "undecodable_event"},
		{"a bad uuid", "ReferralMade", []byte(`{"referral_id": "nope"}`), "undecodable_event"},
		{"a bad time", "SignalRaised", []byte(`{"raised_at": "yesterday"}`), "undecodable_event"},
		{"an array", "FeedbackGiven", []byte(`[]`), "undecodable_event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := reg.Decode(tt.typ, tt.data)
			if e != nil {
				t.Fatalf("decoded %v", e)
			}
			de := AsError(err)
			if de == nil || de.Kind != KindInternal || de.Code != tt.code {
				t.Fatalf("err = %v, want internal %q", err, tt.code)
			}
		})
	}
	if reg.Known("SignalExploded") {
		t.Error("an unknown type is Known")
	}
}

// ruleV1 and ruleV3 are an event type defined outside the package, at its
// first version and two versions later.
type ruleV1 struct {
	Team string `json:"team"`
}

func (ruleV1) EventType() string { return "RoutingRuleAdded" }

type ruleV3 struct {
	TeamID   string `json:"team_id"`
	Priority int    `json:"priority"`
}

func (ruleV3) EventType() string  { return "RoutingRuleAdded" }
func (ruleV3) SchemaVersion() int { return 3 }

func TestRegistryRegister(t *testing.T) {
	reg := NewRegistry()
	reg.Register(ruleV1{}, decoder[ruleV1](), nil)
	if !reg.Known("RoutingRuleAdded") || !slices.Contains(reg.Types(), "RoutingRuleAdded") || reg.Version("RoutingRuleAdded") != 1 {
		t.Fatal("a registered type is unknown or not at version 1")
	}
	if e, err := reg.Decode("RoutingRuleAdded", []byte(`{"team":"x"}`)); err != nil || e != (ruleV1{Team: "x"}) {
		t.Fatalf("Decode = %v, %v", e, err)
	}
	// A failing decoder's error is classified, its cause kept.
	cause := errors.New("bad rule")
	reg.Register(removed{}, func([]byte) (Event, error) { return nil, cause }, nil)
	if _, err := reg.Decode("RoutingRuleRemoved", nil); KindOf(err) != KindInternal || !errors.Is(err, cause) {
		t.Fatalf("err = %v", err)
	}
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	mustPanic("registering a type twice", func() { reg.Register(raised, decoder[SignalRaised](), nil) })
	mustPanic("a version without its upcasters", func() {
		NewRegistry().Register(ruleV3{}, decoder[ruleV3](), map[int]Upcaster{1: func(b json.RawMessage) (json.RawMessage, error) { return b, nil }})
	})
}

type removed struct{}

func (removed) EventType() string { return "RoutingRuleRemoved" }

// TestRegistryUpcasts: bodies of every older version decode as the current
// shape, one upcaster at a time; a version newer than the code and a failing
// upcaster are internal errors.
func TestRegistryUpcasts(t *testing.T) {
	reg := NewRegistry()
	broken := errors.New("broken")
	reg.Register(ruleV3{}, decoder[ruleV3](), map[int]Upcaster{
		1: func(b json.RawMessage) (json.RawMessage, error) { // v2 renamed team to team_id
			var v1 struct{ Team string }
			if err := json.Unmarshal(b, &v1); err != nil {
				return nil, err
			}
			if v1.Team == "fail" {
				return nil, broken
			}
			return json.Marshal(map[string]any{"team_id": v1.Team})
		},
		2: func(b json.RawMessage) (json.RawMessage, error) { // v3 added priority, default 10
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			m["priority"] = 10
			return json.Marshal(m)
		},
	})
	if reg.Version("RoutingRuleAdded") != 3 || VersionOf(ruleV3{}) != 3 {
		t.Fatalf("version = %d, want 3", reg.Version("RoutingRuleAdded"))
	}
	tests := []struct {
		version int
		body    string
		want    Event
	}{
		{0, `{"team":"team-a"}`, ruleV3{TeamID: "team-a", Priority: 10}}, // before versions were recorded
		{1, `{"team":"team-a"}`, ruleV3{TeamID: "team-a", Priority: 10}},
		{2, `{"team_id":"team-b"}`, ruleV3{TeamID: "team-b", Priority: 10}},
		{3, `{"team_id":"team-c","priority":2}`, ruleV3{TeamID: "team-c", Priority: 2}},
	}
	for _, tt := range tests {
		got, err := reg.DecodeVersion("RoutingRuleAdded", tt.version, []byte(tt.body))
		if err != nil {
			t.Fatalf("v%d: %v", tt.version, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("v%d (-want +got):\n%s", tt.version, diff)
		}
	}
	if _, err := reg.DecodeVersion("RoutingRuleAdded", 4, []byte(`{}`)); AsError(err) == nil || AsError(err).Code != "newer_event_version" {
		t.Errorf("a newer version: err = %v, want newer_event_version", err)
	}
	if _, err := reg.DecodeVersion("RoutingRuleAdded", 1, []byte(`{"team":"fail"}`)); KindOf(err) != KindInternal || !errors.Is(err, broken) {
		t.Errorf("a failing upcaster: err = %v", err)
	}
}

// FuzzRegistryDecode decodes random bytes as a random registered type: it
// never panics, fails only with KindInternal, and what decodes encodes and
// decodes again to the same event, which Evolve accepts.
func FuzzRegistryDecode(f *testing.F) {
	reg := NewRegistry()
	types := reg.Types()
	for _, e := range registrySamples() {
		data, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(slices.Index(types, e.EventType())), data)
	}
	for i := range types {
		f.Add(uint16(i), []byte(`{}`))
		f.Add(uint16(i), []byte(`null`))
	}
	f.Add(uint16(0), []byte("\xff\xfe"))
	f.Add(uint16(1), []byte(`{"signal_ids":[null,"00000000-0000-0000-0000-0000000000a1"]}`))
	f.Add(uint16(2), []byte(`{"reason":"\u0041AAA"}`))
	f.Add(uint16(3), []byte(`{"raised_at":"0000-01-01T00:00:00+01:00","categories":null}`))
	f.Add(uint16(4), []byte(`{"seq":-1}`))
	f.Fuzz(func(t *testing.T, i uint16, data []byte) {
		typ := types[int(i)%len(types)]
		e, err := reg.Decode(typ, data)
		if err != nil {
			if e != nil || KindOf(err) != KindInternal || AsError(err) == nil {
				t.Fatalf("Decode = %v, %v: want no event and a KindInternal *Error", e, err)
			}
			return
		}
		if e.EventType() != typ {
			t.Fatalf("decoded a %s as %s", e.EventType(), typ)
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("a decoded %s does not encode: %v", typ, err)
		}
		back, err := reg.Decode(typ, again)
		if err != nil {
			t.Fatalf("a re-encoded %s does not decode: %v", typ, err)
		}
		if diff := cmp.Diff(e, back, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s changes in a second round trip (-first +second):\n%s", typ, diff)
		}
		_ = Evolve(Signal{}, e)
		_ = Evolve(given(raised, handed, accepted, referred), e)
	})
}
