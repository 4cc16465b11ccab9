package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// command sends a fixture command, which must succeed, and returns its answer.
func (p *apiRun) command(t *rapid.T, method, path, who string, body any) map[string]any {
	t.Helper()
	a := p.send(t, method, apiRequest{path: path, body: body, hasBody: body != nil}, who)
	if a.status >= 300 {
		t.Fatalf("fixture %s %s as %s: %d %s", method, path, who, a.status, a.raw)
	}
	var out map[string]any
	_ = json.Unmarshal(a.raw, &out)
	return out
}

// keepFixtureConfig puts the fixtures' neighbourhood and categories back
// into the network's configuration when the run's own valid PUTs of
// /v1/neighbourhoods or /v1/categories left them out or retired them (a
// long run draws such lists), so that the fixtures can raise signals.
func (p *apiRun) keepFixtureConfig(t *rapid.T) {
	t.Helper()
	body := raiseBody("")
	hood := body["neighbourhood"].(string)
	cats := body["categories"].([]string)
	get := func(path string, v any) string {
		a := p.send(t, "GET", apiRequest{path: path}, "gert")
		if a.status != 200 {
			t.Fatalf("fixture GET %s: %d %s", path, a.status, a.raw)
		}
		if err := json.Unmarshal(a.raw, v); err != nil {
			t.Fatal(err)
		}
		return a.header.Get("ETag")
	}
	put := func(path, etag string, v any) {
		a := p.send(t, "PUT", apiRequest{path: path, body: v, hasBody: true, headers: map[string]string{"If-Match": etag}}, "gert")
		if a.status >= 300 {
			t.Fatalf("fixture PUT %s: %d %s", path, a.status, a.raw)
		}
	}
	var hoods struct {
		Neighbourhoods []domain.Neighbourhood `json:"neighbourhoods"`
	}
	if etag := get("/v1/neighbourhoods", &hoods); len(hoods.Neighbourhoods) > 0 {
		i := slices.IndexFunc(hoods.Neighbourhoods, func(h domain.Neighbourhood) bool { return h.ID == hood })
		if i < 0 {
			hoods.Neighbourhoods = append(hoods.Neighbourhoods, domain.Neighbourhood{ID: hood, Name: "Centrum"})
		}
		if i < 0 || hoods.Neighbourhoods[i].Retired {
			if i >= 0 {
				hoods.Neighbourhoods[i].Retired = false
			}
			put("/v1/neighbourhoods", etag, hoods)
		}
	}
	var categories struct {
		Categories []domain.Category `json:"categories"`
	}
	etag := get("/v1/categories", &categories)
	changed := false
	for _, id := range cats {
		i := slices.IndexFunc(categories.Categories, func(c domain.Category) bool { return c.ID == id })
		switch {
		case i < 0:
			categories.Categories = append(categories.Categories, domain.Category{ID: id, LabelNL: id, LabelEN: id})
			changed = true
		case categories.Categories[i].Retired:
			categories.Categories[i].Retired = false
			changed = true
		}
	}
	if changed {
		put("/v1/categories", etag, categories)
	}
}

