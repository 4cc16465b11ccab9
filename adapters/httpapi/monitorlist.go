package httpapi

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// The coordinator's signal list, GET /v1/monitor/signals: every signal of
// the network with filters, newest or oldest first, paged by a cursor on
// the monitoring rows (projections.Cases.Signals), so a page costs the rows
// it reads; ids, codes and times only, never personal data. With
// format=csv (or Accept: text/csv) it answers the whole list as CSV.

type (
	signalListItem struct {
		ID              uuid.UUID  `json:"id"`
		Status          string     `json:"status" openapi:"enum=status"`
		TeamID          string     `json:"team_id,omitempty"`
		Neighbourhood   string     `json:"neighbourhood"`
		Categories      []string   `json:"categories"`
		Urgency         string     `json:"urgency" openapi:"enum=urgency"`
		Source          string     `json:"source"`
		RaisedAt        time.Time  `json:"raised_at"`
		ResponseDueAt   time.Time  `json:"response_due_at"`
		FirstResponseAt *time.Time `json:"first_response_at"`
		ClosedAt        *time.Time `json:"closed_at"`
		WithdrawnAt     *time.Time `json:"withdrawn_at"`
		ResponseState   string     `json:"response_state" openapi:"enum=response_state"`
		// NormVersion is the version of the norms the signal was raised
		// under ("norms version.categories version"; "0.0" the defaults).
		NormVersion string `json:"norm_version"`
	}
	// signalListPage is a page of the list. A page may hold fewer items
	// than limit and still have a next_cursor: a page reads at most a
	// bounded number of signals, however selective the filter.
	signalListPage struct {
		Items      []signalListItem `json:"items"`
		NextCursor string           `json:"next_cursor,omitempty"`
	}
)

// signalSorts are the orders of the list.
var signalSorts = []string{"-raised_at", "raised_at"}

// parseSignalQuery reads the list's filters: the monitor's period, team_id,
// neighbourhood and category, and status, urgency, no_team, late, sort.
// Without from or to the list has no bound at that end.
func parseSignalQuery(r *http.Request, network string, now time.Time) (projections.SignalQuery, error) {
	f, err := parseMonitorFilter(r, now)
	v := r.URL.Query()
	q := projections.SignalQuery{Network: network, Team: f.team, Neighbourhood: f.neighbourhood, Category: f.category, Now: now,
		Status: domain.Status(v.Get("status")), Urgency: v.Get("urgency"), Newest: true}
	var errs fields
	if v.Get("from") != "" {
		q.From = f.from
	}
	if v.Get("to") != "" {
		q.To = f.to
	}
	if st := v.Get("status"); st != "" && !strings.Contains(" raised handed_over in_care closed withdrawn ", " "+st+" ") {
		errs.add("status", "must be one of: raised, handed_over, in_care, closed, withdrawn")
	}
	if u := q.Urgency; u != "" && !domain.Urgencies.Has(u) {
		errs.add("urgency", "must be one of: "+strings.Join(domain.Urgencies, ", "))
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"no_team", &q.NoTeam}, {"late", &q.Late}} {
		switch v.Get(b.name) {
		case "", "false":
		case "true":
			*b.dst = true
		default:
			errs.add(b.name, "must be true or false")
		}
	}
	if q.NoTeam && q.Team != "" {
		errs.add("no_team", "cannot be combined with team_id")
	}
	switch v.Get("sort") {
	case "", "-raised_at":
	case "raised_at":
		q.Newest = false
	default:
		errs.add("sort", "must be one of: "+strings.Join(signalSorts, ", "))
	}
	if err != nil {
		return q, err
	}
	return q, errs.err()
}

// wantsCSV reports whether a monitoring answer goes out as CSV: format=csv,
// or no format and an Accept naming text/csv.
func wantsCSV(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("format") {
	case "csv":
		return true, nil
	case "":
		return strings.Contains(r.Header.Get("Accept"), "text/csv"), nil
	}
	return false, domain.Invalid(domain.FieldError{Field: "format", Message: "must be csv"})
}

