package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestRoutingRules: coordinators keep the ordered routing rules, versioned
// with If-Match; a handover without a team goes to the team of the first
// matching rule, which the event records; with no match it is a 422.
func TestRoutingRules(t *testing.T) {
	s := startServer(t, "", nil)
	empty := s.must(200, s.do("GET", "/v1/routing-rules", "gert", nil), "no rules yet")
	if empty.num("version") != 0 || empty.header.Get("ETag") != `"0"` || !strings.Contains(string(empty.raw), `"rules":[]`) {
		t.Fatalf("empty rules: %s (ETag %s)", empty.raw, empty.header.Get("ETag"))
	}
	rules := map[string]any{"rules": []any{
		map[string]any{"id": "acute-centrum", "neighbourhood": "centrum", "urgency": "acute", "team_id": "team-b"},
		map[string]any{"id": "high", "urgency": "high", "team_id": "team-a"},
	}}
	set := s.must(200, s.do("PUT", "/v1/routing-rules", "gert", rules, "If-Match", `"0"`), "set rules")
	if set.num("version") != 1 {
		t.Fatalf("version after the first set: %s", set.raw)
	}
	s.must(409, s.do("PUT", "/v1/routing-rules", "ivo", rules, "If-Match", `"0"`), "stale If-Match")
	bad := s.must(422, s.do("PUT", "/v1/routing-rules", "gert", map[string]any{"rules": []any{map[string]any{"id": "x", "team_id": "team-zz", "category": "fun"}}}), "bad rules")
	for _, field := range []string{"rules[0].team_id", "rules[0].category"} {
		if !strings.Contains(string(bad.raw), field) {
			t.Errorf("422 lacks %s: %s", field, bad.raw)
		}
	}
	got := s.must(200, s.do("GET", "/v1/routing-rules", "anna", nil), "read rules")
	if got.num("version") != 1 || !strings.Contains(string(got.raw), `"acute-centrum"`) {
		t.Fatalf("rules: %s", got.raw)
	}

	// raiseBody is a high-urgency signal in centrum: the second rule.
	id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Route Bewoner")), "raise").str("id")
	ho := s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{}), "handover by the rules")
	c := s.must(200, s.do("GET", "/v1/signals/"+id+"?min_position="+strconv.Itoa(ho.num("position")), "anna", nil), "team-a reads it")
	if c.str("team_id") != "team-a" || c.str("routing_rule") != "high" {
		t.Errorf("team %q by rule %q, want team-a by rule high", c.str("team_id"), c.str("routing_rule"))
	}
	s.must(403, s.do("GET", "/v1/signals/"+id, "bob", nil), "team-b does not have it")

	// No rule matches a normal-urgency signal: name a team.
	body := raiseBody("Geen Regel")
	body["urgency"] = "normal"
	other := s.must(201, s.do("POST", "/v1/signals", "carla", body), "raise normal").str("id")
	miss := s.must(422, s.do("POST", "/v1/signals/"+other+"/handover", "carla", map[string]any{}), "no matching rule")
	if !strings.Contains(string(miss.raw), "team_id") {
		t.Errorf("422 without the field: %s", miss.raw)
	}
	s.must(200, s.do("POST", "/v1/signals/"+other+"/handover", "carla", map[string]any{"team_id": "team-b"}), "a named team needs no rule")
}
