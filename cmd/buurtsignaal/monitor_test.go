package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a test clock the server reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// clockShiftEnv names the shift make test applies to the injected clocks
// that meet a real client (a cookie jar, a browser, a TLS peer).
const clockShiftEnv = "BUURTSIGNAAL_TEST_CLOCK_SHIFT"

// clientFacingStart is the start of an injected clock that meets a real
// client: at, moved by the Go duration in BUURTSIGNAAL_TEST_CLOCK_SHIFT.
// make test runs the tests that use it again with their clocks 52 weeks
// back and 52 weeks forward (whole weeks keep the weekday, so working-day
// norms stay the same), so a test that works only near the day it was
// written fails at once instead of on some later day.
func clientFacingStart(t testing.TB, at time.Time) time.Time {
	t.Helper()
	v := os.Getenv(clockShiftEnv)
	if v == "" {
		return at
	}
	d, err := time.ParseDuration(v)
	if err != nil || d%(7*24*time.Hour) != 0 {
		t.Fatalf("%s=%q: want a whole number of weeks as a Go duration, such as -8736h", clockShiftEnv, v)
	}
	t.Logf("injected clock shifted by %s", v)
	return at.Add(d)
}

func overdueStates(t *testing.T, s *server) map[string]string {
	t.Helper()
	a := s.must(200, s.do("GET", "/v1/monitor/overdue", "gert", nil), "overdue")
	out := map[string]string{}
	items, _ := a.body["items"].([]any)
	for _, it := range items {
		m := it.(map[string]any)
		out[m["id"].(string)] = m["state"].(string)
	}
	return out
}

