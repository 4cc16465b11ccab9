package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// obj is a decoded JSON object of the API, for the templates.
type obj = map[string]any

// flash is the message of a page after a successful form (PRG: ?ok=1).
func (c *Console) flash(r *http.Request) string {
	switch r.URL.Query().Get("ok") {
	case "":
	case "received":
		return c.t(r, "signal_received")
	default:
		return c.t(r, "saved")
	}
	return ""
}

// show calls GET path and renders name with the answer as Data.
func (c *Console) show(w http.ResponseWriter, r *http.Request, name, path string, extra func(obj)) {
	var data obj
	if p := c.call(r, http.MethodGet, path, nil).decode(&data); p != nil {
		c.failed(w, r, p)
		return
	}
	if extra != nil {
		extra(data)
	}
	data["next"] = nextPage(r, data)
	c.render(w, r, http.StatusOK, name, sessionOf(r), page{Flash: c.flash(r), Data: data})
}

// apiPath adds to an API path the request's read-your-writes position
// (?p=, after a form), its page cursor and the named query parameters.
func apiPath(path string, r *http.Request, pass ...string) string {
	in, q := r.URL.Query(), url.Values{}
	if p := in.Get("p"); p != "" {
		if _, err := strconv.ParseUint(p, 10, 64); err == nil {
			q.Set("min_position", p)
		}
	}
	for _, k := range append([]string{"cursor"}, pass...) {
		if v := strings.TrimSpace(in.Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return path
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + q.Encode()
}

// nextPage links to the page after a list's, keeping the page's filters.
func nextPage(r *http.Request, list obj) string {
	cursor, _ := list["next_cursor"].(string)
	if cursor == "" {
		return ""
	}
	q := r.URL.Query()
	q.Del("ok")
	q.Del("p")
	q.Set("cursor", cursor)
	return r.URL.Path + "?" + q.Encode()
}

// afterCommand redirects (PRG) to a page that shows the command's result.
func afterCommand(w http.ResponseWriter, r *http.Request, to string, a apiAnswer) {
	afterCommandSay(w, r, to, "1", a)
}

// afterCommandSay is afterCommand with a flash message other than "saved".
func afterCommandSay(w http.ResponseWriter, r *http.Request, to, ok string, a apiAnswer) {
	var res struct {
		Position uint64 `json:"position"`
	}
	_ = a.decode(&res)
	http.Redirect(w, r, to+"?ok="+ok+"&p="+strconv.FormatUint(res.Position, 10), http.StatusSeeOther)
}

// --- Professionals ---------------------------------------------------------

func (c *Console) caseload(w http.ResponseWriter, r *http.Request) {
	c.show(w, r, "caseload", apiPath("/v1/caseload?limit=200", r), nil)
}

func caseID(r *http.Request) (string, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	return id.String(), err == nil
}

// pathID is the {id} of the path, or a 404 page when it is not a UUID.
func (c *Console) pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, ok := caseID(r)
	if !ok {
		c.notFound(w, r)
	}
	return id, ok
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusNotFound, "error", sessionOf(r), page{Error: c.t(r, "not_found")})
}

// casePage shows a case of the professional's team: one audited read of
// the case and one of its history, as through the API.
func (c *Console) casePage(w http.ResponseWriter, r *http.Request) {
	c.renderCase(w, r, http.StatusOK, "", nil, "")
}

// breakGlass reads a case outside the team with a reason (audited as a
// break-glass read). The page is the answer to the POST: no URL holds it.
func (c *Console) breakGlass(w http.ResponseWriter, r *http.Request) {
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		c.renderCase(w, r, http.StatusUnprocessableEntity, c.t(r, "reason")+": ?", nil, "")
		return
	}
	c.renderCase(w, r, http.StatusOK, "", nil, reason)
}

