package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// --- Coordinators ------------------------------------------------------------

// monitorReport is the part of the API's response report the page computes
// with.
type monitorReport struct {
	SuppressK int           `json:"suppress_k"`
	Series    []seriesPoint `json:"series"`
	figures
	ByTeam          []groupFigures `json:"by_team"`
	ByNeighbourhood []groupFigures `json:"by_neighbourhood"`
	ByCategory      []groupFigures `json:"by_category"`
	BySource        []groupFigures `json:"by_source"`
}

// figures are the response figures of /v1/monitor/response, as the page
// shows them. A count the API suppressed (null: fewer than k signals, or
// one that would give such a count back) shows as "<k".
type figures struct {
	Total              count    `json:"total"`
	Answered           count    `json:"answered"`
	WithinNorm         count    `json:"within_norm"`
	ShareWithin        *float64 `json:"within_norm_share"`
	Late               count    `json:"late"`
	Late3x             count    `json:"late_3x"`
	AnsweredLate       count    `json:"answered_late"`
	Waiting            count    `json:"waiting"`
	Unanswered         count    `json:"unanswered"`
	Median             *float64 `json:"median_first_response_hours"`
	P90                *float64 `json:"p90_first_response_hours"`
	FeedbackGiven      count    `json:"feedback_given"`
	FeedbackWithinNorm count    `json:"feedback_within_norm"`
	// NormVersions are the signals counted by the version of the norms
	// they were raised under.
	NormVersions []struct {
		Version string `json:"version"`
		Signals count  `json:"signals"`
	} `json:"norm_versions"`
}

type groupFigures struct {
	Key string `json:"key"`
	figures
}

// count is a count of the monitor report, or a suppressed one (null). K
// is the report's k of small-cell suppression (monitorReport.nameK).
type count struct {
	N      int
	Hidden bool
	K      int
}

// UnmarshalJSON reads a number, or null (suppressed).
func (c *count) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = count{Hidden: true}
		return nil
	}
	*c = count{}
	return json.Unmarshal(b, &c.N)
}

// String writes the count, or "<k" when suppressed.
func (c count) String() string {
	if c.Hidden {
		return "<" + strconv.Itoa(domain.SuppressK(c.K))
	}
	return strconv.Itoa(c.N)
}

// nameK gives every count of the report the report's k, so a suppressed
// one names the k the server applied.
func (r *monitorReport) nameK() {
	k := r.SuppressK
	r.figures.nameK(k)
	for _, groups := range [][]groupFigures{r.ByTeam, r.ByNeighbourhood, r.ByCategory, r.BySource} {
		for i := range groups {
			groups[i].nameK(k)
		}
	}
	for i := range r.Series {
		r.Series[i].Open.K, r.Series[i].Overdue.K = k, k
	}
}

func (f *figures) nameK(k int) {
	for _, c := range []*count{&f.Total, &f.Answered, &f.WithinNorm, &f.Late, &f.Late3x, &f.AnsweredLate, &f.Waiting,
		&f.Unanswered, &f.FeedbackGiven, &f.FeedbackWithinNorm} {
		c.K = k
	}
	for i := range f.NormVersions {
		f.NormVersions[i].Signals.K = k
	}
}

// Decided are the signals whose share within the norm is known.
func (f figures) Decided() count {
	if f.Total.Hidden || f.Waiting.Hidden {
		return count{Hidden: true, K: f.Total.K}
	}
	return count{N: f.Total.N - f.Waiting.N}
}

// Share is the share of the decided signals answered within the norm (the
// API's within_norm_share); ok is false while none is decided, or when it
// is suppressed. A signal still waiting within its norm counts neither way.
func (f figures) Share() (float64, bool) {
	if f.ShareWithin == nil {
		return 0, false
	}
	return *f.ShareWithin, true
}

// SharePct writes Share, or "–" while nothing is decided.
func (f figures) SharePct(lang string) string {
	share, ok := f.Share()
	if !ok {
		return "–"
	}
	return formatPercent(lang, share)
}

// monitorDays is the monitor's default period: the last four weeks.
const monitorDays = 28

