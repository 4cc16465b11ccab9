package projections

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// allFields lets go-cmp compare unexported fields too: what a read model
// keeps for itself must match as well.
var allFields = cmp.Exporter(func(reflect.Type) bool { return true })

// accessEvent is an access record naming the subjects, at position pos.
func accessEvent(t testing.TB, pos uint64, at time.Time, actor string, basis domain.Basis, subjects ...uuid.UUID) eventlog.RecordedEvent {
	t.Helper()
	rec := domain.AccessRecord{At: at, ActorID: actor, ActorRole: "professional", Action: "read", View: "/v1/caseload", Basis: basis,
		Subjects: subjects, Outcome: "allowed", Network: "net"}
	if basis == domain.BasisBreakGlass {
		rec.BreakGlassReason = domain.Sealed("sealed")
	}
	data, err := domain.Encode(domain.RecordAccessed{AccessRecord: rec})
	if err != nil {
		t.Fatal(err)
	}
	return eventlog.RecordedEvent{StreamID: "audit-test-20260302", Position: pos, ID: uuid.New(), Type: "RecordAccessed", Data: data}
}

// TestAuditPagesWalkTheWholeList: walking a list a page at a time, with the
// cursors Page gives, yields the whole list in time order, within a period
// too, and the count covers every record.
func TestAuditPagesWalkTheWholeList(t *testing.T) {
	s := newSet(t)
	subj, other := uuid.New(), uuid.New()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var events []eventlog.RecordedEvent
	for i := 0; i < 40; i++ {
		// Times out of log order now and then (records of two replicas).
		at := t0.Add(time.Duration(i*10+(i%3)*7) * time.Minute)
		basis := domain.BasisTeam
		if i%5 == 0 {
			basis = domain.BasisBreakGlass
		}
		subjects := []uuid.UUID{subj}
		if i%2 == 0 {
			subjects = append(subjects, other)
		}
		events = append(events, accessEvent(t, uint64(i+1), at, []string{"anna", "an"}[i%2], basis, subjects...))
	}
	applyAll(t, s, events)
	if got := s.audit.Records(); got != 40 {
		t.Fatalf("records = %d, want 40", got)
	}
	for _, tc := range []struct {
		name     string
		list     AuditList
		from, to time.Time
		want     int
	}{
		{"subject", AuditList{Network: "net", Subject: subj}, time.Time{}, time.Time{}, 40},
		{"other subject", AuditList{Network: "net", Subject: other}, time.Time{}, time.Time{}, 20},
		{"actor", AuditList{Network: "net", Actor: "anna"}, time.Time{}, time.Time{}, 20},
		{"actor whose id is a prefix of another's", AuditList{Network: "net", Actor: "an"}, time.Time{}, time.Time{}, 20},
		{"break-glass", AuditList{Network: "net", BreakGlass: true}, time.Time{}, time.Time{}, 8},
		{"another network's actor", AuditList{Network: "other", Actor: "anna"}, time.Time{}, time.Time{}, 0},
		{"another network's subject", AuditList{Network: "other", Subject: subj}, time.Time{}, time.Time{}, 0},
		{"period", AuditList{Network: "net", Subject: subj}, t0.Add(60 * time.Minute), t0.Add(200 * time.Minute), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all, next, err := s.audit.Page(tc.list, tc.from, tc.to, nil, 0)
			if err != nil || next != nil {
				t.Fatalf("whole list: next %q, %v", next, err)
			}
			if tc.want >= 0 && len(all) != tc.want {
				t.Fatalf("%d records, want %d", len(all), tc.want)
			}
			if !slices.IsSortedFunc(all, func(a, b *AuditEntry) int { return a.At.Compare(b.At) }) {
				t.Fatal("not in time order")
			}
			for _, e := range all {
				if (!tc.from.IsZero() && e.At.Before(tc.from)) || (!tc.to.IsZero() && !e.At.Before(tc.to)) {
					t.Fatalf("a record at %s outside [%s, %s)", e.At, tc.from, tc.to)
				}
			}
			var walked []*AuditEntry
			var cursor []byte
			for {
				page, next, err := s.audit.Page(tc.list, tc.from, tc.to, cursor, 3)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > 3 || (next != nil && len(page) != 3) {
					t.Fatalf("a page of %d with next %t", len(page), next != nil)
				}
				walked = append(walked, page...)
				if next == nil {
					break
				}
				cursor = next
			}
			if diff := cmp.Diff(all, walked, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("pages differ from the whole list (-whole +pages):\n%s", diff)
			}
		})
	}
}

