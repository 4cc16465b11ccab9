package main

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// idempotencyExempt are the POST routes where Idempotency-Key has no
// replay, with the reason (README, "The API").
var idempotencyExempt = map[string]string{
	"POST /v1/subjects/search":                       "a query sent as POST so that no name is in a URL: every call is answered afresh and audited",
	"POST /v1/notifications/dead-letters/{id}/retry": "takes no body; a second retry of one dead letter answers 404 and queues nothing",
}

// keyCase is one POST route's first request (a) and a different request
// sent with the same Idempotency-Key (b), as principal who.
type keyCase struct {
	route  string // "POST /pattern"
	who    string
	pathA  string
	a      any
	pathB  string // another path (another command on the same object), or pathA
	b      any
	status int // of the first answer
	first  answer
}

// TestIdempotencyKeys: on every POST route, the same key with the same
// body replays the first answer (Idempotent-Replayed: true) and writes
// nothing; the same key with another body, or for another command on the
// same object, is 422 idempotency_key_reused and writes nothing; both hold
// across a restart of the server.
func TestIdempotencyKeys(t *testing.T) {
	var head func(context.Context) (uint64, error)
	hook := hooks{head: func(h func(context.Context) (uint64, error)) { head = h }}
	dir := t.TempDir()
	s := startServerHooks(t, dir, nil, hook)

	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school"}), "register school")
	raise := func(name string) (id, subject string) {
		a := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(name)), "raise "+name)
		return a.str("id"), s.subjectOf(a.str("id"))
	}
	handedOver := func(name string) string {
		id, _ := raise(name)
		s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
		return id
	}
	inCare := func(name string) string {
		id := handedOver(name)
		s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")
		return id
	}
	referral := func(name string) string {
		id := inCare(name)
		return s.must(201, s.do("POST", "/v1/signals/"+id+"/referrals", "anna", map[string]any{"organisation_id": "school-x", "reason": "r"}), "refer").str("referral_id")
	}
	sig := func(id, cmd string) string { return "/v1/signals/" + id + "/" + cmd }
	other := raiseBody("Idem Een")
	other["urgency"] = "acute"

	accepted := referral("Idem Acht")
	s.must(200, s.do("POST", "/v1/referrals/"+accepted+"/accept", "eva", nil), "accept the referral")
	closed := inCare("Idem Elf")
	s.must(200, s.do("POST", sig(closed, "close"), "anna", map[string]any{"outcome": "resolved"}), "close")
	_, erasable := raise("Idem Twaalf")
	var cases []*keyCase
	add := func(route, who, pathA string, a any, pathB string, b any, status int) {
		cases = append(cases, &keyCase{route: route, who: who, pathA: pathA, a: a, pathB: pathB, b: b, status: status})
	}
	add("POST /v1/signals", "carla", "/v1/signals", raiseBody("Idem Een"), "/v1/signals", other, 201)
	w, _ := raise("Idem Twee")
	add("POST /v1/signals/{id}/withdraw", "carla", sig(w, "withdraw"), map[string]any{"reason": "a"}, sig(w, "withdraw"), map[string]any{"reason": "b"}, 200)
	h, _ := raise("Idem Drie")
	add("POST /v1/signals/{id}/handover", "carla", sig(h, "handover"), map[string]any{"team_id": "team-a"}, sig(h, "handover"), map[string]any{"team_id": "team-b"}, 200)
	acc := handedOver("Idem Vier")
	add("POST /v1/signals/{id}/accept", "anna", sig(acc, "accept"), nil, sig(acc, "decline"), map[string]any{"reason": "not ours"}, 200)
	dec := handedOver("Idem Vijf")
	add("POST /v1/signals/{id}/decline", "anna", sig(dec, "decline"), map[string]any{"reason": "a"}, sig(dec, "decline"), map[string]any{"reason": "b"}, 200)
	c := inCare("Idem Zes")
	add("POST /v1/signals/{id}/assign", "anna", sig(c, "assign"), map[string]any{"professional_id": "anna"}, sig(c, "assign"), map[string]any{"professional_id": "bob"}, 200)
	add("POST /v1/signals/{id}/follow-ups", "anna", sig(c, "follow-ups"), map[string]any{"kind": "phone_call", "outcome": "reached"}, sig(c, "follow-ups"), map[string]any{"kind": "home_visit", "outcome": "reached"}, 200)
	add("POST /v1/signals/{id}/referrals", "anna", sig(c, "referrals"), map[string]any{"organisation_id": "school-x", "reason": "a"}, sig(c, "referrals"), map[string]any{"organisation_id": "school-x", "reason": "b"}, 201)
	add("POST /v1/signals/{id}/feedback", "anna", sig(c, "feedback"), map[string]any{"code": "received"}, sig(c, "feedback"), map[string]any{"code": "in_progress"}, 200)
	add("POST /v1/signals/{id}/close", "anna", sig(c, "close"), map[string]any{"outcome": "resolved"}, sig(c, "close"), map[string]any{"outcome": "unreachable"}, 200)
	add("POST /v1/signals/{id}/reopen", "anna", sig(closed, "reopen"), map[string]any{"reason": "a"}, sig(closed, "reopen"), map[string]any{"reason": "b"}, 200)
	ra := referral("Idem Zeven")
	add("POST /v1/referrals/{id}/accept", "eva", "/v1/referrals/"+ra+"/accept", map[string]any{"note": "a"}, "/v1/referrals/"+ra+"/accept", map[string]any{"note": "b"}, 200)
	rd := referral("Idem Negen")
	add("POST /v1/referrals/{id}/decline", "eva", "/v1/referrals/"+rd+"/decline", nil, "/v1/referrals/"+rd+"/accept", nil, 200)
	add("POST /v1/referrals/{id}/complete", "eva", "/v1/referrals/"+accepted+"/complete", map[string]any{"note": "a"}, "/v1/referrals/"+accepted+"/complete", map[string]any{"note": "b"}, 200)
	add("POST /v1/organisations", "ivo", "/v1/organisations", map[string]any{"id": "club-y", "name": "Club Y", "kind": "sports"}, "/v1/organisations", map[string]any{"id": "club-y", "name": "Club Z", "kind": "sports"}, 201)
	add("POST /v1/subjects/{id}/erasure", "hanna", "/v1/subjects/"+erasable+"/erasure", map[string]any{"reason": "verzoek", "request_ref": "AVG-1"}, "/v1/subjects/"+erasable+"/erasure", map[string]any{"reason": "verzoek", "request_ref": "AVG-2"}, 200)
	item := reviewItemOf(t, s)
	add("POST /v1/audit/reviews", "hanna", "/v1/audit/reviews", map[string]any{"item": item, "judgement": "justified", "note": "a"}, "/v1/audit/reviews", map[string]any{"item": item, "judgement": "not_justified"}, 200)

	// Every POST route is covered or exempt with a reason.
	var covered []string
	for _, c := range cases {
		covered = append(covered, c.route)
	}
	for _, r := range routesOf(t, s) {
		if len(r) > 5 && r[:5] == "POST " && !slices.Contains(covered, r) && idempotencyExempt[r] == "" {
			t.Errorf("%s: no idempotency case and no exemption", r)
		}
	}

	mustHead := func() uint64 {
		t.Helper()
		h, err := head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	check := func(s *server, c *keyCase, key, when string) {
		t.Helper()
		before := mustHead()
		again := s.must(c.status, s.do("POST", c.pathA, c.who, c.a, "Idempotency-Key", key), c.route+": the same request again "+when)
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s %s: the replay lacks Idempotent-Replayed: true", c.route, when)
		}
		if diff := cmp.Diff(c.first.body, again.body); diff != "" {
			t.Errorf("%s %s: the replay differs from the first answer (-first +replay):\n%s", c.route, when, diff)
		}
		reused := s.must(422, s.do("POST", c.pathB, c.who, c.b, "Idempotency-Key", key), c.route+": the key with another request "+when)
		if reused.str("code") != "idempotency_key_reused" {
			t.Errorf("%s %s: code %q, want idempotency_key_reused: %s", c.route, when, reused.str("code"), reused.raw)
		}
		if after := mustHead(); after != before {
			t.Errorf("%s %s: the log moved from %d to %d", c.route, when, before, after)
		}
	}
	for i, c := range cases {
		key := "idem-" + string(rune('a'+i))
		c.first = s.must(c.status, s.do("POST", c.pathA, c.who, c.a, "Idempotency-Key", key), c.route+": first")
		check(s, c, key, "before the restart")
	}
	s.stop()
	s = startServerHooks(t, dir, nil, hook)
	for i, c := range cases {
		check(s, c, "idem-"+string(rune('a'+i)), "after the restart")
	}
}