func (c *Console) renderCase(w http.ResponseWriter, r *http.Request, status int, msg string, fields []domain.FieldError, reason string) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	var headers []string
	if reason != "" {
		headers = []string{"X-Break-Glass-Reason", reason}
	}
	var sig, hist, orgs obj
	a := c.call(r, http.MethodGet, apiPath("/v1/signals/"+id, r), nil, headers...)
	if a.Status == http.StatusForbidden && reason == "" {
		c.render(w, r, http.StatusForbidden, "breakglass", sessionOf(r), page{Title: "case", Data: obj{"id": id}})
		return
	}
	if p := a.decode(&sig); p != nil {
		c.failed(w, r, p)
		return
	}
	if p := c.call(r, http.MethodGet, "/v1/signals/"+id+"/history", nil, headers...).decode(&hist); p != nil {
		c.failed(w, r, p)
		return
	}
	_ = c.call(r, http.MethodGet, "/v1/organisations", nil).decode(&orgs)
	if msg == "" {
		msg = c.flash(r)
	}
	pg := page{Title: "case", Data: obj{"signal": sig, "history": hist, "organisations": orgs, "enums": enums(), "break_glass": reason != ""}, Fields: fields}
	if status >= 400 {
		pg.Error = msg
	} else {
		pg.Flash = msg
	}
	c.render(w, r, status, "case", sessionOf(r), pg)
}

// caseCommands maps the case page's forms to API commands and bodies.
var caseCommands = map[string]struct {
	path   string
	fields []string
}{
	"accept":    {"accept", nil},
	"decline":   {"decline", []string{"reason"}},
	"assign":    {"assign", []string{"professional_id"}},
	"follow-up": {"follow-ups", []string{"kind", "outcome", "note", "next_due"}},
	"refer":     {"referrals", []string{"organisation_id", "service", "reason"}},
	"feedback":  {"feedback", []string{"code"}},
	"close":     {"close", []string{"outcome", "note"}},
	"reopen":    {"reopen", []string{"reason"}},
}

func (c *Console) caseCommand(w http.ResponseWriter, r *http.Request) {
	id, ok := caseID(r)
	cmd, known := caseCommands[chi.URLParam(r, "action")]
	if !ok || !known {
		c.notFound(w, r)
		return
	}
	var body obj
	if len(cmd.fields) > 0 {
		body = formBody(r, cmd.fields...)
	}
	a := c.call(r, http.MethodPost, "/v1/signals/"+id+"/"+cmd.path, body, "Idempotency-Key", r.PostFormValue("idem"))
	if p := a.decode(nil); p != nil {
		c.renderCase(w, r, p.Status, p.message(), p.Errors, "")
		return
	}
	afterCommand(w, r, "/console/cases/"+id, a)
}

// formBody copies the named, non-empty form fields into a JSON body.
func formBody(r *http.Request, names ...string) obj {
	b := obj{}
	for _, n := range names {
		if v := strings.TrimSpace(r.PostFormValue(n)); v != "" {
			b[n] = v
		}
	}
	return b
}

// enums are the choices of the forms.
func enums() obj {
	return obj{
		"categories": []string(domain.Categories), "urgencies": []string(domain.Urgencies), "kinds": []string(domain.FollowUpKinds),
		"outcomes": []string(domain.FollowUpOutcomes), "feedback": []string(domain.FeedbackCodes), "close": []string(domain.CloseOutcomes),
		"consents": []string(domain.Consents),
	}
}

// --- Coordinators ------------------------------------------------------------

// monitorReport is the part of the API's response report the chart needs.
type monitorReport struct {
	Series []seriesPoint `json:"series"`
}

