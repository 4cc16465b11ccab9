package httpapi

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// Privacy officer endpoints: the access log per subject and per actor,
// break-glass review, chain verification, subject search, export and erasure.
type (
	auditItem struct {
		At               time.Time   `json:"at"`
		ActorID          string      `json:"actor_id"`
		ActorRole        string      `json:"actor_role"`
		OnBehalfOf       string      `json:"on_behalf_of,omitempty"`
		Action           string      `json:"action"`
		View             string      `json:"view"`
		Purpose          string      `json:"purpose,omitempty"`
		Basis            string      `json:"basis,omitempty"`
		BreakGlassReason string      `json:"break_glass_reason,omitempty"`
		Outcome          string      `json:"outcome"`
		ClientAddr       string      `json:"client_addr,omitempty"`
		RequestID        string      `json:"request_id,omitempty"`
		ClientRequestID  string      `json:"client_request_id,omitempty"`
		SignalIDs        []uuid.UUID `json:"signal_ids"`
		SubjectIDs       []uuid.UUID `json:"subject_ids"`
	}
	auditPage struct {
		Items      []auditItem `json:"items"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}
	searchBody struct {
		Name      string `json:"name"`
		BirthDate string `json:"birth_date,omitempty"`
	}
	searchAnswer struct {
		SubjectIDs []uuid.UUID `json:"subject_ids"`
	}
	erasureBody struct {
		Reason     string `json:"reason"`
		RequestRef string `json:"request_ref"`
	}
	exportSignal struct {
		signalView
		History []historyEntry `json:"history"`
	}
	exportDocument struct {
		SubjectID  uuid.UUID      `json:"subject_id"`
		ExportedAt time.Time      `json:"exported_at"`
		Subject    subjectView    `json:"subject"`
		Signals    []exportSignal `json:"signals"`
		AccessLog  []auditItem    `json:"access_log"`
	}
	VerifyReport struct {
		OK       bool     `json:"ok"`
		Streams  int      `json:"streams"`
		Records  int      `json:"records"`
		Head     string   `json:"head"`
		Problems []string `json:"problems"`
	}
)

// VerifyFunc recomputes the audit chains (adapters/audit.Verify).
type VerifyFunc func(ctx context.Context) (VerifyReport, error)

var errMFA = &domain.Error{Kind: domain.KindForbidden, Code: "mfa_required", Message: "this needs a multi-factor sign-in"}

// privacyOfficer authorizes a privacy officer action, with multi-factor
// sign-in when RequireMFA is set.
func (s *Server) privacyOfficer(r *http.Request, a domain.Action) error {
	p := principal(r.Context())
	if _, err := s.authorizeRead(r, a, domain.Target{}, nil, nil); err != nil {
		return err
	}
	if s.RequireMFA && !p.MFA {
		a := s.access(r, string(a), domain.BasisRole)
		a.Outcome = "denied_mfa"
		return s.Reader.Deny(r.Context(), a, errMFA)
	}
	return nil
}

// requestRef is the form of a privacy request's reference (kept in clear
// in the log, so never a name): 1 to 64 letters, digits and - . _ / :,
// starting with a letter or digit and holding at least one digit, such as
// AVG-2026-17.
var requestRef = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:-]{0,63}$`)

func checkRequestRef(f *fields, ref string, required bool) {
	switch {
	case ref == "" && required:
		f.add("request_ref", "is required")
	case ref != "" && (!requestRef.MatchString(ref) || !strings.ContainsAny(ref, "0123456789")):
		f.add("request_ref", "must be a reference such as AVG-2026-17: 1 to 64 letters, digits and - . _ / :, with a digit (never a name)")
	}
}

// auditItems are the access records as a privacy officer reads them, their
// sealed fields opened through d (a recorded read of the trail).
func (s *Server) auditItems(ctx context.Context, d *app.Disclosure, entries []*projections.AuditEntry) []auditItem {
	out := make([]auditItem, 0, len(entries))
	for _, e := range entries {
		it := auditItem{At: e.At, ActorID: e.ActorID, ActorRole: e.ActorRole, OnBehalfOf: e.OnBehalfOf, Action: e.Action,
			View: e.View, Purpose: e.Purpose, Basis: string(e.Basis), Outcome: e.Outcome, ClientAddr: e.ClientAddr,
			RequestID: e.RequestID, ClientRequestID: e.ClientRequestID, SignalIDs: append([]uuid.UUID{}, e.Signals...), SubjectIDs: append([]uuid.UUID{}, e.Subjects...)}
		if len(e.Subjects) > 0 {
			open := func(v domain.Sealed) string {
				o := &opener{ctx: ctx, d: d, subject: e.Subjects[0]}
				if text := o.open(v); !o.erased {
					return text
				}
				return "[erased]"
			}
			if !e.BreakGlassReason.Empty() {
				it.BreakGlassReason = open(e.BreakGlassReason)
			}
			if !e.OnBehalfOfSealed.Empty() {
				it.OnBehalfOf = open(e.OnBehalfOfSealed)
			}
		}
		out = append(out, it)
	}
	return out
}

func periodParams(r *http.Request) (from, to time.Time, err error) {
	var f fields
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := r.URL.Query().Get(p.name)
		if v == "" {
			continue
		}
		t, ok := timeParam(p.name, v)
		if !ok {
			f.add(p.name, timeParamRule)
			continue
		}
		*p.dst = t
	}
	return from, to, f.err()
}

