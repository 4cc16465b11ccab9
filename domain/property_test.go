package domain

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"pgregory.net/rapid"
)

// genCommand draws a command, valid or not, with ids from a small pool so
// that referral answers sometimes hit and sometimes miss.
func genCommand(t *rapid.T, refs []uuid.UUID) Command {
	sealed := rapid.SampledFrom([]Sealed{nil, secret}).Draw(t, "sealed")
	ref := rapid.SampledFrom(append(refs, uuid.MustParse("00000000-0000-0000-0000-00000000ffff"))).Draw(t, "ref")
	switch rapid.IntRange(0, 11).Draw(t, "cmd") {
	case 0:
		return RaiseSignal{SignalID: sigID, SubjectID: subjID, Neighbourhood: rapid.SampledFrom([]string{"", "centrum"}).Draw(t, "hood"),
			Categories: rapid.SampledFrom([][]string{nil, {"debt"}, {"gossip"}}).Draw(t, "cats"), Urgency: rapid.SampledFrom([]string{"acute", "x"}).Draw(t, "urg"),
			Consent: "informed", Description: sealed}
	case 1:
		return WithdrawSignal{Reason: sealed}
	case 2:
		return HandOver{TeamID: rapid.SampledFrom([]string{"", "team-a", "team-b"}).Draw(t, "team")}
	case 3:
		return AcceptHandover{}
	case 4:
		return DeclineHandover{Reason: sealed}
	case 5:
		return AssignCase{ProfessionalID: rapid.SampledFrom([]string{"", "anna", "bob"}).Draw(t, "who")}
	case 6:
		return RecordFollowUp{FollowUpID: uuid.New(), Kind: rapid.SampledFrom([]string{"meeting", "x"}).Draw(t, "kind"), Outcome: "reached"}
	case 7:
		return MakeReferral{ReferralID: uuid.New(), OrganisationID: rapid.SampledFrom([]string{"", "school", "housing"}).Draw(t, "org"), Reason: sealed}
	case 8:
		return AnswerReferral{ReferralID: ref, Answer: rapid.SampledFrom([]ReferralStatus{RefAccepted, RefDeclined, RefCompleted, "x"}).Draw(t, "answer")}
	case 9:
		return GiveFeedback{Code: rapid.SampledFrom([]string{"received", "x"}).Draw(t, "code")}
	case 10:
		return CloseCase{Outcome: rapid.SampledFrom([]string{"resolved", "x"}).Draw(t, "outcome")}
	default:
		return ReopenCase{Reason: sealed}
	}
}

// TestRandomCommandSequencesKeepTheInvariants applies random commands by
// random actors through Decide and Evolve, and checks after every step that
// the state is valid, failures change nothing, and every history Decide
// produces survives an encode/decode round trip into the same state.
func TestRandomCommandSequencesKeepTheInvariants(t *testing.T) {
	reg := NewRegistry()
	actors := []Principal{carla, dirk, eva, femke, anna, bob, gert, hanna, alien}
	rapid.Check(t, func(t *rapid.T) {
		var s Signal
		var history []Event
		var refs []uuid.UUID
		for step := 0; step < 40; step++ {
			actor := rapid.SampledFrom(actors).Draw(t, "actor")
			cmd := genCommand(t, refs)
			before := s
			events, err := Decide(s, actor, cmd, now)
			if err != nil {
				if events != nil {
					t.Fatalf("failed %T returned events", cmd)
				}
				if k := KindOf(err); k == KindInternal {
					t.Fatalf("%T: internal error %v", cmd, err)
				}
				continue
			}
			if len(events) == 0 {
				t.Fatalf("%T succeeded without events", cmd)
			}
			for _, e := range events {
				s = Evolve(s, e)
				history = append(history, e)
				if r, ok := e.(ReferralMade); ok {
					refs = append(refs, r.ReferralID)
				}
			}
			checkInvariants(t, before, s, len(history))
		}
		// Evolve accepts every history Decide produced, also after a round trip.
		var replayed Signal
		for _, e := range history {
			data, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := reg.Decode(e.EventType(), data)
			if err != nil {
				t.Fatalf("%s does not decode: %v", e.EventType(), err)
			}
			replayed = Evolve(replayed, back)
		}
		if diff := cmp.Diff(s, replayed); diff != "" {
			t.Fatalf("replayed state differs (-live +replayed):\n%s", diff)
		}
	})
}

func checkInvariants(t *rapid.T, before, s Signal, applied int) {
	if !slices.Contains([]Status{StatusRaised, StatusHandedOver, StatusInCare, StatusClosed, StatusWithdrawn}, s.Status) {
		t.Fatalf("invalid status %q", s.Status)
	}
	if s.Version != applied {
		t.Fatalf("version %d after %d events", s.Version, applied)
	}
	if before.Status == StatusWithdrawn && s.Status != StatusWithdrawn {
		t.Fatalf("left withdrawn for %s", s.Status)
	}
	if (s.Status == StatusHandedOver || s.Status == StatusInCare || s.Status == StatusClosed) && s.Team == "" {
		t.Fatalf("%s without a team", s.Status)
	}
	for _, r := range s.Referrals {
		var was ReferralStatus
		for _, b := range before.Referrals {
			if b.ID == r.ID {
				was = b.Status
			}
		}
		ok := was == r.Status || (was == "" && r.Status == RefOpen) ||
			(was == RefOpen && (r.Status == RefAccepted || r.Status == RefDeclined)) || (was == RefAccepted && r.Status == RefCompleted)
		if !ok {
			t.Fatalf("referral went from %q to %q", was, r.Status)
		}
	}
}

