package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// --- Privacy officers: access monitoring ----------------------------------------

// reviewRules are the rules a review item can have, for the filter.
var reviewRules = []string{"break_glass", domain.RuleOutsideTeam, domain.RuleManySubjects, domain.RuleAfterHours,
	domain.RuleAfterClosed, domain.RuleDenied, domain.RuleBurst}

// reviews lists the items to review (or, with ?flags=1, the flags only)
// through the API, filtered by state, rule and period, each with a form
// to record a judgement.
func (c *Console) reviews(w http.ResponseWriter, r *http.Request) {
	c.renderReviews(w, r, http.StatusOK, page{Flash: c.flash(r)})
}

func (c *Console) renderReviews(w http.ResponseWriter, r *http.Request, status int, pg page) {
	in := r.URL.Query()
	flags := in.Get("flags") == "1"
	path := "/v1/audit/reviews"
	if flags {
		path = "/v1/audit/flags"
	}
	filter := obj{"flags": flags}
	for _, k := range []string{"state", "rule", "from", "to"} {
		filter[k] = in.Get(k)
	}
	data := obj{"filter": filter, "rules": reviewRules, "states": []string{"open", "overdue", "reviewed", "justified", "not_justified", "follow_up"},
		"judgements": domain.Judgements.Values(), "people": c.people(r), "items": []any{}}
	var list obj
	if p := c.call(r, http.MethodGet, apiPath(path, r, "state", "rule", "from", "to"), nil).decode(&list); p != nil {
		if p.Status != http.StatusUnprocessableEntity {
			c.failed(w, r, p)
			return
		}
		pg, status = c.refused(r, "f", p), p.Status
	} else {
		data["items"] = list["items"]
		data["next"] = nextPage(r, list)
	}
	pg.Title = map[bool]string{true: "flags", false: "reviews"}[flags]
	pg.Data = data
	c.render(w, r, status, "reviews", sessionOf(r), pg)
}

// judge records a privacy officer's judgement of an item through the API
// and returns to the list it came from.
func (c *Console) judge(w http.ResponseWriter, r *http.Request) {
	body := formBody(r, "item", "judgement", "note")
	a := c.call(r, http.MethodPost, "/v1/audit/reviews", body, "Idempotency-Key", newIdem(r))
	if p := a.decode(nil); p != nil {
		c.renderReviews(w, r, p.Status, c.refused(r, "judge", p))
		return
	}
	back := "/console/privacy/reviews"
	if q := r.PostFormValue("back"); strings.HasPrefix(q, "?") {
		if v, err := url.ParseQuery(q[1:]); err == nil {
			v.Del("ok")
			v.Del("p")
			back += "?" + v.Encode()
		}
	}
	afterCommandSay(w, r, back, "judged", a)
}

// report shows the periodic access report of the network (the API's
// report, for a period), to print.
func (c *Console) report(w http.ResponseWriter, r *http.Request) {
	filter := obj{"from": r.URL.Query().Get("from"), "to": r.URL.Query().Get("to")}
	var rep obj
	if p := c.call(r, http.MethodGet, apiPath("/v1/audit/report", r, "from", "to"), nil).decode(&rep); p != nil {
		if p.Status != http.StatusUnprocessableEntity {
			c.failed(w, r, p)
			return
		}
		pg := c.refused(r, "f", p)
		pg.Title, pg.Data = "report", obj{"filter": filter}
		c.render(w, r, p.Status, "report", sessionOf(r), pg)
		return
	}
	c.render(w, r, http.StatusOK, "report", sessionOf(r), page{Title: "report", Data: obj{"filter": filter, "report": rep}})
}