func (s *Server) monitorSignals(w http.ResponseWriter, r *http.Request) error {
	p, err := s.query(r, domain.ActMonitor)
	if err != nil {
		return err
	}
	asCSV, err := wantsCSV(r)
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	q, err := parseSignalQuery(r, p.Network, now)
	if err != nil {
		return err
	}
	limit, after, err := keyPageParams(r)
	if err != nil {
		return err
	}
	if after != nil {
		c, ok := projections.DecodeSignalCursor(after)
		if !ok {
			return errCursor
		}
		q.After = &c
	}
	if asCSV {
		return s.signalsCSV(w, q)
	}
	out := signalListPage{Items: []signalListItem{}}
	next := s.signalPage(q, limit, func(row *projections.MonitorRow) { out.Items = append(out.Items, listItem(row, now)) })
	if next != nil {
		out.NextCursor = keyCursor(next.Encode())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// signalPage calls fn for up to limit signals of q under the read lock and
// returns the cursor to go on from (nil at the end).
func (s *Server) signalPage(q projections.SignalQuery, limit int, fn func(*projections.MonitorRow)) *projections.SignalCursor {
	var next *projections.SignalCursor
	n := 0
	s.Runner.Read(func() {
		budgetEnd := s.Cases.Signals(q, projections.SignalScanBudget, func(row *projections.MonitorRow) bool {
			fn(row)
			if n++; n == limit {
				next = &projections.SignalCursor{RaisedAt: row.RaisedAt, ID: row.ID}
				return false
			}
			return true
		})
		if budgetEnd != nil {
			next = budgetEnd
		}
	})
	return next
}

func listItem(row *projections.MonitorRow, now time.Time) signalListItem {
	return signalListItem{ID: row.ID, Status: string(row.Status), TeamID: row.Team, Neighbourhood: row.Neighbourhood,
		Categories: append([]string{}, row.Categories...), Urgency: row.Urgency, Source: string(row.Source), RaisedAt: row.RaisedAt,
		ResponseDueAt: row.DueAt, FirstResponseAt: optTime(row.FirstResponseAt), ClosedAt: optTime(row.ClosedAt),
		WithdrawnAt: optTime(row.WithdrawnAt), NormVersion: row.NormVersion,
		ResponseState: string(domain.StateAt(now, row.DueAt, row.Due3xAt, row.FirstResponseAt, row.StoppedAt))}
}

// csvPage is how many signals the CSV export reads per hold of the read
// lock: the export walks the list in pages, so the runner never waits
// long for it.
const csvPage = 2000

// signalsCSV writes every signal of q (from q.After on) as CSV.
func (s *Server) signalsCSV(w http.ResponseWriter, q projections.SignalQuery) error {
	cw := startCSV(w, "signals.csv")
	cw.Write([]string{"id", "status", "team_id", "neighbourhood", "categories", "urgency", "source", "raised_at",
		"response_due_at", "first_response_at", "closed_at", "withdrawn_at", "response_state", "norm_version"})
	for {
		var rows [][]string
		next := s.signalPage(q, csvPage, func(row *projections.MonitorRow) {
			it := listItem(row, q.Now)
			rows = append(rows, []string{it.ID.String(), it.Status, it.TeamID, it.Neighbourhood, strings.Join(it.Categories, " "),
				it.Urgency, it.Source, csvTime(it.RaisedAt), csvTime(it.ResponseDueAt), csvOptTime(it.FirstResponseAt),
				csvOptTime(it.ClosedAt), csvOptTime(it.WithdrawnAt), it.ResponseState, it.NormVersion})
		})
		for _, rec := range rows {
			cw.Write(safeCSV(rec))
		}
		if next == nil {
			break
		}
		q.After = next
	}
	cw.Flush()
	return nil
}

// startCSV starts a CSV answer, as a download named name.
func startCSV(w http.ResponseWriter, name string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Add("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	return csv.NewWriter(w)
}

// safeCSV guards the cells of a record against formula injection: a
// spreadsheet takes a cell that starts with = + - @ (or a tab or carriage
// return) for a formula, so such a cell gets a leading apostrophe (OWASP's
// advice). The exports hold codes and times only, but a code is a
// coordinator's configuration and may start with anything the id form
// allows in the future.
func safeCSV(rec []string) []string {
	for i, c := range rec {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			rec[i] = "'" + c
		}
	}
	return rec
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func csvOptTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return csvTime(*t)
}

// monitorResponseCSV writes response reports (one per period) as CSV: for
// each, a line for the whole and for each group, with the counts as
// published (publish: small-cell suppression, primary and secondary); a
// suppressed figure is written as "<k".
func monitorResponseCSV(w http.ResponseWriter, reps []responseReport) {
	cw := startCSV(w, "response.csv")
	cw.Write([]string{"from", "to", "group", "key", "total", "answered", "within_norm", "within_norm_share", "late", "late_3x",
		"answered_late", "waiting", "unanswered", "median_first_response_hours", "p90_first_response_hours", "feedback_given",
		"feedback_within_norm", "norm_versions"})
	var rep responseReport // the period being written
	line := func(group, key string, f responseFigures) {
		hidden := "<" + strconv.Itoa(rep.SuppressK)
		count := func(n *int) string {
			if n == nil {
				return hidden
			}
			return strconv.Itoa(*n)
		}
		derived := func(v *float64, field string) string {
			switch {
			case slices.Contains(f.SuppressedFields, field):
				return hidden
			case v == nil:
				return ""
			}
			return strconv.FormatFloat(*v, 'f', -1, 64)
		}
		var versions []string
		for _, v := range f.NormVersions {
			versions = append(versions, v.Version+":"+count(v.Signals))
		}
		cw.Write(safeCSV([]string{csvTime(rep.From), csvTime(rep.To), group, key, count(f.Total), count(f.Answered),
			count(f.WithinNorm), derived(f.WithinNormShare, "within_norm_share"), count(f.Late), count(f.Late3x),
			count(f.AnsweredLate), count(f.Waiting), count(f.Unanswered),
			derived(f.MedianFirstResponseHrs, "median_first_response_hours"), derived(f.P90FirstResponseHrs, "p90_first_response_hours"),
			count(f.FeedbackGiven), count(f.FeedbackWithinNorm), strings.Join(versions, " ")}))
	}
	for _, rep = range reps {
		line("all", "", rep.responseFigures)
		for _, g := range []struct {
			name string
			list []groupFigures
		}{{"team", rep.ByTeam}, {"neighbourhood", rep.ByNeighbourhood}, {"category", rep.ByCategory}, {"source", rep.BySource}} {
			for _, f := range g.list {
				line(g.name, f.Key, f.responseFigures)
			}
		}
	}
	cw.Flush()
}

// maxPeriods bounds the periods of one export (per=month: three years).
const maxPeriods = 36

// periods splits [from, to) at the starts of the calendar months (per
// month) or ISO weeks (per week) in loc.
func periods(from, to time.Time, per string, loc *time.Location) ([][2]time.Time, error) {
	if per == "" {
		return [][2]time.Time{{from, to}}, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	next := func(t time.Time) time.Time {
		l := t.In(loc)
		if per == "month" {
			return time.Date(l.Year(), l.Month()+1, 1, 0, 0, 0, 0, loc)
		}
		days := (8 - int(l.Weekday())) % 7 // to the next Monday
		if days == 0 {
			days = 7
		}
		return time.Date(l.Year(), l.Month(), l.Day()+days, 0, 0, 0, 0, loc)
	}
	var out [][2]time.Time
	for start := from; start.Before(to); {
		end := next(start).UTC()
		if end.After(to) {
			end = to
		}
		out = append(out, [2]time.Time{start, end})
		if len(out) > maxPeriods {
			return nil, domain.Invalid(domain.FieldError{Field: "per", Message: fmt.Sprintf("makes more than %d periods: shorten from-to", maxPeriods)})
		}
		start = end
	}
	return out, nil
}