func (c *Console) monitor(w http.ResponseWriter, r *http.Request) {
	in := r.URL.Query()
	q := url.Values{}
	filter := obj{}
	for _, k := range []string{"team_id", "neighbourhood", "category", "from", "to"} {
		if v := strings.TrimSpace(in.Get(k)); v != "" {
			q.Set(k, v)
			filter[k] = v
		}
	}
	if q.Get("from") == "" {
		from := c.Now().In(c.Location).AddDate(0, 0, -(monitorDays - 1)).Format(time.DateOnly)
		q.Set("from", from)
		filter["from"] = from
	}
	var rep obj
	var parsed monitorReport
	a := c.call(r, http.MethodGet, "/v1/monitor/response?"+q.Encode(), nil)
	if p := a.decode(&rep); p != nil {
		if p.Status == http.StatusUnprocessableEntity { // a filter the API refused: show the form with its errors
			pg := c.refused(r, "m", p)
			pg.Data = obj{"filter": filter, "categories": c.categoryIDs(r, false), "teams": c.teamIDs(r)}
			c.render(w, r, p.Status, "monitor", sessionOf(r), pg)
			return
		}
		c.failed(w, r, p)
		return
	}
	_ = json.Unmarshal(a.Body, &parsed)
	parsed.nameK()
	// The filter's choices: known teams, and the neighbourhoods of the
	// period (of the whole network when a filter narrows the report).
	neighbourhoods := keys(parsed.ByNeighbourhood)
	if q.Has("team_id") || q.Has("neighbourhood") || q.Has("category") {
		all := url.Values{"from": {q.Get("from")}}
		if q.Has("to") {
			all.Set("to", q.Get("to"))
		}
		var whole monitorReport
		if c.call(r, http.MethodGet, "/v1/monitor/response?"+all.Encode(), nil).decode(&whole) == nil {
			neighbourhoods = keys(whole.ByNeighbourhood)
		}
	}
	var overdue obj
	oq := url.Values{"limit": {"100"}}
	for _, k := range []string{"team_id", "neighbourhood", "category"} {
		if q.Has(k) {
			oq.Set(k, q.Get(k))
		}
	}
	if cursor := in.Get("cursor"); cursor != "" {
		oq.Set("cursor", cursor)
	}
	if p := c.call(r, http.MethodGet, apiPath("/v1/monitor/overdue?"+oq.Encode(), r), nil).decode(&overdue); p != nil {
		c.failed(w, r, p)
		return
	}
	share, decided := parsed.Share()
	c.render(w, r, http.StatusOK, "monitor", sessionOf(r), page{Data: obj{"report": rep, "figures": parsed.figures,
		"share": share, "decided": decided, "groups": []obj{
			{"key": "by_team", "set": "team", "rows": parsed.ByTeam},
			{"key": "by_neighbourhood", "set": "", "rows": parsed.ByNeighbourhood},
			{"key": "by_category", "set": "category", "rows": parsed.ByCategory},
			{"key": "by_source", "set": "source", "rows": parsed.BySource},
		},
		"chart": chart(parsed.Series), "overdue": overdue, "next": nextPage(r, overdue),
		"filter": filter, "categories": c.categoryIDs(r, false), "teams": c.teamIDs(r), "neighbourhoods": neighbourhoods}})
}

func keys(groups []groupFigures) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		out = append(out, g.Key)
	}
	return out
}

// teamIDs are the teams of the network a form may name.
func (c *Console) teamIDs(r *http.Request) []string {
	var teams struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	_ = c.call(r, http.MethodGet, "/v1/teams", nil).decode(&teams)
	out := make([]string, 0, len(teams.Items))
	for _, t := range teams.Items {
		out = append(out, t.ID)
	}
	return out
}

// monitorSignal is what a coordinator sees of one signal (no personal
// data), with the forms a coordinator may use on it: hand over a raised
// signal, assign a case to a professional of its team.
func (c *Console) monitorSignal(w http.ResponseWriter, r *http.Request) {
	c.renderMonitorSignal(w, r, http.StatusOK, page{})
}

func (c *Console) renderMonitorSignal(w http.ResponseWriter, r *http.Request, status int, pg page) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	var sig obj
	if p := c.call(r, http.MethodGet, apiPath("/v1/monitor/signals/"+id, r), nil).decode(&sig); p != nil {
		c.failed(w, r, p)
		return
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
	if pg.Error == "" {
		pg.Flash = c.flash(r)
	}
	pg.Title = "signal"
	pg.Data = obj{"signal": sig, "people": people, "colleagues": colleagues, "teams": c.teamIDs(r)}
	c.render(w, r, status, "monitor_signal", sessionOf(r), pg)
}

// coordinatorAssign assigns a case to a professional of its team.
func (c *Console) coordinatorAssign(w http.ResponseWriter, r *http.Request) {
	id, ok := c.pathID(w, r)
	if !ok {
		return
	}
	a := c.call(r, http.MethodPost, "/v1/signals/"+id+"/assign", formBody(r, "professional_id"), "Idempotency-Key", r.PostFormValue("idem"))
	if p := a.decode(nil); p != nil {
		c.renderMonitorSignal(w, r, p.Status, c.refused(r, "assign", p))
		return
	}
	afterCommand(w, r, "/console/monitor/signals/"+id, a)
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
	sets    map[string]string   // the label set of a field's options
	bools   map[string]bool     // yes/no fields, chosen from options "" and "true"
	teams   map[string]bool     // fields chosen from the network's teams
	help    string              // a text key explaining the table, if any
	// fromAPI and toAPI turn a field the API holds as a structure into the
	// text of its input and back (a category's norms).
	fromAPI map[string]func(any) string
	toAPI   map[string]func(string) any
}

