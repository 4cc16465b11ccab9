package domain

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// TestFlagRules shows each rule firing and not firing, on the network's
// calendar across weekends and holidays.
func TestFlagRules(t *testing.T) {
	ams := amsterdam(t)
	cal := NewCalendar(ams, DutchHolidays(2026))
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, ams)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	subj, own, other, closed := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	facts := AccessFacts{OwnCase: map[uuid.UUID]bool{own: true, closed: true},
		ClosedAt: map[uuid.UUID]time.Time{closed: at("2026-01-05 10:00")}}
	read := func(when string, basis Basis, signals ...uuid.UUID) AccessRecord {
		return AccessRecord{At: at(when), ActorID: "anna", Network: "net", Action: "read", Basis: basis, Subjects: []uuid.UUID{subj}, Signals: signals}
	}
	rules := DefaultFlagRules()
	rulesOf := func(fs []AccessFlag) (out []string) {
		for _, f := range fs {
			out = append(out, f.Rule)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		rec  AccessRecord
		want []string
	}{
		{"its own team's case on a Tuesday morning", read("2026-03-03 10:00", BasisTeam, own), nil},
		{"another team's case, not break-glass", read("2026-03-03 10:00", BasisTeam, other), []string{RuleOutsideTeam}},
		{"another team's case, break-glass (reviewed as such)", read("2026-03-03 10:00", BasisBreakGlass, other), nil},
		{"Friday 18:59", read("2026-03-06 18:59", BasisTeam, own), nil},
		{"Friday 19:00", read("2026-03-06 19:00", BasisTeam, own), []string{RuleAfterHours}},
		{"early Monday 06:59", read("2026-03-09 06:59", BasisTeam, own), []string{RuleAfterHours}},
		{"Saturday noon", read("2026-03-07 12:00", BasisTeam, own), []string{RuleAfterHours}},
		{"King's Day (a Monday) at noon", read("2026-04-27 12:00", BasisTeam, own), []string{RuleAfterHours}},
		{"a case closed 86 days ago", read("2026-04-01 10:00", BasisTeam, closed), nil},
		{"a case closed 92 days ago", read("2026-04-07 10:00", BasisTeam, closed), []string{RuleAfterClosed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := rules.Flags(cal, tc.rec, false, 7, facts, ActorHistory{})
			if diff := cmp.Diff(tc.want, rulesOf(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("repeated denials: the fifth in 15 minutes, once per run", func(t *testing.T) {
		var h ActorHistory
		var fired []int
		for i, m := range []int{0, 3, 6, 9, 12, 13, 14, 40} {
			rec := read("2026-03-03 10:00", BasisTeam, other)
			rec.At = rec.At.Add(time.Duration(m) * time.Minute)
			var fs []AccessFlag
			fs, h = rules.Flags(cal, rec, true, uint64(i), facts, h)
			if len(fs) > 0 {
				fired = append(fired, i)
			}
		}
		if diff := cmp.Diff([]int{4}, fired); diff != "" {
			t.Errorf("denials that raised a flag (-want +got):\n%s", diff)
		}
	})
	t.Run("exports and searches: the tenth in an hour", func(t *testing.T) {
		var h ActorHistory
		var fired []int
		for i := 0; i < 12; i++ {
			rec := AccessRecord{At: at("2026-03-03 10:00").Add(time.Duration(i*5) * time.Minute), ActorID: "hanna", Network: "net", Action: "export", Basis: BasisRole, Subjects: []uuid.UUID{uuid.New()}}
			var fs []AccessFlag
			fs, h = rules.Flags(cal, rec, false, uint64(i), facts, h)
			if len(fs) > 0 {
				fired = append(fired, i)
			}
		}
		if diff := cmp.Diff([]int{9}, fired); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("many subjects: above 3x the median and the floor, after a week of history", func(t *testing.T) {
		day := func(h ActorHistory, date string, n int) (ActorHistory, bool) {
			flagged := false
			for i := 0; i < n; i++ {
				rec := AccessRecord{At: at(date + " 10:00").Add(time.Duration(i) * time.Second), ActorID: "anna", Network: "net", Action: "read", Basis: BasisTeam, Subjects: []uuid.UUID{uuid.New()}}
				var fs []AccessFlag
				fs, h = rules.Flags(cal, rec, false, uint64(i), facts, h)
				for _, f := range fs {
					flagged = flagged || f.Rule == RuleManySubjects
				}
			}
			return h, flagged
		}
		var h ActorHistory
		var flagged bool
		if h, flagged = day(h, "2026-03-02", 60); flagged {
			t.Error("a new user's first day is flagged")
		}
		for _, d := range []string{"2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-09", "2026-03-10"} {
			h, _ = day(h, d, 8)
		}
		if h, flagged = day(h, "2026-03-11", 22); flagged { // median 8: 22 < 24
			t.Error("22 subjects against a median of 8 are flagged")
		}
		if _, flagged = day(h, "2026-03-12", 25); !flagged {
			t.Error("25 subjects against a median of 8 are not flagged")
		}
	})
}
