package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// reviewItemOf makes a break-glass read (bob, outside the team) and
// returns the id of the review item it opened, as the network's privacy
// officer lists it.
func reviewItemOf(t *testing.T, s *server) string {
	t.Helper()
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Review Persoon")), "raise")
	id := raised.str("id")
	h := s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover").num("position")
	s.must(200, s.do("GET", fmt.Sprintf("/v1/signals/%s?min_position=%d", id, h), "bob", nil, "X-Break-Glass-Reason", "waarneming"), "break-glass read")
	pos := s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept").num("position")
	items := reviewItems(t, s.must(200, s.do("GET", fmt.Sprintf("/v1/audit/reviews?rule=break_glass&state=open&min_position=%d", pos), "hanna", nil), "reviews"))
	for _, it := range items {
		if sigs, _ := it["signal_ids"].([]any); len(sigs) == 1 && sigs[0] == id {
			return it["id"].(string)
		}
	}
	t.Fatalf("no review item for the break-glass read of %s: %v", id, items)
	return ""
}

func reviewItems(t *testing.T, a answer) []map[string]any {
	t.Helper()
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(a.raw, &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// TestAccessReviewsThroughTheServer: a break-glass read opens a review
// item due five working days on (the network's calendar); a read on a
// Saturday raises an after-hours flag; only the network's privacy officer
// sees them; a judgement with a note closes one (idempotently; the note
// is sealed: never in clear on disk or in the log); the other turns
// overdue when its term passes; the report counts it all, as JSON and as
// a printable page; every read of these is itself an access record; bad
// input is a 422 that writes nothing.
func TestAccessReviewsThroughTheServer(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 4, 2, 10, 0, 0, 0, ams)} // Thursday before Good Friday and Easter Monday
	s := startServerWith(t, "", nil, c.now)
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	id := raised.str("id")
	h := s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover").num("position")
	s.must(200, s.do("GET", fmt.Sprintf("/v1/signals/%s?min_position=%d", id, h), "bob", nil, "X-Break-Glass-Reason", "waarneming"), "break-glass read")
	acc := s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept").num("position")
	c.set(time.Date(2026, 4, 4, 11, 0, 0, 0, ams)) // Saturday
	s.must(200, s.do("GET", fmt.Sprintf("/v1/signals/%s?min_position=%d", id, acc), "anna", nil), "a read on Saturday")
	pos := s.must(200, s.do("POST", "/v1/signals/"+id+"/feedback", "anna", map[string]any{"code": "in_progress"}), "feedback").num("position")
	q := fmt.Sprintf("min_position=%d", pos)
	// The privacy officer works on Tuesday (a read of hers on a Saturday
	// would be flagged too).
	c.set(time.Date(2026, 4, 7, 10, 0, 0, 0, ams))

	all := reviewItems(t, s.must(200, s.do("GET", "/v1/audit/reviews?"+q, "hanna", nil), "reviews"))
	if len(all) != 2 || all[0]["rule"] != "break_glass" || all[0]["actor_id"] != "bob" || all[0]["state"] != "open" ||
		all[0]["due_at"] != "2026-04-13T08:00:00Z" || all[1]["rule"] != "after_hours" || all[1]["actor_id"] != "anna" {
		t.Fatalf("reviews: %v", all)
	}
	flags := reviewItems(t, s.must(200, s.do("GET", "/v1/audit/flags?rule=after_hours&"+q, "hanna", nil), "flags"))
	if len(flags) != 1 || flags[0]["id"] != all[1]["id"] || len(flags[0]["records"].([]any)) != 1 {
		t.Fatalf("flags: %v", flags)
	}
	if got := reviewItems(t, s.must(200, s.do("GET", "/v1/audit/flags?rule=outside_team&"+q, "hanna", nil), "no outside-team flags")); len(got) != 0 {
		t.Errorf("outside-team flags: %v", got)
	}
	// Staff activity is personal data too: privacy officers of the network only.
	for _, who := range []string{"gert", "anna", "ivo"} {
		s.must(403, s.do("GET", "/v1/audit/flags", who, nil), who+" reads the flags")
		s.must(403, s.do("POST", "/v1/audit/reviews", who, map[string]any{"item": all[0]["id"], "judgement": "justified"}), who+" judges")
	}
	if got := reviewItems(t, s.must(200, s.do("GET", "/v1/audit/reviews?"+q, "wanda", nil), "another network")); len(got) != 0 {
		t.Errorf("another network's privacy officer sees %v", got)
	}
	s.must(404, s.do("POST", "/v1/audit/reviews", "wanda", map[string]any{"item": all[0]["id"], "judgement": "justified"}), "another network's item")

	// Bad input: a problem, and nothing written.
	before := s.must(200, s.do("GET", "/v1/audit/reviews?state=reviewed&"+q, "hanna", nil), "before")
	for name, body := range map[string]map[string]any{
		"no item":           {"judgement": "justified"},
		"unknown judgement": {"item": all[1]["id"], "judgement": "fine"},
		"long note":         {"item": all[1]["id"], "judgement": "justified", "note": strings.Repeat("x", 2001)},
	} {
		if a := s.do("POST", "/v1/audit/reviews", "hanna", body); a.status != 422 || !strings.HasPrefix(a.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s: %d %s", name, a.status, a.raw)
		}
	}
	s.must(422, s.do("GET", "/v1/audit/flags?rule=break_glass", "hanna", nil), "break_glass is no flag rule")
	s.must(422, s.do("GET", "/v1/audit/reviews?state=done", "hanna", nil), "unknown state")
	if got := reviewItems(t, before); len(got) != 0 {
		t.Fatalf("reviewed before any judgement: %v", got)
	}

	// A judgement with a note, sent twice with one Idempotency-Key.
	c.set(time.Date(2026, 4, 7, 11, 0, 0, 0, ams))
	body := map[string]any{"item": all[1]["id"], "judgement": "follow_up", "note": secretNote}
	first := s.must(200, s.do("POST", "/v1/audit/reviews", "hanna", body, "Idempotency-Key", "review-1"), "judge")
	again := s.must(200, s.do("POST", "/v1/audit/reviews", "hanna", body, "Idempotency-Key", "review-1"), "judge again")
	if first.num("position") != again.num("position") {
		t.Fatalf("a retry wrote again: %s then %s", first.raw, again.raw)
	}
	q = fmt.Sprintf("min_position=%d", first.num("position"))
	done := reviewItems(t, s.must(200, s.do("GET", "/v1/audit/reviews?state=reviewed&"+q, "hanna", nil), "reviewed"))
	if len(done) != 1 || done[0]["judgement"] != "follow_up" || done[0]["reviewed_by"] != "hanna" || done[0]["note"] != secretNote {
		t.Fatalf("reviewed: %v", done)
	}
	if f := reviewItems(t, s.must(200, s.do("GET", "/v1/audit/flags?"+q, "hanna", nil), "flags")); len(f) != 1 || f[0]["note"] != nil {
		t.Fatalf("the flags list shows notes: %v", f)
	}

	// The term passes: the break-glass read is overdue.
	c.set(time.Date(2026, 4, 13, 10, 30, 0, 0, ams))
	overdue := reviewItems(t, s.must(200, s.do("GET", "/v1/audit/reviews?state=overdue&"+q, "hanna", nil), "overdue"))
	if len(overdue) != 1 || overdue[0]["id"] != all[0]["id"] || overdue[0]["state"] != "overdue" {
		t.Fatalf("overdue: %v", overdue)
	}
	rep := s.must(200, s.do("GET", "/v1/audit/report?from=2026-03-30&to=2026-04-12&"+q, "hanna", nil), "report")
	var r struct {
		Reads, BreakGlass, Done, Overdue, Open int
		Flags                                  []struct {
			Rule  string
			Count int
		} `json:"flags_by_rule"`
	}
	_ = json.Unmarshal(rep.raw, &r)
	r.BreakGlass, r.Done, r.Overdue, r.Open = rep.num("break_glass_reads"), rep.num("reviews_done"), rep.num("reviews_overdue"), rep.num("reviews_open")
	afterHours := 0
	for _, f := range r.Flags {
		if f.Rule == "after_hours" {
			afterHours = f.Count
		}
	}
	if r.Reads < 2 || r.BreakGlass != 1 || r.Done != 1 || r.Overdue != 1 || r.Open != 0 || afterHours != 1 {
		t.Fatalf("report: %s", rep.raw)
	}
	page := s.do("GET", "/v1/audit/report?format=html&from=2026-03-30&to=2026-04-12", "hanna", nil)
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") || !strings.Contains(string(page.raw), "<table>") {
		t.Fatalf("printable report: %d %s", page.status, page.raw)
	}
	s.must(422, s.do("GET", "/v1/audit/report?from=2026-04-12&to=2026-04-01", "hanna", nil), "a period backwards")
	// The default week reaches no further back than year 0, which has a
	// JSON form (before, a 500: found by TestAPIProperties).
	if y0 := s.must(200, s.do("GET", "/v1/audit/report?to=0000-01-01", "hanna", nil), "the first day"); y0.str("from") != "0000-01-01T00:00:00Z" {
		t.Errorf("the first day's report is from %s", y0.str("from"))
	}

	// Every read of these is an access record of the privacy officer.
	last := s.must(200, s.do("POST", "/v1/signals/"+id+"/feedback", "anna", map[string]any{"code": "received"}), "feedback").num("position")
	trail := auditItems(t, s.must(200, s.do("GET", fmt.Sprintf("/v1/audit/actors/hanna?limit=500&min_position=%d", last), "hanna", nil), "hanna's trail"))
	views := map[string]int{}
	for _, it := range trail {
		views[fmt.Sprint(it["view"])]++
	}
	for _, v := range []string{"/v1/audit/reviews", "/v1/audit/flags", "/v1/audit/report"} {
		if views[v] == 0 {
			t.Errorf("no access record of %s: %v", v, views)
		}
	}

	s.stop()
	assertNoPlaintext(t, s.dataDir, secretName, secretNote)
	if strings.Contains(s.stderr.String(), secretNote) {
		t.Fatal("the log holds the note")
	}
}

