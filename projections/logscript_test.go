package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// step is one append: events to one stream.
type step struct {
	stream string
	events []eventlog.EventData
}

// logScript is a small realistic log as appends: an organisation, then n
// signals with their subjects through lifecycles (handed over, accepted,
// followed up, referred, closed, reopened, withdrawn, matched), access
// records naming them (break-glass ones too), and some subjects erased.
// Steps of different signals interleave, as they do in a real log.
func logScript(seed uint64, n int) []step {
	rng := rand.New(rand.NewPCG(seed, 7))
	clock := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	id := func(kind string, i, j int) uuid.UUID {
		return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%d/%s/%d/%d", seed, kind, i, j))
	}
	data := func(stream string, actor, role string, evs ...domain.Event) step {
		st := step{stream: stream}
		for k, e := range evs {
			body, err := domain.Encode(e)
			if err != nil {
				panic(err)
			}
			clock = clock.Add(time.Duration(1+rng.IntN(600)) * time.Minute)
			st.events = append(st.events, eventlog.EventData{ID: id("event:"+stream, k, rng.IntN(1<<30)), Type: e.EventType(), Data: body,
				Metadata: eventlog.Metadata{OccurredAt: clock, ActorID: actor, ActorRole: role, Network: "net", SchemaVersion: domain.SchemaVersion}})
		}
		return st
	}
	sealed := func(s string) domain.Sealed { return domain.Sealed("x:" + s) }
	out := []step{data("org-school-x", "ivo", "admin", domain.OrganisationRegistered{OrganisationID: "school-x", Network: "net", Name: "School X", Kind: "school"})}
	// Each signal's lifecycle is a queue of steps; the log takes the next
	// step of a random signal, so lifecycles interleave.
	var queues [][]step
	subjects := make([]uuid.UUID, n)
	auditRev := 0
	for i := 0; i < n; i++ {
		sig := id("signal", i, 0)
		subj := id("subject", i, 0)
		if i > 0 && rng.IntN(6) == 0 {
			subj = subjects[rng.IntN(i)] // another signal about a known resident
		}
		subjects[i] = subj
		stream := "signal-" + sig.String()
		var q []step
		q = append(q, data("subject-"+subj.String(), "carla", "buurtsteun", domain.SubjectRegistered{SubjectID: subj, Network: "net", Data: sealed("subject")}))
		raised := domain.SignalRaised{SignalID: sig, SubjectID: subj, RaisedBy: []string{"carla", "dirk"}[i%2], Source: domain.RoleBuurtsteun, Network: "net",
			Neighbourhood: []string{"noord", "zuid"}[rng.IntN(2)], Categories: []string{domain.Categories[rng.IntN(8)]},
			Urgency: []string{"normal", "high", "acute"}[rng.IntN(3)], Consent: "informed", Description: sealed("d"), RaisedAt: clock}
		q = append(q, data(stream, raised.RaisedBy, "buurtsteun", raised))
		access := func(basis domain.Basis, actor string) step {
			auditRev++
			rec := domain.AccessRecord{At: clock, ActorID: actor, ActorRole: "professional", Action: "read", View: "/v1/signals/{id}",
				Basis: basis, Subjects: []uuid.UUID{subj}, Signals: []uuid.UUID{sig}, Outcome: "allowed", Network: "net"}
			if basis == domain.BasisBreakGlass {
				rec.BreakGlassReason = sealed("reason")
			}
			return data(fmt.Sprintf("audit-test-%d", auditRev%3), actor, "professional", domain.RecordAccessed{AccessRecord: rec})
		}
		switch rng.IntN(8) {
		case 0:
			q = append(q, data(stream, raised.RaisedBy, "buurtsteun", domain.SignalWithdrawn{Reason: sealed("r")}))
		case 1: // left raised
		default:
			q = append(q, data(stream, "gert", "coordinator", domain.SignalHandedOver{TeamID: []string{"team-a", "team-b"}[rng.IntN(2)]}))
			if rng.IntN(5) == 0 {
				q = append(q, data(stream, "anna", "professional", domain.HandoverDeclined{Reason: sealed("vol")}))
				break
			}
			q = append(q, data(stream, "anna", "professional", domain.HandoverAccepted{}), access(domain.BasisTeam, "anna"),
				data(stream, "anna", "professional", domain.FollowUpRecorded{FollowUpID: id("fu", i, 0), Kind: "home_visit", Outcome: "reached",
					Note: sealed("n"), NextDue: clock.AddDate(0, 0, rng.IntN(30)).Format(time.DateOnly)}))
			if rng.IntN(2) == 0 {
				ref := id("referral", i, 0)
				q = append(q, data(stream, "anna", "professional", domain.ReferralMade{ReferralID: ref, OrganisationID: "school-x", Reason: sealed("r")}),
					data(stream, "eva", "partner", domain.ReferralAccepted{ReferralID: ref}))
			}
			if rng.IntN(3) == 0 {
				q = append(q, access(domain.BasisBreakGlass, "bob"))
			}
			if rng.IntN(2) == 0 {
				q = append(q, data(stream, "anna", "professional", domain.CaseClosed{Outcome: "resolved"}),
					data(stream, "anna", "professional", domain.FeedbackGiven{Code: "closed"}))
				if rng.IntN(4) == 0 {
					q = append(q, data(stream, "anna", "professional", domain.CaseReopened{Reason: sealed("again")}))
				}
			}
		}
		if i > 0 && subjects[i-1] == subj && rng.IntN(2) == 0 {
			q = append(q, data(stream, "system", "system", domain.SignalsMatched{SubjectID: subj, SignalIDs: []uuid.UUID{id("signal", i-1, 0)}}))
		}
		if rng.IntN(7) == 0 {
			q = append(q, data("subject-"+subj.String(), "hanna", "privacy_officer", domain.SubjectErased{SubjectID: subj, Basis: "request"}))
		}
		queues = append(queues, q)
	}
	for len(queues) > 0 {
		k := rng.IntN(len(queues))
		out = append(out, queues[k][0])
		if queues[k] = queues[k][1:]; len(queues[k]) == 0 {
			queues = slices.Delete(queues, k, k+1)
		}
	}
	return out
}