// TestDomainImportsOnlyTheStandardLibraryAndUUID keeps the domain pure.
func TestDomainImportsOnlyTheStandardLibraryAndUUID(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			first := strings.SplitN(p, "/", 2)[0]
			if !strings.Contains(first, ".") || p == "github.com/google/uuid" || strings.HasPrefix(p, "github.com/buurtsignaal/buurtsignaal/domain") {
				continue
			}
			t.Errorf("%s imports %s: domain code may import only the standard library and uuid", path, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRegistryRoundTripsEveryType(t *testing.T) {
	reg := NewRegistry()
	samples := []Event{raised, SignalWithdrawn{Reason: secret}, handed, accepted, HandoverDeclined{TeamID: "t", Reason: secret},
		CaseAssigned{ProfessionalID: "p"}, FollowUpRecorded{FollowUpID: fuID, Kind: "meeting", Outcome: "other"}, referred,
		ReferralAccepted{ReferralID: refID}, ReferralDeclined{ReferralID: refID}, ReferralCompleted{ReferralID: refID},
		FeedbackGiven{Code: "received"}, SignalsMatched{SubjectID: subjID, SignalIDs: []uuid.UUID{otherSig}}, closed, CaseReopened{Reason: secret},
		SubjectRegistered{SubjectID: subjID, Data: secret}, SubjectErased{SubjectID: subjID}, SubjectExported{SubjectID: subjID},
		OrganisationRegistered{OrganisationID: "o", Name: "O", Kind: "school"}, ServiceOffered{Name: "s"}, ServiceWithdrawn{Name: "s"},
		RecordAccessed{AccessRecord: AccessRecord{ActorID: "a", Subjects: []uuid.UUID{subjID}}, Chain: Chain{Seq: 1, Prev: "x"}},
		AccessDenied{AccessRecord: AccessRecord{ActorID: "a"}}}
	if len(samples) != len(reg.Types()) {
		t.Fatalf("%d samples for %d registered types", len(samples), len(reg.Types()))
	}
	for _, e := range samples {
		data, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := reg.Decode(e.EventType(), data)
		if err != nil {
			t.Fatalf("%s: %v", e.EventType(), err)
		}
		if diff := cmp.Diff(e, back); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", e.EventType(), diff)
		}
	}
	if _, err := reg.Decode("Unknown", []byte(`{}`)); KindOf(err) != KindInternal {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := reg.Decode("SignalRaised", []byte(`{"signal_id": 5}`)); KindOf(err) != KindInternal {
		t.Fatalf("bad body: %v", err)
	}
}

func FuzzRegistryDecode(f *testing.F) {
	reg := NewRegistry()
	for _, typ := range reg.Types() {
		f.Add(typ, []byte(`{}`))
	}
	f.Add("SignalRaised", []byte(`{"signal_id":"00000000-0000-0000-0000-0000000000a1","categories":["debt"],"description":"AAAA"}`))
	f.Add("RecordAccessed", []byte(`{"seq":1,"prev":"x","subject_ids":["nope"]}`))
	f.Add("SignalRaised", []byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e, err := reg.Decode(typ, data)
		if err != nil {
			if KindOf(err) != KindInternal {
				t.Fatalf("decode error of kind %s", KindOf(err))
			}
			return
		}
		_ = Evolve(Signal{}, e) // must not panic on any decoded event
	})
}

func TestErrorKinds(t *testing.T) {
	wrapped := Wrap(KindConflict, "wrong_expected_version", "the stream moved", os.ErrClosed)
	sentinel := &Error{Kind: KindConflict, Code: "wrong_expected_version"}
	tests := []struct {
		err  error
		kind Kind
		is   error
	}{
		{wrapped, KindConflict, sentinel},
		{Invalid(FieldError{"a", "b"}), KindInvalid, nil},
		{os.ErrNotExist, KindInternal, nil},
		{Errorf(KindNotFound, "x", "no %s", "thing"), KindNotFound, nil},
	}
	for _, tt := range tests {
		if got := KindOf(tt.err); got != tt.kind {
			t.Errorf("KindOf(%v) = %s, want %s", tt.err, got, tt.kind)
		}
		if tt.is != nil && !errorsIs(tt.err, tt.is) {
			t.Errorf("%v is not %v", tt.err, tt.is)
		}
	}
	if errorsIs(wrapped, &Error{Kind: KindConflict, Code: "other"}) {
		t.Error("codes differ, yet Is")
	}
	if !errorsIs(wrapped, os.ErrClosed) {
		t.Error("cause lost")
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
