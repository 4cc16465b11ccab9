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

	"pgregory.net/rapid"
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
