package console

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// --- Volunteers and partners -----------------------------------------------------------

func (c *Console) raiseForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "raise", sessionOf(r), page{Data: obj{"enums": c.raiseEnums(r), "idem": uuid.NewString(),
		"neighbourhoods": c.activeNeighbourhoods(r)}})
}

func (c *Console) raise(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.render(w, r, http.StatusBadRequest, "error", sessionOf(r), page{Error: c.t(r, "problem_validation")})
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
		pg := c.refused(r, "raise", p)
		pg.Data = obj{"enums": c.raiseEnums(r), "idem": r.PostFormValue("idem"), "form": form, "checked": r.PostForm["categories"],
			"neighbourhoods": c.activeNeighbourhoods(r)}
		c.render(w, r, p.Status, "raise", sessionOf(r), pg)
		return
	}
	afterCommandSay(w, r, "/console/my", "received", a)
}

func (c *Console) mySignals(w http.ResponseWriter, r *http.Request) {
	c.renderMy(w, r, http.StatusOK, page{})
}

// renderMy shows the signaller's own signals, with the handover and
// withdraw forms of those still raised; pg carries the errors of a form
// sent from it.
func (c *Console) renderMy(w http.ResponseWriter, r *http.Request, status int, pg page) {
	var data obj
	if p := c.call(r, http.MethodGet, apiPath("/v1/my/signals", r), nil).decode(&data); p != nil {
		c.failed(w, r, p)
		return
	}
	data["teams"], data["next"] = c.teamIDs(r), nextPage(r, data)
	data["failed"] = chi.URLParam(r, "id")
	if pg.Error == "" {
		pg.Flash = c.flash(r)
	}
	pg.Data = data
	c.render(w, r, status, "my", sessionOf(r), pg)
}

// signalCommands are the commands on a raised signal given from a list:
// the signaller's own (my signals), or the network's signals without a
// team (professionals and coordinators), with their form fields.
var signalCommands = map[string][]string{
	"handover": {"team_id", "note"},
	"withdraw": {"reason"},
}

// signallerCommand hands over or withdraws a raised signal; without a team
// the network's routing rules choose it. The form says which list it came
// from (from=unrouted, from=monitor), which is where its answer goes.
func (c *Console) signallerCommand(w http.ResponseWriter, r *http.Request) {
	id, ok := caseID(r)
	action := chi.URLParam(r, "action")
	fields, known := signalCommands[action]
	if !ok || !known {
		c.notFound(w, r)
		return
	}
	from := r.PostFormValue("from")
	a := c.call(r, http.MethodPost, "/v1/signals/"+id+"/"+action, formBody(r, fields...), "Idempotency-Key", r.PostFormValue("idem"))
	if p := a.decode(nil); p != nil {
		pg := c.refused(r, action+"-"+id, p)
		switch from {
		case "unrouted":
			c.renderUnrouted(w, r, p.Status, pg)
		case "monitor":
			c.renderMonitorSignal(w, r, p.Status, c.refused(r, action, p))
		default:
			c.renderMy(w, r, p.Status, pg)
		}
		return
	}
	switch from {
	case "unrouted":
		afterCommand(w, r, "/console/unrouted", a)
	case "monitor":
		afterCommand(w, r, "/console/monitor/signals/"+id, a)
	default:
		afterCommand(w, r, "/console/my", a)
	}
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

// raiseEnums are the raise form's choices: the network's active categories.
func (c *Console) raiseEnums(r *http.Request) obj {
	e := enums()
	e["categories"] = c.categoryIDs(r, true)
	return e
}
