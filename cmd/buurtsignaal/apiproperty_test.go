package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestAPIProperties is the property-based run over every operation of the
// OpenAPI document (which the router's route table generates): for each
// operation, rapid draws requests with valid and invalid bodies, query
// parameters and headers, and sends each one as every role through the real
// server. Whatever the request:
//
//   - the answer is never a 5xx;
//   - every error is a problem+json document with its status and a title,
//     and holds no personal data;
//   - an invalid request (a body missing a required field or with null in
//     it, a field of the wrong type, an unknown field, malformed JSON, an
//     oversized body, a bad query parameter or header) is refused with a
//     4xx, never a success; and when the same request made valid succeeds,
//     the invalid one was refused for its fault: 400, 413 or 422 (or 403);
//   - a refused request writes nothing: the log's head does not move (a 403
//     writes only its access-denied record).
//
// Its size: -rapid.checks (or RAPID_CHECKS) checks per operation; without
// either, apiChecksDefault, so that go test ./... runs it in seconds. make
// test-api runs it with more.
func TestAPIProperties(t *testing.T) {
	withRapidChecks(t, apiChecksDefault)
	hook := &webhookSink{}
	sink := httptest.NewServer(hook)
	defer sink.Close()
	var head func(context.Context) (uint64, error)
	s := startServerHooks(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"}, hooks{head: func(h func(context.Context) (uint64, error)) { head = h }})
	p := &apiRun{s: s, head: head, hook: sink.URL + "/hook", client: &http.Client{Timeout: 10 * time.Second, Transport: s.client.Transport}, statuses: map[string]map[int]int{}}
	p.world = newWorld(s)
	ops := apiOps(t, s)
	if len(ops) < 10 {
		t.Fatalf("the OpenAPI document lists %d operations", len(ops))
	}
	for _, op := range ops {
		t.Run(op.method+" "+op.pattern, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) { p.check(rt, op) })
		})
	}
	// Each operation answered with a success at least once, so the valid
	// requests really are valid and the refusals are not the only answers.
	for _, op := range ops {
		key := op.method + " " + op.pattern
		ok := false
		for status := range p.statuses[key] {
			ok = ok || status < 300
		}
		if _, exempt := apiNoSuccess[key]; !ok && !exempt && apiChecks() >= apiChecksForSuccess {
			t.Errorf("%s never succeeded: %v", key, p.statuses[key])
		}
		t.Logf("%s: %v", key, p.statuses[key])
	}
}

// apiChecksDefault is the checks per operation of a plain go test run.
const apiChecksDefault = 8

// apiChecksForSuccess is the checks per operation from which the run
// expects every operation to have succeeded at least once.
const apiChecksForSuccess = 25

// apiNoSuccess are the operations the run cannot make succeed, and why.
var apiNoSuccess = map[string]string{
	"POST /v1/notifications/dead-letters/{id}/retry": "the run's webhook receiver takes every notification: there are no dead letters",
}

// withRapidChecks sets rapid's checks to n for the test, and the time it
// spends shrinking a failure (each step is requests to a server whose state
// has moved on) to 5 s, unless the command line (-rapid.checks,
// -rapid.shrinktime) or the environment (RAPID_CHECKS, RAPID_SHRINKTIME)
// chose them.
func withRapidChecks(t *testing.T, n int) {
	for name, v := range map[string]string{"checks": strconv.Itoa(n), "shrinktime": "5s"} {
		set := os.Getenv("RAPID_"+strings.ToUpper(name)) != ""
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid."+name })
		f := flag.Lookup("rapid." + name)
		if set || f == nil {
			continue
		}
		old := f.Value.String()
		if err := f.Value.Set(v); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Value.Set(old) })
	}
}

func apiChecks() int {
	n, _ := strconv.Atoi(flag.Lookup("rapid.checks").Value.String())
	return n
}

// webhookSink takes the notifications of the targets the run configures.
type webhookSink struct{}

func (webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusNoContent)
}

// apiOp is one operation of the OpenAPI document.
type apiOp struct {
	method, pattern string
	params          []apiParam
	body            map[string]any // the request body's schema; nil for none
}

type apiParam struct {
	name, in string
	schema   map[string]any
}

