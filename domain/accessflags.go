package domain

import (
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
)

// Access monitoring: rules that flag access records a privacy officer
// should look at (NEN 7513 asks that the logs are reviewed, not only
// kept). They are pure and incremental: a read model feeds each access
// record with what it knows of the actor (ActorHistory) and of the cases
// read (AccessFacts), keeps the history the rules return, and never scans
// the log again. Flags hold ids, codes and times, never residents' data.

// Flag rules, by name.
const (
	RuleOutsideTeam  = "outside_team"        // a read of a case outside the actor's teams and referrals, not break-glass
	RuleManySubjects = "many_subjects"       // more distinct subjects in a day than a multiple of the actor's own median
	RuleAfterHours   = "after_hours"         // a read outside working hours (the network's time zone, holidays included)
	RuleAfterClosed  = "after_closed"        // a read of a case long after it was closed
	RuleDenied       = "repeated_denials"    // repeated denied attempts by one actor
	RuleBurst        = "export_search_burst" // many exports or subject searches in a short time
)

// FlagRules configure the rules; DefaultFlagRules documents the defaults.
type FlagRules struct {
	// OutsideTeam turns RuleOutsideTeam on.
	OutsideTeam bool `json:"outside_team"`
	// ManySubjectsMultiple and ManySubjectsFloor: a day's distinct subjects
	// above both the multiple of the actor's median day (over the last
	// 30 days with reads) and the floor, once the actor has at least
	// ManySubjectsMinDays days of history (a new user is not flagged in
	// their first week).
	ManySubjectsMultiple float64 `json:"many_subjects_multiple"`
	ManySubjectsFloor    int     `json:"many_subjects_floor"`
	ManySubjectsMinDays  int     `json:"many_subjects_min_days"`
	// WorkStart and WorkEnd are the working hours (in the calendar's
	// location) on working days; 0 and 0 turn RuleAfterHours off.
	WorkStart int `json:"work_start_hour"`
	WorkEnd   int `json:"work_end_hour"`
	// AfterClosedDays: a read of a case closed longer ago (0: off).
	AfterClosedDays int `json:"after_closed_days"`
	// DeniedCount denials within DeniedWindow (0: off).
	DeniedCount  int           `json:"denied_count"`
	DeniedWindow time.Duration `json:"denied_window"`
	// BurstCount exports or searches within BurstWindow (0: off).
	BurstCount  int           `json:"burst_count"`
	BurstWindow time.Duration `json:"burst_window"`
}

// DefaultFlagRules are the rules a network starts with: reads outside the
// actor's teams; more than 3 times the actor's median day and at least 20
// subjects, after 7 days of history; reads outside 07:00-19:00 on working
// days; reads of cases closed more than 90 days; 5 denials in 15 minutes;
// 10 exports or searches in an hour.
func DefaultFlagRules() FlagRules {
	return FlagRules{OutsideTeam: true, ManySubjectsMultiple: 3, ManySubjectsFloor: 20, ManySubjectsMinDays: 7,
		WorkStart: 7, WorkEnd: 19, AfterClosedDays: 90, DeniedCount: 5, DeniedWindow: 15 * time.Minute,
		BurstCount: 10, BurstWindow: time.Hour}
}

// AccessFacts are what the rules need to know of one access record beyond
// the record itself: for each case it read, whether it is one of the
// actor's teams' cases (or a referral to the actor's organisation), and
// when it was closed (zero: open).
type AccessFacts struct {
	OwnCase  map[uuid.UUID]bool
	ClosedAt map[uuid.UUID]time.Time
}

// ActorHistory is what the rules keep of one actor between records: the
// distinct subjects of the current day, the counts of earlier days (the
// last 30 with reads), and the recent denials and exports or searches.
type ActorHistory struct {
	Day        string      `json:"day"` // YYYY-MM-DD in the calendar's location
	Today      []uuid.UUID `json:"today,omitempty"`
	TodayFlag  bool        `json:"today_flagged,omitempty"` // many_subjects raised today already
	PastDays   []int       `json:"past_days,omitempty"`     // distinct subjects per earlier day with reads, oldest first, at most 30
	Denied     []time.Time `json:"denied,omitempty"`
	Bursts     []time.Time `json:"bursts,omitempty"`
	DeniedFlag time.Time   `json:"denied_flagged,omitzero"` // the last denial flag, so one run raises one flag
	BurstFlag  time.Time   `json:"burst_flagged,omitzero"`
}

// AccessFlag is one flag raised by a rule on an access record.
type AccessFlag struct {
	Rule     string      `json:"rule"`
	Network  string      `json:"network"`
	ActorID  string      `json:"actor_id"`
	At       time.Time   `json:"at"`
	Subjects []uuid.UUID `json:"subject_ids,omitempty"`
	Signals  []uuid.UUID `json:"signal_ids,omitempty"`
	// Records are the positions of the access records that raised it.
	Records []uint64 `json:"records"`
}