// TestResponseStatesFollowTheClock moves the injected clock across the
// deadlines of an acute and a high signal, over a weekend and King's Day.
func TestResponseStatesFollowTheClock(t *testing.T) {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	c := &clock{t: time.Date(2026, 4, 24, 16, 0, 0, 0, ams)} // Friday before King's Day (Monday 27 April)
	s := startServerWith(t, "", nil, c.now)
	acute := s.must(201, s.do("POST", "/v1/signals", "carla", map[string]any{"subject": map[string]any{"name": secretName}, "neighbourhood": "centrum",
		"categories": []string{"safety"}, "urgency": "acute", "description": secretDesc, "consent": "vital_interest"}), "raise acute").str("id")
	high := s.must(201, s.do("POST", "/v1/signals", "dirk", raiseBody("Tweede Persoon")), "raise high")
	highID := high.str("id")
	s.must(200, s.do("POST", "/v1/signals/"+acute+"/handover", "carla", map[string]any{"team_id": "team-a", "note": secretNote}), "handover")
	pos := fmt.Sprint(s.must(200, s.do("POST", "/v1/signals/"+highID+"/handover", "dirk", map[string]any{"team_id": "team-b"}), "handover").num("position"))
	s.must(200, s.do("GET", "/v1/monitor/overdue?min_position="+pos, "gert", nil), "wait")

	steps := []struct {
		at   time.Time
		want map[string]string
	}{
		{time.Date(2026, 4, 25, 15, 0, 0, 0, ams), map[string]string{}},                                    // 23 h: all waiting
		{time.Date(2026, 4, 25, 17, 0, 0, 0, ams), map[string]string{acute: "late"}},                       // 25 h: acute late
		{time.Date(2026, 4, 27, 17, 0, 0, 0, ams), map[string]string{acute: "late_3x"}},                    // 73 h: acute 3x
		{time.Date(2026, 4, 30, 15, 0, 0, 0, ams), map[string]string{acute: "late_3x"}},                    // high due Thu 30 Apr 16:00 (skips the weekend and King's Day)
		{time.Date(2026, 4, 30, 17, 0, 0, 0, ams), map[string]string{acute: "late_3x", highID: "late"}},    // high late
		{time.Date(2026, 5, 12, 17, 0, 0, 0, ams), map[string]string{acute: "late_3x", highID: "late_3x"}}, // 9 working days on (skipping Liberation Day)
	}
	for _, st := range steps {
		c.set(st.at)
		got := overdueStates(t, s)
		if len(got) != len(st.want) {
			t.Fatalf("at %s: overdue %v, want %v", st.at, got, st.want)
		}
		for id, state := range st.want {
			if got[id] != state {
				t.Fatalf("at %s: %s is %q, want %q", st.at, id, got[id], state)
			}
		}
	}
	// A late answer leaves the overdue list and counts as answered late.
	acc := s.must(200, s.do("POST", "/v1/signals/"+acute+"/accept", "anna", nil), "accept late")
	mon := s.must(200, s.do("GET", fmt.Sprintf("/v1/monitor/response?min_position=%d&from=2026-04-01", acc.num("position")), "gert", nil), "monitor")
	// Three signals: every count of one or two is suppressed (k 5), and
	// the late one (0) is published.
	for _, f := range []string{"total", "answered_late", "late_3x", "unanswered", "answered"} {
		if v, ok := mon.body[f]; !ok || v != nil {
			t.Errorf("monitor: %s = %v, want null (suppressed)", f, v)
		}
	}
	if v, ok := mon.body["late"].(float64); !ok || v != 0 || mon.body["suppressed"] != true {
		t.Fatalf("monitor: %s", mon.raw)
	}
	// The series samples open and overdue signals a day apart, ending now;
	// a count below k is null (-1 here).
	var rep struct {
		Series []struct {
			At            time.Time
			Open, Overdue *int
		}
	}
	if err := json.Unmarshal(mon.raw, &rep); err != nil {
		t.Fatal(err)
	}
	points := map[string][2]int{}
	for _, p := range rep.Series {
		v := func(n *int) int {
			if n == nil {
				return -1
			}
			return *n
		}
		points[p.At.In(ams).Format("2006-01-02 15:04")] = [2]int{v(p.Open), v(p.Overdue)}
	}
	for at, want := range map[string][2]int{
		"2026-04-24 17:00": {-1, 0},  // raised at 16:00 (2 open)
		"2026-04-25 17:00": {-1, -1}, // acute late (2 open, 1 overdue)
		"2026-05-01 17:00": {-1, -1}, // high late too (2, 2)
		"2026-05-12 17:00": {-1, -1}, // acute answered now (2, 1)
	} {
		if got, ok := points[at]; !ok || got != want {
			t.Errorf("series at %s: open/overdue %v (present %t), want %v", at, got, ok, want)
		}
	}
	if len(rep.Series) != 42 || points["2026-04-01 17:00"] != [2]int{0, 0} {
		t.Errorf("series: %d points from %v, want 42 from 1 April", len(rep.Series), rep.Series[0].At)
	}
	if _, ok := overdueStates(t, s)[acute]; ok {
		t.Fatal("answered signal still overdue")
	}
	metrics := s.do("GET", "/metrics", "", nil)
	// One overdue signal: below k, so the series is left out.
	if strings.Contains(string(metrics.raw), `buurtsignaal_signals_overdue{`) || !strings.Contains(string(metrics.raw), "buurtsignaal_projection_position") {
		t.Fatalf("metrics show a series below k, or lack the overdue gauge:\n%s", grep(string(metrics.raw), "buurtsignaal_signals"))
	}
	for _, secret := range []string{secretName, secretDesc, secretNote, "Tweede Persoon"} {
		for what, body := range map[string][]byte{"monitor": mon.raw, "overdue": s.do("GET", "/v1/monitor/overdue", "gert", nil).raw, "metrics": metrics.raw} {
			if strings.Contains(string(body), secret) {
				t.Fatalf("%s holds personal data", what)
			}
		}
	}
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestOperatorMetrics: the metrics an operator alerts on are exported and
// move: audit records, data directory sizes, free space and subject keys.
func TestOperatorMetrics(t *testing.T) {
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn"}, nil)
	id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Operator Persoon")), "raise").str("id")
	ho := s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "gert", map[string]any{"team_id": "team-a"}), "handover")
	s.must(200, s.do("GET", fmt.Sprintf("/v1/signals/%s?min_position=%d", id, ho.num("position")), "anna", nil), "read")
	text := string(s.do("GET", "/metrics", "", nil).raw)
	for _, want := range []string{
		`buurtsignaal_audit_records_total{kind="access"} [1-9]`,
		`buurtsignaal_audit_failures_total{kind="access"} 0`,
		`buurtsignaal_data_bytes{dir="events"} [1-9]`,
		`buurtsignaal_data_bytes{dir="keys"} [1-9]`,
		`buurtsignaal_data_free_bytes [1-9]`,
		`buurtsignaal_subject_keys 1\b`,
	} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(text) {
			t.Errorf("metrics lack %s:\n%s", want, grep(text, "buurtsignaal_"))
		}
	}
}