const timeParamRule = "must be an RFC 3339 time or a date YYYY-MM-DD, in the years 0000 to 9999 in UTC"

// timeParam reads the end of a period, from or to: an RFC 3339 time, or a
// date (from its start; to: to its end, the next day's start), in UTC. It
// must lie in the years 0000-9999 in UTC, the times RFC 3339 can write, so
// that an answer can echo it.
func timeParam(name, v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		d, derr := time.Parse(time.DateOnly, v)
		if derr != nil {
			return time.Time{}, false
		}
		if t = d; name == "to" {
			t = d.AddDate(0, 0, 1)
		}
	}
	t = t.UTC()
	return t, t.Year() >= 0 && t.Year() <= 9999
}

// auditQuery serves an audit list of the caller's network, a page at a
// time from the audit trail's index; the read of the audit log is itself
// logged.
func (s *Server) auditQuery(subjects func(r *http.Request) ([]uuid.UUID, error), list func(r *http.Request) projections.AuditList) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.privacyOfficer(r, domain.ActAudit); err != nil {
			return err
		}
		subj, err := subjects(r)
		if err != nil {
			return err
		}
		from, to, err := periodParams(r)
		if err != nil {
			return err
		}
		limit, after, err := keyPageParams(r)
		if err != nil {
			return err
		}
		var entries []*projections.AuditEntry
		var next []byte
		s.Runner.Read(func() {
			// A privacy officer sees the access records of their own network
			// only (actor ids may repeat across networks): the lists are
			// kept per network.
			l := list(r)
			l.Network = principal(r.Context()).Network
			entries, next, err = s.Audit.Page(l, from, to, after, limit)
		})
		if err != nil {
			return err
		}
		a := s.access(r, "audit_read", domain.BasisRole)
		a.Purpose, a.Subjects = domain.PurposePrivacyAudit, subj
		d, err := s.Reader.DiscloseTrail(r.Context(), a)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, auditPage{Items: s.auditItems(r.Context(), d, entries), NextCursor: keyCursor(next)})
		return nil
	}
}

func (s *Server) auditSubject() handlerFunc {
	return s.auditQuery(func(r *http.Request) ([]uuid.UUID, error) {
		id, err := pathUUID(r, "id")
		return []uuid.UUID{id}, err
	}, func(r *http.Request) projections.AuditList {
		id, _ := uuid.Parse(chi.URLParam(r, "id"))
		return projections.AuditList{Subject: id}
	})
}

func (s *Server) auditActor() handlerFunc {
	return s.auditQuery(func(r *http.Request) ([]uuid.UUID, error) { return nil, nil },
		func(r *http.Request) projections.AuditList {
			return projections.AuditList{Actor: chi.URLParam(r, "id")}
		})
}

func (s *Server) auditBreakGlass() handlerFunc {
	return s.auditQuery(func(r *http.Request) ([]uuid.UUID, error) { return nil, nil },
		func(*http.Request) projections.AuditList { return projections.AuditList{BreakGlass: true} })
}