func (c *Console) monitor(w http.ResponseWriter, r *http.Request) {
	q := url.Values{}
	for _, k := range []string{"team_id", "neighbourhood", "category", "from", "to"} {
		if v := strings.TrimSpace(r.URL.Query().Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	var rep obj
	var series monitorReport
	a := c.call(r, http.MethodGet, "/v1/monitor/response?"+q.Encode(), nil)
	if p := a.decode(&rep); p != nil {
		c.failed(w, r, p)
		return
	}
	_ = a.decode(&series)
	var overdue obj
	q.Set("limit", "200")
	if cursor := r.URL.Query().Get("cursor"); cursor != "" {
		q.Set("cursor", cursor)
	}
	if p := c.call(r, http.MethodGet, "/v1/monitor/overdue?"+q.Encode(), nil).decode(&overdue); p != nil {
		c.failed(w, r, p)
		return
	}
	filter := obj{}
	for k := range q {
		if k != "limit" && k != "cursor" {
			filter[k] = q.Get(k)
		}
	}
	c.render(w, r, http.StatusOK, "monitor", sessionOf(r), page{Data: obj{"report": rep, "chart": chart(series.Series), "overdue": overdue, "next": nextPage(r, overdue),
		"filter": filter, "categories": []string(domain.Categories)}})
}

// configEditor edits a network's configuration list (routing rules,
// notification targets) as a table: one row per item, ordered by a
// position field; a row without a position is removed. A save replaces the
// whole list with If-Match on the version read, as the API does.
type configEditor struct {
	title   string
	api     string              // GET and PUT
	list    string              // the list's name in the API's JSON
	fields  []string            // the items' fields, in column order
	lists   map[string]bool     // fields that are lists of strings (comma-separated in the form)
	options map[string][]string // fields chosen from a list ("" first: none)
	bools   map[string]bool     // yes/no fields, chosen from options "" and "true"
}

var routingEditor = configEditor{
	title: "routing", api: "/v1/routing-rules", list: "rules",
	fields: []string{"id", "neighbourhood", "category", "urgency", "team_id", "on_raise"},
	options: map[string][]string{"category": append([]string{""}, domain.Categories...), "urgency": append([]string{""}, domain.Urgencies...),
		"on_raise": {"", "true"}},
	bools: map[string]bool{"on_raise": true},
}

var targetsEditor = configEditor{
	title: "targets", api: "/v1/notification-targets", list: "targets",
	fields: []string{"id", "subscriber", "subscriber_id", "channel", "url", "email", "language", "kinds"},
	lists:  map[string]bool{"kinds": true},
	options: map[string][]string{
		"subscriber": {domain.SubscribeTeam, domain.SubscribeOrganisation, domain.SubscribePrincipal, domain.SubscribeCoordinators},
		"channel":    {domain.ChannelWebhook, domain.ChannelEmail}, "language": {"", "nl", "en"},
	},
}

func (c *Console) routing(w http.ResponseWriter, r *http.Request) { c.editConfig(w, r, routingEditor) }
func (c *Console) targets(w http.ResponseWriter, r *http.Request) { c.editConfig(w, r, targetsEditor) }

func (c *Console) editConfig(w http.ResponseWriter, r *http.Request, e configEditor) {
	if r.Method == http.MethodPost {
		c.saveConfig(w, r, e)
		return
	}
	var cfg obj
	if p := c.call(r, http.MethodGet, apiPath(e.api, r), nil).decode(&cfg); p != nil {
		c.failed(w, r, p)
		return
	}
	items, _ := cfg[e.list].([]any)
	rows := make([]obj, 0, len(items))
	for _, it := range items {
		m, _ := it.(obj)
		for f := range e.lists {
			if l, ok := m[f].([]any); ok {
				parts := make([]string, len(l))
				for i, v := range l {
					parts[i], _ = v.(string)
				}
				m[f] = strings.Join(parts, ", ")
			}
		}
		rows = append(rows, m)
	}
	c.renderConfig(w, r, e, http.StatusOK, page{Flash: c.flash(r)}, cfg["version"], rows)
}

func (c *Console) renderConfig(w http.ResponseWriter, r *http.Request, e configEditor, status int, pg page, version any, rows []obj) {
	pg.Title = e.title
	pg.Data = obj{"version": version, "rows": rows, "fields": e.fields, "options": e.options, "action": r.URL.Path, "secrets": e.list == "targets"}
	c.render(w, r, status, "config", sessionOf(r), pg)
}

// saveConfig turns the table's rows into the list and PUTs it.
func (c *Console) saveConfig(w http.ResponseWriter, r *http.Request, e configEditor) {
	if err := r.ParseForm(); err != nil {
		c.notFound(w, r)
		return
	}
	type row struct {
		pos  int
		item obj
	}
	var rows []row
	positions := r.PostForm["position"]
	for i, p := range positions {
		pos, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			continue // no position: the row is removed (or the empty row stays empty)
		}
		item := obj{}
		for _, f := range e.fields {
			vals := r.PostForm[f]
			if i >= len(vals) {
				continue
			}
			v := strings.TrimSpace(vals[i])
			switch {
			case v == "":
			case e.bools[f]:
				item[f] = v == "true"
			case e.lists[f]:
				var l []string
				for _, part := range strings.Split(v, ",") {
					if part = strings.TrimSpace(part); part != "" {
						l = append(l, part)
					}
				}
				item[f] = l
			default:
				item[f] = v
			}
		}
		rows = append(rows, row{pos, item})
	}
	slices.SortStableFunc(rows, func(a, b row) int { return a.pos - b.pos })
	list := make([]obj, len(rows))
	for i, rw := range rows {
		list[i] = rw.item
	}
	a := c.call(r, http.MethodPut, e.api, obj{e.list: list}, "If-Match", strconv.Quote(r.PostFormValue("version")))
	if p := a.decode(nil); p != nil {
		for _, it := range list { // show the lists as typed
			for f := range e.lists {
				if l, ok := it[f].([]string); ok {
					it[f] = strings.Join(l, ", ")
				}
			}
		}
		c.renderConfig(w, r, e, p.Status, page{Error: p.message(), Fields: p.Errors}, r.PostFormValue("version"), list)
		return
	}
	afterCommand(w, r, r.URL.Path, a)
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	c.show(w, r, "notifications", "/v1/notifications/dead-letters", nil)
}

// retryDeadLetter queues a dead letter again (same idempotency key).
func (c *Console) retryDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	if p := c.call(r, http.MethodPost, "/v1/notifications/dead-letters/"+id+"/retry", nil).decode(nil); p != nil {
		c.failed(w, r, p)
		return
	}
	http.Redirect(w, r, "/console/notifications?ok=1", http.StatusSeeOther)
}

