package projections

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestSignalListPagesEqualTheNaiveFilter: for any filter, order, page size
// and scan budget, walking the pages of the signal list by their cursors
// yields exactly the cases that match the filter, case by case, in order.
func TestSignalListPagesEqualTheNaiveFilter(t *testing.T) {
	s := newSet(t)
	applyAll(t, s, history(t, 200, 17))
	var cases []*Case
	s.cases.All(func(c *Case) bool { cases = append(cases, c); return true })
	slices.SortFunc(cases, func(a, b *Case) int {
		return compareRow(row{raised: nanos(a.RaisedAt), id: a.ID}, nanos(b.RaisedAt), b.ID)
	})
	first, last := cases[0].RaisedAt, cases[len(cases)-1].RaisedAt
	rapid.Check(t, func(rt *rapid.T) {
		q := SignalQuery{Network: "net", Now: last.Add(time.Duration(rapid.IntRange(0, 30*24).Draw(rt, "now")) * time.Hour)}
		q.Status = domain.Status(rapid.SampledFrom([]string{"", "raised", "handed_over", "in_care", "closed", "withdrawn", "nonsense"}).Draw(rt, "status"))
		q.Team = rapid.SampledFrom([]string{"", "team-a", "team-z"}).Draw(rt, "team")
		q.NoTeam = q.Team == "" && rapid.Bool().Draw(rt, "noteam")
		q.Neighbourhood = rapid.SampledFrom([]string{"", "noord", "zuid"}).Draw(rt, "hood")
		q.Urgency = rapid.SampledFrom([]string{"", "normal", "high", "acute"}).Draw(rt, "urgency")
		q.Category = rapid.SampledFrom([]string{"", "debt", "housing"}).Draw(rt, "category")
		q.Late = rapid.Bool().Draw(rt, "late")
		q.Newest = rapid.Bool().Draw(rt, "newest")
		if rapid.Bool().Draw(rt, "period") {
			span := last.Sub(first)
			q.From = first.Add(time.Duration(rapid.Float64Range(0, 0.5).Draw(rt, "from") * float64(span)))
			q.To = q.From.Add(time.Duration(rapid.Float64Range(0, 0.7).Draw(rt, "to") * float64(span)))
		}
		limit, budget := rapid.IntRange(1, 40).Draw(rt, "limit"), rapid.IntRange(0, 60).Draw(rt, "budget")

		var want []uuid.UUID
		for _, c := range cases {
			late := c.FirstResponseAt.IsZero() && c.StoppedAt.IsZero() && c.ClosedAt.IsZero() && c.WithdrawnAt.IsZero() && q.Now.After(c.DueAt)
			if (!q.From.IsZero() && c.RaisedAt.Before(q.From)) || (!q.To.IsZero() && !c.RaisedAt.Before(q.To)) ||
				(q.Status != "" && c.Status != q.Status) || (q.Team != "" && c.Team != q.Team) || (q.NoTeam && c.Team != "") ||
				(q.Neighbourhood != "" && c.Neighbourhood != q.Neighbourhood) || (q.Urgency != "" && c.Urgency != q.Urgency) ||
				(q.Category != "" && !slices.Contains(c.Categories, q.Category)) || (q.Late && !late) {
				continue
			}
			want = append(want, c.ID)
		}
		if q.Newest {
			slices.Reverse(want)
		}
		var got []uuid.UUID
		for pages := 0; ; pages++ {
			if pages > len(cases)+2 {
				rt.Fatal("the pages do not end")
			}
			var page []MonitorRow
			var next *SignalCursor
			s.runner.Read(func() {
				next = s.cases.Signals(q, budget, func(r *MonitorRow) bool {
					page = append(page, *r)
					return len(page) < limit
				})
			})
			for _, r := range page {
				got = append(got, r.ID)
			}
			switch {
			case len(page) == limit:
				next = &SignalCursor{RaisedAt: page[len(page)-1].RaisedAt, ID: page[len(page)-1].ID}
			case next == nil:
			}
			if next == nil {
				break
			}
			c, ok := DecodeSignalCursor(next.Encode())
			if !ok || c != *next {
				rt.Fatalf("cursor %v does not survive encoding", next)
			}
			q.After = &c
		}
		if diff := cmp.Diff(want, got); diff != "" {
			rt.Fatalf("(-naive +list):\n%s", diff)
		}
	})
}

