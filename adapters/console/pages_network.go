package console

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// --- A network's own configuration, and the coordinator's signal list ----------

// networkCategory is a category as /v1/categories gives it.
type networkCategory struct {
	ID      string `json:"id"`
	LabelNL string `json:"label_nl"`
	LabelEN string `json:"label_en"`
	Retired bool   `json:"retired"`
}

// networkCategories are the signed-in user's network's categories, retired
// ones included (nil when the API does not answer).
func (c *Console) networkCategories(r *http.Request) []networkCategory {
	var cats struct {
		Categories []networkCategory `json:"categories"`
	}
	if c.call(r, http.MethodGet, "/v1/categories", nil).decode(&cats) != nil {
		return nil
	}
	return cats.Categories
}

// networkNeighbourhood is a neighbourhood as /v1/neighbourhoods gives it.
type networkNeighbourhood struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Retired bool   `json:"retired"`
}

// activeNeighbourhoods are the network's neighbourhoods a signal may name
// (not retired), offered as the choices of a neighbourhood field (nil when
// the network keeps no list or the API does not answer: the field is then
// typed).
func (c *Console) activeNeighbourhoods(r *http.Request) []networkNeighbourhood {
	var hoods struct {
		Neighbourhoods []networkNeighbourhood `json:"neighbourhoods"`
	}
	if c.call(r, http.MethodGet, "/v1/neighbourhoods", nil).decode(&hoods) != nil {
		return nil
	}
	var out []networkNeighbourhood
	for _, h := range hoods.Neighbourhoods {
		if !h.Retired {
			out = append(out, h)
		}
	}
	return out
}

// categoryNames are the network's category labels by id. A default
// category under its default label keeps the console's own words for it
// (labels.go); a network's own label replaces them.
func (c *Console) categoryNames(r *http.Request) map[string][2]string {
	defaults := map[string]domain.Category{}
	for _, d := range domain.DefaultCategories() {
		defaults[d.ID] = d
	}
	out := map[string][2]string{}
	for _, cat := range c.networkCategories(r) {
		if d, ok := defaults[cat.ID]; ok && d.LabelNL == cat.LabelNL && d.LabelEN == cat.LabelEN {
			continue
		}
		out[cat.ID] = [2]string{cat.LabelNL, cat.LabelEN}
	}
	return out
}

// categoryIDs lists the network's category ids, the active ones only or
// all.
func (c *Console) categoryIDs(r *http.Request, activeOnly bool) []string {
	var out []string
	for _, cat := range c.networkCategories(r) {
		if !activeOnly || !cat.Retired {
			out = append(out, cat.ID)
		}
	}
	if out == nil {
		return []string(domain.Categories)
	}
	return out
}

// categoryLabel is the words for a category of the page's network.
func categoryLabel(p page, code any) string {
	if l, ok := p.Categories[fmt.Sprint(code)]; ok {
		if p.Lang == "en" {
			return l[1]
		}
		return l[0]
	}
	return label(p.Lang, "category", code)
}

// categoryLabels labels a list of categories, comma-separated.
func categoryLabels(p page, codes any) string {
	var parts []string
	switch v := codes.(type) {
	case []any:
		for _, c := range v {
			parts = append(parts, categoryLabel(p, c))
		}
	case []string:
		for _, c := range v {
			parts = append(parts, categoryLabel(p, c))
		}
	}
	return strings.Join(parts, ", ")
}

// A norm is written in the console as a number and a unit: "24h" (hours)
// or "3d" (working days), and a category's norms as "high: 8h, acute: 4h".
var normText = regexp.MustCompile(`^\s*(\d{1,4})\s*([hd])\s*$`)

// parseNorm reads a norm; what does not read is sent as an empty norm, which
// the API refuses with the field it names.
func parseNorm(s string) obj {
	m := normText.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return obj{}
	}
	n, _ := strconv.Atoi(m[1])
	if m[2] == "h" {
		return obj{"hours": n}
	}
	return obj{"working_days": n}
}

// formatNorm writes a norm of the API's JSON.
func formatNorm(v any) string {
	m, _ := v.(obj)
	if h, ok := m["hours"].(float64); ok && h > 0 {
		return strconv.Itoa(int(h)) + "h"
	}
	if d, ok := m["working_days"].(float64); ok && d > 0 {
		return strconv.Itoa(int(d)) + "d"
	}
	return ""
}

