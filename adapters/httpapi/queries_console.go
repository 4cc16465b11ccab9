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

// Queries added for the web console (issue 19), all additive:
//
//   - GET /v1/signals/unrouted: the network's raised signals still without
//     a team, for professionals and coordinators, who may hand them over
//     (ids and codes only, no personal data);
//   - GET /v1/principals: the directory of the caller's network (id,
//     display name, roles, teams), for staff roles, so screens show "Anna
//     de Vries (professional)" instead of an actor id;
//   - GET /v1/subjects/names?id=...: the names (and birth dates) of the
//     subjects an access log names, for privacy officers: an audited read
//     like any other read of personal data;
//   - GET /v1/monitor/signals/{id}: what a coordinator may see of one
//     signal (ids, codes, times and its state against the norm);
//   - GET /v1/caseload/counts: how many cases each caseload filter holds;
//   - the caseload's filters assignee=none and overdue=true, and its
//     items' matched flag.
type (
	unroutedItem struct {
		ID            uuid.UUID `json:"id"`
		Version       int       `json:"version"`
		Neighbourhood string    `json:"neighbourhood"`
		Categories    []string  `json:"categories"`
		Urgency       string    `json:"urgency"`
		Source        string    `json:"source"`
		RaisedAt      time.Time `json:"raised_at"`
		// ResponseDueAt is when the first response is due, ResponseState
		// the signal's state against that norm.
		ResponseDueAt time.Time `json:"response_due_at"`
		ResponseState string    `json:"response_state"`
		// Unrouted is true once the signal has waited a working day for a
		// team (the coordinators are told); Declined when a team sent it
		// back.
		Unrouted bool `json:"unrouted"`
		Declined bool `json:"declined"`
	}
	unroutedPage struct {
		Items      []unroutedItem `json:"items"`
		NextCursor string         `json:"next_cursor,omitempty"`
	}
	principalItem struct {
		ID    string   `json:"id"`
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
		Teams []string `json:"teams"`
	}
	// principalsAnswer lists the principals of the caller's network.
	// Complete is false when the identity provider holds the directory
	// (OIDC): then only the principals the configuration names are listed.
	principalsAnswer struct {
		Items    []principalItem `json:"items"`
		Complete bool            `json:"complete"`
	}
	subjectName struct {
		ID        uuid.UUID `json:"id"`
		Name      string    `json:"name,omitempty"`
		BirthDate string    `json:"birth_date,omitempty"`
		Erased    bool      `json:"erased,omitempty"`
	}
	subjectNamesAnswer struct {
		Items []subjectName `json:"items"`
	}
	monitorSignal struct {
		ID              uuid.UUID  `json:"id"`
		Version         int        `json:"version"`
		Status          string     `json:"status" openapi:"enum=status"`
		TeamID          string     `json:"team_id,omitempty"`
		AssigneeID      string     `json:"assignee_id,omitempty"`
		Neighbourhood   string     `json:"neighbourhood"`
		Categories      []string   `json:"categories"`
		Urgency         string     `json:"urgency"`
		Source          string     `json:"source"`
		RaisedAt        time.Time  `json:"raised_at"`
		FirstResponseAt *time.Time `json:"first_response_at"`
		ResponseDueAt   time.Time  `json:"response_due_at"`
		ResponseState   string     `json:"response_state"`
		Unrouted        bool       `json:"unrouted"`
		AgeHours        float64    `json:"age_hours"`
		// NormVersion is the version of the norms the signal was raised
		// under ("norms version.categories version"; "0.0" the defaults).
		NormVersion string `json:"norm_version"`
	}
	teamCount struct {
		TeamID string `json:"team_id"`
		Count  int    `json:"count"`
	}
	// caseloadCounts are the sizes of the caseload's filters.
	caseloadCounts struct {
		All        int         `json:"all"`
		Mine       int         `json:"mine"`
		Unassigned int         `json:"unassigned"`
		Overdue    int         `json:"overdue"`
		ByTeam     []teamCount `json:"by_team"`
	}
)

// maxSubjectNames bounds the ids of one names read.
const maxSubjectNames = 100

