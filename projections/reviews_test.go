package projections

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// reviewLog builds a log one event at a time, positions from 1.
type reviewLog struct {
	t      testing.TB
	events []eventlog.RecordedEvent
}

func (l *reviewLog) add(stream string, e domain.Event, actor string, at time.Time) uint64 {
	l.t.Helper()
	data, err := domain.Encode(e)
	if err != nil {
		l.t.Fatal(err)
	}
	pos := uint64(len(l.events) + 1)
	l.events = append(l.events, eventlog.RecordedEvent{StreamID: stream, Position: pos, ID: uuid.New(), Type: e.EventType(), Data: data,
		Metadata: eventlog.Metadata{OccurredAt: at, ActorID: actor, Network: "net"}})
	return pos
}

func (l *reviewLog) read(at time.Time, actor string, basis domain.Basis, signal uuid.UUID) uint64 {
	rec := domain.AccessRecord{At: at, ActorID: actor, ActorRole: "professional", Action: "read", View: "/v1/signals/{id}", Basis: basis,
		Subjects: []uuid.UUID{uuid.NewSHA1(uuid.Nil, signal[:])}, Signals: []uuid.UUID{signal}, Outcome: "allowed", Network: "net"}
	return l.add("audit-test-"+at.Format("20060102"), domain.RecordAccessed{AccessRecord: rec}, actor, at)
}

func newReviewsRunner(t testing.TB, rs ReadStore) (*Runner, *Reviews) {
	t.Helper()
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	rev := NewReviews(domain.DefaultFlagRules(), domain.NewCalendar(ams, domain.DutchHolidays(2026)), 0)
	r := NewRunner(nil, domain.NewRegistry(), rev)
	if rs != nil {
		if _, err := r.Open(context.Background(), rs, false); err != nil {
			t.Fatal(err)
		}
	}
	return r, rev
}

func ids(items []*ReviewItem) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

