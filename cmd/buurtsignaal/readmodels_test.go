package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
)

// caughtUp returns the fields of the server's "projections caught up" log line.
func caughtUp(t *testing.T, s *server) map[string]any {
	t.Helper()
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "projections caught up" {
			return rec
		}
	}
	t.Fatalf("no \"projections caught up\" in the log:\n%s", s.stderr.String())
	return nil
}

// TestRestartResumesTheReadModels: a restarted server opens its on-disk read
// models and applies only the events written since their checkpoint, not
// the log again, and answers from them as before: a closed case (on disk),
// the caseload (open work, loaded at start), the audit trail and the
// signaller's list a page at a time, monitoring. On the embedded store and
// on KurrentDB alike: each replica keeps its own read models.
func TestRestartResumesTheReadModels(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { restartResumes(t, nil) })
	t.Run("kurrentdb", func(t *testing.T) {
		srv := kurrenttest.Start(t)
		restartResumes(t, map[string]string{"BUURTSIGNAAL_STORE": srv.URL()})
	})
}

func restartResumes(t *testing.T, env map[string]string) {
	// Three signals: published with the smallest k.
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	env["BUURTSIGNAAL_SUPPRESS_K"] = "3"
	dataDir := t.TempDir()
	s := startServer(t, dataDir, env)
	var closedID, openID string
	for i := 0; i < 3; i++ {
		id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(fmt.Sprintf("Persoon %d", i))), "raise").str("id")
		sig := "/v1/signals/" + id
		s.must(200, s.do("POST", sig+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
		s.must(200, s.do("POST", sig+"/accept", "anna", nil), "accept")
		if i == 0 {
			s.must(200, s.do("POST", sig+"/close", "anna", map[string]any{"outcome": "resolved"}), "close")
			closedID = id
		} else {
			openID = id
		}
	}
	last := s.must(200, s.do("POST", "/v1/signals/"+openID+"/feedback", "anna", map[string]any{"code": "in_progress"}), "feedback")
	pos := fmt.Sprint(last.num("position"))
	read := func(s *server, what string) (closed, caseload, audit, mine, monitor answer) {
		t.Helper()
		closed = s.must(200, s.do("GET", "/v1/signals/"+closedID+"?min_position="+pos, "anna", nil), what+": closed case")
		caseload = s.must(200, s.do("GET", "/v1/caseload?limit=1", "anna", nil), what+": caseload")
		audit = s.must(200, s.do("GET", "/v1/audit/actors/anna?limit=1", "hanna", nil), what+": audit")
		mine = s.must(200, s.do("GET", "/v1/my/signals?limit=2", "carla", nil), what+": my signals")
		monitor = s.must(200, s.do("GET", "/v1/monitor/response", "gert", nil), what+": monitor")
		return
	}
	c1, l1, a1, m1, mon1 := read(s, "before")
	s.stop()

	entries, err := os.ReadDir(filepath.Join(dataDir, "readmodels"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("no read models on disk: %v", err)
	}
	again := startServer(t, dataDir, env)
	rec := caughtUp(t, again)
	// The reads before the stop wrote access records: those are the only
	// events the restart has to apply.
	if applied := rec["events"].(float64); applied > 10 {
		t.Fatalf("the restart applied %v events: the log again, not what followed the checkpoint", applied)
	}
	c2, l2, a2, m2, mon2 := read(again, "after")
	if c2.str("status") != "closed" || c2.str("description") != secretDesc || c1.str("status") != "closed" {
		t.Fatalf("closed case after the restart: %s", c2.raw)
	}
	items := func(a answer) []any { v, _ := a.body["items"].([]any); return v }
	if len(items(l1)) != 1 || len(items(l2)) != 1 || l2.str("next_cursor") == "" || fmt.Sprint(items(l1)) != fmt.Sprint(items(l2)) {
		t.Fatalf("caseload before %s, after %s", l1.raw, l2.raw)
	}
	// (The access records of the reads just before the stop may have been
	// applied after the audit query: only the restarted server's answer is
	// certain to hold a page and a next one.)
	if len(items(a2)) != 1 || a2.str("next_cursor") == "" || len(items(a1)) > 1 {
		t.Fatalf("audit page before the restart %s, after %s", a1.raw, a2.raw)
	}
	next := again.must(200, again.do("GET", "/v1/my/signals?limit=2&cursor="+m2.str("next_cursor"), "carla", nil), "my signals, page 2")
	if len(items(m1)) != 2 || len(items(m2)) != 2 || len(items(next)) != 1 || next.str("next_cursor") != "" {
		t.Fatalf("my signals after the restart: %s then %s", m2.raw, next.raw)
	}
	if mon1.num("total") != 3 || mon2.num("total") != 3 || mon2.num("answered") != 3 {
		t.Fatalf("monitor before %s, after %s", mon1.raw, mon2.raw)
	}
	again.must(422, again.do("GET", "/v1/my/signals?cursor=bm90LWEtY3Vyc29y", "carla", nil), "a cursor the server did not give")
}

// TestSignOutSurvivesARestart: the ended sessions are a read model on disk
// too; a restart, which no longer replays the log, still refuses a copy of
// a signed-out session's cookie.
func TestSignOutSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, nil)
	cl := newConsoleClient(t, s)
	cl.signIn("tok-anna")
	u, _ := url.Parse(s.base + "/console/")
	var copied *http.Cookie
	for _, ck := range cl.hc.Jar.Cookies(u) {
		if ck.Name == "bs_session" {
			copied = ck
		}
	}
	if copied == nil {
		t.Fatal("no session cookie")
	}
	cl.must(200, cl.post("/console/logout", url.Values{}), "sign out", `id="token"`)
	s.stop()
	s = startServer(t, dir, nil)
	req, _ := http.NewRequest(http.MethodGet, s.base+"/console/caseload", nil)
	req.AddCookie(&http.Cookie{Name: "bs_session", Value: copied.Value})
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("after a restart a signed-out session's cookie is taken again")
	}
	if applied := caughtUp(t, s)["events"].(float64); applied > 5 {
		t.Fatalf("the restart applied %v events", applied)
	}
}