// TestErasureLeavesTheRetentionIndex: an erased subject's data is gone from
// the subjects read model, its cases leave the retention index (so sweeps
// never look at them again), and its monitoring rows stay.
func TestErasureLeavesTheRetentionIndex(t *testing.T) {
	s := newSet(t)
	applyAll(t, s, history(t, 60, 9))
	var closed *Case
	s.cases.All(func(c *Case) bool {
		if c.Status == domain.StatusClosed {
			closed = c
			return false
		}
		return true
	})
	if closed == nil || closed.expiry == nil {
		t.Fatalf("no closed case in the retention index: %+v", closed)
	}
	inIndex := func(id uuid.UUID) bool {
		found := false
		_ = s.cases.rs.Scan([]byte{casesPrefix, 'e'}, []byte{casesPrefix, 'f'}, false, func(k, _ []byte) bool {
			found = found || bytes.HasSuffix(k, id[:])
			return !found
		})
		return found
	}
	if !inIndex(closed.ID) {
		t.Fatal("the closed case is not in the store's retention index")
	}
	rows := 0
	s.cases.Monitor("net", time.Time{}, time.Time{}, func(*MonitorRow) bool { rows++; return true })
	if subj, ok := s.subjects.Get(closed.SubjectID); !ok || subj.Erased { // read, and so kept in the subjects' cache
		t.Fatalf("subject before the erasure: %+v", subj)
	}
	data, _ := domain.Encode(domain.SubjectErased{SubjectID: closed.SubjectID, Basis: "request"})
	applyAll(t, s, []eventlog.RecordedEvent{{StreamID: "subject-" + closed.SubjectID.String(), Position: 1 << 20, ID: uuid.New(), Type: "SubjectErased", Data: data}})
	if subj, ok := s.subjects.Get(closed.SubjectID); !ok || !subj.Erased || subj.Data != nil {
		t.Fatalf("erased subject: %+v", subj)
	}
	if inIndex(closed.ID) {
		t.Fatal("an erased subject's case is still in the retention index")
	}
	after := 0
	s.cases.Monitor("net", time.Time{}, time.Time{}, func(*MonitorRow) bool { after++; return true })
	if after != rows || rows != 60 {
		t.Fatalf("monitoring rows %d before the erasure, %d after, want 60", rows, after)
	}
	if got := Expired(s.cases, s.subjects, closed.ClosedAt.Add(10*365*24*time.Hour), DefaultRetention()); slices.Contains(got, closed.SubjectID) {
		t.Fatal("an erased subject expires again")
	}
}

// TestMonitorRowsFollowTheCases: the monitoring rows hold what the cases
// say, in raise order, and a period selects by raise time.
func TestMonitorRowsFollowTheCases(t *testing.T) {
	s := newSet(t)
	applyAll(t, s, history(t, 120, 11))
	byID := map[uuid.UUID]*Case{}
	s.cases.All(func(c *Case) bool { byID[c.ID] = c; return true })
	var rows []MonitorRow
	s.cases.Monitor("net", time.Time{}, time.Time{}, func(r *MonitorRow) bool { rows = append(rows, *r); return true })
	if len(rows) != len(byID) {
		t.Fatalf("%d rows for %d cases", len(rows), len(byID))
	}
	for i, r := range rows {
		c := byID[r.ID]
		want := MonitorRow{ID: c.ID, Team: c.Team, Neighbourhood: c.Neighbourhood, Source: c.Source, Categories: c.Categories,
			Urgency: c.Urgency, Status: c.Status, NormVersion: c.NormVersion,
			RaisedAt: c.RaisedAt, DueAt: c.DueAt, Due3xAt: c.Due3xAt, FirstResponseAt: c.FirstResponseAt, StoppedAt: c.StoppedAt,
			ClosedAt: c.ClosedAt, WithdrawnAt: c.WithdrawnAt, FirstFeedbackAt: c.FirstFeedbackAt, FeedbackDueAt: c.FeedbackDueAt}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Fatalf("row of %s (-case +row):\n%s", c.ID, diff)
		}
		if i > 0 && r.RaisedAt.Before(rows[i-1].RaisedAt) {
			t.Fatal("rows not in raise order")
		}
	}
	from, to := rows[30].RaisedAt, rows[90].RaisedAt
	n := 0
	s.cases.Monitor("net", from, to, func(r *MonitorRow) bool {
		if r.RaisedAt.Before(from) || !r.RaisedAt.Before(to) {
			t.Fatalf("row raised at %s outside [%s, %s)", r.RaisedAt, from, to)
		}
		n++
		return true
	})
	if n != 60 {
		t.Fatalf("%d rows in the period, want 60", n)
	}
}

