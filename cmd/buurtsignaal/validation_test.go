package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// world is a small network built through the API: a signal in care of
// team-a with a referral to school-x, and its subject.
type world struct {
	signal, referral, subject string
	pos                       int // the log position after the last command
}

func newWorld(s *server) world {
	s.t.Helper()
	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school",
		"services": []any{map[string]any{"name": "Maatschappelijk werk"}}}), "register school-x")
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Wereld Persoon")), "raise")
	w := world{signal: raised.str("id"), subject: s.subjectOf(raised.str("id"))}
	s.must(200, s.do("POST", "/v1/signals/"+w.signal+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
	s.must(200, s.do("POST", "/v1/signals/"+w.signal+"/accept", "anna", nil), "accept")
	ref := s.must(201, s.do("POST", "/v1/signals/"+w.signal+"/referrals", "anna", map[string]any{"organisation_id": "school-x", "reason": "r"}), "refer")
	w.referral, w.pos = ref.str("referral_id"), ref.num("position")
	return w
}

// path fills a route pattern's {id} with the world's object of its kind:
// the signal, referral or subject, an actor, or else a new UUID.
func (w world) path(pattern string) string {
	id := uuid.NewString()
	switch {
	case strings.HasPrefix(pattern, "/v1/signals/{id}"), strings.HasPrefix(pattern, "/v1/monitor/signals/{id}"):
		id = w.signal
	case strings.HasPrefix(pattern, "/v1/referrals/{id}"):
		id = w.referral
	case strings.HasPrefix(pattern, "/v1/subjects/{id}"), strings.HasPrefix(pattern, "/v1/audit/subjects/{id}"):
		id = w.subject
	case strings.HasPrefix(pattern, "/v1/audit/actors/{id}"):
		id = "anna"
	}
	return strings.ReplaceAll(pattern, "{id}", id)
}

// TestConfigurationNeedsItsList: PUT /v1/routing-rules and PUT
// /v1/notification-targets replace the whole configuration, so a body
// without its list (or with null) is 422 and changes nothing; an explicit
// empty list empties it.
func TestConfigurationNeedsItsList(t *testing.T) {
	var head func(context.Context) (uint64, error)
	s := startServerHooks(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"}, hooks{head: func(h func(context.Context) (uint64, error)) { head = h }})
	tests := []struct {
		path, field string
		one         any
	}{
		{"/v1/routing-rules", "rules", map[string]any{"id": "r1", "team_id": "team-a"}},
		{"/v1/notification-targets", "targets", map[string]any{"id": "t1", "subscriber": "team", "subscriber_id": "team-a", "channel": "webhook", "url": "http://127.0.0.1:9/hook"}},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			s.t = t
			set := s.must(200, s.do("PUT", tc.path, "gert", map[string]any{tc.field: []any{tc.one}}), "set one")
			for _, body := range []string{`{}`, `{"` + tc.field + `":null}`, `null`} {
				before, _ := head(context.Background())
				bad := s.must(422, s.do("PUT", tc.path, "gert", body), "PUT "+body)
				if !strings.Contains(string(bad.raw), `"field":"`+tc.field+`"`) {
					t.Errorf("PUT %s: the problem does not name %s: %s", body, tc.field, bad.raw)
				}
				if after, _ := head(context.Background()); after != before {
					t.Errorf("PUT %s was refused but the log moved from %d to %d", body, before, after)
				}
			}
			got := s.must(200, s.do("GET", tc.path, "gert", nil), "read")
			if got.num("version") != set.num("version") || !strings.Contains(string(got.raw), `"id":"`+tc.one.(map[string]any)["id"].(string)+`"`) {
				t.Fatalf("after refused PUTs the configuration is %s", got.raw)
			}
			empty := s.must(200, s.do("PUT", tc.path, "gert", map[string]any{tc.field: []any{}}), "an explicit empty list")
			got = s.must(200, s.do("GET", fmt.Sprintf("%s?min_position=%d", tc.path, empty.num("position")), "gert", nil), "read")
			if !strings.Contains(string(got.raw), `"`+tc.field+`":[]`) {
				t.Fatalf("after an explicit empty list: %s", got.raw)
			}
		})
	}
}

// TestEveryGETRefusesABadMinPosition: on every GET route, a min_position
// that is not a non-negative integer is 422 (naming the parameter) for
// every caller who reads the route without it, and never a success.
func TestEveryGETRefusesABadMinPosition(t *testing.T) {
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"})
	w := newWorld(s)
	checked := 0
	for _, r := range routesOf(t, s) {
		method, pattern, _ := strings.Cut(r, " ")
		if method != "GET" {
			continue
		}
		path := w.path(pattern)
		for _, p := range testPrincipals {
			plain := s.do("GET", path, p.id, nil)
			for _, bad := range []string{"abc", "-1", "1.5", "0x10", "99999999999999999999999"} {
				got := s.do("GET", path+"?min_position="+bad, p.id, nil)
				switch {
				case plain.status == 200 && (got.status != 422 || !strings.Contains(string(got.raw), `"field":"min_position"`)):
					t.Errorf("%s?min_position=%s as %s: %d, want 422 on min_position: %s", r, bad, p.id, got.status, got.raw)
				case got.status < 400 || got.status >= 500:
					t.Errorf("%s?min_position=%s as %s: %d, want a refusal", r, bad, p.id, got.status)
				}
				if plain.status == 200 {
					checked++
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no GET route answered any caller")
	}
}

// TestPeriodEndsRFC3339CannotWrite: a period's end that lies outside the
// years RFC 3339 can write once in UTC (to=9999-12-31 is the start of the
// year 10000) is 422 naming it, on every route that takes a period, not a
// 500 when the answer echoes it; a time with an offset is echoed in UTC.
func TestPeriodEndsRFC3339CannotWrite(t *testing.T) {
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"})
	w := newWorld(s)
	routes := map[string]string{"/v1/monitor/response": "gert", "/v1/monitor/overdue": "gert", "/v1/audit/break-glass": "hanna",
		"/v1/audit/subjects/" + w.subject: "hanna", "/v1/audit/actors/anna": "hanna"}
	for path, who := range routes {
		for _, q := range []string{"to=9999-12-31", "to=9999-12-31T23:00:00-05:00", "from=0000-01-01T00:00:00%2B14:00", "from=9999-12-30&to=9999-12-31"} {
			got := s.do("GET", path+"?"+q, who, nil)
			field, _, _ := strings.Cut(q[strings.LastIndex(q, "&")+1:], "=")
			if got.status != 422 || !strings.Contains(string(got.raw), `"field":"`+field+`"`) {
				t.Errorf("GET %s?%s: %d, want 422 on %s: %s", path, q, got.status, field, got.raw)
			}
		}
	}
	got := s.must(200, s.do("GET", "/v1/monitor/response?from=2026-01-01T00:00:00%2B01:00&to=2026-02-01T00:00:00-05:00", "gert", nil), "a period with offsets")
	if got.str("from") != "2025-12-31T23:00:00Z" || got.str("to") != "2026-02-01T05:00:00Z" {
		t.Errorf("the period is echoed as %s to %s, want it in UTC", got.str("from"), got.str("to"))
	}
}