// apiOps reads the operations under /v1 from the served OpenAPI document.
func apiOps(t *testing.T, s *server) []apiOp {
	t.Helper()
	doc := s.must(200, s.do("GET", "/openapi.json", "", nil), "openapi")
	paths, _ := doc.body["paths"].(map[string]any)
	components, _ := doc.body["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	var ops []apiOp
	for pattern, item := range paths {
		if !strings.HasPrefix(pattern, "/v1/") {
			continue
		}
		for method, o := range item.(map[string]any) {
			op := apiOp{method: strings.ToUpper(method), pattern: pattern}
			om := o.(map[string]any)
			for _, pr := range asList(om["parameters"]) {
				pm := pr.(map[string]any)
				sch, _ := pm["schema"].(map[string]any)
				op.params = append(op.params, apiParam{name: pm["name"].(string), in: pm["in"].(string), schema: sch})
			}
			if rb, ok := om["requestBody"].(map[string]any); ok {
				content, _ := rb["content"].(map[string]any)
				mt, _ := content["application/json"].(map[string]any)
				op.body, _ = inlineRefs(mt["schema"], schemas).(map[string]any)
			}
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].pattern+ops[i].method < ops[j].pattern+ops[j].method })
	return ops
}

func asList(v any) []any { l, _ := v.([]any); return l }

// inlineRefs replaces each $ref to a component schema by a copy of it.
func inlineRefs(v any, schemas map[string]any) any {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			return inlineRefs(schemas[strings.TrimPrefix(ref, "#/components/schemas/")], schemas)
		}
		out := map[string]any{}
		for k, e := range v {
			out[k] = inlineRefs(e, schemas)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = inlineRefs(e, schemas)
		}
		return out
	}
	return v
}

// apiRun is the state of one property run: the server, its log's head, the
// shared fixtures, and the answers seen per operation.
type apiRun struct {
	s      *server
	head   func(context.Context) (uint64, error)
	world  world
	hook   string
	client *http.Client
	n      atomic.Int64

	mu       sync.Mutex
	statuses map[string]map[int]int
}

// apiRequest is one request, before it is sent as some principal.
type apiRequest struct {
	path    string
	query   url.Values
	headers map[string]string
	body    any    // encoded as JSON
	raw     []byte // sent as is when set
	hasBody bool
}

func (r apiRequest) clone() apiRequest {
	c := r
	c.query = url.Values{}
	for k, v := range r.query {
		c.query[k] = slices.Clone(v)
	}
	c.headers = maps.Clone(r.headers)
	c.body = deepCopy(r.body)
	c.raw = slices.Clone(r.raw)
	return c
}

func (r apiRequest) String() string {
	q := ""
	if len(r.query) > 0 {
		q = "?" + r.query.Encode()
	}
	b := r.raw
	if r.raw == nil && r.hasBody {
		b, _ = json.Marshal(r.body)
	}
	return fmt.Sprintf("%s%s headers %v body %s", r.path, q, r.headers, truncate(b))
}

type apiAnswer struct {
	status int
	header http.Header
	raw    []byte
}

