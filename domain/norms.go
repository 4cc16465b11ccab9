package domain

import (
	"slices"
	"time"
)

// Calendar knows which days are working days: Monday to Friday, except
// holidays. Days are taken in Location (Europe/Amsterdam in production; the
// caller loads it, since domain code does no I/O).
type Calendar struct {
	Location *time.Location
	Holidays map[int]bool // yyyymmdd
}

func dayKey(y int, m time.Month, d int) int { return y*10000 + int(m)*100 + d }

// NewCalendar returns a calendar in loc with the given holidays (YYYY-MM-DD).
func NewCalendar(loc *time.Location, holidays []string) Calendar {
	if loc == nil {
		loc = time.UTC
	}
	h := make(map[int]bool, len(holidays))
	for _, d := range holidays {
		if t, err := time.Parse(time.DateOnly, d); err == nil {
			h[dayKey(t.Date())] = true
		}
	}
	return Calendar{Location: loc, Holidays: h}
}

// WorkingDay reports whether the day of t is a working day.
func (c Calendar) WorkingDay(t time.Time) bool {
	t = t.In(c.loc())
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !c.Holidays[dayKey(t.Date())]
}

func (c Calendar) loc() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// AddWorkingDays returns the moment n working days after t, at the same wall
// clock time: each step moves to the next working day. A start outside working
// days counts from the next working day's start.
func (c Calendar) AddWorkingDays(t time.Time, n int) time.Time {
	d := t.In(c.loc())
	if !c.WorkingDay(d) {
		for !c.WorkingDay(d) {
			d = startOfDay(d).AddDate(0, 0, 1)
		}
	}
	for i := 0; i < n; i++ {
		d = d.AddDate(0, 0, 1)
		for !c.WorkingDay(d) {
			d = d.AddDate(0, 0, 1)
		}
	}
	return d.UTC()
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// DutchHolidays returns the Dutch national holidays of a year that fall on
// weekdays or not: New Year's Day, Good Friday, Easter Sunday and Monday,
// King's Day (27 April, 26 April when the 27th is a Sunday), Liberation Day
// (5 May), Ascension Day, Whit Sunday and Monday, Christmas and Boxing Day.
// Easter-based days are computed (anonymous Gregorian algorithm).
func DutchHolidays(year int) []string {
	easter := Easter(year)
	kings := time.Date(year, time.April, 27, 0, 0, 0, 0, time.UTC)
	if kings.Weekday() == time.Sunday {
		kings = kings.AddDate(0, 0, -1)
	}
	days := []time.Time{
		time.Date(year, time.January, 1, 0, 0, 0, 0, time.UTC),
		easter.AddDate(0, 0, -2),
		easter,
		easter.AddDate(0, 0, 1),
		kings,
		time.Date(year, time.May, 5, 0, 0, 0, 0, time.UTC),
		easter.AddDate(0, 0, 39),
		easter.AddDate(0, 0, 49),
		easter.AddDate(0, 0, 50),
		time.Date(year, time.December, 25, 0, 0, 0, 0, time.UTC),
		time.Date(year, time.December, 26, 0, 0, 0, 0, time.UTC),
	}
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = d.Format(time.DateOnly)
	}
	slices.Sort(out)
	return out
}

// Easter returns Easter Sunday of a Gregorian year (UTC midnight).
func Easter(year int) time.Time {
	a := year % 19
	b, c := year/100, year%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
}

// Norm is how long a signal may wait for its first response: either calendar
// hours or working days.
type Norm struct {
	Hours       int `json:"hours,omitempty"`
	WorkingDays int `json:"working_days,omitempty"`
}

// Norms are the response norms by urgency, with overrides by category (the
// strictest applicable norm wins), and the feedback norm after acceptance.
type Norms struct {
	ByUrgency        map[string]Norm `json:"by_urgency"`
	ByCategory       map[string]Norm `json:"by_category,omitempty"`
	FeedbackWorkDays int             `json:"feedback_working_days"`
}

// DefaultNorms are DESIGN.md's: acute 24 hours; high 3 working days; normal
// 10 working days; feedback within 10 working days of acceptance.
func DefaultNorms() Norms {
	return Norms{
		ByUrgency: map[string]Norm{
			"acute":  {Hours: 24},
			"high":   {WorkingDays: 3},
			"normal": {WorkingDays: 10},
		},
		FeedbackWorkDays: 10,
	}
}

// Due returns when the first response is due for a signal raised at t, and
// when it counts as three times late (three times the norm).
func (n Norms) Due(cal Calendar, t time.Time, urgency string, categories []string) (due, due3x time.Time) {
	norms := []Norm{n.ByUrgency[urgency]}
	for _, c := range categories {
		if cn, ok := n.ByCategory[c]; ok {
			norms = append(norms, cn)
		}
	}
	first := true
	for _, nm := range norms {
		if nm.Hours == 0 && nm.WorkingDays == 0 {
			continue
		}
		d, d3 := nm.apply(cal, t)
		if first || d.Before(due) {
			due, due3x, first = d, d3, false
		}
	}
	if first { // no norm configured: the normal default
		return Norm{WorkingDays: 10}.apply(cal, t)
	}
	return due, due3x
}

func (nm Norm) apply(cal Calendar, t time.Time) (time.Time, time.Time) {
	if nm.Hours > 0 {
		h := time.Duration(nm.Hours) * time.Hour
		return t.Add(h).UTC(), t.Add(3 * h).UTC()
	}
	return cal.AddWorkingDays(t, nm.WorkingDays), cal.AddWorkingDays(t, 3*nm.WorkingDays)
}

// UnroutedWorkingDays is how long a raised signal may stay without a team
// before the network's coordinators are told: every signal reaches a team.
const UnroutedWorkingDays = 1

// UnroutedDue returns when a signal raised at t that still has no team is
// reported to the coordinators and listed as overdue.
func (c Calendar) UnroutedDue(t time.Time) time.Time {
	return c.AddWorkingDays(t, UnroutedWorkingDays)
}

// Unrouted reports whether a signal, raised and still without a team, has
// waited past unroutedDue at now.
func Unrouted(status Status, team string, unroutedDue, now time.Time) bool {
	return status == StatusRaised && team == "" && !unroutedDue.IsZero() && !now.Before(unroutedDue)
}

// ResponseState is how a signal stands against its response norm.
type ResponseState string

const (
	StateWaiting      ResponseState = "waiting"
	StateOnTime       ResponseState = "on_time"
	StateLate         ResponseState = "late"
	StateLate3x       ResponseState = "late_3x"
	StateAnsweredLate ResponseState = "answered_late"
)

// StateAt classifies a signal at now. A zero firstResponse means none yet.
// A signal withdrawn before any response is waiting no more: closedAt
// (non-zero) stops the clock and it counts as on time.
func StateAt(now, due, due3x, firstResponse, stoppedAt time.Time) ResponseState {
	switch {
	case !firstResponse.IsZero():
		if firstResponse.After(due) {
			return StateAnsweredLate
		}
		return StateOnTime
	case !stoppedAt.IsZero():
		if stoppedAt.After(due) {
			return StateAnsweredLate
		}
		return StateOnTime
	case now.After(due3x):
		return StateLate3x
	case now.After(due):
		return StateLate
	default:
		return StateWaiting
	}
}
