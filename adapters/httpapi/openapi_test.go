package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func newBareServer(t *testing.T) *Server {
	t.Helper()
	return New(Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
}

// TestOpenAPIMatchesRouter fails when the router and the served document disagree.
func TestOpenAPIMatchesRouter(t *testing.T) {
	s := newBareServer(t)
	var routed []string
	err := chi.Walk(s.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		if route == "" {
			route = "/"
		}
		routed = append(routed, strings.ToLower(method)+" "+strings.ReplaceAll(route, "/*", ""))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", rec.Code)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, method+" "+path)
		}
	}
	sort.Strings(routed)
	sort.Strings(documented)
	if diff := cmp.Diff(routed, documented); diff != "" {
		t.Errorf("router and OpenAPI document disagree (-router +document):\n%s", diff)
	}
}

// TestEveryRouteAnswersProblemWithoutToken checks the /v1 routes require a token.
func TestEveryRouteAnswersProblemWithoutToken(t *testing.T) {
	s := newBareServer(t)
	for _, r := range s.Routes() {
		method, path, _ := strings.Cut(r, " ")
		path = strings.ReplaceAll(path, "{id}", "00000000-0000-0000-0000-000000000001")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s without token: %d %s", r, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}

// TestOperationIDs: every operation has a readable operationId of its own
// (a verb and its object, as client generators name their methods).
func TestOperationIDs(t *testing.T) {
	s := newBareServer(t)
	seen := map[string]string{}
	for _, r := range append(s.Routes(), "GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json") {
		method, pattern, _ := strings.Cut(r, " ")
		id, ok := operationIDs[r]
		if !ok {
			t.Errorf("%s has no operationId in operationIDs", r)
			continue
		}
		if !regexp.MustCompile(`^[a-z]+[A-Za-z]*$`).MatchString(id) {
			t.Errorf("%s: operationId %q is not lowerCamelCase", r, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share the operationId %q", r, other, id)
		}
		seen[id] = r
		if got := operationID(method, pattern); got != id {
			t.Errorf("operationID(%s) = %q, want %q", r, got, id)
		}
	}
	if len(operationIDs) != len(seen) {
		t.Errorf("operationIDs names %d operations, the server has %d", len(operationIDs), len(seen))
	}
}

// TestClosedSetsAreEnums: the fields holding a closed set of codes carry
// it as an enum, so a client learns the valid values from the document.
func TestClosedSetsAreEnums(t *testing.T) {
	doc := newBareServer(t).OpenAPI()
	components := doc["components"].(map[string]any)["schemas"].(map[string]any)
	resolve := func(sch map[string]any) map[string]any {
		if ref, ok := sch["$ref"].(string); ok {
			return components[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
		}
		return sch
	}
	body := func(path, method string) map[string]any {
		op := doc["paths"].(map[string]any)[path].(map[string]any)[method].(map[string]any)
		return resolve(op["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any))
	}
	prop := func(sch map[string]any, name string) map[string]any {
		p := resolve(sch["properties"].(map[string]any)[name].(map[string]any))
		if p["type"] == "array" {
			return resolve(p["items"].(map[string]any))
		}
		return p
	}
	tests := []struct {
		path, method, field string
		want                []string
	}{
		{"/v1/signals", "post", "urgency", domain.Urgencies.Values()},
		{"/v1/signals", "post", "consent", domain.Consents.Values()},
		{"/v1/signals/{id}/follow-ups", "post", "kind", domain.FollowUpKinds.Values()},
		{"/v1/signals/{id}/follow-ups", "post", "outcome", domain.FollowUpOutcomes.Values()},
		{"/v1/signals/{id}/feedback", "post", "code", domain.FeedbackCodes.Values()},
		{"/v1/signals/{id}/close", "post", "outcome", domain.CloseOutcomes.Values()},
		{"/v1/organisations", "post", "kind", domain.OrganisationKind.Values()},
	}
	// A network keeps its own categories: an open set, of ids of a form.
	if cat := prop(body("/v1/signals", "post"), "categories"); cat["enum"] != nil || cat["pattern"] != configIDPattern {
		t.Errorf("categories: %v, want no enum and the pattern of a configuration id", cat)
	}
	for _, tt := range tests {
		var got []string
		for _, v := range prop(body(tt.path, tt.method), tt.field)["enum"].([]any) {
			got = append(got, v.(string))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s %s %s (-want +got):\n%s", tt.method, tt.path, tt.field, diff)
		}
	}
}