// TestConsoleReviews: the privacy officer works through the items to
// review in the console (a client of the API): the break-glass read is
// listed with its form, a judgement without a choice is refused on the
// page, one with a note is recorded and shown as reviewed with its note;
// the flags page and the report show; other roles are refused.
func TestConsoleReviews(t *testing.T) {
	s := startServer(t, "", nil)
	item := reviewItemOf(t, s)
	c := newConsoleClient(t, s)
	c.signIn("tok-hanna")
	c.must(200, c.get("/console/privacy/reviews?state=open"), "reviews", `data-id="`+item+`"`, `name="judgement" value="not_justified"`)
	c.must(422, c.post("/console/privacy/reviews", url.Values{"item": {item}, "idem": {"j0"}, "back": {"?state=open"}}), "no judgement", "judgement")
	c.must(200, c.post("/console/privacy/reviews", url.Values{"item": {item}, "judgement": {"not_justified"}, "note": {"besproken met teamleider"}, "idem": {"j1"}, "back": {"?state=reviewed"}}),
		"judge", `data-id="`+item+`"`, "niet terecht", "besproken met teamleider")
	c.must(200, c.get("/console/privacy/reviews?flags=1"), "flags", `id="reviews"`)
	c.must(200, c.get("/console/privacy/report"), "report", `id="reviews-done">1<`)
	g := newConsoleClient(t, s)
	g.signIn("tok-gert")
	g.must(403, g.get("/console/privacy/reviews"), "a coordinator")
}