// TestReviewsOpenFlagAndClose: a break-glass read opens a review item due
// five working days on (a holiday skipped); a read on a Saturday raises an
// after-hours flag, a read of a case closed long ago an after-closed flag;
// a judgement closes an item; the open list, the overdue ones, the flags
// per rule and the day counts follow; and a restart over the same store
// answers the same (the model resumes from its checkpoint).
func TestReviewsOpenFlagAndClose(t *testing.T) {
	l := &reviewLog{t: t}
	sig, old := uuid.New(), uuid.New()
	// Thu 2 Apr 2026 10:00 in Amsterdam, before Good Friday (3 Apr) and
	// Easter Monday (6 Apr), both holidays of the calendar.
	bgAt := time.Date(2026, 4, 2, 8, 0, 0, 0, time.UTC)
	bg := l.read(bgAt, "anna", domain.BasisBreakGlass, sig)
	sat := l.read(time.Date(2026, 4, 4, 10, 0, 0, 0, time.UTC), "bram", domain.BasisTeam, sig)
	l.add("signal-"+old.String(), domain.CaseClosed{Outcome: "resolved"}, "bram", time.Date(2025, 12, 1, 10, 0, 0, 0, time.UTC))
	late := l.read(time.Date(2026, 4, 7, 10, 0, 0, 0, time.UTC), "bram", domain.BasisTeam, old)
	bgID := "break_glass:" + itoa(bg)
	l.add("reviews-net", domain.AccessReviewed{Network: "net", Item: "flag:" + itoa(sat) + ":after_hours", Judgement: "justified",
		Note: domain.Sealed("sealed note"), Subject: uuid.New()}, "hanna", time.Date(2026, 4, 8, 9, 0, 0, 0, time.UTC))

	rs := NewMemoryStore()
	r, rev := newReviewsRunner(t, rs)
	for _, e := range l.events {
		if err := r.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, rev *Reviews) {
		t.Helper()
		all, next, err := rev.Page(ReviewList{Network: "net"}, time.Time{}, time.Time{}, nil, nil, 0)
		if err != nil || next != nil {
			t.Fatal(next, err)
		}
		want := []string{bgID, "flag:" + itoa(sat) + ":after_hours", "flag:" + itoa(late) + ":after_closed"}
		if diff := cmp.Diff(want, ids(all)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		// Five working days after Thu 2 Apr, skipping Good Friday, the
		// weekend and Easter Monday: Mon 13 Apr, at the same time of day.
		if got := all[0].DueAt; !got.Equal(time.Date(2026, 4, 13, 8, 0, 0, 0, time.UTC)) {
			t.Errorf("due %v", got)
		}
		if it := all[1]; it.Judgement != "justified" || it.ReviewedBy != "hanna" || string(it.Note) != "sealed note" {
			t.Errorf("reviewed item %+v", it)
		}
		open, _, _ := rev.Page(ReviewList{Network: "net", Open: true}, time.Time{}, time.Time{}, nil, nil, 0)
		if diff := cmp.Diff([]string{bgID, "flag:" + itoa(late) + ":after_closed"}, ids(open)); diff != "" {
			t.Errorf("open (-want +got):\n%s", diff)
		}
		flags, _, _ := rev.Page(ReviewList{Network: "net", Flags: true}, time.Time{}, time.Time{}, nil, nil, 0)
		if len(flags) != 2 {
			t.Errorf("flags %v", ids(flags))
		}
		closed, _, _ := rev.Page(ReviewList{Network: "net", Rule: domain.RuleAfterClosed}, time.Time{}, time.Time{}, nil, nil, 0)
		if diff := cmp.Diff([]string{"flag:" + itoa(late) + ":after_closed"}, ids(closed)); diff != "" {
			t.Errorf("after_closed (-want +got):\n%s", diff)
		}
		var overdue []*ReviewItem
		if err := rev.Overdue("net", time.Date(2026, 4, 13, 9, 0, 0, 0, time.UTC), func(it *ReviewItem) bool {
			overdue = append(overdue, it)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{bgID}, ids(overdue)); diff != "" {
			t.Errorf("overdue (-want +got):\n%s", diff)
		}
		days, err := rev.Days("net", time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		want2 := DayCounts{Reads: 3, BreakGlass: 1, Flags: map[string]int{"after_hours": 1, "after_closed": 1}, Reviewed: map[string]int{"justified": 1}}
		if diff := cmp.Diff(want2, days); diff != "" {
			t.Errorf("days (-want +got):\n%s", diff)
		}
		if other, _, _ := rev.Page(ReviewList{Network: "other"}, time.Time{}, time.Time{}, nil, nil, 0); len(other) != 0 {
			t.Errorf("another network sees %v", ids(other))
		}
	}
	t.Run("live", func(t *testing.T) { check(t, rev) })
	t.Run("restarted", func(t *testing.T) {
		r2, rev2 := newReviewsRunner(t, rs)
		if r2.Position() != uint64(len(l.events)) {
			t.Fatalf("resumed at %d", r2.Position())
		}
		check(t, rev2)
	})
}

// TestReviewPagesWalkTheList: pages with the cursors Page gives yield the
// whole list, in a period and with a filter too.
func TestReviewPagesWalkTheList(t *testing.T) {
	l := &reviewLog{t: t}
	t0 := time.Date(2026, 4, 4, 10, 0, 0, 0, time.UTC) // a Saturday: every read is after hours
	for i := range 30 {
		basis := domain.BasisTeam
		if i%3 == 0 {
			basis = domain.BasisBreakGlass
		}
		l.read(t0.Add(time.Duration(i)*time.Minute), "anna", basis, uuid.New())
	}
	r, rev := newReviewsRunner(t, nil)
	for _, e := range l.events {
		if err := r.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	isFlag := func(it *ReviewItem) bool { return it.Rule != RuleBreakGlass }
	for _, tc := range []struct {
		name     string
		list     ReviewList
		from, to time.Time
		match    func(*ReviewItem) bool
		want     int
	}{
		{"all", ReviewList{Network: "net"}, time.Time{}, time.Time{}, nil, 40},
		{"filtered", ReviewList{Network: "net"}, time.Time{}, time.Time{}, isFlag, 30},
		{"break-glass", ReviewList{Network: "net", Rule: RuleBreakGlass}, time.Time{}, time.Time{}, nil, 10},
		{"period", ReviewList{Network: "net", Flags: true}, t0.Add(10 * time.Minute), t0.Add(20 * time.Minute), nil, 10},
		{"open in a period", ReviewList{Network: "net", Open: true}, t0.Add(10 * time.Minute), t0.Add(20 * time.Minute), nil, 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole, _, err := rev.Page(tc.list, tc.from, tc.to, tc.match, nil, 0)
			if err != nil || len(whole) != tc.want {
				t.Fatalf("whole list: %d items, %v; want %d", len(whole), err, tc.want)
			}
			var walked []*ReviewItem
			var cursor []byte
			for range 100 {
				page, next, err := rev.Page(tc.list, tc.from, tc.to, tc.match, cursor, 3)
				if err != nil {
					t.Fatal(err)
				}
				walked = append(walked, page...)
				if next == nil {
					break
				}
				cursor = next
			}
			if diff := cmp.Diff(ids(whole), ids(walked)); diff != "" {
				t.Errorf("pages (-whole +walked):\n%s", diff)
			}
		})
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// FuzzDecodeReviewItem: the reviews model's decoder never panics on a
// damaged item, what decodes encodes back to the same bytes, and an index
// key's suffix gives an id back or nothing.
func FuzzDecodeReviewItem(f *testing.F) {
	at := time.Date(2026, 4, 2, 8, 0, 0, 0, time.UTC)
	f.Add(encodeReviewItem(&ReviewItem{ID: "break_glass:1", Network: "net", Rule: RuleBreakGlass, ActorID: "bob", At: at,
		Subjects: []uuid.UUID{uuid.New()}, Signals: []uuid.UUID{uuid.New()}, Records: []uint64{1}, DueAt: at.AddDate(0, 0, 7)}))
	f.Add(encodeReviewItem(&ReviewItem{ID: "flag:9:after_hours", Network: "net", Rule: "after_hours", At: at, Records: []uint64{9, 10},
		Judgement: "justified", ReviewedBy: "hanna", ReviewedAt: at, Note: domain.Sealed("n"), NoteSubject: uuid.New()}))
	f.Add(appendStr(appendTime(nil, at), "flag:9:after_hours"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if it, err := decodeReviewItem(data); err == nil && !bytes.Equal(encodeReviewItem(it), data) {
			t.Fatal("a review item does not encode back to itself")
		}
		if id, ok := keyID(data); ok && !bytes.Equal(appendStr(bytes.Clone(data[:8]), id), data) {
			t.Fatalf("key suffix %x gives id %q", data, id)
		}
	})
}