// --- Privacy officers ------------------------------------------------------------

func (c *Console) privacyHome(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "privacy", sessionOf(r), page{Flash: c.flash(r)})
}

// search finds subjects by name and birth date; a POST, so no name is in a
// URL or the browser's history.
func (c *Console) search(w http.ResponseWriter, r *http.Request) {
	var res obj
	if p := c.call(r, http.MethodPost, "/v1/subjects/search", formBody(r, "name", "birth_date")).decode(&res); p != nil {
		c.render(w, r, p.Status, "privacy", sessionOf(r), page{Error: p.message(), Fields: p.Errors})
		return
	}
	c.render(w, r, http.StatusOK, "privacy", sessionOf(r), page{Data: res})
}

// auditPage shows an access log, filtered by period (the API) and action.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, name, path string, data obj) {
	var log obj
	if p := c.call(r, http.MethodGet, apiPath(path, r, "from", "to"), nil).decode(&log); p != nil {
		c.failed(w, r, p)
		return
	}
	action := r.URL.Query().Get("action")
	if items, ok := log["items"].([]any); ok && action != "" {
		kept := []any{}
		for _, it := range items {
			if m, _ := it.(obj); m["action"] == action {
				kept = append(kept, it)
			}
		}
		log["items"] = kept
	}
	data["log"] = log
	data["next"] = nextPage(r, log)
	data["filter"] = obj{"from": r.URL.Query().Get("from"), "to": r.URL.Query().Get("to"), "action": action}
	c.render(w, r, http.StatusOK, name, sessionOf(r), page{Flash: c.flash(r), Data: data})
}

func (c *Console) subjectLog(w http.ResponseWriter, r *http.Request) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	c.auditPage(w, r, "subject", "/v1/audit/subjects/"+id, obj{"id": id})
}

func (c *Console) actorLog(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if id == "" {
		http.Redirect(w, r, "/console/privacy", http.StatusSeeOther)
		return
	}
	c.auditPage(w, r, "actor", "/v1/audit/actors/"+url.PathEscape(id), obj{"id": id})
}

func (c *Console) breakGlassReview(w http.ResponseWriter, r *http.Request) {
	c.auditPage(w, r, "breakglass_review", "/v1/audit/break-glass", obj{})
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

func (c *Console) erase(w http.ResponseWriter, r *http.Request) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.render(w, r, http.StatusUnprocessableEntity, "error", sessionOf(r), page{Error: c.t(r, "erase_confirm")})
		return
	}
	a := c.call(r, http.MethodPost, "/v1/subjects/"+id+"/erasure", formBody(r, "reason", "request_ref"))
	if p := a.decode(nil); p != nil {
		c.failed(w, r, p)
		return
	}
	afterCommand(w, r, "/console/privacy/subjects/"+id, a)
}

