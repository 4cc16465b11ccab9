package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// --- Privacy officers ------------------------------------------------------------

func (c *Console) privacyHome(w http.ResponseWriter, r *http.Request) {
	c.renderPrivacy(w, r, http.StatusOK, page{Flash: c.flash(r)}, nil)
}

func (c *Console) renderPrivacy(w http.ResponseWriter, r *http.Request, status int, pg page, results obj) {
	people := c.people(r)
	staffList := make([]person, 0, len(people))
	for _, p := range people {
		staffList = append(staffList, p)
	}
	slices.SortFunc(staffList, func(a, b person) int { return strings.Compare(a.Name+a.ID, b.Name+b.ID) })
	pg.Title = "privacy"
	pg.Data = obj{"results": results, "staff": staffList}
	c.render(w, r, status, "privacy", sessionOf(r), pg)
}

// search finds subjects by name and birth date; a POST, so no name is in a
// URL or the browser's history.
func (c *Console) search(w http.ResponseWriter, r *http.Request) {
	var res obj
	if p := c.call(r, http.MethodPost, "/v1/subjects/search", formBody(r, "name", "birth_date")).decode(&res); p != nil {
		c.renderPrivacy(w, r, p.Status, c.refused(r, "search", p), nil)
		return
	}
	c.renderPrivacy(w, r, http.StatusOK, page{}, res)
}

// subjectNames reads the names of subjects through the API's audited read,
// at most 100 at a time.
func (c *Console) subjectNames(r *http.Request, ids []string) map[string]obj {
	out := map[string]obj{}
	for len(ids) > 0 {
		n := min(len(ids), 100)
		q := url.Values{"id": ids[:n]}
		var res struct {
			Items []obj `json:"items"`
		}
		if c.call(r, http.MethodGet, "/v1/subjects/names?"+q.Encode(), nil).decode(&res) == nil {
			for _, it := range res.Items {
				id, _ := it["id"].(string)
				out[id] = it
			}
		}
		ids = ids[n:]
	}
	return out
}

// auditPage shows an access log, filtered by period (the API) and action:
// each record with its actor's name and role, the view in words, and the
// subjects (by name, read through the audited names read, or "erased") and
// signals it concerns.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, name, path string, data obj) {
	c.auditPageWith(w, r, name, path, data, page{Flash: c.flash(r)}, http.StatusOK)
}

