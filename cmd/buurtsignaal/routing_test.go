package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestEverySignalReachesATeam: partners hand over and withdraw what they
// raised; a rule marked on_raise hands a matching signal over as it is
// raised (the handover names the rule and the system's routing actor); a
// signal still without a team one working day on is in the coordinators'
// overdue list and notified to them once.
func TestEverySignalReachesATeam(t *testing.T) {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	start := time.Date(2026, 3, 6, 15, 0, 0, 0, ams) // a Friday
	c := &clock{t: start}
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_NOTIFY_SCAN_INTERVAL": "50ms"}, c.now)
	rc := newReceiver(t)
	rc.setTargets(s, []map[string]any{hook("coordinators", "coordinators", "", rc.url("/coord"), "unrouted")})

	// A partner hands over its own signal, not another's; and withdraws.
	mine := s.must(201, s.do("POST", "/v1/signals", "eva", raiseBody("Partner Een")), "partner raises").str("id")
	s.must(403, s.do("POST", "/v1/signals/"+mine+"/handover", "femke", map[string]any{"team_id": "team-a"}), "another partner hands over")
	s.must(200, s.do("POST", "/v1/signals/"+mine+"/handover", "eva", map[string]any{"team_id": "team-a"}), "the partner hands over its own")
	other := s.must(201, s.do("POST", "/v1/signals", "eva", raiseBody("Partner Twee")), "partner raises").str("id")
	s.must(200, s.do("POST", "/v1/signals/"+other+"/withdraw", "eva", map[string]any{"reason": "vergissing"}), "the partner withdraws its own")
	teams := s.must(200, s.do("GET", "/v1/teams", "eva", nil), "teams")
	if got := strings.TrimSpace(string(teams.raw)); got != `{"items":[{"id":"team-a"},{"id":"team-b"}],"any":false}` {
		t.Errorf("teams: %s", got)
	}

	// on_raise: acute signals go to team-a as they are raised; the first
	// match decides, so a high signal (matching "rest") waits.
	s.must(200, s.do("PUT", "/v1/routing-rules", "gert", map[string]any{"rules": []any{
		map[string]any{"id": "acute", "urgency": "acute", "team_id": "team-a", "on_raise": true},
		map[string]any{"id": "rest", "team_id": "team-b"},
	}}), "rules")
	acute := raiseBody("Acuut Een")
	acute["urgency"] = "acute"
	a := s.must(201, s.do("POST", "/v1/signals", "carla", acute), "raise acute")
	if a.str("status") != "handed_over" || a.num("version") != 2 {
		t.Fatalf("an acute raise under an on_raise rule: %s", a.raw)
	}
	auto := a.str("id")
	pos := fmt.Sprint(a.num("position"))
	cs := s.must(200, s.do("GET", "/v1/signals/"+auto+"?min_position="+pos, "anna", nil), "team-a reads it")
	if cs.str("team_id") != "team-a" || cs.str("routing_rule") != "acute" {
		t.Errorf("the case: team %q, rule %q", cs.str("team_id"), cs.str("routing_rule"))
	}
	hist := s.must(200, s.do("GET", "/v1/signals/"+auto+"/history", "anna", nil), "history")
	var h struct {
		Events []struct {
			Type      string `json:"type"`
			ActorID   string `json:"actor_id"`
			ActorRole string `json:"actor_role"`
		} `json:"events"`
	}
	_ = json.Unmarshal(hist.raw, &h)
	if len(h.Events) != 2 || h.Events[1].Type != "SignalHandedOver" || h.Events[1].ActorID != "system:routing" || h.Events[1].ActorRole != "system" {
		t.Errorf("history of the routed signal: %s", hist.raw)
	}
	waiting := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Wacht Een")), "raise high")
	if waiting.str("status") != "raised" {
		t.Fatalf("a high raise whose first matching rule is not on_raise: %s", waiting.raw)
	}
	w := waiting.str("id")

	// One working day on (Friday 15:00 -> Monday 15:00), the waiting signal
	// is overdue as unrouted, and the coordinators hear of it once.
	unrouted := func(minPosition ...int) map[string]bool {
		path := "/v1/monitor/overdue"
		if len(minPosition) > 0 {
			path += "?min_position=" + strconv.Itoa(minPosition[0])
		}
		a := s.must(200, s.do("GET", path, "gert", nil), "overdue")
		var page struct {
			Items []struct {
				ID       string `json:"id"`
				State    string `json:"state"`
				Unrouted bool   `json:"unrouted"`
			} `json:"items"`
		}
		_ = json.Unmarshal(a.raw, &page)
		out := map[string]bool{}
		for _, it := range page.Items {
			if it.Unrouted {
				out[it.ID+" "+it.State] = true
			}
		}
		return out
	}
	c.set(start.Add(72*time.Hour - time.Minute)) // Monday 14:59
	time.Sleep(200 * time.Millisecond)
	if got := unrouted(); len(got) != 0 {
		t.Errorf("unrouted before a working day passed: %v", got)
	}
	if got := rc.kinds("/coord"); len(got) != 0 {
		t.Errorf("notified before a working day passed: %v", got)
	}
	c.set(start.Add(72 * time.Hour)) // Monday 15:00
	if got := unrouted(); !got[w+" unrouted"] || len(got) != 1 {
		t.Errorf("unrouted on Monday 15:00: %v, want only %s", got, w)
	}
	rc.waitFor("/coord", []string{"unrouted " + w})
	time.Sleep(200 * time.Millisecond) // more scans: sent once
	rc.waitFor("/coord", []string{"unrouted " + w})
	// Handed over, it leaves the list.
	ho := s.must(200, s.do("POST", "/v1/signals/"+w+"/handover", "carla", map[string]any{}), "hand over by the rules")
	if got := unrouted(ho.num("position")); len(got) != 0 {
		t.Errorf("unrouted after the handover: %v", got)
	}
}
