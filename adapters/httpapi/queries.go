package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// Answers of the queries (API.md). Personal data fields are filled only in
// audited answers.
type (
	subjectView struct {
		Name      string `json:"name,omitempty"`
		BirthDate string `json:"birth_date,omitempty"`
		Address   string `json:"address,omitempty"`
		Phone     string `json:"phone,omitempty"`
		Erased    bool   `json:"erased,omitempty"`
	}
	followUpView struct {
		ID      uuid.UUID `json:"id"`
		Kind    string    `json:"kind" openapi:"enum=follow_up_kind"`
		Outcome string    `json:"outcome" openapi:"enum=follow_up_outcome"`
		Note    string    `json:"note,omitempty"`
		NextDue string    `json:"next_due,omitempty"`
		At      time.Time `json:"at"`
		By      string    `json:"by"`
	}
	referralView struct {
		ID             uuid.UUID  `json:"id"`
		OrganisationID string     `json:"organisation_id"`
		Service        string     `json:"service,omitempty"`
		Reason         string     `json:"reason,omitempty"`
		Status         string     `json:"status" openapi:"enum=referral_status"`
		MadeAt         time.Time  `json:"made_at"`
		AnsweredAt     *time.Time `json:"answered_at,omitempty"`
		// Notes are the partner's answers (accept, decline, complete).
		Notes []noteView `json:"notes"`
	}
	feedbackView struct {
		Code string    `json:"code" openapi:"enum=feedback_code"`
		Text string    `json:"text,omitempty"`
		At   time.Time `json:"at"`
	}
	noteView struct {
		Kind string    `json:"kind"`
		Text string    `json:"text"`
		At   time.Time `json:"at"`
		By   string    `json:"by"`
	}
	signalView struct {
		ID               uuid.UUID      `json:"id"`
		Status           string         `json:"status" openapi:"enum=status"`
		Version          int            `json:"version"`
		SubjectID        uuid.UUID      `json:"subject_id"`
		Subject          subjectView    `json:"subject"`
		Description      string         `json:"description,omitempty"`
		Neighbourhood    string         `json:"neighbourhood"`
		Categories       []string       `json:"categories"`
		Urgency          string         `json:"urgency"`
		Consent          string         `json:"consent"`
		Source           string         `json:"source"`
		TeamID           string         `json:"team_id,omitempty"`
		RoutingRule      string         `json:"routing_rule,omitempty"`
		AssigneeID       string         `json:"assignee_id,omitempty"`
		RaisedAt         time.Time      `json:"raised_at"`
		FirstResponseAt  *time.Time     `json:"first_response_at"`
		ResponseDueAt    time.Time      `json:"response_due_at"`
		ResponseState    string         `json:"response_state"`
		Outcome          string         `json:"outcome,omitempty" openapi:"enum=close_outcome"`
		FollowUps        []followUpView `json:"follow_ups"`
		Referrals        []referralView `json:"referrals"`
		Feedback         []feedbackView `json:"feedback"`
		Notes            []noteView     `json:"notes"`
		MatchedSignalIDs []uuid.UUID    `json:"matched_signal_ids"`
	}
	historyEntry struct {
		Type      string    `json:"type"`
		At        time.Time `json:"at"`
		Position  uint64    `json:"position"`
		ActorID   string    `json:"actor_id"`
		ActorRole string    `json:"actor_role"`
	}
	historyView struct {
		ID     uuid.UUID      `json:"id"`
		Events []historyEntry `json:"events"`
	}
	caseloadItem struct {
		ID             uuid.UUID  `json:"id"`
		Status         string     `json:"status" openapi:"enum=status"`
		Urgency        string     `json:"urgency"`
		Categories     []string   `json:"categories"`
		SubjectName    string     `json:"subject_name"`
		TeamID         string     `json:"team_id"`
		AssigneeID     string     `json:"assignee_id,omitempty"`
		ResponseDueAt  *time.Time `json:"response_due_at,omitempty"`
		ResponseState  string     `json:"response_state"`
		Overdue        bool       `json:"overdue"`
		Matched        bool       `json:"matched"` // another open signal about the same resident
		NextDue        string     `json:"next_due,omitempty"`
		OpenReferrals  int        `json:"open_referrals"`
		LastActivityAt time.Time  `json:"last_activity_at"`
	}
	caseloadPage struct {
		Items      []caseloadItem `json:"items"`
		NextCursor string         `json:"next_cursor,omitempty"`
	}
	mySignalItem struct {
		ID       uuid.UUID      `json:"id"`
		Status   string         `json:"status" openapi:"enum=status"`
		RaisedAt time.Time      `json:"raised_at"`
		Feedback []feedbackView `json:"feedback"`
		// What the signaller entered, so two signals of one day can be
		// told apart (codes only, no personal data).
		Neighbourhood string   `json:"neighbourhood"`
		Categories    []string `json:"categories"`
		Urgency       string   `json:"urgency"`
	}
	mySignalsPage struct {
		Items      []mySignalItem `json:"items"`
		NextCursor string         `json:"next_cursor,omitempty"`
	}
	organisationItem struct {
		ID       string           `json:"id"`
		Name     string           `json:"name"`
		Kind     string           `json:"kind" openapi:"enum=organisation_kind"`
		Services []domain.Service `json:"services"`
	}
	organisationsPage struct {
		Items      []organisationItem `json:"items"`
		NextCursor string             `json:"next_cursor,omitempty"`
	}
)