// auditPageWith is auditPage on a page that may carry a form's errors.
func (c *Console) auditPageWith(w http.ResponseWriter, r *http.Request, name, path string, data obj, pg page, status int) {
	var log obj
	a := c.call(r, http.MethodGet, apiPath(path, r, "from", "to"), nil)
	if p := a.decode(&log); p != nil {
		if p.Status == http.StatusUnprocessableEntity {
			pg := c.refused(r, "f", p)
			data["items"], data["filter"], data["people"], data["names"] = []any{}, obj{"from": r.URL.Query().Get("from"), "to": r.URL.Query().Get("to")}, map[string]person{}, map[string]obj{}
			pg.Data = data
			c.render(w, r, p.Status, name, sessionOf(r), pg)
			return
		}
		c.failed(w, r, p)
		return
	}
	action := r.URL.Query().Get("action")
	items, _ := log["items"].([]any)
	if action != "" {
		kept := []any{}
		for _, it := range items {
			if m, _ := it.(obj); m["action"] == action {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	var ids []string
	if data["subject_column"] == true {
		for _, it := range items {
			m, _ := it.(obj)
			list, _ := m["subject_ids"].([]any)
			for _, s := range list {
				if id, _ := s.(string); id != "" && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	data["names"] = c.subjectNames(r, ids)
	data["items"] = items
	data["next"] = nextPage(r, log)
	data["people"] = c.people(r)
	data["actions"] = []string{"read", "list", "search", "export", "audit_read", "audit_verify"}
	data["filter"] = obj{"from": r.URL.Query().Get("from"), "to": r.URL.Query().Get("to"), "action": action}
	pg.Data = data
	c.render(w, r, status, name, sessionOf(r), pg)
}

func (c *Console) subjectLog(w http.ResponseWriter, r *http.Request) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	c.auditPage(w, r, "subject", "/v1/audit/subjects/"+id, obj{"id": id, "subject": c.subjectNames(r, []string{id})[id]})
}

func (c *Console) actorLog(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if id == "" {
		http.Redirect(w, r, "/console/privacy", http.StatusSeeOther)
		return
	}
	c.auditPage(w, r, "actor", "/v1/audit/actors/"+url.PathEscape(id), obj{"id": id, "subject_column": true})
}

func (c *Console) breakGlassReview(w http.ResponseWriter, r *http.Request) {
	c.auditPage(w, r, "break_glass_review", "/v1/audit/break-glass", obj{"subject_column": true})
}

func (c *Console) verify(w http.ResponseWriter, r *http.Request) {
	c.show(w, r, "verify", "/v1/audit/verify", nil)
}

// export downloads the subject's export (audited by the API).
func (c *Console) export(w http.ResponseWriter, r *http.Request) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	path := "/v1/subjects/" + id + "/export"
	if ref := r.URL.Query().Get("request_ref"); ref != "" {
		path += "?request_ref=" + url.QueryEscape(ref)
	}
	a := c.call(r, http.MethodGet, path, nil)
	if p := a.decode(nil); p != nil {
		c.failed(w, r, p)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="export-`+id+`.json"`)
	_, _ = w.Write(a.Body)
}

// erase erases a subject in two steps: the form (reason, request
// reference) leads to a confirmation that shows whom it erases, by name and
// birth date (an audited read); only its confirmation erases.
func (c *Console) erase(w http.ResponseWriter, r *http.Request) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	body := formBody(r, "reason", "request_ref")
	if r.PostFormValue("confirm") != "yes" {
		var missing []domain.FieldError
		for _, f := range []string{"reason", "request_ref"} {
			if body[f] == nil {
				missing = append(missing, domain.FieldError{Field: f, Message: "is required"})
			}
		}
		if len(missing) > 0 {
			c.eraseRefused(w, r, id, &problem{Status: http.StatusUnprocessableEntity, Code: "validation", Errors: missing})
			return
		}
		status := http.StatusOK
		pg := page{Title: "erase_confirm_title"}
		if r.PostFormValue("confirming") == "yes" { // the confirmation was sent without its box ticked
			status = http.StatusUnprocessableEntity
			pg = c.refused(r, "erase", &problem{Status: status, Code: "validation", Errors: []domain.FieldError{{Field: "confirm", Message: "is required"}}})
			pg.Title = "erase_confirm_title"
		}
		pg.Data = obj{"id": id, "subject": c.subjectNames(r, []string{id})[id], "reason": body["reason"], "request_ref": body["request_ref"], "idem": newIdem(r)}
		c.render(w, r, status, "erase_confirm", sessionOf(r), pg)
		return
	}
	a := c.call(r, http.MethodPost, "/v1/subjects/"+id+"/erasure", body, "Idempotency-Key", r.PostFormValue("idem"))
	if p := a.decode(nil); p != nil {
		c.eraseRefused(w, r, id, p)
		return
	}
	afterCommandSay(w, r, "/console/privacy/subjects/"+id, "erased", a)
}

// eraseRefused shows the subject's page with the erasure form's errors.
func (c *Console) eraseRefused(w http.ResponseWriter, r *http.Request, id string, p *problem) {
	c.auditPageWith(w, r, "subject", "/v1/audit/subjects/"+id, obj{"id": id, "subject": c.subjectNames(r, []string{id})[id],
		"form": obj{"reason": r.PostFormValue("reason"), "request_ref": r.PostFormValue("request_ref")}}, c.refused(r, "erase", p), p.Status)
}

// newIdem is the idempotency key of a form: the one it was sent with, or a
// new one.
func newIdem(r *http.Request) string {
	if k := r.PostFormValue("idem"); k != "" {
		return k
	}
	return uuid.NewString()
}
