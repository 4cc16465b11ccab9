package projections

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// fakeCipher stands in for the key store: it "seals" by reversing the bytes
// behind a marker, and forgets shredded subjects.
type fakeCipher struct {
	mu       sync.Mutex
	shredded map[uuid.UUID]bool
}

func (c *fakeCipher) Seal(_ context.Context, s uuid.UUID, p []byte) ([]byte, error) {
	out := append([]byte("x:"), p...)
	slices.Reverse(out[2:])
	return out, nil
}

func (c *fakeCipher) Open(_ context.Context, s uuid.UUID, b []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shredded[s] {
		return nil, domain.ErrErased
	}
	out := slices.Clone(b[2:])
	slices.Reverse(out)
	return out, nil
}

func (c *fakeCipher) Shred(_ context.Context, s uuid.UUID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shredded == nil {
		c.shredded = map[uuid.UUID]bool{}
	}
	c.shredded[s] = true
	return nil
}

func (c *fakeCipher) Erased(_ context.Context, s uuid.UUID) (bool, error) { return c.shredded[s], nil }

// history builds a realistic log: n signals through their lifecycles, decided
// by the domain, with positions in order.
func history(t testing.TB, n int, seed uint64) []eventlog.RecordedEvent {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	anna := domain.Principal{ID: "anna", Roles: []domain.Role{domain.RoleProfessional}, Teams: []string{"team-a"}, Network: "net"}
	carla := domain.Principal{ID: "carla", Roles: []domain.Role{domain.RoleBuurtsteun}, Network: "net"}
	eva := domain.Principal{ID: "eva", Roles: []domain.Role{domain.RolePartner}, Organisation: "org-x", Network: "net"}
	clock := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var out []eventlog.RecordedEvent
	var pos uint64
	c := &fakeCipher{}
	sealed := func(s uuid.UUID, text string) domain.Sealed {
		b, _ := c.Seal(context.Background(), s, []byte(text))
		return b
	}
	emit := func(stream string, rev *uint64, actor domain.Principal, events ...domain.Event) {
		for _, e := range events {
			data, err := domain.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			pos++
			clock = clock.Add(time.Duration(rng.IntN(90)+1) * time.Minute)
			out = append(out, eventlog.RecordedEvent{StreamID: stream, Revision: *rev, Position: pos, ID: uuid.New(), Type: e.EventType(), Data: data,
				Metadata: eventlog.Metadata{OccurredAt: clock, ActorID: actor.ID, ActorRole: string(actor.Roles[0]), Network: "net"}, RecordedAt: clock})
			*rev++
		}
	}
	var orgRev uint64
	emit("org-org-x", &orgRev, anna, domain.OrganisationRegistered{OrganisationID: "org-x", Network: "net", Name: "Org X", Kind: "school"})
	for i := 0; i < n; i++ {
		sid, subj := uuid.New(), uuid.New()
		var subjRev uint64
		emit("subject-"+subj.String(), &subjRev, carla, domain.SubjectRegistered{SubjectID: subj, Network: "net", Data: sealed(subj, `{"name":"x"}`)})
		stream := "signal-" + sid.String()
		var st domain.Signal
		var rev uint64
		step := func(actor domain.Principal, cmd domain.Command) bool {
			evs, err := domain.Decide(st, actor, cmd, clock)
			if err != nil {
				return false
			}
			emit(stream, &rev, actor, evs...)
			for _, e := range evs {
				st = domain.Evolve(st, e)
			}
			return true
		}
		step(carla, domain.RaiseSignal{SignalID: sid, SubjectID: subj, Neighbourhood: []string{"noord", "zuid"}[i%2], Categories: []string{"debt"},
			Urgency: []string{"normal", "high", "acute"}[i%3], Consent: "informed", Description: sealed(subj, "d")})
		if rng.IntN(6) == 0 {
			step(carla, domain.WithdrawSignal{Reason: sealed(subj, "r")})
			continue
		}
		if rng.IntN(5) == 0 {
			continue // still raised
		}
		step(carla, domain.HandOver{TeamID: "team-a"})
		if rng.IntN(4) == 0 {
			continue
		}
		step(anna, domain.AcceptHandover{})
		step(anna, domain.RecordFollowUp{FollowUpID: uuid.New(), Kind: "home_visit", Outcome: "reached", NextDue: "2026-04-01"})
		if rng.IntN(2) == 0 {
			ref := uuid.New()
			step(anna, domain.MakeReferral{ReferralID: ref, OrganisationID: "org-x", Reason: sealed(subj, "r")})
			step(eva, domain.AnswerReferral{ReferralID: ref, Answer: domain.RefAccepted})
		}
		step(anna, domain.GiveFeedback{Code: "in_progress"})
		if rng.IntN(2) == 0 {
			step(anna, domain.CloseCase{Outcome: "resolved"})
		}
	}
	return out
}

type projectionSet struct {
	runner   *Runner
	cases    *Cases
	subjects *Subjects
	orgs     *Organisations
	audit    *AuditTrail
}

func newSet(t testing.TB) projectionSet {
	loc := time.UTC
	s := projectionSet{
		cases:    NewCases(domain.DefaultNorms(), domain.NewCalendar(loc, domain.DutchHolidays(2026))),
		subjects: NewSubjects(), orgs: NewOrganisations(), audit: NewAuditTrail(),
	}
	s.runner = NewRunner(nil, domain.NewRegistry(), s.cases, s.subjects, s.orgs, s.audit)
	return s
}