// query starts a GET (the router has honoured min_position): it authorizes
// the caller for an action without a particular object.
func (s *Server) query(r *http.Request, a domain.Action) (domain.Principal, error) {
	_, err := s.authorizeRead(r, a, domain.Target{}, nil, nil) // a denial is recorded
	return principal(r.Context()), err
}

// listQuery is query for a list, with its page parameters.
func (s *Server) listQuery(r *http.Request, a domain.Action) (p domain.Principal, limit, offset int, err error) {
	if p, err = s.query(r, a); err != nil {
		return p, 0, 0, err
	}
	limit, offset, err = pageParams(r)
	return p, limit, offset, err
}

// pageParams reads limit (default 50, max 500) and cursor (an opaque offset).
func pageParams(r *http.Request) (limit, offset int, err error) {
	if limit, err = pageLimit(r); err != nil {
		return 0, 0, err
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "o:"))
		if err != nil || err2 != nil || n < 0 || !strings.HasPrefix(string(b), "o:") {
			return 0, 0, errCursor
		}
		offset = n
	}
	return limit, offset, nil
}

var errCursor = domain.Invalid(domain.FieldError{Field: "cursor", Message: "is not a cursor this server gave"})

func pageLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, domain.Invalid(domain.FieldError{Field: "limit", Message: "must be 1 to 500"})
	}
	return n, nil
}

// keyPageParams reads limit and cursor of a list paged by key: the cursor
// names where in the read model's index the next page starts, so a page
// costs the page, however deep.
func keyPageParams(r *http.Request) (limit int, after []byte, err error) {
	if limit, err = pageLimit(r); err != nil {
		return 0, nil, err
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		rest, ok := strings.CutPrefix(string(b), "k:")
		if err != nil || !ok || rest == "" || len(rest) > 512 {
			return 0, nil, errCursor
		}
		after = []byte(rest)
	}
	return limit, after, nil
}

// keyCursor is the cursor of a list paged by key ("" at the end).
func keyCursor(after []byte) string {
	if len(after) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(append([]byte("k:"), after...))
}

func nextCursor(offset, limit, total int) string {
	if offset+limit >= total {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset+limit)))
}

func window[T any](items []T, offset, limit int) []T {
	if offset >= len(items) {
		return []T{}
	}
	end := min(offset+limit, len(items))
	return items[offset:end]
}