// send sends req as who; a transport error fails the check.
func (p *apiRun) send(t *rapid.T, method string, req apiRequest, who string) apiAnswer {
	t.Helper()
	u := p.s.base + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.hasBody {
		b := req.raw
		if b == nil {
			var err error
			if b, err = json.Marshal(req.body); err != nil {
				t.Fatal(err)
			}
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer tok-"+who)
	if req.hasBody {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range req.headers {
		hr.Header.Set(k, v)
	}
	resp, err := p.client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", method, req, who, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return apiAnswer{status: resp.StatusCode, header: resp.Header, raw: raw}
}

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

// Free text, codes and dates of valid bodies.
func apiText(t *rapid.T, label string) string {
	return rapid.OneOf(rapid.StringMatching(`[A-Za-zÀ-ÿ0-9 .,'-]{1,60}`), rapid.StringN(1, 200, -1)).Draw(t, label)
}

// apiTokens makes drawn tokens unique across the run (organisation ids).
var apiTokens atomic.Int64

func apiToken(t *rapid.T, label string) string {
	return rapid.StringMatching(`[a-z0-9]{1,20}`).Draw(t, label) + "-" + strconv.FormatInt(apiTokens.Add(1), 10)
}

func apiDate(t *rapid.T, label string) string {
	d := time.Date(rapid.IntRange(1900, 2040).Draw(t, label+" year"), time.January, 1, 0, 0, 0, 0, time.UTC)
	return d.AddDate(0, 0, rapid.IntRange(0, 365).Draw(t, label+" day")).Format(time.DateOnly)
}

func pick[S ~[]string](t *rapid.T, label string, s S) string {
	return rapid.SampledFrom([]string(s)).Draw(t, label)
}

func subset[S ~[]string](t *rapid.T, label string, s S) []any {
	var out []any
	for _, v := range rapid.SliceOfNDistinct(rapid.SampledFrom([]string(s)), 1, 3, rapid.ID[string]).Draw(t, label) {
		out = append(out, v)
	}
	return out
}

// apiKeep are optional fields the run never leaves out: a routing rule
// always names apiNeighbourhood, so that no rule hands the fixtures' signals
// over as they are raised.
var apiKeep = map[string][]string{
	"PUT /v1/routing-rules": {"neighbourhood"},
	// Every code's text in both languages, every urgency's norm in hours or
	// working days: a list without them is refused whole.
	"PUT /v1/feedback-texts": {"nl", "en"},
	"PUT /v1/norms":          {"hours", "working_days"},
	"PUT /v1/categories":     {"hours", "working_days"},
}

// apiNeighbourhood is the neighbourhood of the raises the run draws, which
// on_raise routing rules may name; fixtures are raised in "centrum".
const apiNeighbourhood = "eigenschapwijk"

// example draws a valid body for an operation, with every optional field;
// ok is false when the run has no example for it (the body is then drawn
// from the schema alone).
func (p *apiRun) example(t *rapid.T, op apiOp) (map[string]any, bool) {
	reason := func() map[string]any { return map[string]any{"reason": apiText(t, "reason")} }
	note := func() map[string]any { return map[string]any{"note": apiText(t, "note")} }
	team := func() string { return pick(t, "team", []string{"team-a", "team-b"}) }
	switch op.method + " " + op.pattern {
	case "POST /v1/signals":
		return map[string]any{
			"subject": map[string]any{"name": apiText(t, "name"), "birth_date": apiDate(t, "birth"), "address": apiText(t, "address"),
				"phone": rapid.StringMatching(`0[0-9]{9}`).Draw(t, "phone")},
			"neighbourhood": pick(t, "neighbourhood", []string{apiNeighbourhood, "centrum", "noord"}), "categories": subset(t, "categories", domain.Categories),
			"urgency": pick(t, "urgency", domain.Urgencies), "description": apiText(t, "description"), "consent": pick(t, "consent", domain.Consents),
		}, true
	case "POST /v1/signals/{id}/withdraw", "POST /v1/signals/{id}/decline", "POST /v1/signals/{id}/reopen":
		return reason(), true
	case "POST /v1/signals/{id}/handover":
		return map[string]any{"team_id": team(), "note": apiText(t, "note")}, true
	case "POST /v1/signals/{id}/assign":
		return map[string]any{"professional_id": pick(t, "professional", []string{"anna", "bob", "someone-new"})}, true
	case "POST /v1/signals/{id}/follow-ups":
		return map[string]any{"kind": pick(t, "kind", domain.FollowUpKinds), "outcome": pick(t, "outcome", domain.FollowUpOutcomes),
			"note": apiText(t, "note"), "next_due": apiDate(t, "next due")}, true
	case "POST /v1/signals/{id}/referrals":
		return map[string]any{"organisation_id": "school-x", "service": "Maatschappelijk werk", "reason": apiText(t, "reason")}, true
	case "POST /v1/referrals/{id}/accept", "POST /v1/referrals/{id}/decline", "POST /v1/referrals/{id}/complete":
		return note(), true
	case "POST /v1/signals/{id}/feedback":
		return map[string]any{"code": pick(t, "code", domain.FeedbackCodes)}, true
	case "POST /v1/signals/{id}/close":
		return map[string]any{"outcome": pick(t, "outcome", domain.CloseOutcomes), "note": apiText(t, "note")}, true
	case "POST /v1/organisations":
		return map[string]any{"id": apiToken(t, "org id"), "name": apiText(t, "org name"), "kind": pick(t, "org kind", domain.OrganisationKind),
			"services": []any{map[string]any{"name": apiText(t, "service"), "description": apiText(t, "service description"), "volunteer": rapid.Bool().Draw(t, "volunteer")}}}, true
	case "POST /v1/subjects/search":
		return map[string]any{"name": apiText(t, "name"), "birth_date": apiDate(t, "birth")}, true
	case "POST /v1/subjects/{id}/erasure":
		return map[string]any{"reason": apiText(t, "reason"), "request_ref": apiToken(t, "request ref")}, true
	case "PUT /v1/routing-rules":
		var rules []any
		for i := range rapid.IntRange(0, 3).Draw(t, "rules") {
			rule := map[string]any{"id": fmt.Sprintf("rule-%d", i), "team_id": team(), "neighbourhood": apiNeighbourhood,
				"category": pick(t, "category", domain.Categories), "urgency": pick(t, "urgency", domain.Urgencies), "on_raise": rapid.Bool().Draw(t, "on raise")}
			rules = append(rules, rule)
		}
		return map[string]any{"rules": orEmpty(rules)}, true
	case "PUT /v1/notification-targets":
		var targets []any
		for i := range rapid.IntRange(0, 3).Draw(t, "targets") {
			targets = append(targets, map[string]any{"id": fmt.Sprintf("target-%d", i), "subscriber": "team", "subscriber_id": team(),
				"channel": "webhook", "url": p.hook, "language": pick(t, "language", []string{"nl", "en"}), "kinds": subset(t, "kinds", domain.NotificationKinds)})
		}
		return map[string]any{"targets": orEmpty(targets)}, true
	case "PUT /v1/categories":
		// The whole list: a category is never removed, only retired; the
		// fixtures' and the drawn raises' categories stay active.
		var current struct {
			Categories []map[string]any `json:"categories"`
		}
		p.getAs(t, "/v1/categories", &current)
		list := current.Categories
		for _, c := range list {
			if !slices.Contains(domain.Categories, c["id"].(string)) {
				c["retired"] = rapid.Bool().Draw(t, "retired")
			}
			if rapid.Bool().Draw(t, "category norm") {
				c["norms"] = map[string]any{pick(t, "category urgency", domain.Urgencies): apiNorm(t)}
			}
		}
		if rapid.Bool().Draw(t, "new category") {
			list = append(list, map[string]any{"id": apiToken(t, "category id"), "label_nl": apiLabel(t, "label nl"), "label_en": apiLabel(t, "label en"),
				"description": apiText(t, "description")})
		}
		return map[string]any{"categories": list}, true
	case "PUT /v1/neighbourhoods":
		var current struct {
			Neighbourhoods []map[string]any `json:"neighbourhoods"`
		}
		p.getAs(t, "/v1/neighbourhoods", &current)
		list := current.Neighbourhoods
		for _, id := range []string{"centrum", apiNeighbourhood, "noord"} {
			if !slices.ContainsFunc(list, func(h map[string]any) bool { return h["id"] == id }) {
				list = append(list, map[string]any{"id": id, "name": id})
			}
		}
		for _, h := range list {
			if id := h["id"].(string); id != "centrum" && id != apiNeighbourhood && id != "noord" {
				h["retired"] = rapid.Bool().Draw(t, "retired")
			} else {
				delete(h, "retired")
			}
		}
		if rapid.Bool().Draw(t, "new neighbourhood") {
			list = append(list, map[string]any{"id": apiToken(t, "neighbourhood id"), "name": apiLabel(t, "neighbourhood name")})
		}
		return map[string]any{"neighbourhoods": list}, true
	case "PUT /v1/norms":
		byUrgency := map[string]any{}
		for _, u := range domain.Urgencies {
			byUrgency[u] = apiNorm(t)
		}
		return map[string]any{"norms": map[string]any{"by_urgency": byUrgency, "feedback_working_days": rapid.IntRange(1, 20).Draw(t, "feedback days")}}, true
	case "POST /v1/audit/reviews":
		return map[string]any{"item": p.reviewItem(t), "judgement": pick(t, "judgement", domain.Judgements.Values()),
			"note": apiText(t, "note")}, true
	case "PUT /v1/feedback-texts":
		texts := map[string]any{}
		for _, code := range domain.FeedbackCodes {
			texts[code] = map[string]any{"nl": apiLabel(t, "text nl"), "en": apiLabel(t, "text en")}
		}
		return map[string]any{"texts": texts}, true
	}
	return nil, false
}

// apiLabel draws a text that is not blank.
func apiLabel(t *rapid.T, label string) string {
	return rapid.StringMatching(`[A-Za-zÀ-ÿ0-9][A-Za-zÀ-ÿ0-9 .,'-]{0,59}`).Draw(t, label)
}

// apiNorm draws a response norm: hours or working days.
func apiNorm(t *rapid.T) map[string]any {
	if rapid.Bool().Draw(t, "norm in hours") {
		return map[string]any{"hours": rapid.IntRange(1, 72).Draw(t, "hours")}
	}
	return map[string]any{"working_days": rapid.IntRange(1, 20).Draw(t, "working days")}
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

func orEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// fromSchema draws a value of a JSON schema (for operations without an
// example: shaped right, probably refused for its values).
func fromSchema(t *rapid.T, sch map[string]any, label string) any {
	switch sch["type"] {
	case "object":
		out := map[string]any{}
		props, _ := sch["properties"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(props)) {
			out[name] = fromSchema(t, props[name].(map[string]any), label+"."+name)
		}
		return out
	case "array":
		items, _ := sch["items"].(map[string]any)
		var out []any
		for range rapid.IntRange(0, 2).Draw(t, label+" length") {
			out = append(out, fromSchema(t, items, label+"[]"))
		}
		return orEmpty(out)
	case "integer":
		return rapid.IntRange(0, 1000).Draw(t, label)
	case "number":
		return rapid.Float64Range(0, 1000).Draw(t, label)
	case "boolean":
		return rapid.Bool().Draw(t, label)
	}
	return apiText(t, label)
}

// A field of a body: the keys and indexes that lead to it.
type fieldPath []any

func (f fieldPath) String() string {
	var b strings.Builder
	for _, k := range f {
		switch k := k.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	return b.String()
}

// walk visits every field of v with its schema, objects before their fields.
func walk(v any, sch map[string]any, at fieldPath, visit func(at fieldPath, v any, sch map[string]any, required bool)) {
	switch v := v.(type) {
	case map[string]any:
		props, _ := sch["properties"].(map[string]any)
		var req []string
		for _, r := range asList(sch["required"]) {
			req = append(req, r.(string))
		}
		for _, name := range slices.Sorted(maps.Keys(v)) {
			ps, _ := props[name].(map[string]any)
			p := append(slices.Clone(at), name)
			visit(p, v[name], ps, slices.Contains(req, name))
			walk(v[name], ps, p, visit)
		}
	case []any:
		items, _ := sch["items"].(map[string]any)
		for i, e := range v {
			p := append(slices.Clone(at), i)
			visit(p, e, items, false)
			walk(e, items, p, visit)
		}
	}
}

// parentOf returns the object or list holding the field at f, and its key.
func parentOf(body any, f fieldPath) (any, any) {
	cur := body
	for _, k := range f[:len(f)-1] {
		switch k := k.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	return cur, f[len(f)-1]
}

func setField(body any, f fieldPath, v any) {
	parent, k := parentOf(body, f)
	switch k := k.(type) {
	case string:
		parent.(map[string]any)[k] = v
	case int:
		parent.([]any)[k] = v
	}
}

func deleteField(body any, f fieldPath) {
	parent, k := parentOf(body, f)
	delete(parent.(map[string]any), k.(string))
}

func deepCopy(v any) any {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// wrongType returns a value of another JSON type than v.
func wrongType(t *rapid.T, v any) any {
	switch v.(type) {
	case string:
		return rapid.SampledFrom([]any{12345, true, []any{"x"}, map[string]any{"x": 1}}).Draw(t, "instead of a string")
	case float64, int:
		return "12"
	case bool:
		return rapid.SampledFrom([]any{"true", 1}).Draw(t, "instead of a boolean")
	case []any:
		return rapid.SampledFrom([]any{"list", map[string]any{"0": "x"}, 3}).Draw(t, "instead of a list")
	case map[string]any:
		return rapid.SampledFrom([]any{"object", []any{1}, false}).Draw(t, "instead of an object")
	}
	return "x"
}

// query parameters: a valid value ("" leaves it out) and, where the
// parameter has one, an invalid value.
func (p *apiRun) validParam(t *rapid.T, prm apiParam) string {
	if rapid.Bool().Draw(t, prm.name+" given") {
		return ""
	}
	switch {
	case prm.name == "min_position":
		return rapid.SampledFrom([]string{"0", strconv.FormatUint(p.headNow(t), 10)}).Draw(t, "min_position")
	case prm.name == "cursor": // only the server makes cursors
		return ""
	case prm.schema["type"] == "integer":
		lo, hi := bound(prm.schema, "minimum", 0), bound(prm.schema, "maximum", 1000)
		return strconv.Itoa(rapid.IntRange(lo, hi).Draw(t, prm.name))
	case dateLike(prm.schema):
		if rapid.Bool().Draw(t, prm.name+" at the edge") { // of what RFC 3339 can write
			return rapid.SampledFrom([]string{"9999-12-31", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z",
				"0000-01-01", "0000-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z"}).Draw(t, prm.name)
		}
		d := time.Date(rapid.IntRange(0, 9999).Draw(t, prm.name+" year"), time.Month(rapid.IntRange(1, 12).Draw(t, prm.name+" month")),
			rapid.IntRange(1, 28).Draw(t, prm.name+" day"), 0, 0, 0, 0, time.UTC)
		if !rapid.Bool().Draw(t, prm.name+" with time") {
			return d.Format(time.DateOnly)
		}
		zone := time.FixedZone("", rapid.IntRange(-14, 14).Draw(t, prm.name+" offset")*3600)
		return d.Add(time.Duration(rapid.IntRange(0, 86399).Draw(t, prm.name+" seconds")) * time.Second).In(zone).Format(time.RFC3339)
	case prm.schema["enum"] != nil:
		var vs []string
		for _, v := range asList(prm.schema["enum"]) {
			vs = append(vs, v.(string))
		}
		return pick(t, prm.name, vs)
	}
	if n, ok := prm.schema["maxLength"].(float64); ok {
		return rapid.StringMatching(fmt.Sprintf(`[A-Za-z0-9-]{1,%d}`, int(n))).Draw(t, prm.name)
	}
	return apiToken(t, prm.name)
}

// dateLike reports whether a parameter is a date or a time (or either).
func dateLike(sch map[string]any) bool {
	formats := []any{sch["format"]}
	for _, alt := range asList(sch["anyOf"]) {
		formats = append(formats, alt.(map[string]any)["format"])
	}
	return slices.Contains(formats, "date") || slices.Contains(formats, "date-time")
}

func bound(sch map[string]any, key string, def int) int {
	if v, ok := sch[key].(float64); ok {
		return int(v)
	}
	return def
}

// hasInvalid reports whether invalidParam can make a bad value of prm.
func hasInvalid(prm apiParam) bool {
	return prm.in == "header" || prm.name == "cursor" || prm.schema["type"] == "integer" ||
		dateLike(prm.schema) || prm.schema["enum"] != nil || prm.schema["maxLength"] != nil
}

func invalidParam(t *rapid.T, prm apiParam) (string, bool) {
	switch {
	case prm.name == "cursor":
		return rapid.SampledFrom([]string{"abc", "not a cursor", "o:1", "%%%", "bzotMQ"}).Draw(t, "bad cursor"), true
	case prm.schema["type"] == "integer":
		bad := []string{"abc", "1.5", "0x10", "99999999999999999999999", "-1", " 1"}
		if _, ok := prm.schema["maximum"]; ok {
			bad = append(bad, strconv.Itoa(bound(prm.schema, "maximum", 0)+1), strconv.Itoa(bound(prm.schema, "minimum", 0)-1))
		}
		return rapid.SampledFrom(bad).Draw(t, "bad "+prm.name), true
	case dateLike(prm.schema):
		return rapid.SampledFrom([]string{"2024-13-45", "yesterday", "20240101", "2024-02-30T25:00:00Z", "10000-01-01"}).Draw(t, "bad "+prm.name), true
	case prm.schema["enum"] != nil:
		return "not-one-of-them", true
	case prm.schema["maxLength"] != nil:
		return strings.Repeat("r", bound(prm.schema, "maxLength", 0)+1), true
	}
	return "", false
}

// faults a request of op can be given.
func faultsOf(op apiOp, hasFields, hasRequired bool) []string {
	out := []string{"none", "none"}
	for _, prm := range op.params {
		if hasInvalid(prm) && !slices.Contains(out, prm.in) {
			out = append(out, prm.in)
		}
	}
	if op.body != nil {
		out = append(out, "unknown field", "malformed", "too large")
		if hasFields {
			out = append(out, "type")
		}
		if hasRequired {
			out = append(out, "missing", "null")
		}
	}
	return out
}

// check draws one request of op, and one fault or none, and sends it as
// every role.
func (p *apiRun) check(t *rapid.T, op apiOp) {
	req := apiRequest{path: p.path(t, op.pattern), query: url.Values{}, headers: map[string]string{}}
	for _, prm := range op.params {
		switch prm.in {
		case "query":
			if v := p.validParam(t, prm); v != "" {
				req.query.Set(prm.name, v)
			}
		case "header":
			switch prm.name {
			case "Idempotency-Key":
				if rapid.Bool().Draw(t, "idempotency key") {
					req.headers[prm.name] = fmt.Sprintf("prop-%d-%s", p.n.Add(1), rapid.StringMatching(`[!-~]{0,20}`).Draw(t, "key"))
				}
			case "If-Match":
				if rapid.Bool().Draw(t, "if-match") {
					req.headers[prm.name] = strconv.Quote(strconv.Itoa(rapid.IntRange(0, 8).Draw(t, "version")))
				}
			}
		}
	}
	var required, all []fieldPath
	if op.body != nil {
		body, ok := p.example(t, op)
		var b any = body
		if !ok {
			b = fromSchema(t, op.body, "body")
		}
		// Leave out optional fields at random.
		var optional []fieldPath
		walk(b, op.body, nil, func(at fieldPath, _ any, _ map[string]any, req bool) {
			if name, isKey := at[len(at)-1].(string); isKey && !req && !slices.Contains(apiKeep[op.method+" "+op.pattern], name) {
				optional = append(optional, at)
			}
		})
		for i := len(optional) - 1; i >= 0; i-- {
			if rapid.Bool().Draw(t, "leave out "+optional[i].String()) {
				deleteField(b, optional[i])
			}
		}
		walk(b, op.body, nil, func(at fieldPath, _ any, _ map[string]any, req bool) {
			all = append(all, at)
			if req {
				required = append(required, at)
			}
		})
		req.body, req.hasBody = b, true
	}
	fault := rapid.SampledFrom(faultsOf(op, len(all) > 0, len(required) > 0)).Draw(t, "fault")
	bad := req.clone()
	switch fault {
	case "query", "header":
		var cands []apiParam
		for _, prm := range op.params {
			if prm.in != fault {
				continue
			}
			if hasInvalid(prm) {
				cands = append(cands, prm)
			}
		}
		if len(cands) == 0 {
			fault = "none"
			break
		}
		prm := rapid.SampledFrom(cands).Draw(t, "bad parameter")
		if prm.in == "header" {
			switch prm.name {
			case "Idempotency-Key":
				bad.headers[prm.name] = rapid.SampledFrom([]string{strings.Repeat("k", 129), "with space", "tab\there"}).Draw(t, "bad key")
			case "If-Match":
				bad.headers[prm.name] = rapid.SampledFrom([]string{`"abc"`, `"-1"`, `"1.5"`, `W/"x"`}).Draw(t, "bad if-match")
			default:
				fault = "none"
			}
			break
		}
		v, _ := invalidParam(t, prm)
		bad.query.Set(prm.name, v)
	case "missing":
		deleteField(bad.body, rapid.SampledFrom(required).Draw(t, "leave out"))
	case "null":
		setField(bad.body, rapid.SampledFrom(required).Draw(t, "null field"), nil)
	case "type":
		f := rapid.SampledFrom(all).Draw(t, "mistyped field")
		parent, k := parentOf(bad.body, f)
		var cur any
		switch k := k.(type) {
		case string:
			cur = parent.(map[string]any)[k]
		case int:
			cur = parent.([]any)[k]
		}
		setField(bad.body, f, wrongType(t, cur))
	case "unknown field":
		var objects []fieldPath
		objects = append(objects, fieldPath{})
		walk(bad.body, op.body, nil, func(at fieldPath, v any, _ map[string]any, _ bool) {
			if _, ok := v.(map[string]any); ok {
				objects = append(objects, at)
			}
		})
		at := rapid.SampledFrom(objects).Draw(t, "object")
		obj := bad.body
		if len(at) > 0 {
			parent, k := parentOf(bad.body, at)
			switch k := k.(type) {
			case string:
				obj = parent.(map[string]any)[k]
			case int:
				obj = parent.([]any)[k]
			}
		}
		obj.(map[string]any)["unexpected_"+rapid.StringMatching(`[a-z]{1,8}`).Draw(t, "unknown name")] = 1
	case "malformed":
		raws := []string{`{`, `}`, `[]`, `"x"`, `1`, `true`, `{"a":1}{"b":2}`, `{"a":}`, "{\"a\":\"\xff\xfe\"}", `{,}`, strings.Repeat(`[`, 5000)}
		if len(required) > 0 {
			// No body is the empty object (clients of commands without
			// required fields send none): invalid only with required fields.
			raws = append(raws, ``, `null`, `{}`)
		}
		bad.raw = []byte(rapid.OneOf(rapid.SampledFrom(raws), rapid.Map(rapid.SliceOfN(rapid.Byte(), 1, 64), func(b []byte) string { return "{" + string(b) })).Draw(t, "malformed"))
	case "too large":
		bad.raw = []byte(`{"reason":"` + strings.Repeat("A", 70_000) + `"}`)
	}

	for _, r := range matrixRoles {
		if fault == "none" {
			p.exchange(t, op, req, r.who, "")
			continue
		}
		got := p.exchange(t, op, bad, r.who, fault)
		good := p.exchange(t, op, req, r.who, "")
		if good.status < 300 && !slices.Contains([]int{400, 403, 413, 422}, got.status) {
			t.Fatalf("%s %s as %s (%s): %d, but the same request without the fault succeeded (%d): want 400, 413 or 422: %s",
				op.method, bad, r.who, fault, got.status, good.status, got.raw)
		}
	}
}

// exchange sends req as who and checks the answer (fault names what is
// wrong with req; "" for nothing): a refused request writes nothing, except
// the access-denied record of a 403.
func (p *apiRun) exchange(t *rapid.T, op apiOp, req apiRequest, who, fault string) apiAnswer {
	t.Helper()
	before := p.headNow(t)
	a := p.send(t, op.method, req, who)
	p.expect(t, op, req, who, a, fault != "")
	if after := p.headNow(t); after != before && a.status >= 400 && a.status != http.StatusForbidden {
		t.Fatalf("%s %s as %s (fault: %q) was refused (%d) but the log moved from %d to %d: %s", op.method, req, who, fault, a.status, before, after, a.raw)
	}
	return a
}

// expect checks what holds for every answer; invalid marks a request with a
// fault, which must be refused.
func (p *apiRun) expect(t *rapid.T, op apiOp, req apiRequest, who string, a apiAnswer, invalid bool) {
	t.Helper()
	key := op.method + " " + op.pattern
	p.mu.Lock()
	if p.statuses[key] == nil {
		p.statuses[key] = map[int]int{}
	}
	p.statuses[key][a.status]++
	p.mu.Unlock()
	what := fmt.Sprintf("%s %s as %s", op.method, req, who)
	if a.status >= 500 {
		t.Fatalf("%s: %d: %s", what, a.status, a.raw)
	}
	if invalid && (a.status < 400 || a.status == http.StatusUnauthorized || a.status == http.StatusMethodNotAllowed) {
		t.Fatalf("%s: an invalid request answered %d: %s", what, a.status, a.raw)
	}
	if a.status >= 400 {
		if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s: %d as %q, want application/problem+json", what, a.status, ct)
		}
		var prob struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		if err := json.Unmarshal(a.raw, &prob); err != nil || prob.Status != a.status || prob.Title == "" {
			t.Fatalf("%s: %d is not a problem document: %s", what, a.status, a.raw)
		}
		for _, secret := range []string{"Wereld Persoon", "Eigenschap Persoon", secretDesc, "Dorpsstraat", "0612345678"} {
			if strings.Contains(string(a.raw), secret) {
				t.Fatalf("%s: the problem holds personal data: %s", what, a.raw)
			}
		}
		return
	}
	if req.query.Get("format") == "csv" { // the monitoring exports
		if ct := a.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Fatalf("%s: %d as %q, want text/csv", what, a.status, ct)
		}
		if _, err := csv.NewReader(bytes.NewReader(a.raw)).ReadAll(); err != nil {
			t.Fatalf("%s: %d with a body that is not CSV (%v): %s", what, a.status, err, truncate(a.raw))
		}
		return
	}
	if req.query.Get("format") == "html" { // the privacy officer's printable report
		if ct := a.header.Get("Content-Type"); ct != "text/html; charset=utf-8" || !bytes.Contains(a.raw, []byte("</html>")) {
			t.Fatalf("%s: %d as %q, want a whole text/html page: %s", what, a.status, ct, truncate(a.raw))
		}
		return
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: %d as %q, want application/json", what, a.status, ct)
	}
	if !json.Valid(a.raw) {
		t.Fatalf("%s: %d with a body that is not JSON: %s", what, a.status, truncate(a.raw))
	}
}
