package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

func language(r *http.Request) string { return domain.Language(r.Header.Get("Accept-Language")) }

// Monitoring answers: ids, codes, counts and times only; no personal data.
type (
	// responseFigures are the figures of a set of signals. A count that
	// describes fewer than k signals (suppress_k), or one that would give
	// such a count back by subtraction from a total, is null, and
	// suppressed is true with the suppressed fields named; the share, the
	// median and the p90 are null with the counts they come from.
	responseFigures struct {
		Total                  *int     `json:"total"`
		Answered               *int     `json:"answered"`
		WithinNorm             *int     `json:"within_norm"`
		WithinNormShare        *float64 `json:"within_norm_share"`
		Late                   *int     `json:"late"`
		Late3x                 *int     `json:"late_3x"`
		AnsweredLate           *int     `json:"answered_late"`
		Waiting                *int     `json:"waiting"`
		Unanswered             *int     `json:"unanswered"`
		MedianFirstResponseHrs *float64 `json:"median_first_response_hours"`
		P90FirstResponseHrs    *float64 `json:"p90_first_response_hours"`
		FeedbackGiven          *int     `json:"feedback_given"`
		FeedbackWithinNorm     *int     `json:"feedback_within_norm"`
		// NormVersions says which norms the figures used: the signals
		// counted by the version of the norms they were raised under
		// ("norms version.categories version"; "0.0" the defaults), each
		// count suppressed like the others (the versions add up to the
		// total).
		NormVersions     []normVersionCount `json:"norm_versions"`
		Suppressed       bool               `json:"suppressed"`
		SuppressedFields []string           `json:"suppressed_fields,omitempty"`
	}
	normVersionCount struct {
		Version string `json:"version"`
		Signals *int   `json:"signals"`
	}
	groupFigures struct {
		Key string `json:"key"`
		responseFigures
	}
	responseReport struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
		// SuppressK is the k of small-cell suppression: no published
		// figure describes fewer signals (and more than none).
		SuppressK int `json:"suppress_k"`
		responseFigures
		ByTeam          []groupFigures `json:"by_team"`
		ByNeighbourhood []groupFigures `json:"by_neighbourhood"`
		ByCategory      []groupFigures `json:"by_category"`
		BySource        []groupFigures `json:"by_source"`
		// Series samples, over the period, how many of its signals were open
		// and how many of those overdue (no first response past the norm):
		// at most 60 points, a day apart or more.
		Series []seriesPoint `json:"series"`
	}
	seriesPoint struct {
		At         time.Time `json:"at"`
		Open       *int      `json:"open"`
		Overdue    *int      `json:"overdue"`
		Suppressed bool      `json:"suppressed"`
	}
	overdueItem struct {
		ID         uuid.UUID `json:"id"`
		TeamID     string    `json:"team_id,omitempty"`
		Urgency    string    `json:"urgency"`
		Categories []string  `json:"categories"`
		RaisedAt   time.Time `json:"raised_at"`
		DueAt      time.Time `json:"due_at"`
		// State is late or late_3x (past the response norm, or three times
		// it), or unrouted: raised, still without a team, one working day on.
		State string `json:"state" openapi:"enum=overdue_state"`
		// Unrouted is true for a signal still without a team one working
		// day after it was raised, whatever its state against the norm.
		Unrouted bool    `json:"unrouted"`
		AgeHours float64 `json:"age_hours"`
	}
	overduePage struct {
		Items      []overdueItem `json:"items"`
		NextCursor string        `json:"next_cursor,omitempty"`
	}
)

// percentile of values, nearest-rank, to two decimals. It selects the
// value in linear time (and reorders values): a report's groups together
// hold several times the signals of its period, and sorting them all was
// most of a report's cost.
func percentile(values []float64, p float64) float64 {
	i := int(p*float64(len(values))+0.999999) - 1
	i = max(0, min(i, len(values)-1))
	v := selectNth(values, i)
	return float64(int(v*100+0.5)) / 100
}