func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) error {
	p, limit, offset, err := s.listQuery(r, domain.ActListUnrouted)
	if err != nil {
		return err
	}
	now := s.Now()
	var items []unroutedItem
	s.Runner.Read(func() {
		s.Cases.All(func(c *projections.Case) bool {
			if c.Network != p.Network || c.Status != domain.StatusRaised || c.Team != "" {
				return true
			}
			items = append(items, unroutedItem{ID: c.ID, Version: c.Version, Neighbourhood: c.Neighbourhood,
				Categories: append([]string{}, c.Categories...), Urgency: c.Urgency, Source: string(c.Source), RaisedAt: c.RaisedAt,
				ResponseDueAt: c.DueAt, ResponseState: string(domain.StateAt(now, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt)),
				Unrouted: c.Unrouted(now), Declined: !c.DeclinedAt.IsZero()})
			return true
		})
	})
	slices.SortFunc(items, func(a, b unroutedItem) int {
		if c := a.ResponseDueAt.Compare(b.ResponseDueAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	writeJSON(w, http.StatusOK, unroutedPage{Items: window(items, offset, limit), NextCursor: nextCursor(offset, limit, len(items))})
	return nil
}

func (s *Server) principals(w http.ResponseWriter, r *http.Request) error {
	p, err := s.query(r, domain.ActListPrincipals)
	if err != nil {
		return err
	}
	out := principalsAnswer{Items: []principalItem{}}
	if s.Directory != nil {
		out.Complete = true
		for _, d := range s.Directory(p.Network) {
			it := principalItem{ID: d.ID, Name: d.Name, Roles: []string{}, Teams: append([]string{}, d.Teams...)}
			for _, role := range d.Roles {
				it.Roles = append(it.Roles, string(role))
			}
			out.Items = append(out.Items, it)
		}
	}
	if !slices.ContainsFunc(out.Items, func(it principalItem) bool { return it.ID == p.ID }) {
		out.Complete = false
		it := principalItem{ID: p.ID, Name: p.Name, Roles: []string{}, Teams: append([]string{}, p.Teams...)}
		for _, role := range p.Roles {
			it.Roles = append(it.Roles, string(role))
		}
		out.Items = append(out.Items, it)
	}
	slices.SortFunc(out.Items, func(a, b principalItem) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

// subjectNames decrypts the names of the subjects named by id (at most
// maxSubjectNames), recording the read before anything leaves the server.
// Ids the network does not know are left out.
func (s *Server) subjectNames(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitMinPosition(r); err != nil {
		return err
	}
	if err := s.privacyOfficer(r, domain.ActSubjectNames); err != nil {
		return err
	}
	raw := r.URL.Query()["id"]
	if len(raw) > maxSubjectNames {
		return domain.Invalid(domain.FieldError{Field: "id", Message: "names at most 100 subjects"})
	}
	ids := make([]uuid.UUID, 0, len(raw))
	for _, v := range raw {
		id, err := uuid.Parse(v)
		if err != nil {
			return domain.Invalid(domain.FieldError{Field: "id", Message: "must be a subject id"})
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	network := principal(r.Context()).Network
	type found struct {
		id     uuid.UUID
		data   domain.Sealed
		erased bool
	}
	var subjects []found
	s.Runner.Read(func() {
		for _, id := range ids {
			if sp, ok := s.Subjects.Get(id); ok && sp.Network == network {
				subjects = append(subjects, found{id, sp.Data, sp.Erased})
			}
		}
	})
	a := s.access(r, "read", domain.BasisRole)
	a.Purpose = "privacy_audit"
	for _, f := range subjects {
		a.Subjects = append(a.Subjects, f.id)
	}
	d, err := s.Reader.Disclose(r.Context(), a)
	if err != nil {
		return err // fail closed
	}
	out := subjectNamesAnswer{Items: make([]subjectName, 0, len(subjects))}
	for _, f := range subjects {
		if f.erased {
			out.Items = append(out.Items, subjectName{ID: f.id, Erased: true})
			continue
		}
		o := &opener{ctx: r.Context(), d: d, subject: f.id}
		v := o.subjectData(f.data)
		if o.err != nil {
			return o.err
		}
		out.Items = append(out.Items, subjectName{ID: f.id, Name: v.Name, BirthDate: v.BirthDate, Erased: v.Erased})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) monitorSignal(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitMinPosition(r); err != nil {
		return err
	}
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	var v monitorSignal
	var found bool
	var network string
	now := s.Now()
	s.Runner.Read(func() {
		c, ok := s.Cases.Get(id)
		if !ok {
			return
		}
		found, network = true, c.Network
		v = monitorSignal{ID: c.ID, Version: c.Version, Status: string(c.Status), TeamID: c.Team, AssigneeID: c.Assignee,
			Neighbourhood: c.Neighbourhood, Categories: append([]string{}, c.Categories...), Urgency: c.Urgency, Source: string(c.Source),
			RaisedAt: c.RaisedAt, FirstResponseAt: optTime(c.FirstResponseAt), ResponseDueAt: c.DueAt,
			ResponseState: string(domain.StateAt(now, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt)),
			Unrouted:      c.Unrouted(now), AgeHours: float64(int(now.Sub(c.RaisedAt).Hours()*10)) / 10, NormVersion: c.NormVersion}
	})
	if !found {
		return &domain.Error{Kind: domain.KindNotFound, Code: "signal_not_found", Message: "the signal does not exist"}
	}
	if _, err := domain.Authorize(principal(r.Context()), domain.ActMonitor, domain.Target{Network: network}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// caseloadFilters reads the caseload's filters beyond team_id: assignee
// (me, or none: unassigned) and overdue=true (the response norm lapsed, or
// the next follow-up's day has passed).
func (s *Server) caseloadFilters(r *http.Request, p domain.Principal, f *projections.CaseloadFilter) error {
	q := r.URL.Query()
	var keep []func(*projections.Case) bool
	switch q.Get("assignee") {
	case "":
	case "me":
		f.Assignee = p.ID
	case "none":
		keep = append(keep, func(c *projections.Case) bool { return c.Assignee == "" })
	default:
		return domain.Invalid(domain.FieldError{Field: "assignee", Message: `must be "me" or "none"`})
	}
	switch q.Get("overdue") {
	case "", "false":
	case "true":
		keep = append(keep, s.overdueCase(s.Now()))
	default:
		return domain.Invalid(domain.FieldError{Field: "overdue", Message: `must be "true" or "false"`})
	}
	if len(keep) > 0 {
		f.Keep = func(c *projections.Case) bool {
			for _, k := range keep {
				if !k(c) {
					return false
				}
			}
			return true
		}
	}
	return nil
}

// overdueCase reports whether a case is overdue at now: its first response
// is late, or the day of its next follow-up (in the network's time zone)
// has passed.
func (s *Server) overdueCase(now time.Time) func(*projections.Case) bool {
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	today := now.In(loc).Format(time.DateOnly)
	return func(c *projections.Case) bool {
		st := domain.StateAt(now, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt)
		return st == domain.StateLate || st == domain.StateLate3x || (c.NextDue != "" && c.NextDue < today)
	}
}

func (s *Server) caseloadCounts(w http.ResponseWriter, r *http.Request) error {
	p, err := s.query(r, domain.ActCaseload)
	if err != nil {
		return err
	}
	base := projections.CaseloadFilter{Teams: p.Teams, Network: p.Network}
	overdue := s.overdueCase(s.Now())
	out := caseloadCounts{ByTeam: []teamCount{}}
	s.Runner.Read(func() {
		count := func(f projections.CaseloadFilter) int {
			_, n := s.Cases.Caseload(f, 0)
			return n
		}
		out.All = count(base)
		mine := base
		mine.Assignee = p.ID
		out.Mine = count(mine)
		unassigned := base
		unassigned.Keep = func(c *projections.Case) bool { return c.Assignee == "" }
		out.Unassigned = count(unassigned)
		late := base
		late.Keep = overdue
		out.Overdue = count(late)
		for _, t := range p.Teams {
			team := base
			team.Teams = []string{t}
			out.ByTeam = append(out.ByTeam, teamCount{TeamID: t, Count: count(team)})
		}
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}