var routingEditor = configEditor{
	title: "routing", api: "/v1/routing-rules", list: "rules",
	fields: []string{"id", "neighbourhood", "category", "urgency", "team_id", "on_raise"},
	options: map[string][]string{"category": append([]string{""}, domain.Categories...), "urgency": append([]string{""}, domain.Urgencies...),
		"on_raise": {"", "true"}},
	sets:  map[string]string{"category": "category", "urgency": "urgency", "on_raise": "yes"},
	bools: map[string]bool{"on_raise": true},
	teams: map[string]bool{"team_id": true},
}

var targetsEditor = configEditor{
	title: "targets", api: "/v1/notification-targets", list: "targets",
	fields: []string{"id", "subscriber", "subscriber_id", "channel", "url", "email", "language", "kinds"},
	lists:  map[string]bool{"kinds": true},
	options: map[string][]string{
		"subscriber": {domain.SubscribeTeam, domain.SubscribeOrganisation, domain.SubscribePrincipal, domain.SubscribeCoordinators, domain.SubscribePrivacyOfficers},
		"channel":    {domain.ChannelWebhook, domain.ChannelEmail}, "language": {"", "nl", "en"},
	},
	sets: map[string]string{"subscriber": "subscriber", "channel": "channel", "language": "language"},
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
		for f, fn := range e.fromAPI {
			m[f] = fn(m[f])
		}
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
	options := map[string][]string{}
	for f, o := range e.options {
		options[f] = o
	}
	if len(e.teams) > 0 {
		teams := append([]string{""}, c.teamIDs(r)...)
		for f := range e.teams {
			if len(teams) > 1 {
				options[f] = teams
			}
		}
	}
	if e.list == "rules" { // a rule names one of the network's own categories
		options["category"] = append([]string{""}, c.categoryIDs(r, false)...)
	}
	pg.Data = obj{"version": version, "rows": rows, "fields": e.fields, "options": options, "sets": e.sets, "action": r.URL.Path,
		"secrets": e.list == "targets", "help": e.help}
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
			case e.toAPI[f] != nil:
				item[f] = e.toAPI[f](v)
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
		c.renderConfig(w, r, e, p.Status, c.refused(r, e.list, p), r.PostFormValue("version"), list)
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

// --- Everyone: the sociale kaart; admins register organisations ---------------

func (c *Console) organisations(w http.ResponseWriter, r *http.Request) {
	c.renderOrganisations(w, r, http.StatusOK, page{})
}

func (c *Console) renderOrganisations(w http.ResponseWriter, r *http.Request, status int, pg page) {
	var orgs obj
	if p := c.call(r, http.MethodGet, apiPath("/v1/organisations?limit=200", r), nil).decode(&orgs); p != nil {
		c.failed(w, r, p)
		return
	}
	if pg.Error == "" {
		pg.Flash = c.flash(r)
	}
	form := obj{}
	if status >= 400 {
		for _, k := range []string{"id", "name", "kind", "service", "service_description", "service_volunteer"} {
			form[k] = r.PostFormValue(k)
		}
	}
	pg.Data = obj{"items": orgs["items"], "next": nextPage(r, orgs), "enums": enums(), "form": form, "idem": newIdem(r)}
	c.render(w, r, status, "organisations", sessionOf(r), pg)
}

// registerOrganisation registers an organisation with at most one service
// (more can follow as the API grows a command for them).
func (c *Console) registerOrganisation(w http.ResponseWriter, r *http.Request) {
	body := formBody(r, "id", "name", "kind")
	if name := strings.TrimSpace(r.PostFormValue("service")); name != "" {
		body["services"] = []obj{{"name": name, "description": strings.TrimSpace(r.PostFormValue("service_description")),
			"volunteer": r.PostFormValue("service_volunteer") == "true"}}
	}
	a := c.call(r, http.MethodPost, "/v1/organisations", body, "Idempotency-Key", r.PostFormValue("idem"))
	if p := a.decode(nil); p != nil {
		c.renderOrganisations(w, r, p.Status, c.refused(r, "org", p))
		return
	}
	afterCommand(w, r, "/console/organisations", a)
}