func (s *Server) access(r *http.Request, action string, basis domain.Basis) domain.Access {
	p := principal(r.Context())
	role := ""
	if len(p.Roles) > 0 {
		role = string(p.Roles[0])
	}
	purpose := r.Header.Get("X-Purpose") // checked by checkAccessHeaders
	if !domain.ClientPurposes.Has(purpose) {
		purpose = domain.PurposeCare
	}
	onBehalfOf := r.Header.Get("X-On-Behalf-Of") // checked too; the auditor seals it
	if len(onBehalfOf) > maxOnBehalfOf || !printableASCII(onBehalfOf) {
		onBehalfOf = ""
	}
	return domain.Access{AccessRecord: domain.AccessRecord{At: s.Now().UTC(), ActorID: p.ID, ActorRole: role, OnBehalfOf: onBehalfOf,
		Action: action, View: routePattern(r), Purpose: purpose, Basis: basis, ClientAddr: s.ClientAddr(r),
		RequestID: requestID(r.Context()), ClientRequestID: clientRequestID(r.Context()), Network: p.Network, Outcome: "allowed"}}
}

// authorizeRead checks policy for a read; a denial is recorded as AccessDenied.
func (s *Server) authorizeRead(r *http.Request, action domain.Action, t domain.Target, subjects, signals []uuid.UUID) (domain.Basis, error) {
	a := s.access(r, string(action), "")
	a.Subjects, a.Signals = subjects, signals
	return s.Reader.Authorize(r.Context(), principal(r.Context()), action, t, a)
}

