package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAClockSteppingBack: the server's clock steps back two hours while it
// serves (as NTP may step it), and later comes right again.
//
//   - A signal raised before the step and accepted after it has its first
//     response when it was raised, not two hours before: no response time
//     is negative, and it counts as answered within its norm.
//   - The access records written after the step carry no earlier time than
//     the ones before it in their chain, which verifies.
//   - A console session signed in before the step stays signed in through
//     it and after the clock comes right (a request during the step does
//     not move its idle deadline back), and still ends after its idle time.
func TestAClockSteppingBack(t *testing.T) {
	// A Wednesday; its console client (a cookie jar) meets the injected
	// clock, so make test runs it shifted a year either way too.
	at := clientFacingStart(t, time.Date(2026, 3, 11, 10, 0, 0, 0, time.UTC))
	c := &clock{t: at}
	// k = 3: the monitor publishes the figures of the three signals below.
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_SESSION_IDLE_TIMEOUT": "15m", "BUURTSIGNAAL_SESSION_LIFETIME": "8h",
		"BUURTSIGNAAL_SUPPRESS_K": "3"}, c.now)
	cl := newConsoleClient(t, s)
	cl.signIn("tok-anna")
	signedIn := func(what string, want bool) {
		t.Helper()
		resp := cl.get("/console/caseload")
		if got := resp.StatusCode == 200 && resp.Request.URL.Path == "/console/caseload"; got != want {
			t.Fatalf("%s: signed in = %v, want %v", what, got, want)
		}
	}

	var sigs []string
	var h answer
	for _, name := range []string{"Klok Persoon", "Klok Tweede", "Klok Derde"} {
		id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(name)), "raise").str("id")
		sigs = append(sigs, "/v1/signals/"+id)
		h = s.must(200, s.do("POST", sigs[len(sigs)-1]+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
	}
	sig := sigs[0]
	s.must(200, s.do("GET", sig+"?min_position="+strconv.Itoa(h.num("position")), "anna", nil), "read before the step")
	signedIn("before the step", true)

	c.set(at.Add(-2 * time.Hour)) // NTP steps the clock back
	var acc answer
	for _, sg := range sigs {
		acc = s.must(200, s.do("POST", sg+"/accept", "anna", nil), "accept after the step")
	}
	pos := "?min_position=" + strconv.Itoa(acc.num("position"))
	got := s.must(200, s.do("GET", sig+pos, "anna", nil), "read after the step")
	raised, _ := time.Parse(time.RFC3339Nano, got.str("raised_at"))
	first, _ := time.Parse(time.RFC3339Nano, got.str("first_response_at"))
	if raised.IsZero() || first.Before(raised) {
		t.Fatalf("first response %s before the raise %s", first, raised)
	}
	mon := s.must(200, s.do("GET", "/v1/monitor/response"+pos+"&from="+at.AddDate(0, 0, -10).Format(time.DateOnly)+"&to="+at.AddDate(0, 0, 20).Format(time.DateOnly), "gert", nil), "monitor")
	for _, k := range []string{"median_first_response_hours", "p90_first_response_hours"} {
		if v, ok := mon.body[k].(float64); !ok || v < 0 {
			t.Errorf("%s = %v, want a number not below 0", k, mon.body[k])
		}
	}
	if mon.num("answered") != 3 || mon.num("answered_late") != 0 {
		t.Errorf("monitor: answered %d, late %d; want 3 answered in time", mon.num("answered"), mon.num("answered_late"))
	}
	signedIn("during the step", true)

	c.set(at.Add(time.Minute)) // the clock is right again, a minute after the last request
	signedIn("after the clock came right", true)
	c.set(at.Add(17 * time.Minute))
	signedIn("after 16 idle minutes", false)

	// The access log: one chain a day, its times never going back.
	var last = map[string]time.Time{}
	recs, err := s.log.ReadAll(context.Background(), 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for _, re := range recs {
		if !strings.HasPrefix(re.StreamID, "audit-") {
			continue
		}
		records++
		if prev, ok := last[re.StreamID]; ok && re.Metadata.OccurredAt.Before(prev) {
			t.Errorf("%s goes back in time at revision %d: %s after %s", re.StreamID, re.Revision, re.Metadata.OccurredAt, prev)
		}
		last[re.StreamID] = re.Metadata.OccurredAt
		if re.Metadata.OccurredAt.Before(at) {
			t.Errorf("an access record stamped %s, before the step's start %s", re.Metadata.OccurredAt, at)
		}
	}
	if records < 4 || len(last) != 1 {
		t.Fatalf("%d access records in %d chains, want at least 4 in one", records, len(last))
	}
	if v := s.must(200, s.do("GET", "/v1/audit/verify", "hanna", nil), "verify"); v.body["ok"] != true {
		t.Fatalf("audit chains: %s", v.raw)
	}
}