// FuzzDecodeRecords: the read models' decoders never panic on damaged
// records, and what decodes encodes back to the same bytes.
func FuzzDecodeRecords(f *testing.F) {
	s := newSet(f)
	applyAll(f, s, history(f, 20, 12))
	s.cases.All(func(c *Case) bool {
		f.Add(byte(0), encodeCase(c))
		f.Add(byte(3), encodeRow(c))
		return true
	})
	f.Add(byte(1), encodeSubject(&Subject{Network: "net", Data: domain.Sealed("x")}))
	f.Add(byte(2), encodeAuditEntry(&AuditEntry{Stream: "audit-x", AccessRecord: domain.AccessRecord{At: time.Now(), ActorID: "a",
		Subjects: []uuid.UUID{uuid.New()}, BreakGlassReason: domain.Sealed("r")}}))
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		switch kind % 4 {
		case 0:
			if c, err := decodeCase(data); err == nil {
				if !bytes.Equal(encodeCase(c), data) {
					t.Fatal("a case record does not encode back to itself")
				}
			}
		case 1:
			if s, err := decodeSubject(uuid.Nil, data); err == nil && !bytes.Equal(encodeSubject(s), data) {
				t.Fatal("a subject record does not encode back to itself")
			}
		case 2:
			if e, err := decodeAuditEntry(data); err == nil && !bytes.Equal(encodeAuditEntry(e), data) {
				t.Fatal("an audit record does not encode back to itself")
			}
		case 3:
			m := newMonitorRows()
			k := rowKey("net", time.Unix(0, 0), uuid.Nil)
			_ = m.load(k, data)
		}
	})
}

// fill sets every exported field of v, recursively, to a value other than
// its zero: slices get one element, times a moment, strings and numbers
// something.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(7)
	case reflect.Uint64, reflect.Uint32, reflect.Uint:
		v.SetUint(7)
	case reflect.Array: // uuid.UUID
		for i := 0; i < v.Len(); i++ {
			v.Index(i).SetUint(uint64(i + 1))
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 3, 2, 9, 30, 0, 123, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}

// TestRecordsKeepEveryField: a case and an access record with every field
// set survive their encoding; a field added to either (or to the domain's
// access record) that the encoding forgets fails here.
func TestRecordsKeepEveryField(t *testing.T) {
	var c Case
	fill(reflect.ValueOf(&c).Elem())
	c.expiry, c.erased = []byte("k"), true
	back, err := decodeCase(encodeCase(&c))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&c, back, allFields); diff != "" {
		t.Fatalf("a case after encoding (-before +after):\n%s", diff)
	}
	var a AuditEntry
	fill(reflect.ValueOf(&a).Elem())
	a.Position = 0 // the key holds it
	got, err := decodeAuditEntry(encodeAuditEntry(&a))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&a, got); diff != "" {
		t.Fatalf("an access record after encoding (-before +after):\n%s", diff)
	}
	var s Subject
	fill(reflect.ValueOf(&s).Elem())
	gotS, err := decodeSubject(s.ID, encodeSubject(&s))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&s, gotS); diff != "" {
		t.Fatalf("a subject after encoding (-before +after):\n%s", diff)
	}
}

// naiveFigures is the monitoring report's arithmetic as it was on whole
// cases with times, to hold the integer report to.
func naiveFigures(f *Figures, c *Case, now time.Time) {
	f.Total++
	if f.NormVersions == nil {
		f.NormVersions = map[string]int{}
	}
	f.NormVersions[c.NormVersion]++
	switch domain.StateAt(now, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt) {
	case domain.StateOnTime:
		f.WithinNorm++
	case domain.StateAnsweredLate:
		f.AnsweredLate++
	case domain.StateLate:
		f.Late++
	case domain.StateLate3x:
		f.Late3x++
	}
	if c.FirstResponseAt.IsZero() {
		if c.StoppedAt.IsZero() {
			f.Unanswered++
		}
	} else {
		f.Answered++
		f.FirstResponseHours = append(f.FirstResponseHours, c.FirstResponseAt.Sub(c.RaisedAt).Hours())
	}
	if !c.FirstFeedbackAt.IsZero() {
		f.FeedbackGiven++
		if !c.FeedbackDueAt.IsZero() && !c.FirstFeedbackAt.After(c.FeedbackDueAt) {
			f.FeedbackWithinNorm++
		}
	}
}

