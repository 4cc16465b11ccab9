package domain

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func amsterdam(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	return loc
}

func TestEaster(t *testing.T) {
	for year, want := range map[int]string{2024: "2024-03-31", 2025: "2025-04-20", 2026: "2026-04-05", 2027: "2027-03-28", 2038: "2038-04-25"} {
		if got := Easter(year).Format(time.DateOnly); got != want {
			t.Errorf("Easter(%d) = %s, want %s", year, got, want)
		}
	}
}

func TestDutchHolidays(t *testing.T) {
	want := []string{"2026-01-01", "2026-04-03", "2026-04-05", "2026-04-06", "2026-04-27", "2026-05-05", "2026-05-14", "2026-05-24", "2026-05-25", "2026-12-25", "2026-12-26"}
	if diff := cmp.Diff(want, DutchHolidays(2026)); diff != "" {
		t.Errorf("DutchHolidays(2026) (-want +got):\n%s", diff)
	}
	// King's Day on a Sunday moves to Saturday 26 April (2025: 27 April is a Sunday).
	if got := DutchHolidays(2025)[4]; got != "2025-04-26" {
		t.Errorf("King's Day 2025 = %s", got)
	}
}

func TestDueAcrossWeekendsAndHolidays(t *testing.T) {
	loc := amsterdam(t)
	cal := NewCalendar(loc, DutchHolidays(2026))
	norms := DefaultNorms()
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name            string
		raised          string
		urgency         string
		categories      []string
		wantDue, want3x string
	}{
		{"acute is calendar hours, weekend or not", "2026-04-25 10:00", "acute", nil, "2026-04-26 10:00", "2026-04-28 10:00"},
		{"high over the weekend, King's Day and Liberation Day", "2026-04-24 16:00", "high", nil, "2026-04-30 16:00", "2026-05-11 16:00"},
		{"normal over Ascension Day and Whit Monday", "2026-05-11 09:00", "normal", nil, "2026-05-27 09:00", "2026-06-24 09:00"},
		{"raised on a Saturday counts from Monday", "2026-03-07 11:00", "high", nil, "2026-03-12 00:00", "2026-03-20 00:00"},
		{"unknown urgency falls back to 10 working days", "2026-03-02 09:00", "", nil, "2026-03-16 09:00", "2026-04-15 09:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due, due3x := norms.Due(cal, at(tt.raised), tt.urgency, tt.categories)
			if got := due.In(loc).Format("2006-01-02 15:04"); got != tt.wantDue {
				t.Errorf("due = %s, want %s", got, tt.wantDue)
			}
			if got := due3x.In(loc).Format("2006-01-02 15:04"); got != tt.want3x {
				t.Errorf("due3x = %s, want %s", got, tt.want3x)
			}
		})
	}
}

func TestCategoryNormOverridesWhenStricter(t *testing.T) {
	cal := NewCalendar(time.UTC, nil)
	n := DefaultNorms()
	n.ByCategory = map[string]Norm{"safety": {Hours: 4}}
	raised := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	due, _ := n.Due(cal, raised, "normal", []string{"loneliness", "safety"})
	if want := raised.Add(4 * time.Hour); !due.Equal(want) {
		t.Errorf("due = %v, want %v", due, want)
	}
}

func TestStateAtAsTheClockMoves(t *testing.T) {
	raised := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	due, due3x := raised.Add(24*time.Hour), raised.Add(72*time.Hour)
	tests := []struct {
		name             string
		now, first, stop time.Time
		want             ResponseState
	}{
		{"waiting before the deadline", raised.Add(time.Hour), time.Time{}, time.Time{}, StateWaiting},
		{"waiting at the deadline", due, time.Time{}, time.Time{}, StateWaiting},
		{"late just after", due.Add(time.Second), time.Time{}, time.Time{}, StateLate},
		{"late at three times", due3x, time.Time{}, time.Time{}, StateLate},
		{"3x late after three times", due3x.Add(time.Second), time.Time{}, time.Time{}, StateLate3x},
		{"answered on time", due3x.Add(time.Hour), raised.Add(2 * time.Hour), time.Time{}, StateOnTime},
		{"answered late", due3x.Add(time.Hour), due.Add(time.Minute), time.Time{}, StateAnsweredLate},
		{"withdrawn before the deadline stops the clock", due3x.Add(time.Hour), time.Time{}, raised.Add(time.Hour), StateOnTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StateAt(tt.now, due, due3x, tt.first, tt.stop); got != tt.want {
				t.Errorf("StateAt = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestUnrouted: a raised signal without a team is reported one working day
// after it was raised, across weekends and holidays, and only while it is
// raised and without a team.
func TestUnrouted(t *testing.T) {
	loc := amsterdam(t)
	cal := NewCalendar(loc, DutchHolidays(2026))
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name     string
		raised   string
		status   Status
		team     string
		now      string
		unrouted bool
	}{
		{"a weekday: the next day, just before", "2026-03-03 10:00", StatusRaised, "", "2026-03-04 09:59", false},
		{"a weekday: the next day, at the moment", "2026-03-03 10:00", StatusRaised, "", "2026-03-04 10:00", true},
		{"Friday skips the weekend", "2026-03-06 15:00", StatusRaised, "", "2026-03-09 14:59", false},
		{"Friday: Monday at the same time", "2026-03-06 15:00", StatusRaised, "", "2026-03-09 15:00", true},
		{"the day before King's Day (Monday 27 April)", "2026-04-24 16:00", StatusRaised, "", "2026-04-28 15:59", false},
		{"after King's Day", "2026-04-24 16:00", StatusRaised, "", "2026-04-28 16:00", true},
		{"raised on Saturday counts from Monday", "2026-03-07 11:00", StatusRaised, "", "2026-03-10 00:00", true},
		{"handed over: never unrouted", "2026-03-03 10:00", StatusHandedOver, "team-a", "2026-03-20 10:00", false},
		{"withdrawn: never unrouted", "2026-03-03 10:00", StatusWithdrawn, "", "2026-03-20 10:00", false},
		{"declined back to raised without a team", "2026-03-03 10:00", StatusRaised, "", "2026-03-20 10:00", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			due := cal.UnroutedDue(at(tc.raised))
			if got := Unrouted(tc.status, tc.team, due, at(tc.now)); got != tc.unrouted {
				t.Errorf("unrouted at %s = %v, want %v (due %s)", tc.now, got, tc.unrouted, due.In(loc))
			}
		})
	}
}
