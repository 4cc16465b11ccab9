package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

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
	case "erased":
		return c.t(r, "erased_done")
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
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	http.Redirect(w, r, to+sep+"ok="+ok+"&p="+strconv.FormatUint(res.Position, 10), http.StatusSeeOther)
}

// person is a principal of the network as the directory lists it.
type person struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	Teams []string `json:"teams"`
}

// staff reports whether the signed-in user may read the directory.
func staff(p domain.Principal) bool {
	return p.HasRole(domain.RoleProfessional) || p.HasRole(domain.RoleCoordinator) || p.HasRole(domain.RolePrivacyOfficer) || p.HasRole(domain.RoleAdmin)
}

// people is the network's directory (GET /v1/principals) by id; empty for
// volunteers and partners, who may not read it.
func (c *Console) people(r *http.Request) map[string]person {
	out := map[string]person{}
	s := sessionOf(r)
	if s == nil || !staff(s.principal) {
		return out
	}
	var dir struct {
		Items []person `json:"items"`
	}
	if c.call(r, http.MethodGet, "/v1/principals", nil).decode(&dir) == nil {
		for _, p := range dir.Items {
			out[p.ID] = p
		}
	}
	return out
}

// actorName is how a page names an actor: "Anna de Vries (professional)",
// the routing rules for the system, else the id with its role.
func actorName(lang string, people map[string]person, id, role any) string {
	sid, _ := id.(string)
	srole, _ := role.(string)
	if strings.HasPrefix(sid, "system:") || srole == domain.SystemRole {
		return translate(lang, "system_routing")
	}
	name := sid
	if p, ok := people[sid]; ok && p.Name != "" {
		name = p.Name
	}
	if srole == "" {
		if p, ok := people[sid]; ok && len(p.Roles) > 0 {
			srole = p.Roles[0]
		}
	}
	if srole == "" {
		return name
	}
	return name + " (" + label(lang, "role", srole) + ")"
}

// today is the date of now in the network's time zone.
func (c *Console) today() string { return c.Now().In(c.Location).Format(time.DateOnly) }

// localDate is the date of an RFC 3339 time in the network's time zone.
func (c *Console) localDate(v any) string {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ""
	}
	return t.In(c.Location).Format(time.DateOnly)
}

// switchLanguage sets the console's language and goes back to the page.
func (c *Console) switchLanguage(w http.ResponseWriter, r *http.Request) {
	if l := r.URL.Query().Get("lang"); l == "nl" || l == "en" {
		http.SetCookie(w, &http.Cookie{Name: "bs_lang", Value: l, Path: "/console", HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 365 * 24 * 3600})
	}
	back := r.URL.Query().Get("back")
	if !strings.HasPrefix(back, "/console/") || strings.ContainsAny(back, "\\") || strings.HasPrefix(back, "//") {
		back = "/console"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// --- Professionals ---------------------------------------------------------

// caseloadFilters are the caseload's filters (?f=), each an API query.
var caseloadFilters = []struct{ key, query, count string }{
	{"", "", "all"},
	{"mine", "assignee=me", "mine"},
	{"unassigned", "assignee=none", "unassigned"},
	{"overdue", "overdue=true", "overdue"},
}

func (c *Console) caseload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := q.Get("f")
	path := "/v1/caseload?limit=50"
	known := false
	for _, f := range caseloadFilters {
		if f.key == filter {
			known = true
			if f.query != "" {
				path += "&" + f.query
			}
		}
	}
	if !known {
		filter = ""
	}
	team := strings.TrimSpace(q.Get("team"))
	if team != "" {
		path += "&team_id=" + url.QueryEscape(team)
	}
	var list, counts obj
	if p := c.call(r, http.MethodGet, apiPath(path, r), nil).decode(&list); p != nil {
		c.failed(w, r, p)
		return
	}
	_ = c.call(r, http.MethodGet, apiPath("/v1/caseload/counts", r), nil).decode(&counts)
	today := c.today()
	items, _ := list["items"].([]any)
	for _, it := range items {
		m, _ := it.(obj)
		next, _ := m["next_due"].(string)
		due := c.localDate(m["response_due_at"])
		switch {
		case m["overdue"] == true || (next != "" && next < today):
			m["mark"] = "overdue"
		case due == today || next == today:
			m["mark"] = "today"
		}
	}
	// The filters as links, each keeping the team, with its count.
	type link struct {
		Key, Href string
		Count     any
		Current   bool
	}
	var links []link
	for _, f := range caseloadFilters {
		v := url.Values{}
		if f.key != "" {
			v.Set("f", f.key)
		}
		if team != "" {
			v.Set("team", team)
		}
		href := "/console/caseload"
		if len(v) > 0 {
			href += "?" + v.Encode()
		}
		links = append(links, link{Key: "filter_" + f.count, Href: href, Count: counts[f.count], Current: f.key == filter})
	}
	var teams []link
	if byTeam, _ := counts["by_team"].([]any); len(byTeam) > 1 {
		for _, t := range byTeam {
			m, _ := t.(obj)
			id, _ := m["team_id"].(string)
			v := url.Values{"team": {id}}
			if filter != "" {
				v.Set("f", filter)
			}
			teams = append(teams, link{Key: id, Href: "/console/caseload?" + v.Encode(), Count: m["count"], Current: id == team})
		}
		v := url.Values{}
		if filter != "" {
			v.Set("f", filter)
		}
		href := "/console/caseload"
		if len(v) > 0 {
			href += "?" + v.Encode()
		}
		teams = append([]link{{Key: "", Href: href, Current: team == ""}}, teams...)
	}
	c.render(w, r, http.StatusOK, "caseload", sessionOf(r), page{Flash: c.flash(r), Data: obj{
		"items": items, "next": nextPage(r, list), "filters": links, "teams": teams, "filter": filter, "team": team,
		"people": c.people(r),
	}})
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
	c.renderCase(w, r, http.StatusOK, page{}, "")
}

// breakGlass reads a case outside the team with a reason (audited as a
// break-glass read). The page is the answer to the POST: no URL holds it.
func (c *Console) breakGlass(w http.ResponseWriter, r *http.Request) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		p := &problem{Status: http.StatusUnprocessableEntity, Code: "validation", Errors: []domain.FieldError{{Field: "reason", Message: "is required"}}}
		pg := c.refused(r, "breakglass", p)
		pg.Title, pg.Data = "break_glass", obj{"id": id}
		c.render(w, r, http.StatusUnprocessableEntity, "breakglass", sessionOf(r), pg)
		return
	}
	c.renderCase(w, r, http.StatusOK, page{}, reason)
}