func (s *Server) caseload(w http.ResponseWriter, r *http.Request) error {
	p, limit, offset, err := s.listQuery(r, domain.ActCaseload)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := projections.CaseloadFilter{Teams: p.Teams, Network: p.Network}
	if team := q.Get("team_id"); team != "" {
		if !p.InTeam(team) {
			return &domain.Error{Kind: domain.KindForbidden, Code: "forbidden", Message: "you are not a member of that team"}
		}
		f.Teams = []string{team}
	}
	if err := s.caseloadFilters(r, p, &f); err != nil { // assignee, overdue
		return err
	}
	page := make([]projections.Case, 0, limit)
	var total int
	subjectData := make(map[uuid.UUID]domain.Sealed, limit)
	s.Runner.Read(func() { // one snapshot of the cases and their subjects
		var first []*projections.Case
		first, total = s.Cases.Caseload(f, offset+limit)
		ids := make([]uuid.UUID, 0, limit)
		for _, c := range window(first, offset, limit) {
			page = append(page, *c)
			ids = append(ids, c.SubjectID)
		}
		var subjects map[uuid.UUID]*projections.Subject
		subjects, err = s.Subjects.GetMany(ids)
		for id, sp := range subjects {
			if !sp.Erased {
				subjectData[id] = sp.Data
			}
		}
	})
	if err != nil {
		return err
	}
	a := s.access(r, "list", domain.BasisTeam)
	for _, c := range page {
		a.Subjects = append(a.Subjects, c.SubjectID)
		a.Signals = append(a.Signals, c.ID)
	}
	var d *app.Disclosure // an empty page opens nothing and is not recorded
	if len(page) > 0 {
		if d, err = s.Reader.Disclose(r.Context(), a); err != nil {
			return err
		}
	}
	now := s.Now()
	out := caseloadPage{Items: make([]caseloadItem, 0, len(page)), NextCursor: nextCursor(offset, limit, total)}
	for _, c := range page {
		o := &opener{ctx: r.Context(), d: d, subject: c.SubjectID}
		name := o.subjectData(subjectData[c.SubjectID]).Name
		if o.err != nil {
			return o.err
		}
		open := 0
		for _, rf := range c.Referrals {
			if rf.Status == domain.RefOpen || rf.Status == domain.RefAccepted {
				open++
			}
		}
		state := domain.StateAt(now, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt)
		item := caseloadItem{ID: c.ID, Status: string(c.Status), Urgency: c.Urgency, Categories: c.Categories,
			SubjectName: name, TeamID: c.Team, AssigneeID: c.Assignee, ResponseState: string(state),
			Overdue: state == domain.StateLate || state == domain.StateLate3x, NextDue: c.NextDue,
			OpenReferrals: open, Matched: len(c.Matched) > 0, LastActivityAt: c.LastActivityAt}
		if c.FirstResponseAt.IsZero() {
			item.ResponseDueAt = optTime(c.DueAt)
		}
		out.Items = append(out.Items, item)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) mySignals(w http.ResponseWriter, r *http.Request) error {
	p, err := s.query(r, domain.ActMySignals)
	if err != nil {
		return err
	}
	limit, after, err := keyPageParams(r)
	if err != nil {
		return err
	}
	lang := language(r)
	out := mySignalsPage{Items: []mySignalItem{}}
	var next []byte
	s.Runner.Read(func() {
		var page []*projections.Case
		page, next, err = s.Cases.RaisedBy(p.ID, after, limit)
		for _, c := range page {
			item := mySignalItem{ID: c.ID, Status: string(c.Status), RaisedAt: c.RaisedAt, Feedback: []feedbackView{},
				Neighbourhood: c.Neighbourhood, Categories: append([]string{}, c.Categories...), Urgency: c.Urgency}
			for _, fb := range c.Feedback {
				item.Feedback = append(item.Feedback, feedbackView{Code: fb.Code, Text: fb.Text.In(lang), At: fb.At})
			}
			out.Items = append(out.Items, item)
		}
	})
	if err != nil {
		return err
	}
	out.NextCursor = keyCursor(next)
	w.Header().Set("Content-Language", lang)
	w.Header().Add("Vary", "Accept-Language")
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) organisations(w http.ResponseWriter, r *http.Request) error {
	p, limit, offset, err := s.listQuery(r, domain.ActListOrganisations)
	if err != nil {
		return err
	}
	if format := r.URL.Query().Get("format"); format != "" {
		// The whole sociale kaart in another format, on one page.
		if format != "hsds" || s.HSDSExport == nil {
			return domain.Invalid(domain.FieldError{Field: "format", Message: "must be hsds (Open Referral HSDS 3.0), or left out"})
		}
		var all []domain.RegisterOrganisation
		s.Runner.Read(func() {
			for _, o := range s.Orgs.List(p.Network) {
				all = append(all, domain.RegisterOrganisation{ID: o.ID, Name: o.Name, Kind: o.Kind, Services: append([]domain.Service{}, o.Services...)})
			}
		})
		writeJSON(w, http.StatusOK, s.HSDSExport(p.Network, all))
		return nil
	}
	var out organisationsPage
	s.Runner.Read(func() {
		all := s.Orgs.List(p.Network)
		out.NextCursor = nextCursor(offset, limit, len(all))
		for _, o := range window(all, offset, limit) {
			out.Items = append(out.Items, organisationItem{ID: o.ID, Name: o.Name, Kind: o.Kind, Services: append([]domain.Service{}, o.Services...)})
		}
	})
	if out.Items == nil {
		out.Items = []organisationItem{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// teamsAnswer lists the teams of the caller's network that a handover may
// name. Any is true when the configuration names no teams and accepts any
// (OIDC without --teams): then the list is empty.
type teamsAnswer struct {
	Items []teamItem `json:"items"`
	Any   bool       `json:"any"`
}

type teamItem struct {
	ID string `json:"id"`
}

func (s *Server) teams(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	if _, err := domain.Authorize(p, domain.ActListTeams, domain.Target{}); err != nil {
		return err
	}
	teams, open := s.App.Lookup.TeamsOf(p.Network)
	out := teamsAnswer{Items: make([]teamItem, len(teams)), Any: open}
	for i, t := range teams {
		out.Items[i] = teamItem{ID: t}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
