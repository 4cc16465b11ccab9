package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// commandRoutes are the POST routes a fuzzer drives; {id} is a real signal,
// referral or subject of the fixture, and who may run the command.
var commandRoutes = []struct{ path, who string }{
	{"/v1/signals", "carla"},
	{"/v1/signals/{signal}/withdraw", "carla"},
	{"/v1/signals/{signal}/handover", "gert"},
	{"/v1/signals/{signal}/accept", "anna"},
	{"/v1/signals/{signal}/decline", "anna"},
	{"/v1/signals/{signal}/assign", "anna"},
	{"/v1/signals/{signal}/follow-ups", "anna"},
	{"/v1/signals/{signal}/referrals", "anna"},
	{"/v1/signals/{signal}/feedback", "anna"},
	{"/v1/signals/{signal}/close", "anna"},
	{"/v1/signals/{signal}/reopen", "anna"},
	{"/v1/organisations", "ivo"},
	{"/v1/subjects/search", "hanna"},
	{"/v1/subjects/{subject}/erasure", "hanna"},
}

// FuzzCommandBodies sends hostile bodies to every command through the real
// server: the answer is never a 5xx, every error is problem+json, and a
// refused command writes nothing (the log's head does not move; a 403 writes
// only its access-denied record).
func FuzzCommandBodies(f *testing.F) {
	seeds := []string{
		`{}`, `null`, `[]`, `"x"`, `1e999`, ``, `{`, `{"a":1}{"b":2}`,
		`{"subject":{"name":"Fuzz Persoon","birth_date":"1941-03-12"},"neighbourhood":"centrum","categories":["loneliness"],"urgency":"high","consent":"informed","description":"d"}`,
		`{"team_id":"team-a"}`, `{"team_id":123}`, `{"assignee_id":"anna"}`, `{"kind":"phone_call","outcome":"reached","note":"n"}`,
		`{"organisation_id":"org-x","reason":"r"}`, `{"code":"in_care"}`, `{"outcome":"resolved"}`, `{"reason":"r"}`,
		`{"name":"Fuzz Persoon","birth_date":"1941-03-12"}`, `{"reason":"r","request_ref":"R-1"}`,
		`{"subject":{"name":"\u0000\ud800"}}`, "{\"reason\":\"\xff\xfe\"}", `{"categories":` + strings.Repeat(`"loneliness",`, 5000) + `"x"]}`,
		strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000), `{"reason":"` + strings.Repeat("A", 70_000) + `"}`,
		`{"urgency":["high"]}`, `{"subject":"nobody"}`, `{"team_id":"team-a","note":null,"extra":true}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	var head func(context.Context) (uint64, error)
	s := startServerHooks(f, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"}, hooks{head: func(h func(context.Context) (uint64, error)) { head = h }})
	signal := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Fuzz Doelwit")), "raise")
	ids := map[string]string{"{signal}": signal.str("id"), "{subject}": s.subjectOf(signal.str("id"))}
	client := &http.Client{Timeout: 10 * time.Second} // a hang is a failure
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := commandRoutes[int(route)%len(commandRoutes)]
		path := rt.path
		for k, v := range ids {
			path = strings.ReplaceAll(path, k, v)
		}
		before, err := head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, s.base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok-"+rt.who)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s with %q: %v", rt.path, truncate(body), err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("POST %s with %q: %d", rt.path, truncate(body), resp.StatusCode)
		}
		if resp.StatusCode >= 400 {
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("POST %s: %d as %q, want problem+json", rt.path, resp.StatusCode, ct)
			}
			// A 403 writes its AccessDenied record; nothing else may move the log.
			if after, _ := head(context.Background()); after != before && resp.StatusCode != http.StatusForbidden {
				t.Fatalf("POST %s with %q was refused (%d) but the log moved from %d to %d", rt.path, truncate(body), resp.StatusCode, before, after)
			}
		}
	})
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%s... (%d bytes)", b[:200], len(b))
	}
	return string(b)
}