// --- Volunteers and partners -----------------------------------------------------------

func (c *Console) raiseForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "raise", sessionOf(r), page{Data: obj{"enums": enums(), "idem": uuid.NewString()}})
}

func (c *Console) raise(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.render(w, r, http.StatusBadRequest, "error", sessionOf(r), page{Error: http.StatusText(http.StatusBadRequest)})
		return
	}
	body := formBody(r, "neighbourhood", "urgency", "description", "consent")
	body["subject"] = formBody(r, "name", "birth_date", "address", "phone")
	body["categories"] = r.PostForm["categories"]
	a := c.call(r, http.MethodPost, "/v1/signals", body, "Idempotency-Key", r.PostFormValue("idem"))
	if p := a.decode(nil); p != nil {
		// The form comes back with what was typed (this page is the POST's
		// answer: nothing lands in a URL).
		form := obj{}
		for k, v := range r.PostForm {
			form[k] = strings.Join(v, ",")
		}
		c.render(w, r, p.Status, "raise", sessionOf(r), page{Error: p.message(), Fields: p.Errors,
			Data: obj{"enums": enums(), "idem": r.PostFormValue("idem"), "form": form, "checked": r.PostForm["categories"]}})
		return
	}
	afterCommandSay(w, r, "/console/my", "received", a)
}

func (c *Console) mySignals(w http.ResponseWriter, r *http.Request) {
	c.renderMy(w, r, http.StatusOK, nil)
}

// renderMy shows the signaller's own signals, with the handover and
// withdraw forms of those still raised; p is the problem of a form sent
// from it (nil: none).
func (c *Console) renderMy(w http.ResponseWriter, r *http.Request, status int, p *problem) {
	var data, teams obj
	if p := c.call(r, http.MethodGet, apiPath("/v1/my/signals", r), nil).decode(&data); p != nil {
		c.failed(w, r, p)
		return
	}
	_ = c.call(r, http.MethodGet, "/v1/teams", nil).decode(&teams)
	data["teams"], data["next"] = teams["items"], nextPage(r, data)
	pg := page{Flash: c.flash(r), Data: data}
	if p != nil {
		pg.Flash, pg.Error, pg.Fields = "", p.message(), p.Errors
		data["failed"] = chi.URLParam(r, "id")
	}
	c.render(w, r, status, "my", sessionOf(r), pg)
}

// signallerCommands are the commands a volunteer or partner gives on the
// signals they raised, with their form fields.
var signallerCommands = map[string][]string{
	"handover": {"team_id", "note"},
	"withdraw": {"reason"},
}

// signallerCommand hands over or withdraws one of the signaller's own
// signals; without a team the network's routing rules choose it.
func (c *Console) signallerCommand(w http.ResponseWriter, r *http.Request) {
	id, ok := caseID(r)
	fields, known := signallerCommands[chi.URLParam(r, "action")]
	if !ok || !known {
		c.notFound(w, r)
		return
	}
	a := c.call(r, http.MethodPost, "/v1/signals/"+id+"/"+chi.URLParam(r, "action"), formBody(r, fields...), "Idempotency-Key", r.PostFormValue("idem"))
	if p := a.decode(nil); p != nil {
		c.renderMy(w, r, p.Status, p)
		return
	}
	afterCommand(w, r, "/console/my", a)
}

func (c *Console) referrals(w http.ResponseWriter, r *http.Request) {
	c.show(w, r, "referrals", apiPath("/v1/referrals", r), nil)
}

func (c *Console) answerReferral(w http.ResponseWriter, r *http.Request) {
	id, ok := caseID(r)
	answer := chi.URLParam(r, "answer")
	if !ok || (answer != "accept" && answer != "decline" && answer != "complete") {
		c.notFound(w, r)
		return
	}
	a := c.call(r, http.MethodPost, "/v1/referrals/"+id+"/"+answer, formBody(r, "note"))
	if p := a.decode(nil); p != nil {
		c.failed(w, r, p)
		return
	}
	afterCommand(w, r, "/console/referrals", a)
}