// selectNth returns the value that would be at index k if values were
// sorted (Hoare's selection, median-of-three pivots).
func selectNth(values []float64, k int) float64 {
	lo, hi := 0, len(values)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if values[mid] < values[lo] {
			values[mid], values[lo] = values[lo], values[mid]
		}
		if values[hi] < values[lo] {
			values[hi], values[lo] = values[lo], values[hi]
		}
		if values[hi] < values[mid] {
			values[hi], values[mid] = values[mid], values[hi]
		}
		pivot := values[mid]
		i, j := lo, hi
		for i <= j {
			for values[i] < pivot {
				i++
			}
			for values[j] > pivot {
				j--
			}
			if i <= j {
				values[i], values[j] = values[j], values[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return values[k]
		}
	}
	return values[k]
}

type monitorFilter struct {
	from, to                      time.Time
	team, neighbourhood, category string
}

func parseMonitorFilter(r *http.Request, now time.Time) (monitorFilter, error) {
	q := r.URL.Query()
	f := monitorFilter{to: now, team: q.Get("team_id"), neighbourhood: q.Get("neighbourhood"), category: q.Get("category")}
	f.from = now.AddDate(0, 0, -90)
	var errs fields
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.from}, {"to", &f.to}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, ok := timeParam(p.name, v)
		if !ok {
			errs.add(p.name, timeParamRule)
			continue
		}
		*p.dst = t
	}
	if f.category != "" && !domain.ValidConfigID(f.category) {
		errs.add("category", "must be a category id: lower-case letters, digits, '-' or '_'")
	}
	if len(errs) == 0 && !f.from.Before(f.to) {
		errs.add("from", "must be before to")
	}
	return f, errs.err()
}

func (f monitorFilter) match(c *projections.Case, network string) bool {
	if c.Network != network || c.RaisedAt.Before(f.from) || !c.RaisedAt.Before(f.to) {
		return false
	}
	if f.team != "" && c.Team != f.team {
		return false
	}
	if f.neighbourhood != "" && c.Neighbourhood != f.neighbourhood {
		return false
	}
	return f.category == "" || slices.Contains(c.Categories, f.category)
}

