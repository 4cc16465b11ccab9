package httpapi

import (
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// Access monitoring for privacy officers: the flags the rules raise on
// the access log, the items to review (break-glass reads and flags), a
// judgement on one, and the periodic report. Privacy officers only, with
// a multi-factor sign-in; every read is itself an access record. Flags
// and items hold ids, codes and times; a judgement's note is sealed and
// opened only for the privacy officer who reads the reviews.
type (
	reviewItem struct {
		ID string `json:"id"`
		// Rule is break_glass for a break-glass read, else the flag's rule.
		Rule       string      `json:"rule" openapi:"enum=review_rule"`
		ActorID    string      `json:"actor_id"`
		At         time.Time   `json:"at"`
		SubjectIDs []uuid.UUID `json:"subject_ids"`
		SignalIDs  []uuid.UUID `json:"signal_ids"`
		// Records are the log positions of the access records behind it.
		Records []uint64  `json:"records"`
		DueAt   time.Time `json:"due_at"`
		// State is open (within its term), overdue, or reviewed.
		State      string     `json:"state" openapi:"enum=review_state"`
		Judgement  string     `json:"judgement,omitempty" openapi:"enum=judgement"`
		ReviewedBy string     `json:"reviewed_by,omitempty"`
		ReviewedAt *time.Time `json:"reviewed_at,omitempty"`
		Note       string     `json:"note,omitempty"`
	}
	reviewPage struct {
		Items      []reviewItem `json:"items"`
		NextCursor string       `json:"next_cursor,omitempty"`
	}
	reviewBody struct {
		Item      string `json:"item"`
		Judgement string `json:"judgement"`
		Note      string `json:"note,omitempty"`
	}
	ruleCount struct {
		Rule  string `json:"rule"`
		Count int    `json:"count"`
	}
	auditReport struct {
		Network    string      `json:"network"`
		From       time.Time   `json:"from"`
		To         time.Time   `json:"to"`
		Reads      int         `json:"reads"`
		BreakGlass int         `json:"break_glass_reads"`
		Denied     int         `json:"denied"`
		Flags      []ruleCount `json:"flags_by_rule"`
		// Reviewed are the judgements recorded in the period, by judgement.
		Reviewed    []ruleCount `json:"reviewed"`
		ReviewsDone int         `json:"reviews_done"`
		// Overdue and Open are the items of the period not reviewed yet:
		// past their term, and within it.
		Overdue int `json:"reviews_overdue"`
		Open    int `json:"reviews_open"`
		// TermWorkingDays is the review term.
		TermWorkingDays int       `json:"term_working_days"`
		GeneratedAt     time.Time `json:"generated_at"`
	}
)

// reviewStates are the values of ?state= on the lists.
var reviewStates = []string{"open", "overdue", "reviewed", "justified", "not_justified", "follow_up"}

// reviewRules are the rules an item can have.
var reviewRules = []string{projections.RuleBreakGlass, domain.RuleOutsideTeam, domain.RuleManySubjects, domain.RuleAfterHours,
	domain.RuleAfterClosed, domain.RuleDenied, domain.RuleBurst}

func (s *Server) reviewView(it *projections.ReviewItem, now time.Time, withNote bool, o func(it *projections.ReviewItem) string) reviewItem {
	v := reviewItem{ID: it.ID, Rule: it.Rule, ActorID: it.ActorID, At: it.At, SubjectIDs: append([]uuid.UUID{}, it.Subjects...),
		SignalIDs: append([]uuid.UUID{}, it.Signals...), Records: append([]uint64{}, it.Records...), DueAt: it.DueAt, State: "open"}
	switch {
	case it.Judgement != "":
		at := it.ReviewedAt
		v.State, v.Judgement, v.ReviewedBy, v.ReviewedAt = "reviewed", it.Judgement, it.ReviewedBy, &at
		if withNote && !it.Note.Empty() {
			v.Note = o(it)
		}
	case it.Overdue(now):
		v.State = "overdue"
	}
	return v
}

// reviewList serves a list of the caller's network's items: flags only
// (the flags), or every item (the reviews).
func (s *Server) reviewList(flags bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.privacyOfficer(r, domain.ActAudit); err != nil {
			return err
		}
		from, to, err := periodParams(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		var f fields
		rule, state := q.Get("rule"), q.Get("state")
		if rule != "" && (!slices.Contains(reviewRules, rule) || (flags && rule == projections.RuleBreakGlass)) {
			f.add("rule", "must be one of "+strings.Join(reviewRules, ", ")+(map[bool]string{true: " except break_glass"}[flags]))
		}
		if state != "" && !slices.Contains(reviewStates, state) {
			f.add("state", "must be one of "+strings.Join(reviewStates, ", "))
		}
		if err := f.err(); err != nil {
			return err
		}
		limit, after, err := keyPageParams(r)
		if err != nil {
			return err
		}
		p := principal(r.Context())
		now := s.Now().UTC()
		l := projections.ReviewList{Network: p.Network, Rule: rule, Flags: flags && rule == ""}
		var match func(*projections.ReviewItem) bool
		switch state {
		case "open", "overdue":
			l = projections.ReviewList{Network: p.Network, Open: true}
			match = func(it *projections.ReviewItem) bool {
				return (rule == "" || it.Rule == rule) && (!flags || it.Rule != projections.RuleBreakGlass) && (state == "open" || it.Overdue(now))
			}
		case "reviewed":
			match = func(it *projections.ReviewItem) bool { return it.Judgement != "" }
		case "":
		default:
			match = func(it *projections.ReviewItem) bool { return it.Judgement == state }
		}
		items, next, err := s.Reviews.Page(l, from, to, match, after, limit)
		if err != nil {
			return err
		}
		var subjects []uuid.UUID
		for _, it := range items {
			for _, id := range it.Subjects {
				if !slices.Contains(subjects, id) {
					subjects = append(subjects, id)
				}
			}
		}
		a := s.access(r, "audit_read", domain.BasisRole)
		a.Purpose, a.Subjects = domain.PurposePrivacyAudit, subjects
		d, err := s.Reader.DiscloseTrail(r.Context(), a)
		if err != nil {
			return err
		}
		open := func(it *projections.ReviewItem) string {
			o := &opener{ctx: r.Context(), d: d, subject: it.NoteSubject}
			if text := o.open(it.Note); !o.erased && o.err == nil {
				return text
			}
			return "[erased]"
		}
		out := reviewPage{Items: make([]reviewItem, 0, len(items)), NextCursor: keyCursor(next)}
		for _, it := range items {
			out.Items = append(out.Items, s.reviewView(it, now, !flags, open))
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

var errNoItem = &domain.Error{Kind: domain.KindNotFound, Code: "review_item_not_found", Message: "there is no such item to review in your network"}

// maxReviewNote bounds a judgement's note.
const maxReviewNote = 2000

func (s *Server) recordReview(w http.ResponseWriter, r *http.Request) error {
	if err := s.privacyOfficer(r, domain.ActAudit); err != nil {
		return err
	}
	var b reviewBody
	if err := s.decode(w, r, &b); err != nil {
		return err
	}
	var f fields
	f.required("item", b.Item)
	f.maxLen("item", b.Item, 100)
	f.required("judgement", b.Judgement)
	if b.Judgement != "" && !domain.Judgements.Has(b.Judgement) {
		f.add("judgement", "must be one of justified, not_justified, follow_up")
	}
	f.maxLen("note", b.Note, maxReviewNote)
	if err := f.err(); err != nil {
		return err
	}
	req, err := appRequest(r, &b)
	if err != nil {
		return err
	}
	it, err := s.Reviews.Item(req.Actor.Network, b.Item)
	if err != nil {
		return err
	}
	if it == nil {
		return errNoItem
	}
	var subject uuid.UUID
	if len(it.Subjects) > 0 {
		subject = it.Subjects[0]
	}
	res, err := s.App.RecordReview(r.Context(), req, it.ID, b.Judgement, b.Note, subject)
	if err != nil {
		return err
	}
	res.Status = "reviewed"
	return s.answer(w, http.StatusOK, res)
}

// reportDays is the default period of the report: the last seven days.
const reportDays = 7

func (s *Server) auditReportQuery(w http.ResponseWriter, r *http.Request) error {
	if err := s.privacyOfficer(r, domain.ActAudit); err != nil {
		return err
	}
	from, to, err := periodParams(r)
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	var f fields
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "html" {
		f.add("format", "must be json or html")
	}
	loc := s.Reviews.Location()
	if to.IsZero() {
		y, m, d := now.In(loc).Date()
		to = time.Date(y, m, d+1, 0, 0, 0, 0, loc).UTC()
	}
	if from.IsZero() {
		// Never before year 0: the report names its period, and a time
		// before it has no JSON form.
		from = to.AddDate(0, 0, -reportDays)
		if y0 := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC); from.Before(y0) {
			from = y0
		}
	}
	if len(f) == 0 && !from.Before(to) {
		f.add("from", "must be before to")
	}
	if err := f.err(); err != nil {
		return err
	}
	p := principal(r.Context())
	days, err := s.Reviews.Days(p.Network, from, to)
	if err != nil {
		return err
	}
	rep := auditReport{Network: p.Network, From: from, To: to, Reads: days.Reads, BreakGlass: days.BreakGlass, Denied: days.Denied,
		Flags: []ruleCount{}, Reviewed: []ruleCount{}, TermWorkingDays: s.ReviewTermDays, GeneratedAt: now}
	if rep.TermWorkingDays == 0 {
		rep.TermWorkingDays = domain.ReviewTermWorkingDays
	}
	for _, rule := range reviewRules[1:] {
		rep.Flags = append(rep.Flags, ruleCount{Rule: rule, Count: days.Flags[rule]})
	}
	for _, j := range domain.Judgements.Values() {
		rep.Reviewed = append(rep.Reviewed, ruleCount{Rule: j, Count: days.Reviewed[j]})
		rep.ReviewsDone += days.Reviewed[j]
	}
	err = s.Reviews.Overdue(p.Network, now.Add(time.Duration(1<<62)), func(it *projections.ReviewItem) bool {
		if !it.At.Before(from) && it.At.Before(to) {
			if it.Overdue(now) {
				rep.Overdue++
			} else {
				rep.Open++
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	a := s.access(r, "audit_report", domain.BasisRole)
	a.Purpose = domain.PurposePrivacyAudit
	if err := s.Reader.Record(r.Context(), a); err != nil {
		return err
	}
	if format == "html" || (format == "" && prefersHTML(r)) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		return reportPage.Execute(w, rep)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// prefersHTML reports whether the request asks for HTML before JSON.
func prefersHTML(r *http.Request) bool {
	acc := r.Header.Get("Accept")
	h, j := strings.Index(acc, "text/html"), strings.Index(acc, "application/json")
	return h >= 0 && (j < 0 || h < j)
}

// reportPage is the printable report: plain HTML that prints on one page.
var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"day": func(t time.Time) string { return t.Format(time.DateOnly) },
}).Parse(`<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>Toegangscontrole / Access review {{.Network}} {{day .From}} – {{day .To}}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #444;padding:.3em .6em;text-align:left}td.n{text-align:right}@media print{a{display:none}}</style>
</head><body>
<h1>Toegangscontrole / Access review</h1>
<p>Netwerk / network <strong>{{.Network}}</strong>, {{day .From}} – {{day .To}} (tot / until). Gemaakt / made {{.GeneratedAt.Format "2006-01-02 15:04 MST"}}.</p>
<table><caption>Inzage / Access</caption><tbody>
<tr><th scope="row">Inzagen / reads</th><td class="n">{{.Reads}}</td></tr>
<tr><th scope="row">Doorbraak (break-glass)</th><td class="n">{{.BreakGlass}}</td></tr>
<tr><th scope="row">Geweigerd / denied</th><td class="n">{{.Denied}}</td></tr>
</tbody></table>
<table><caption>Signaleringen per regel / Flags per rule</caption><thead><tr><th scope="col">Regel / rule</th><th scope="col">Aantal / count</th></tr></thead><tbody>
{{range .Flags}}<tr><th scope="row">{{.Rule}}</th><td class="n">{{.Count}}</td></tr>{{end}}
</tbody></table>
<table><caption>Beoordelingen / Reviews (termijn / term {{.TermWorkingDays}} werkdagen / working days)</caption><tbody>
{{range .Reviewed}}<tr><th scope="row">{{.Rule}}</th><td class="n">{{.Count}}</td></tr>{{end}}
<tr><th scope="row">Beoordeeld / done</th><td class="n">{{.ReviewsDone}}</td></tr>
<tr><th scope="row">Te laat / overdue</th><td class="n">{{.Overdue}}</td></tr>
<tr><th scope="row">Open, binnen termijn / within term</th><td class="n">{{.Open}}</td></tr>
</tbody></table>
</body></html>
`))