func (p *apiRun) headNow(t *rapid.T) uint64 {
	h, err := p.head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fresh makes a signal in a state drawn by t, raised by carla in the
// fixtures' neighbourhood (no on_raise rule of the run matches it), handed
// over to team-a; with withReferral it is in care with a referral to
// school-x. It returns the signal, the referral and the subject.
func (p *apiRun) fresh(t *rapid.T, pattern string, withReferral bool) (signal, referral, subject string) {
	p.keepFixtureConfig(t)
	body := raiseBody(fmt.Sprintf("Eigenschap Persoon %d", p.n.Add(1)))
	raised := p.command(t, "POST", "/v1/signals", "carla", body)
	signal = raised["id"].(string)
	subject = p.s.subjectOf(signal)
	state := "in_care"
	if !withReferral {
		states := []string{"raised", "handed_over", "in_care", "closed", "withdrawn"}
		if fit, ok := fittingState(pattern); ok && rapid.Bool().Draw(t, "fitting state") {
			states = []string{fit}
		}
		state = rapid.SampledFrom(states).Draw(t, "state")
	}
	sig := "/v1/signals/" + signal
	switch state {
	case "raised":
		return
	case "withdrawn":
		p.command(t, "POST", sig+"/withdraw", "carla", map[string]any{"reason": "eigenschap"})
		return
	}
	p.command(t, "POST", sig+"/handover", "carla", map[string]any{"team_id": "team-a"})
	if state == "handed_over" {
		return
	}
	p.command(t, "POST", sig+"/accept", "anna", nil)
	if state == "closed" {
		p.command(t, "POST", sig+"/close", "anna", map[string]any{"outcome": "resolved"})
	}
	if withReferral {
		ref := p.command(t, "POST", sig+"/referrals", "anna", map[string]any{"organisation_id": "school-x", "reason": "eigenschap"})
		referral = ref["referral_id"].(string)
		if rapid.Bool().Draw(t, "referral accepted") {
			p.command(t, "POST", "/v1/referrals/"+referral+"/accept", "eva", nil)
		}
	}
	return
}

// fittingState is the state of a signal in which a command can succeed.
func fittingState(pattern string) (string, bool) {
	_, cmd, ok := strings.Cut(pattern, "/v1/signals/{id}/")
	if !ok {
		return "", false
	}
	switch cmd {
	case "withdraw", "handover":
		return "raised", true
	case "accept", "decline":
		return "handed_over", true
	case "reopen":
		return "closed", true
	}
	return "in_care", true
}

// path fills the pattern's {id}: the shared world's object of its kind, a
// fresh one, an unknown UUID, or something that is not an id at all.
func (p *apiRun) path(t *rapid.T, pattern string) string {
	if !strings.Contains(pattern, "{id}") {
		return pattern
	}
	id := uuid.NewString()
	switch rapid.SampledFrom([]string{"shared", "fresh", "fresh", "unknown", "not an id"}).Draw(t, "id") {
	case "shared":
		return p.world.path(pattern)
	case "not an id":
		id = rapid.SampledFrom([]string{"x", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%20", "anna"}).Draw(t, "bad id")
	case "fresh":
		switch {
		case strings.HasPrefix(pattern, "/v1/signals/{id}"), strings.HasPrefix(pattern, "/v1/monitor/signals/{id}"):
			id, _, _ = p.fresh(t, pattern, false)
		case strings.HasPrefix(pattern, "/v1/referrals/{id}"):
			_, id, _ = p.fresh(t, pattern, true)
		case strings.HasPrefix(pattern, "/v1/subjects/{id}"), strings.HasPrefix(pattern, "/v1/audit/subjects/{id}"):
			_, _, id = p.fresh(t, pattern, false)
		case strings.HasPrefix(pattern, "/v1/audit/actors/{id}"):
			id = rapid.SampledFrom([]string{"anna", "carla", "hanna", "gert", "nobody"}).Draw(t, "actor")
		}
	}
	return strings.ReplaceAll(pattern, "{id}", url.PathEscape(id))
}

// reviewItem makes an item for a privacy officer to review, a break-glass
// read of a fresh signal by a professional of another team, and returns
// its id.
func (p *apiRun) reviewItem(t *rapid.T) string {
	p.keepFixtureConfig(t)
	signal := p.command(t, "POST", "/v1/signals", "carla", raiseBody(fmt.Sprintf("Eigenschap Persoon %d", p.n.Add(1))))["id"].(string)
	p.command(t, "POST", "/v1/signals/"+signal+"/handover", "carla", map[string]any{"team_id": "team-a"})
	sig := apiRequest{path: "/v1/signals/" + signal, query: url.Values{"min_position": {strconv.FormatUint(p.headNow(t), 10)}},
		headers: map[string]string{"X-Break-Glass-Reason": "waarneming tijdens vakantie"}}
	if a := p.send(t, "GET", sig, "bob"); a.status != 200 {
		t.Fatalf("fixture break-glass read: %d %s", a.status, a.raw)
	}
	list := apiRequest{path: "/v1/audit/reviews", query: url.Values{"rule": {"break_glass"}, "state": {"open"}, "limit": {"500"},
		"min_position": {strconv.FormatUint(p.headNow(t), 10)}}}
	a := p.send(t, "GET", list, "hanna")
	var page struct {
		Items []struct {
			ID        string   `json:"id"`
			SignalIDs []string `json:"signal_ids"`
		} `json:"items"`
	}
	if err := json.Unmarshal(a.raw, &page); a.status != 200 || err != nil {
		t.Fatalf("fixture GET /v1/audit/reviews: %d %s", a.status, a.raw)
	}
	for _, it := range page.Items {
		if slices.Contains(it.SignalIDs, signal) {
			return it.ID
		}
	}
	t.Fatalf("the break-glass read of %s is not an item to review: %s", signal, a.raw)
	return ""
}

// getAs reads path as the run's coordinator into v (a fixture read).
func (p *apiRun) getAs(t *rapid.T, path string, v any) {
	t.Helper()
	a := p.send(t, "GET", apiRequest{path: path}, "gert")
	if a.status != 200 {
		t.Fatalf("fixture GET %s: %d %s", path, a.status, a.raw)
	}
	if err := json.Unmarshal(a.raw, v); err != nil {
		t.Fatal(err)
	}
}