// TestNormsApplyFromTheirRaise: a signal is due by the norms recorded when
// it was raised; one raised before norms were recorded, by the defaults; a
// feedback keeps the text it was given with.
func TestNormsApplyFromTheirRaise(t *testing.T) {
	cal := domain.NewCalendar(time.UTC, nil)
	p := NewCases(domain.DefaultNorms(), cal)
	at := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC) // a Monday
	raise := func(pos uint64, norms *domain.SignalNorms, cats ...string) uuid.UUID {
		id := uuid.New()
		p.Apply(Envelope{Position: pos, Stream: "signal-" + id.String(), At: at, Event: domain.SignalRaised{SignalID: id, SubjectID: uuid.New(),
			Network: "net", Neighbourhood: "noord", Categories: cats, Urgency: "normal", RaisedAt: at, Norms: norms}})
		return id
	}
	old := raise(1, nil, "debt")
	changed := raise(2, &domain.SignalNorms{NormsVersion: 2, CategoriesVersion: 1, Response: domain.Norm{Hours: 8}, FeedbackWorkDays: 2}, "debt")
	override := raise(3, &domain.SignalNorms{NormsVersion: 2, CategoriesVersion: 3, Response: domain.Norm{Hours: 8},
		ByCategory: map[string]domain.Norm{"safety": {Hours: 2}}, FeedbackWorkDays: 2}, "safety")
	text := domain.FeedbackText{NL: "Wij zijn bezig.", EN: "We are on it."}
	p.Apply(Envelope{Position: 4, Stream: "signal-" + changed.String(), At: at.Add(time.Hour), Event: domain.HandoverAccepted{TeamID: "team-a"}})
	p.Apply(Envelope{Position: 5, Stream: "signal-" + changed.String(), At: at.Add(time.Hour), Event: domain.FeedbackGiven{Code: "in_progress", Text: &text, TextsVersion: 4}})
	p.Apply(Envelope{Position: 6, Stream: "signal-" + old.String(), At: at.Add(time.Hour), Event: domain.FeedbackGiven{Code: "in_progress"}})

	for _, tc := range []struct {
		name    string
		id      uuid.UUID
		due     time.Time
		version string
	}{
		{"raised before norms were recorded: the defaults", old, cal.AddWorkingDays(at, 10), "0.0"},
		{"raised after a change: the new norm", changed, at.Add(8 * time.Hour), "2.1"},
		{"a category's override, the strictest", override, at.Add(2 * time.Hour), "2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := p.Get(tc.id)
			if !c.DueAt.Equal(tc.due) || c.NormVersion != tc.version {
				t.Errorf("due %s version %s, want %s %s", c.DueAt, c.NormVersion, tc.due, tc.version)
			}
		})
	}
	c, _ := p.Get(changed)
	if want := cal.AddWorkingDays(at.Add(time.Hour), 2); !c.FeedbackDueAt.Equal(want) {
		t.Errorf("feedback due %s, want %s (the norm recorded at raise)", c.FeedbackDueAt, want)
	}
	if diff := cmp.Diff([]Feedback{{Code: "in_progress", Text: text, TextsVersion: 4, At: at.Add(time.Hour)}}, c.Feedback); diff != "" {
		t.Errorf("feedback (-want +got):\n%s", diff)
	}
	c, _ = p.Get(old)
	if got, want := c.Feedback[0].Text, domain.DefaultFeedbackTexts()["in_progress"]; got != want {
		t.Errorf("old feedback reads %v, want the default %v", got, want)
	}
}

// BenchmarkSignalListPage reads a page of 50 from the newest, from the
// middle (by cursor) and with a filter that one signal in ten matches, over
// networks of 10,000 and 200,000 signals: a page costs its rows, not the
// network's history.
func BenchmarkSignalListPage(b *testing.B) {
	for _, n := range []int{10_000, 200_000} {
		p := NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil))
		at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
		var mid SignalCursor
		for i := range n {
			id := uuid.New()
			raised := at.Add(time.Duration(i) * time.Minute)
			p.Apply(Envelope{Position: uint64(i + 1), Stream: "signal-" + id.String(), At: raised, Event: domain.SignalRaised{SignalID: id,
				SubjectID: uuid.New(), Network: "net", Neighbourhood: []string{"noord", "zuid"}[i%2], Categories: []string{"debt"},
				Urgency: []string{"normal", "high", "acute", "normal", "normal", "high", "normal", "normal", "normal", "normal"}[i%10], RaisedAt: raised}})
			if i == n/2 {
				mid = SignalCursor{RaisedAt: raised, ID: id}
			}
			if i%4096 == 0 {
				p.committed()
			}
		}
		p.committed()
		for _, q := range []struct {
			name string
			q    SignalQuery
		}{
			{"newest", SignalQuery{Network: "net", Newest: true}},
			{"middle", SignalQuery{Network: "net", Newest: true, After: &mid}},
			{"acute-only", SignalQuery{Network: "net", Newest: true, Urgency: "acute"}},
		} {
			b.Run(fmt.Sprintf("%s/%d", q.name, n), func(b *testing.B) {
				for b.Loop() {
					k := 0
					p.Signals(q.q, SignalScanBudget, func(*MonitorRow) bool { k++; return k < 50 })
				}
			})
		}
	}
}