func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request) error {
	if err := s.privacyOfficer(r, domain.ActAudit); err != nil {
		return err
	}
	a := s.access(r, "audit_verify", domain.BasisRole)
	a.Purpose = domain.PurposePrivacyAudit
	if err := s.Reader.Record(r.Context(), a); err != nil {
		return err
	}
	rep, err := s.Verify(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) searchSubjects(w http.ResponseWriter, r *http.Request) error {
	if err := s.privacyOfficer(r, domain.ActSearchSubjects); err != nil {
		return err
	}
	var b searchBody
	if err := s.decode(w, r, &b); err != nil {
		return err
	}
	var f fields
	f.required("name", b.Name)
	f.maxLen("name", b.Name, maxName)
	if b.BirthDate != "" && !domain.ValidDate(b.BirthDate) {
		f.add("birth_date", "must be a date YYYY-MM-DD")
	}
	if err := f.err(); err != nil {
		return err
	}
	token := s.App.Index.Token(strings.TrimSpace(b.Name), b.BirthDate)
	p := principal(r.Context())
	ans := searchAnswer{SubjectIDs: []uuid.UUID{}}
	id, ok, err := s.App.Subjects.Find(r.Context(), p.Network, token)
	if err != nil {
		return err
	}
	if ok {
		ans.SubjectIDs = append(ans.SubjectIDs, id)
	}
	a := s.access(r, "search", domain.BasisRole)
	a.Purpose, a.Subjects = domain.PurposePrivacyRequest, ans.SubjectIDs
	if err := s.Reader.Record(r.Context(), a); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (s *Server) exportSubject(w http.ResponseWriter, r *http.Request) error {
	if err := s.privacyOfficer(r, domain.ActExport); err != nil {
		return err
	}
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	ref := r.URL.Query().Get("request_ref")
	var f fields
	checkRequestRef(&f, ref, false)
	if err := f.err(); err != nil {
		return err
	}
	var subj projections.Subject
	var found bool
	var cases []projections.Case
	var access []*projections.AuditEntry
	s.Runner.Read(func() {
		var sp *projections.Subject
		if sp, found = s.Subjects.Get(id); found {
			subj = *sp
			for _, c := range s.Cases.OfSubject(id) {
				cc := *c
				cc.History = append([]projections.HistoryEntry(nil), c.History...)
				cases = append(cases, cc)
			}
			access = s.Audit.OfSubject(sp.Network, id, time.Time{}, time.Time{})
		}
	})
	if !found || subj.Network != principal(r.Context()).Network {
		return &domain.Error{Kind: domain.KindNotFound, Code: "subject_not_found", Message: "the subject does not exist"}
	}
	signals := make([]uuid.UUID, len(cases))
	for i, c := range cases {
		signals[i] = c.ID
	}
	req, err := appRequest(r, nil)
	if err != nil {
		return err
	}
	// The access is recorded first (nothing opens without it); the export
	// itself (SubjectExported) only once the document is made, so what can
	// fail after it is written is only the delivery: the log shows no
	// export that was not sent. The document holds the subject's access
	// log with its sealed fields, so the disclosure is the trail's.
	a := s.access(r, "export", domain.BasisRole)
	a.Purpose, a.Subjects, a.Signals = domain.PurposePrivacyRequest, []uuid.UUID{id}, signals
	d, err := s.Reader.DiscloseTrail(r.Context(), a)
	if err != nil {
		return err
	}
	o := &opener{ctx: r.Context(), d: d, subject: id}
	doc := exportDocument{SubjectID: id, ExportedAt: s.Now().UTC(), Subject: o.subjectData(subj.Data), Signals: []exportSignal{}, AccessLog: s.auditItems(r.Context(), d, access)}
	if subj.Erased || o.erased {
		doc.Subject = subjectView{Erased: true}
	}
	for i := range cases {
		v, err := s.caseView(r, d, &cases[i], &subj)
		if err != nil {
			return err
		}
		doc.Signals = append(doc.Signals, exportSignal{signalView: v, History: historyEntries(&cases[i])})
	}
	if o.err != nil {
		return o.err
	}
	if _, err := s.App.RecordExport(r.Context(), req, id, ref); err != nil {
		return err
	}
	w.Header().Set("Content-Disposition", `attachment; filename="subject-export-`+id.String()+`.json"`)
	writeJSON(w, http.StatusOK, doc)
	return nil
}

func (s *Server) eraseSubject(w http.ResponseWriter, r *http.Request) error {
	if err := s.privacyOfficer(r, domain.ActErase); err != nil {
		return err
	}
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	var b erasureBody
	if err := s.decode(w, r, &b); err != nil {
		return err
	}
	var f fields
	f.required("reason", b.Reason)
	f.maxLen("reason", b.Reason, 500)
	checkRequestRef(&f, b.RequestRef, true)
	if err := f.err(); err != nil {
		return err
	}
	req, err := appRequest(r, &b)
	if err != nil {
		return err
	}
	var exists bool
	s.Runner.Read(func() {
		sp, ok := s.Subjects.Get(id)
		exists = ok && sp.Network == req.Actor.Network
	})
	res, err := s.App.EraseSubject(r.Context(), req, id, b.RequestRef, "request", exists)
	if err != nil {
		return err
	}
	res.Status = "erased"
	return s.answer(w, http.StatusOK, res)
}