var categoriesEditor = configEditor{
	title: "categories", api: "/v1/categories", list: "categories",
	fields:  []string{"id", "label_nl", "label_en", "description", "norms", "retired"},
	options: map[string][]string{"retired": {"", "true"}},
	sets:    map[string]string{"retired": "yes"},
	bools:   map[string]bool{"retired": true},
	help:    "categories_help",
	fromAPI: map[string]func(any) string{"norms": func(v any) string {
		m, _ := v.(obj)
		var parts []string
		for _, u := range domain.Urgencies {
			if n := formatNorm(m[u]); n != "" {
				parts = append(parts, u+": "+n)
			}
		}
		return strings.Join(parts, ", ")
	}},
	toAPI: map[string]func(string) any{"norms": func(s string) any {
		out := obj{}
		for _, part := range strings.Split(s, ",") {
			u, n, _ := strings.Cut(part, ":")
			if u = strings.TrimSpace(u); u != "" {
				out[u] = parseNorm(n)
			}
		}
		return out
	}},
}

func (c *Console) categories(w http.ResponseWriter, r *http.Request) {
	c.editConfig(w, r, categoriesEditor)
}

// normsPage shows the network's norms and lets a coordinator replace them.
func (c *Console) normsPage(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			c.notFound(w, r)
			return
		}
		byUrgency := obj{}
		form := obj{}
		for _, u := range domain.Urgencies {
			v := r.PostFormValue("norm-" + u)
			form[u] = v
			byUrgency[u] = parseNorm(v)
		}
		days, _ := strconv.Atoi(strings.TrimSpace(r.PostFormValue("feedback_working_days")))
		form["feedback_working_days"] = r.PostFormValue("feedback_working_days")
		a := c.call(r, http.MethodPut, "/v1/norms", obj{"norms": obj{"by_urgency": byUrgency, "feedback_working_days": days}},
			"If-Match", strconv.Quote(r.PostFormValue("version")))
		if p := a.decode(nil); p != nil {
			pg := c.refused(r, "norms", p)
			pg.Title = "norms"
			pg.Data = obj{"version": r.PostFormValue("version"), "form": form, "urgencies": []string(domain.Urgencies)}
			c.render(w, r, p.Status, "norms", sessionOf(r), pg)
			return
		}
		afterCommand(w, r, "/console/norms", a)
		return
	}
	var cfg struct {
		Version int `json:"version"`
		Norms   struct {
			ByUrgency map[string]obj `json:"by_urgency"`
			Feedback  int            `json:"feedback_working_days"`
		} `json:"norms"`
	}
	if p := c.call(r, http.MethodGet, apiPath("/v1/norms", r), nil).decode(&cfg); p != nil {
		c.failed(w, r, p)
		return
	}
	form := obj{"feedback_working_days": strconv.Itoa(cfg.Norms.Feedback)}
	for _, u := range domain.Urgencies {
		m := obj{}
		for k, v := range cfg.Norms.ByUrgency[u] {
			m[k] = v
		}
		form[u] = formatNorm(m)
	}
	c.render(w, r, http.StatusOK, "norms", sessionOf(r), page{Title: "norms", Flash: c.flash(r),
		Data: obj{"version": cfg.Version, "form": form, "urgencies": []string(domain.Urgencies)}})
}

// feedbackTexts shows what a signaller reads for each feedback code, with
// a preview as the signaller sees it, and lets a coordinator replace the
// texts; "preview" shows the texts typed without saving them.
func (c *Console) feedbackTexts(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			c.notFound(w, r)
			return
		}
		texts := map[string]obj{}
		for _, code := range domain.FeedbackCodes {
			texts[code] = obj{"nl": strings.TrimSpace(r.PostFormValue("text-" + code + "-nl")), "en": strings.TrimSpace(r.PostFormValue("text-" + code + "-en"))}
		}
		version := r.PostFormValue("version")
		if r.PostFormValue("preview") != "" {
			c.renderFeedbackTexts(w, r, http.StatusOK, page{Flash: c.t(r, "previewed")}, version, texts)
			return
		}
		a := c.call(r, http.MethodPut, "/v1/feedback-texts", obj{"texts": texts}, "If-Match", strconv.Quote(version))
		if p := a.decode(nil); p != nil {
			// texts.received.nl names the input text-received-nl.
			for i, e := range p.Errors {
				if parts := strings.Split(e.Field, "."); len(parts) == 3 && parts[0] == "texts" {
					p.Errors[i].Field = "texts." + parts[1] + "-" + parts[2]
				}
			}
			c.renderFeedbackTexts(w, r, p.Status, c.refused(r, "text", p), version, texts)
			return
		}
		afterCommand(w, r, "/console/feedback-texts", a)
		return
	}
	var cfg struct {
		Version int                       `json:"version"`
		Texts   map[string]map[string]any `json:"texts"`
	}
	if p := c.call(r, http.MethodGet, apiPath("/v1/feedback-texts", r), nil).decode(&cfg); p != nil {
		c.failed(w, r, p)
		return
	}
	texts := map[string]obj{}
	for code, t := range cfg.Texts {
		texts[code] = obj(t)
	}
	c.renderFeedbackTexts(w, r, http.StatusOK, page{Flash: c.flash(r)}, strconv.Itoa(cfg.Version), texts)
}

