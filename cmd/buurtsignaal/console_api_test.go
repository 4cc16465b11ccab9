package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/console"
)

// TestConsoleQueries checks the queries added for the console: the
// network's unrouted signals, the directory of principals, the audited
// names read, a coordinator's view of one signal, and the caseload's
// filters and counts.
func TestConsoleQueries(t *testing.T) {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	c := &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, ams)} // a Monday
	s := startServerWith(t, "", nil, c.now)
	a := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise a")
	b := s.must(201, s.do("POST", "/v1/signals", "dirk", raiseBody("Tweede Persoon")), "raise b")
	s.must(200, s.do("POST", "/v1/signals/"+b.str("id")+"/handover", "dirk", map[string]any{"team_id": "team-a"}), "handover b")
	last := s.must(200, s.do("POST", "/v1/signals/"+b.str("id")+"/accept", "anna", nil), "accept b")
	pos := fmt.Sprint(last.num("position"))

	// Unrouted: a's only, for professionals and coordinators, no personal data.
	c.set(c.now().Add(30 * time.Hour))
	for _, who := range []string{"anna", "gert"} {
		u := s.must(200, s.do("GET", "/v1/signals/unrouted?min_position="+pos, who, nil), "unrouted")
		items, _ := u.body["items"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["id"] != a.str("id") || items[0].(map[string]any)["unrouted"] != true {
			t.Errorf("unrouted as %s: %s", who, u.raw)
		}
		if strings.Contains(string(u.raw), secretName) {
			t.Errorf("unrouted shows personal data: %s", u.raw)
		}
	}

	// The directory: display names and roles.
	d := s.must(200, s.do("GET", "/v1/principals", "hanna", nil), "principals")
	if !strings.Contains(string(d.raw), `"id":"anna","name":"Test anna","roles":["professional"],"teams":["team-a"]`) || d.body["complete"] != true {
		t.Errorf("principals: %s", d.raw)
	}

	// Names: audited, only the network's subjects, erased ones marked.
	// (Volunteers are not told subject ids: the privacy officer finds them.)
	subjectOf := func(name string) string {
		found := s.must(200, s.do("POST", "/v1/subjects/search", "hanna", map[string]any{"name": name, "birth_date": "1941-03-12"}), "search")
		ids, _ := found.body["subject_ids"].([]any)
		if len(ids) != 1 {
			t.Fatalf("search %s: %s", name, found.raw)
		}
		return ids[0].(string)
	}
	subjectA, subjectB := subjectOf(secretName), subjectOf("Tweede Persoon")
	n := s.must(200, s.do("GET", "/v1/subjects/names?id="+subjectA+"&id="+subjectB+"&id=00000000-0000-0000-0000-000000000001", "hanna", nil), "names")
	if !strings.Contains(string(n.raw), secretName) || !strings.Contains(string(n.raw), "Tweede Persoon") || strings.Contains(string(n.raw), "00000000-0000-0000-0000-000000000001") {
		t.Errorf("names: %s", n.raw)
	}
	s.must(422, s.do("GET", "/v1/subjects/names?id=nope", "hanna", nil), "names of a bad id")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		log := s.must(200, s.do("GET", "/v1/audit/subjects/"+subjectA, "hanna", nil), "subject log")
		if strings.Contains(string(log.raw), `"view":"/v1/subjects/names"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the names read is not in the subject's access log: %s", log.raw)
		}
	}

	// A coordinator's view of one signal.
	m := s.must(200, s.do("GET", "/v1/monitor/signals/"+b.str("id"), "gert", nil), "monitor signal")
	if m.str("status") != "in_care" || m.str("team_id") != "team-a" || strings.Contains(string(m.raw), "Tweede") {
		t.Errorf("monitor signal: %s", m.raw)
	}
	s.must(404, s.do("GET", "/v1/monitor/signals/00000000-0000-0000-0000-000000000001", "gert", nil), "an unknown signal")

	// Caseload filters and counts.
	counts := s.must(200, s.do("GET", "/v1/caseload/counts", "anna", nil), "counts")
	if counts.num("all") != 1 || counts.num("mine") != 0 || counts.num("unassigned") != 1 || counts.num("overdue") != 0 {
		t.Errorf("counts: %s", counts.raw)
	}
	un := s.must(200, s.do("GET", "/v1/caseload?assignee=none", "anna", nil), "unassigned")
	if items, _ := un.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["matched"] != false {
		t.Errorf("unassigned: %s", un.raw)
	}
	fu := s.must(200, s.do("POST", "/v1/signals/"+b.str("id")+"/follow-ups", "anna", map[string]any{"kind": "phone_call", "outcome": "reached",
		"next_due": c.now().In(ams).AddDate(0, 0, 1).Format(time.DateOnly)}), "follow-up")
	c.set(c.now().Add(48 * time.Hour)) // the follow-up's day has passed
	od := s.must(200, s.do("GET", fmt.Sprintf("/v1/caseload?overdue=true&min_position=%d", fu.num("position")), "anna", nil), "overdue")
	if items, _ := od.body["items"].([]any); len(items) != 1 {
		t.Errorf("overdue: %s", od.raw)
	}
	s.must(422, s.do("GET", "/v1/caseload?assignee=someone", "anna", nil), "a bad assignee filter")

	// My signals tell two signals apart by what was entered.
	mine := s.must(200, s.do("GET", "/v1/my/signals", "carla", nil), "my signals")
	if !strings.Contains(string(mine.raw), `"neighbourhood":"centrum"`) || !strings.Contains(string(mine.raw), `"urgency":"high"`) {
		t.Errorf("my signals: %s", mine.raw)
	}
}

// TestLabelsCoverEveryView: every route of the API has words as the view
// of an access record (a denied attempt can come through any of them), and
// every action the API records for a read has words too, in Dutch and
// English.
func TestLabelsCoverEveryView(t *testing.T) {
	files, _ := filepath.Glob("../../adapters/httpapi/*.go")
	action := regexp.MustCompile(`\.access\(r, "([a-z_]+)"`)
	found := 0
	for _, f := range files {
		src, _ := os.ReadFile(f)
		for _, m := range action.FindAllStringSubmatch(string(src), -1) {
			found++
			for _, lang := range []string{"nl", "en"} {
				if l, ok := console.Label(lang, "action", m[1]); !ok || l == "" {
					t.Errorf("the access record action %s (%s) has no %s label", m[1], filepath.Base(f), lang)
				}
			}
		}
	}
	if found < 5 {
		t.Fatalf("found %d recorded actions in adapters/httpapi", found)
	}
	s := startServer(t, "", nil)
	for _, r := range routesOf(t, s) {
		_, pattern, _ := strings.Cut(r, " ")
		for _, lang := range []string{"nl", "en"} {
			if l, ok := console.Label(lang, "view", pattern); !ok || l == "" {
				t.Errorf("the view %s has no %s label", pattern, lang)
			}
		}
	}
}