func (s *Server) monitorResponse(w http.ResponseWriter, r *http.Request) error {
	p, err := s.query(r, domain.ActMonitor)
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	f, err := parseMonitorFilter(r, now)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	key := strings.Join([]string{p.Network, q.Get("team_id"), q.Get("neighbourhood"), q.Get("category"), q.Get("from"), q.Get("to")}, "\x00")
	minPos, _ := strconv.ParseUint(q.Get("min_position"), 10, 64) // checked by readYourWrites
	asCSV, err := wantsCSV(r)
	if err != nil {
		return err
	}
	if per := q.Get("per"); per != "" || asCSV {
		// The figures' export, per month or week of the period if asked.
		if per != "" && ((per != "month" && per != "week") || !asCSV) {
			return domain.Invalid(domain.FieldError{Field: "per", Message: "must be month or week, with format=csv"})
		}
		spans, err := periods(f.from, f.to, per, s.Location)
		if err != nil {
			return err
		}
		reps := make([]responseReport, len(spans))
		for i, span := range spans {
			sub := f
			sub.from, sub.to = span[0], span[1]
			reps[i], _ = s.responseReport(p.Network, sub, now)
		}
		monitorResponseCSV(w, reps)
		return nil
	}
	rep := s.reports.get(key, now, minPos, func() (responseReport, uint64) { return s.responseReport(p.Network, f, now) })
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// responseReport computes a report, and the position it reflects at least.
func (s *Server) responseReport(network string, f monitorFilter, now time.Time) (responseReport, uint64) {
	rep := responseReport{From: f.from, To: f.to, SuppressK: domain.SuppressK(s.SuppressK), Series: series(f.from, f.to)}
	q := projections.MonitorQuery{Network: network, Team: f.team, Neighbourhood: f.neighbourhood, Category: f.category, From: f.from, To: f.to}
	// The rows of the period are copied under the read lock; the report is
	// computed outside it, so the runner and other readers never wait for it.
	buf, _ := monitorBuffers.Get().(*projections.MonitorBuffer)
	if buf == nil {
		buf = new(projections.MonitorBuffer)
	}
	var snap projections.MonitorSnapshot
	var pos uint64
	s.Runner.Read(func() {
		snap = s.Cases.MonitorSnapshot(q, buf)
		pos = s.Runner.Position()
	})
	points := make([]time.Time, len(rep.Series))
	for i, pt := range rep.Series {
		points[i] = pt.At
	}
	pr := snap.Report(now, points)
	monitorBuffers.Put(buf)
	publish(&rep, &pr, s.SuppressK)
	return rep, pos
}

// reportTTL is how long a computed response report serves the same query.
const reportTTL = time.Second

// reportCache keeps each response report for a second: a coordinators'
// dashboard asks for the same report many times a second, and a report
// costs the signals raised in its period. An entry serves a request only
// when it reflects the request's min_position; its from and to are those it
// was computed for, at most reportTTL before.
type reportCache struct {
	mu      sync.Mutex
	entries map[string]reportEntry
}

type reportEntry struct {
	at  time.Time
	pos uint64
	rep responseReport
}

func (c *reportCache) get(key string, now time.Time, minPos uint64, compute func() (responseReport, uint64)) responseReport {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && !now.Before(e.at) && now.Sub(e.at) < reportTTL && e.pos >= minPos {
		return e.rep
	}
	rep, pos := compute()
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= 256 {
		c.entries = map[string]reportEntry{}
	}
	c.entries[key] = reportEntry{at: now, pos: pos, rep: rep}
	c.mu.Unlock()
	return rep
}

// series returns the empty sample points of a period: its end, and steps of
// whole days back to its start, at most 60.
func series(from, to time.Time) []seriesPoint {
	const most = 60
	step := 24 * time.Hour
	if span := to.Sub(from); span > most*step {
		step = time.Duration((span/(most*step))+1) * step
	}
	var pts []seriesPoint
	for t := to; !t.Before(from) && len(pts) < most; t = t.Add(-step) {
		pts = append(pts, seriesPoint{At: t})
	}
	slices.Reverse(pts)
	return pts
}

// monitorBuffers are the reports' row copies, reused.
var monitorBuffers sync.Pool

// stateUnrouted is the overdue state of a signal that is within its norm
// but has waited a working day for a team.
const stateUnrouted = "unrouted"

func (s *Server) monitorOverdue(w http.ResponseWriter, r *http.Request) error {
	p, limit, offset, err := s.listQuery(r, domain.ActMonitor)
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	f, err := parseMonitorFilter(r, now)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("from") == "" {
		f.from = time.Time{}
	}
	var items []overdueItem
	s.Runner.Read(func() {
		// Late and unrouted signals are open and without a first response
		// or a team: the awaiting ones, never the history.
		s.Cases.Awaiting(func(c *projections.Case) bool {
			if !f.match(c, p.Network) {
				return true
			}
			st := domain.StateAt(now, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt)
			late, unrouted := st == domain.StateLate || st == domain.StateLate3x, c.Unrouted(now)
			if late || unrouted {
				it := overdueItem{ID: c.ID, TeamID: c.Team, Urgency: c.Urgency, Categories: c.Categories, RaisedAt: c.RaisedAt,
					DueAt: c.DueAt, State: string(st), Unrouted: unrouted, AgeHours: float64(int(now.Sub(c.RaisedAt).Hours()*10)) / 10}
				if !late {
					it.State, it.DueAt = stateUnrouted, c.UnroutedDueAt
				}
				items = append(items, it)
			}
			return true
		})
	})
	slices.SortFunc(items, func(a, b overdueItem) int {
		if c := a.DueAt.Compare(b.DueAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	out := overduePage{Items: window(items, offset, limit), NextCursor: nextCursor(offset, limit, len(items))}
	writeJSON(w, http.StatusOK, out)
	return nil
}