func (c *Console) renderFeedbackTexts(w http.ResponseWriter, r *http.Request, status int, pg page, version string, texts map[string]obj) {
	pg.Title = "feedback_texts"
	pg.Data = obj{"version": version, "texts": texts, "codes": []string(domain.FeedbackCodes), "langs": []string{"nl", "en"}}
	c.render(w, r, status, "feedback_texts", sessionOf(r), pg)
}

// The field names of the feedback texts' inputs in a refused form's
// summary: "Received (English)".
func init() {
	for _, code := range domain.FeedbackCodes {
		for _, lang := range []string{"nl", "en"} {
			var words [2]string
			for i, in := range []string{"nl", "en"} {
				c, _ := Label(in, "feedback", code)
				l, _ := Label(in, "language", lang)
				words[i] = c + " (" + l + ")"
			}
			texts["field_"+code+"-"+lang] = words
		}
	}
}

// signalFilters are the query parameters the signal list passes on to the
// API.
var signalFilters = []string{"status", "team_id", "no_team", "category", "neighbourhood", "urgency", "late", "from", "to", "sort"}

// signalList is the coordinator's list of every signal of the network, with
// filters, pages and CSV downloads.
func (c *Console) signalList(w http.ResponseWriter, r *http.Request) {
	in := r.URL.Query()
	q, filter := url.Values{}, obj{}
	for _, k := range signalFilters {
		if v := strings.TrimSpace(in.Get(k)); v != "" {
			q.Set(k, v)
			filter[k] = v
		}
	}
	if cursor := in.Get("cursor"); cursor != "" {
		q.Set("cursor", cursor)
	}
	var list obj
	pg := page{Title: "signal_list"}
	status := http.StatusOK
	if p := c.call(r, http.MethodGet, apiPath("/v1/monitor/signals?"+q.Encode(), r), nil).decode(&list); p != nil {
		if p.Status != http.StatusUnprocessableEntity {
			c.failed(w, r, p)
			return
		}
		pg, status = c.refused(r, "s", p), p.Status
		pg.Title = "signal_list"
	}
	exports := url.Values{}
	for _, k := range signalFilters {
		if v := q.Get(k); v != "" {
			exports.Set(k, v)
		}
	}
	figures := url.Values{}
	for _, k := range []string{"team_id", "neighbourhood", "category", "from", "to"} {
		if v := q.Get(k); v != "" {
			figures.Set(k, v)
		}
	}
	pg.Data = obj{"list": list, "next": nextPage(r, list), "filter": filter, "teams": c.teamIDs(r), "categories": c.categoryIDs(r, false),
		"statuses": []string{"raised", "handed_over", "in_care", "closed", "withdrawn"}, "urgencies": []string(domain.Urgencies),
		"neighbourhoods": c.activeNeighbourhoods(r),
		"csv":            "/console/monitor/signals.csv?" + exports.Encode(), "figures_csv": "/console/monitor/response.csv?" + figures.Encode()}
	c.render(w, r, status, "signals", sessionOf(r), pg)
}

// signalListCSV and responseCSV hand on the API's CSV exports as
// downloads (the browser has a session, not a token).
func (c *Console) signalListCSV(w http.ResponseWriter, r *http.Request) {
	c.csvDownload(w, r, "/v1/monitor/signals", signalFilters)
}

func (c *Console) responseCSV(w http.ResponseWriter, r *http.Request) {
	c.csvDownload(w, r, "/v1/monitor/response", []string{"team_id", "neighbourhood", "category", "from", "to"})
}

func (c *Console) csvDownload(w http.ResponseWriter, r *http.Request, api string, pass []string) {
	in, q := r.URL.Query(), url.Values{"format": {"csv"}}
	for _, k := range pass {
		if v := strings.TrimSpace(in.Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	a := c.call(r, http.MethodGet, api+"?"+q.Encode(), nil)
	if a.Status != http.StatusOK {
		c.failed(w, r, a.decode(nil))
		return
	}
	for _, h := range []string{"Content-Type", "Content-Disposition"} {
		w.Header().Set(h, a.Header.Get(h))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.Body)
}
