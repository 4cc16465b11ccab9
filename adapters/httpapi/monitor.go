package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// feedbackTexts are the coded messages a signaller sees, in Dutch and
// English: status only, never private details.
var feedbackTexts = map[string]map[string]string{
	"nl": {
		"received":    "Uw signaal is ontvangen door het basisteam.",
		"in_progress": "Het basisteam is met uw signaal aan de slag.",
		"referred":    "De bewoner is doorverwezen naar een passende organisatie.",
		"closed":      "Het basisteam heeft uw signaal afgerond. Dank voor uw melding.",
	},
	"en": {
		"received":    "Your signal has been received by the basisteam.",
		"in_progress": "The basisteam is working on your signal.",
		"referred":    "The resident has been referred to a suitable organisation.",
		"closed":      "The basisteam has completed your signal. Thank you for raising it.",
	},
}

func language(r *http.Request) string { return domain.Language(r.Header.Get("Accept-Language")) }

func feedbackText(code, lang string) string { return feedbackTexts[lang][code] }

// Monitoring answers: ids, codes, counts and times only; no personal data.
type (
	responseFigures struct {
		Total                  int      `json:"total"`
		Answered               int      `json:"answered"`
		WithinNorm             int      `json:"within_norm"`
		WithinNormShare        float64  `json:"within_norm_share"`
		Late                   int      `json:"late"`
		Late3x                 int      `json:"late_3x"`
		AnsweredLate           int      `json:"answered_late"`
		Unanswered             int      `json:"unanswered"`
		MedianFirstResponseHrs *float64 `json:"median_first_response_hours"`
		P90FirstResponseHrs    *float64 `json:"p90_first_response_hours"`
		FeedbackGiven          int      `json:"feedback_given"`
		FeedbackWithinNorm     int      `json:"feedback_within_norm"`
		firstResponseHours     []float64
	}
	groupFigures struct {
		Key string `json:"key"`
		responseFigures
	}
	responseReport struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
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
		At      time.Time `json:"at"`
		Open    int       `json:"open"`
		Overdue int       `json:"overdue"`
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

func (f *responseFigures) add(c *projections.Case, now time.Time) {
	f.Total++
	state := domain.StateAt(now, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt)
	switch state {
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
		f.firstResponseHours = append(f.firstResponseHours, c.FirstResponseAt.Sub(c.RaisedAt).Hours())
	}
	if !c.FirstFeedbackAt.IsZero() {
		f.FeedbackGiven++
		if !c.FeedbackDueAt.IsZero() && !c.FirstFeedbackAt.After(c.FeedbackDueAt) {
			f.FeedbackWithinNorm++
		}
	}
}

func (f *responseFigures) finish() {
	if f.Total > 0 {
		f.WithinNormShare = float64(f.WithinNorm) / float64(f.Total)
	}
	if n := len(f.firstResponseHours); n > 0 {
		slices.Sort(f.firstResponseHours)
		med, p90 := percentile(f.firstResponseHours, 0.5), percentile(f.firstResponseHours, 0.9)
		f.MedianFirstResponseHrs, f.P90FirstResponseHrs = &med, &p90
	}
}

// percentile of sorted values, nearest-rank.
func percentile(sorted []float64, p float64) float64 {
	i := int(p*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(int(sorted[i]*100+0.5)) / 100
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
	rep := responseReport{From: f.from, To: f.to, Series: series(f.from, f.to)}
	groups := map[string]map[string]*responseFigures{"team": {}, "neighbourhood": {}, "category": {}, "source": {}}
	addTo := func(dim, key string, c *projections.Case) {
		g := groups[dim][key]
		if g == nil {
			g = &responseFigures{}
			groups[dim][key] = g
		}
		g.add(c, now)
	}
	s.Runner.Read(func() {
		s.Cases.All(func(c *projections.Case) bool {
			if !f.match(c, p.Network) {
				return true
			}
			rep.add(c, now)
			for i := range rep.Series {
				rep.Series[i].count(c)
			}
			team := c.Team
			if team == "" {
				team = "(none)"
			}
			addTo("team", team, c)
			addTo("neighbourhood", c.Neighbourhood, c)
			addTo("source", string(c.Source), c)
			for _, cat := range c.Categories {
				addTo("category", cat, c)
			}
			return true
		})
	})
	rep.finish()
	flatten := func(dim string) []groupFigures {
		out := []groupFigures{}
		for k, g := range groups[dim] {
			g.finish()
			out = append(out, groupFigures{Key: k, responseFigures: *g})
		}
		slices.SortFunc(out, func(a, b groupFigures) int { return strings.Compare(a.Key, b.Key) })
		return out
	}
	rep.ByTeam, rep.ByNeighbourhood, rep.ByCategory, rep.BySource = flatten("team"), flatten("neighbourhood"), flatten("category"), flatten("source")
	writeJSON(w, http.StatusOK, rep)
	return nil
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

// count adds a case to the point if it was open (and overdue) at its time.
func (p *seriesPoint) count(c *projections.Case) {
	before := func(t time.Time) bool { return !t.IsZero() && !t.After(p.At) }
	if c.RaisedAt.After(p.At) || before(c.ClosedAt) || before(c.WithdrawnAt) {
		return
	}
	p.Open++
	if c.DueAt.Before(p.At) && !before(c.FirstResponseAt) && !before(c.StoppedAt) {
		p.Overdue++
	}
}

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
		s.Cases.All(func(c *projections.Case) bool {
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