// TestReviewOverdueNotifiesPrivacyOfficers: a break-glass read not
// reviewed within its term is notified once to the network's privacy
// officers' target (review_overdue, ids only), never to the coordinators';
// one reviewed in time is not notified.
func TestReviewOverdueNotifiesPrivacyOfficers(t *testing.T) {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, ams) // a Monday
	c := &clock{t: start}
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_NOTIFY_SCAN_INTERVAL": "50ms"}, c.now)
	rc := newReceiver(t)
	rc.setTargets(s, []map[string]any{
		hook("privacy", "privacy_officers", "", rc.url("/privacy")),
		hook("coordinators", "coordinators", "", rc.url("/coord")),
	})
	late := reviewItemOf(t, s)
	judged := reviewItemOf(t, s)
	s.must(200, s.do("POST", "/v1/audit/reviews", "hanna", map[string]any{"item": judged, "judgement": "justified"}), "judge one")
	c.set(start.Add(7*24*time.Hour + time.Hour)) // five working days and an hour on
	rc.waitFor("/privacy", []string{"review_overdue "})
	time.Sleep(300 * time.Millisecond) // more scans: nothing twice
	rc.waitFor("/privacy", []string{"review_overdue "})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.got["/privacy"] {
		if n.ReviewItem != late || n.Network == "" {
			t.Errorf("notification %+v, want item %s", n, late)
		}
	}
	if len(rc.got["/coord"]) != 0 {
		t.Errorf("the coordinators heard of a review: %v", rc.got["/coord"])
	}
	// Counted in monitoring.
	if m := s.do("GET", "/metrics", "", nil); !strings.Contains(string(m.raw), `buurtsignaal_reviews_overdue{network=`) {
		t.Errorf("no overdue reviews in the metrics:\n%s", grep(string(m.raw), "reviews"))
	}
}