func appendSteps(t testing.TB, store eventlog.Store, steps []step) {
	t.Helper()
	for _, s := range steps {
		if _, err := store.Append(context.Background(), s.stream, eventlog.Any(), s.events...); err != nil {
			t.Fatal(err)
		}
	}
}

type set struct {
	runner   *projections.Runner
	cases    *projections.Cases
	subjects *projections.Subjects
	orgs     *projections.Organisations
	audit    *projections.AuditTrail
}

func newSet(store eventlog.Store) set {
	s := set{cases: projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, domain.DutchHolidays(2026))),
		subjects: projections.NewSubjects(), orgs: projections.NewOrganisations(), audit: projections.NewAuditTrail()}
	s.runner = projections.NewRunner(store, domain.NewRegistry(), s.cases, s.subjects, s.orgs, s.audit)
	return s
}

// all lists every case the projection holds, by signal id.
func (s set) all() []projections.Case {
	var out []projections.Case
	s.runner.Read(func() {
		s.cases.All(func(c *projections.Case) bool { out = append(out, *c); return true })
	})
	slices.SortFunc(out, func(a, b projections.Case) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return out
}

// snapshot is everything the read models answer, for comparing two of them.
func (s set) snapshot(t testing.TB) map[string]any {
	t.Helper()
	out := map[string]any{"position": s.runner.Position()}
	s.runner.Read(func() {
		cases := s.all()
		out["cases"], out["len"] = cases, s.cases.Len()
		var subjects []projections.Subject
		s.subjects.All(func(x *projections.Subject) bool { subjects = append(subjects, *x); return true })
		slices.SortFunc(subjects, func(a, b projections.Subject) int { return strings.Compare(a.ID.String(), b.ID.String()) })
		out["subjects"] = subjects
		out["orgs"] = s.orgs.List("net")
		audit := map[string][]*projections.AuditEntry{"break-glass": s.audit.BreakGlass("net", time.Time{}, time.Time{})}
		for _, actor := range []string{"anna", "bob"} {
			audit["actor "+actor] = s.audit.OfActor("net", actor, time.Time{}, time.Time{})
		}
		open := map[uuid.UUID][]uuid.UUID{}
		for _, sub := range subjects {
			audit["subject "+sub.ID.String()] = s.audit.OfSubject("net", sub.ID, time.Time{}, time.Time{})
			if ids := s.cases.OpenOfSubject(sub.ID); len(ids) > 0 {
				slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
				open[sub.ID] = ids
			}
		}
		out["audit"], out["records"], out["open_of_subject"] = audit, s.audit.Records(), open
		for _, team := range []string{"team-a", "team-b"} {
			load, total := s.cases.Caseload(projections.CaseloadFilter{Teams: []string{team}, Network: "net"}, 1000)
			var ids []uuid.UUID
			for _, c := range load {
				ids = append(ids, c.ID)
			}
			out["caseload "+team], out["caseload total "+team] = ids, total
		}
		var rows []projections.MonitorRow
		s.cases.Monitor("net", time.Time{}, time.Time{}, func(r *projections.MonitorRow) bool { rows = append(rows, *r); return true })
		out["monitor"] = rows
		for _, who := range []string{"carla", "dirk"} {
			out["raised by "+who] = pages(t, func(after []byte) ([]uuid.UUID, []byte, error) {
				cs, next, err := s.cases.RaisedBy(who, after, 3)
				var ids []uuid.UUID
				for _, c := range cs {
					ids = append(ids, c.ID)
				}
				return ids, next, err
			})
		}
		out["referrals"] = pages(t, func(after []byte) ([]uuid.UUID, []byte, error) {
			rs, next, err := s.cases.ReferralsTo("school-x", after, 2)
			var ids []uuid.UUID
			for _, r := range rs {
				ids = append(ids, r.ID)
			}
			return ids, next, err
		})
		var awaiting []uuid.UUID
		s.cases.Awaiting(func(c *projections.Case) bool { awaiting = append(awaiting, c.ID); return true })
		slices.SortFunc(awaiting, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		out["awaiting"] = awaiting
		out["expired"] = sortedIDs(projections.Expired(s.cases, s.subjects, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), projections.DefaultRetention()))
	})
	return out
}

func sortedIDs(ids []uuid.UUID) []uuid.UUID {
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	return ids
}

// pages reads a paged list to its end.
func pages(t testing.TB, page func(after []byte) ([]uuid.UUID, []byte, error)) []uuid.UUID {
	t.Helper()
	var all []uuid.UUID
	var after []byte
	for n := 0; ; n++ {
		ids, next, err := page(after)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids...)
		if next == nil || n > 10_000 {
			return all
		}
		after = next
	}
}

// snapshotDiff compares two snapshots; empty and nil slices are equal (a
// case read back from the store has nil where one built in memory may have
// an empty list).
func snapshotDiff(a, b map[string]any) string {
	return cmp.Diff(a, b, cmp.Exporter(func(reflect.Type) bool { return true }), cmpopts.EquateEmpty())
}