// TestMonitorReportEqualsTheCaseByCaseCount: the report from the rows, in
// integers with a sweep for the series, equals counting case by case with
// times, for periods, filters and moments.
func TestMonitorReportEqualsTheCaseByCaseCount(t *testing.T) {
	s := newSet(t)
	applyAll(t, s, history(t, 300, 13))
	var cases []*Case
	s.cases.All(func(c *Case) bool { cases = append(cases, c); return true })
	slices.SortFunc(cases, func(a, b *Case) int { return a.RaisedAt.Compare(b.RaisedAt) })
	first, last := cases[0].RaisedAt, cases[len(cases)-1].LastActivityAt
	normal := func(r *MonitorReport) {
		figs := []*Figures{&r.All}
		for _, m := range []map[string]*Figures{r.ByTeam, r.ByNeighbourhood, r.ByCategory, r.BySource} {
			for _, f := range m {
				figs = append(figs, f)
			}
		}
		for _, f := range figs {
			slices.Sort(f.FirstResponseHours)
			if len(f.FirstResponseHours) == 0 {
				f.FirstResponseHours = nil
			}
		}
	}
	for i, q := range []MonitorQuery{
		{Network: "net"},
		{Network: "net", From: first.Add(24 * time.Hour), To: last.Add(-48 * time.Hour)},
		{Network: "net", Team: "team-a", Category: "debt"},
		{Network: "net", Neighbourhood: "noord", From: first.Add(time.Hour)},
		{Network: "net", Team: "no-such-team"},
		{Network: "other"},
	} {
		for _, now := range []time.Time{first.Add(36 * time.Hour), last, last.Add(30 * 24 * time.Hour)} {
			var points []time.Time
			for p := first.Add(-time.Hour); p.Before(last.Add(24 * time.Hour)); p = p.Add(17 * time.Hour) {
				points = append(points, p)
			}
			if i%2 == 1 { // unevenly spaced points too
				points = slices.Delete(points, 3, 4)
			}
			var got MonitorReport
			s.runner.Read(func() { got = s.cases.MonitorSnapshot(q, &MonitorBuffer{}).Report(now, points) })
			want := MonitorReport{ByTeam: map[string]*Figures{}, ByNeighbourhood: map[string]*Figures{}, ByCategory: map[string]*Figures{},
				BySource: map[string]*Figures{}, Open: make([]int, len(points)), Overdue: make([]int, len(points))}
			group := func(m map[string]*Figures, k string) *Figures {
				if m[k] == nil {
					m[k] = &Figures{}
				}
				return m[k]
			}
			for _, c := range cases {
				if c.Network != q.Network || c.RaisedAt.Before(q.From) || (!q.To.IsZero() && !c.RaisedAt.Before(q.To)) ||
					(q.Team != "" && c.Team != q.Team) || (q.Neighbourhood != "" && c.Neighbourhood != q.Neighbourhood) ||
					(q.Category != "" && !slices.Contains(c.Categories, q.Category)) {
					continue
				}
				naiveFigures(&want.All, c, now)
				naiveFigures(group(want.ByTeam, c.Team), c, now)
				naiveFigures(group(want.ByNeighbourhood, c.Neighbourhood), c, now)
				naiveFigures(group(want.BySource, string(c.Source)), c, now)
				for _, cat := range c.Categories {
					naiveFigures(group(want.ByCategory, cat), c, now)
				}
				for k, p := range points {
					before := func(t time.Time) bool { return !t.IsZero() && !t.After(p) }
					if c.RaisedAt.After(p) || before(c.ClosedAt) || before(c.WithdrawnAt) {
						continue
					}
					want.Open[k]++
					if c.DueAt.Before(p) && !before(c.FirstResponseAt) && !before(c.StoppedAt) {
						want.Overdue[k]++
					}
				}
			}
			normal(&want)
			normal(&got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("query %d at %s (-case by case +report):\n%s", i, now, diff)
			}
		}
	}
}

// TestErasureOfAnOpenCaseIsWritten: the erasure of a subject whose case is
// still open is written with the batch (an open case has no entry in the
// retention index to change), so a restart reads the case as erased and
// does not put it in the retention index when it closes. The whole-server
// power-loss test found it missing.
func TestErasureOfAnOpenCaseIsWritten(t *testing.T) {
	s := newSet(t)
	applyAll(t, s, history(t, 60, 9))
	var open *Case
	s.cases.All(func(c *Case) bool {
		if c.Status != domain.StatusClosed && c.Status != domain.StatusWithdrawn {
			open = c
			return false
		}
		return true
	})
	if open == nil {
		t.Fatal("no open case in the history")
	}
	data, _ := domain.Encode(domain.SubjectErased{SubjectID: open.SubjectID, Basis: "request"})
	applyAll(t, s, []eventlog.RecordedEvent{{StreamID: "subject-" + open.SubjectID.String(), Position: 1 << 20, ID: uuid.New(), Type: "SubjectErased", Data: data}})
	v, ok, err := s.cases.rs.Get(openKey(open.ID))
	if err != nil || !ok {
		t.Fatalf("the open case in the store: %v, %v", ok, err)
	}
	stored, err := decodeCase(v)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.erased {
		t.Fatal("the store holds the open case of an erased subject as not erased: a restart forgets the erasure")
	}
}