// snapshot is a deterministic dump of every projection.
func (s projectionSet) snapshot() map[string]any {
	var cases []Case
	s.cases.All(func(c *Case) bool { cases = append(cases, *c); return true })
	slices.SortFunc(cases, func(a, b Case) int { return a.RaisedAt.Compare(b.RaisedAt)*2 + cmpID(a.ID, b.ID) })
	var subjects []Subject
	s.subjects.All(func(x *Subject) bool { subjects = append(subjects, *x); return true })
	slices.SortFunc(subjects, func(a, b Subject) int { return cmpID(a.ID, b.ID) })
	caseload, _ := s.cases.Caseload(CaseloadFilter{Teams: []string{"team-a"}, Network: "net"}, 1_000_000)
	var ids []uuid.UUID
	for _, c := range caseload {
		ids = append(ids, c.ID)
	}
	return map[string]any{"cases": cases, "subjects": subjects, "orgs": s.orgs.List("net"), "caseload": ids, "position": s.runner.Position()}
}

func cmpID(a, b uuid.UUID) int {
	as, bs := a.String(), b.String()
	switch {
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

func applyAll(t testing.TB, s projectionSet, events []eventlog.RecordedEvent) {
	t.Helper()
	for _, e := range events {
		if err := s.runner.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplayTwiceGivesIdenticalProjections(t *testing.T) {
	events := history(t, 300, 1)
	a, b := newSet(t), newSet(t)
	applyAll(t, a, events)
	applyAll(t, b, events)
	if diff := cmp.Diff(a.snapshot(), b.snapshot(), allFields); diff != "" {
		t.Fatalf("two replays differ (-first +second):\n%s", diff)
	}
	if a.cases.Len() != 300 {
		t.Fatalf("cases = %d, want 300", a.cases.Len())
	}
}

func TestDeliveringEveryEventTwiceChangesNothing(t *testing.T) {
	events := history(t, 300, 2)
	once, twice := newSet(t), newSet(t)
	applyAll(t, once, events)
	rng := rand.New(rand.NewPCG(7, 7))
	for i, e := range events {
		applyAll(t, twice, []eventlog.RecordedEvent{e, e})
		if i > 0 && rng.IntN(3) == 0 { // an older redelivery, as after a resubscribe
			applyAll(t, twice, events[rng.IntN(i):i])
		}
	}
	if diff := cmp.Diff(once.snapshot(), twice.snapshot(), allFields); diff != "" {
		t.Fatalf("duplicate delivery changed the projections (-once +twice):\n%s", diff)
	}
}

func TestCaseloadIsSortedByWhatIsDueFirst(t *testing.T) {
	s := newSet(t)
	applyAll(t, s, history(t, 200, 3))
	load, total := s.cases.Caseload(CaseloadFilter{Teams: []string{"team-a"}, Network: "net"}, 1_000_000)
	if total != len(load) {
		t.Fatalf("total %d, %d cases", total, len(load))
	}
	top, _ := s.cases.Caseload(CaseloadFilter{Teams: []string{"team-a"}, Network: "net"}, 7)
	if diff := cmp.Diff(load[:7], top, allFields); diff != "" {
		t.Fatalf("the first page differs from the head of the full order (-full +page):\n%s", diff)
	}
	if len(load) == 0 {
		t.Fatal("empty caseload")
	}
	for i := 1; i < len(load); i++ {
		if CompareDue(load[i-1], load[i]) > 0 {
			t.Fatalf("caseload not sorted at %d", i)
		}
	}
	for _, c := range load {
		if !c.Status.Open() || c.Team != "team-a" {
			t.Fatalf("caseload holds %s case of team %q", c.Status, c.Team)
		}
	}
	if other, _ := s.cases.Caseload(CaseloadFilter{Teams: []string{"team-b"}, Network: "net"}, 50); len(other) != 0 {
		t.Fatalf("team-b sees %d cases", len(other))
	}
}

func TestWaitForSeesAppliedPositions(t *testing.T) {
	s := newSet(t)
	events := history(t, 5, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.runner.WaitFor(ctx, 1); err == nil {
		t.Fatal("WaitFor on an empty runner succeeded")
	}
	done := make(chan error, 1)
	go func() { done <- s.runner.WaitFor(context.Background(), events[len(events)-1].Position) }()
	applyAll(t, s, events)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestErasureDropsTheSubjectsData(t *testing.T) {
	s := newSet(t)
	subj := uuid.New()
	c := &fakeCipher{}
	tok, _ := c.Seal(context.Background(), subj, []byte("token-1"))
	reg := func(pos uint64, e domain.Event) eventlog.RecordedEvent {
		data, _ := domain.Encode(e)
		return eventlog.RecordedEvent{StreamID: "subject-" + subj.String(), Position: pos, Type: e.EventType(), Data: data, ID: uuid.New()}
	}
	applyAll(t, s, []eventlog.RecordedEvent{reg(1, domain.SubjectRegistered{SubjectID: subj, Network: "net", Data: tok})})
	if got, ok := s.subjects.Get(subj); !ok || got.Erased {
		t.Fatal("subject not registered")
	}
	applyAll(t, s, []eventlog.RecordedEvent{reg(2, domain.SubjectErased{SubjectID: subj})})
	if got, _ := s.subjects.Get(subj); !got.Erased || got.Data != nil {
		t.Fatalf("erased subject keeps data: %+v", got)
	}
}
