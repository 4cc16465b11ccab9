package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// opener decrypts sealed data of one subject through the disclosure of a
// recorded access (app.Reader); erased data reads as empty.
type opener struct {
	ctx     context.Context
	d       *app.Disclosure
	subject uuid.UUID
	erased  bool
	err     error
}

func (o *opener) open(s domain.Sealed) string { return string(o.openBytes(s)) }

func (o *opener) openBytes(s domain.Sealed) []byte {
	if s.Empty() || o.erased || o.err != nil {
		return nil
	}
	b, err := o.d.Open(o.ctx, o.subject, s)
	if errors.Is(err, domain.ErrErased) {
		o.erased = true
		return nil
	}
	if err != nil {
		o.err = err
		return nil
	}
	return b
}

func (o *opener) subjectData(s domain.Sealed) subjectView {
	raw := o.openBytes(s)
	if o.erased || len(raw) == 0 {
		return subjectView{Erased: o.erased}
	}
	d, err := app.DecodeSubjectData(raw)
	if err != nil {
		o.err = err
	}
	return subjectView{Name: d.Name, BirthDate: d.BirthDate, Address: d.Address, Phone: d.Phone}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) readCase(r *http.Request) (projections.Case, *projections.Subject, domain.Basis, error) {
	id, err := pathUUID(r, "id")
	if err != nil {
		return projections.Case{}, nil, "", err
	}
	var c projections.Case
	var subj projections.Subject
	var found, hasSubj bool
	s.Runner.Read(func() {
		var cp *projections.Case
		if cp, found = s.Cases.Get(id); found {
			c = *cp
			c.History = append([]projections.HistoryEntry(nil), cp.History...)
			if sp, ok := s.Subjects.Get(c.SubjectID); ok {
				subj, hasSubj = *sp, true
			}
		}
	})
	if !found {
		return c, nil, "", &domain.Error{Kind: domain.KindNotFound, Code: "signal_not_found", Message: "the signal does not exist"}
	}
	reason := strings.TrimSpace(r.Header.Get("X-Break-Glass-Reason"))
	if len(reason) > 500 {
		return c, nil, "", domain.Invalid(domain.FieldError{Field: "X-Break-Glass-Reason", Message: "is longer than 500 characters"})
	}
	t := domain.Target{Network: c.Network, Team: c.Team, BreakGlassReason: reason}
	basis, err := s.authorizeRead(r, domain.ActReadCase, t, []uuid.UUID{c.SubjectID}, []uuid.UUID{c.ID})
	if err != nil {
		return c, nil, "", err
	}
	var sp *projections.Subject
	if hasSubj {
		sp = &subj
	}
	return c, sp, basis, nil
}

// caseAccess is the access record of a read of case c on basis: a
// break-glass read carries its reason and purpose.
func (s *Server) caseAccess(r *http.Request, c *projections.Case, basis domain.Basis) domain.Access {
	a := s.access(r, "read", basis)
	a.Subjects, a.Signals = []uuid.UUID{c.SubjectID}, []uuid.UUID{c.ID}
	if basis == domain.BasisBreakGlass {
		a.Reason = strings.TrimSpace(r.Header.Get("X-Break-Glass-Reason"))
		a.Purpose = domain.PurposeBreakGlass
	}
	return a
}

// historyEntries are a case's history as the API shows it.
func historyEntries(c *projections.Case) []historyEntry {
	out := make([]historyEntry, len(c.History))
	for i, h := range c.History {
		out[i] = historyEntry{Type: h.Type, At: h.At, Position: h.Position, ActorID: h.ActorID, ActorRole: h.ActorRole}
	}
	return out
}

func (s *Server) getSignal(w http.ResponseWriter, r *http.Request) error {
	c, subj, basis, err := s.readCase(r)
	if err != nil {
		return err
	}
	d, err := s.Reader.Disclose(r.Context(), s.caseAccess(r, &c, basis))
	if err != nil {
		return err // fail closed: no record, no data
	}
	v, err := s.caseView(r, d, &c, subj)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(c.Version)))
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) error {
	c, _, basis, err := s.readCase(r)
	if err != nil {
		return err
	}
	if err := s.Reader.Record(r.Context(), s.caseAccess(r, &c, basis)); err != nil {
		return err
	}
	v := historyView{ID: c.ID, Events: historyEntries(&c)}
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(c.Version)))
	writeJSON(w, http.StatusOK, v)
	return nil
}

// noteViews decrypts notes (erased ones read as empty).
func noteViews(o *opener, notes []projections.Note) []noteView {
	out := make([]noteView, 0, len(notes))
	for _, n := range notes {
		out = append(out, noteView{Kind: n.Kind, Text: o.open(n.Text), At: n.At, By: n.By})
	}
	return out
}

// caseView decrypts a case for an authorized answer whose access d
// records.
func (s *Server) caseView(r *http.Request, d *app.Disclosure, c *projections.Case, subj *projections.Subject) (signalView, error) {
	o := &opener{ctx: r.Context(), d: d, subject: c.SubjectID}
	v := signalView{
		ID: c.ID, Status: string(c.Status), Version: c.Version, SubjectID: c.SubjectID,
		Neighbourhood: c.Neighbourhood, Categories: c.Categories, Urgency: c.Urgency, Consent: c.Consent,
		Source: string(c.Source), TeamID: c.Team, RoutingRule: c.RoutingRule, AssigneeID: c.Assignee, RaisedAt: c.RaisedAt,
		FirstResponseAt: optTime(c.FirstResponseAt), ResponseDueAt: c.DueAt, Outcome: c.Outcome,
		ResponseState: string(domain.StateAt(s.Now(), c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt)),
		FollowUps:     []followUpView{}, Referrals: []referralView{}, Feedback: []feedbackView{}, Notes: []noteView{},
		MatchedSignalIDs: append([]uuid.UUID{}, c.Matched...),
	}
	if subj != nil {
		v.Subject = o.subjectData(subj.Data)
		if subj.Erased {
			v.Subject = subjectView{Erased: true}
			o.erased = true
		}
	}
	v.Description = o.open(c.Description)
	for _, f := range c.FollowUps {
		v.FollowUps = append(v.FollowUps, followUpView{ID: f.ID, Kind: f.Kind, Outcome: f.Outcome, Note: o.open(f.Note), NextDue: f.NextDue, At: f.At, By: f.By})
	}
	for _, rf := range c.Referrals {
		v.Referrals = append(v.Referrals, referralView{ID: rf.ID, OrganisationID: rf.OrganisationID, Service: rf.Service, Reason: o.open(rf.Reason),
			Status: string(rf.Status), MadeAt: rf.MadeAt, AnsweredAt: optTime(rf.AnsweredAt), Notes: noteViews(o, rf.Notes)})
	}
	lang := language(r)
	for _, fb := range c.Feedback {
		v.Feedback = append(v.Feedback, feedbackView{Code: fb.Code, Text: fb.Text.In(lang), At: fb.At})
	}
	for _, n := range c.Notes {
		v.Notes = append(v.Notes, noteView{Kind: n.Kind, Text: o.open(n.Text), At: n.At, By: n.By})
	}
	if o.erased {
		v.Subject.Erased = true
	}
	if o.err != nil {
		return signalView{}, o.err
	}
	return v, nil
}