// Flags applies the rules to one access record (at position pos) and
// returns the flags it raises and the actor's history after it.
func (r FlagRules) Flags(cal Calendar, rec AccessRecord, denied bool, pos uint64, f AccessFacts, h ActorHistory) ([]AccessFlag, ActorHistory) {
	var out []AccessFlag
	flag := func(rule string, subjects, signals []uuid.UUID, records []uint64) {
		out = append(out, AccessFlag{Rule: rule, Network: rec.Network, ActorID: rec.ActorID, At: rec.At,
			Subjects: slices.Clone(subjects), Signals: slices.Clone(signals), Records: records})
	}
	at := rec.At
	if denied {
		if r.DeniedCount > 0 {
			h.Denied = append(within(h.Denied, at, r.DeniedWindow), at)
			if len(h.Denied) >= r.DeniedCount && (h.DeniedFlag.IsZero() || at.Sub(h.DeniedFlag) >= r.DeniedWindow) {
				h.DeniedFlag = at
				flag(RuleDenied, rec.Subjects, rec.Signals, []uint64{pos})
			}
		}
		return out, h
	}
	if r.OutsideTeam && rec.Basis != BasisBreakGlass && rec.Basis != BasisRole {
		var outside []uuid.UUID
		for _, s := range rec.Signals {
			if !f.OwnCase[s] {
				outside = append(outside, s)
			}
		}
		if len(outside) > 0 {
			flag(RuleOutsideTeam, rec.Subjects, outside, []uint64{pos})
		}
	}
	if r.AfterClosedDays > 0 {
		var late []uuid.UUID
		for _, s := range rec.Signals {
			if c := f.ClosedAt[s]; !c.IsZero() && at.Sub(c) > time.Duration(r.AfterClosedDays)*24*time.Hour {
				late = append(late, s)
			}
		}
		if len(late) > 0 {
			flag(RuleAfterClosed, rec.Subjects, late, []uint64{pos})
		}
	}
	if r.WorkEnd > r.WorkStart && len(rec.Subjects) > 0 {
		local := at.In(cal.loc())
		if !cal.WorkingDay(local) || local.Hour() < r.WorkStart || local.Hour() >= r.WorkEnd {
			flag(RuleAfterHours, rec.Subjects, rec.Signals, []uint64{pos})
		}
	}
	if r.BurstCount > 0 && (rec.Action == "export" || rec.Action == "search") {
		h.Bursts = append(within(h.Bursts, at, r.BurstWindow), at)
		if len(h.Bursts) >= r.BurstCount && (h.BurstFlag.IsZero() || at.Sub(h.BurstFlag) >= r.BurstWindow) {
			h.BurstFlag = at
			flag(RuleBurst, rec.Subjects, rec.Signals, []uint64{pos})
		}
	}
	if r.ManySubjectsMultiple > 0 {
		day := at.In(cal.loc()).Format(time.DateOnly)
		if day != h.Day {
			if h.Day != "" && len(h.Today) > 0 {
				h.PastDays = append(h.PastDays, len(h.Today))
				if len(h.PastDays) > 30 {
					h.PastDays = h.PastDays[len(h.PastDays)-30:]
				}
			}
			h.Day, h.Today, h.TodayFlag = day, nil, false
		}
		for _, s := range rec.Subjects {
			if !slices.Contains(h.Today, s) {
				h.Today = append(h.Today, s)
			}
		}
		if !h.TodayFlag && len(h.PastDays) >= r.ManySubjectsMinDays && len(h.Today) >= r.ManySubjectsFloor &&
			float64(len(h.Today)) > r.ManySubjectsMultiple*median(h.PastDays) {
			h.TodayFlag = true
			flag(RuleManySubjects, h.Today, nil, []uint64{pos})
		}
	}
	return out, h
}

// within keeps the times of ts within window before at.
func within(ts []time.Time, at time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(ts) && at.Sub(ts[i]) >= window {
		i++
	}
	return slices.Clone(ts[i:])
}

func median(xs []int) float64 {
	s := slices.Clone(xs)
	sort.Ints(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return float64(s[n/2])
	}
	return float64(s[n/2-1]+s[n/2]) / 2
}

// Reviews: a privacy officer's judgement of a break-glass read or a flag,
// recorded as AccessReviewed on the network's stream reviews-<network>.

// ReviewsCategory is the stream category of a network's reviews.
const ReviewsCategory = "reviews"

// Judgements of a review.
var Judgements = enum{"justified", "not_justified", "follow_up"}

// ReviewTermWorkingDays is how long a review may wait by default.
const ReviewTermWorkingDays = 5

// AccessReviewed records a privacy officer's judgement of an item to
// review: a break-glass read (its access record's position) or a flag (its
// id). The note is free text, sealed under the first subject's key.
type AccessReviewed struct {
	Network   string    `json:"network"`
	Item      string    `json:"item"` // "break_glass:<position>" or "flag:<id>"
	Judgement string    `json:"judgement"`
	Note      Sealed    `json:"note,omitempty"`
	Subject   uuid.UUID `json:"subject_id,omitzero"` // whose key seals the note
}

// EventType implements Event.
func (AccessReviewed) EventType() string { return "AccessReviewed" }

// networkSealSpace names the keys a network's own free text is sealed
// under (UUID v5 of the network id).
var networkSealSpace = uuid.MustParse("6b1f3c52-9d0e-4d43-8a51-2f7c0e5b9a10")

// NetworkSealSubject is the key id that seals a network's free text that
// names no subject, such as the note on a review of an item without one:
// the cipher keeps it like a subject's key, and no erasure of a resident
// shreds it.
func NetworkSealSubject(network string) uuid.UUID {
	return uuid.NewSHA1(networkSealSpace, []byte("network\x00"+network))
}