// renderCase shows the case page; pg carries the message or the errors of
// a form sent from it.
func (c *Console) renderCase(w http.ResponseWriter, r *http.Request, status int, pg page, reason string) {
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
		c.render(w, r, http.StatusForbidden, "breakglass", sessionOf(r), page{Title: "break_glass", Data: obj{"id": id}})
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
	_ = c.call(r, http.MethodGet, "/v1/organisations?limit=500", nil).decode(&orgs)
	if pg.Error == "" && pg.Flash == "" {
		pg.Flash = c.flash(r)
	}
	people := c.people(r)
	team, _ := sig["team_id"].(string)
	var colleagues []person
	for _, p := range people {
		if slices.Contains(p.Roles, string(domain.RoleProfessional)) && slices.Contains(p.Teams, team) {
			colleagues = append(colleagues, p)
		}
	}
	slices.SortFunc(colleagues, func(a, b person) int { return strings.Compare(a.Name, b.Name) })
	orgNames := map[string]string{}
	if items, ok := orgs["items"].([]any); ok {
		for _, it := range items {
			m, _ := it.(obj)
			id, _ := m["id"].(string)
			orgNames[id], _ = m["name"].(string)
		}
	}
	pg.Title = "case"
	pg.Data = obj{"signal": sig, "history": hist, "organisations": orgs, "org_names": orgNames, "enums": enums(),
		"break_glass": reason != "", "people": people, "colleagues": colleagues}
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
	action := chi.URLParam(r, "action")
	cmd, known := caseCommands[action]
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
		c.renderCase(w, r, p.Status, c.refused(r, action, p), "")
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
		"consents": []string(domain.Consents), "org_kinds": []string(domain.OrganisationKind),
	}
}

// --- Professionals and coordinators: signals without a team --------------------

// unrouted lists the network's raised signals still without a team, each
// with a handover form (a team, or the routing rules).
func (c *Console) unrouted(w http.ResponseWriter, r *http.Request) {
	c.renderUnrouted(w, r, http.StatusOK, page{})
}

func (c *Console) renderUnrouted(w http.ResponseWriter, r *http.Request, status int, pg page) {
	var list obj
	if p := c.call(r, http.MethodGet, apiPath("/v1/signals/unrouted?limit=100", r), nil).decode(&list); p != nil {
		c.failed(w, r, p)
		return
	}
	if pg.Error == "" {
		pg.Flash = c.flash(r)
	}
	pg.Data = obj{"items": list["items"], "next": nextPage(r, list), "teams": c.teamIDs(r), "failed": chi.URLParam(r, "id")}
	c.render(w, r, status, "unrouted", sessionOf(r), pg)
}
