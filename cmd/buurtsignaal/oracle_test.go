package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSignallersLearnNothing is an oracle test: a volunteer and a partner
// raise a signal about a resident the basisteam knows (an open case) and
// about a new one, and do everything else they can with each (read their
// own signals, hand over with a team and without a matching rule, withdraw
// another pair); every status, header and field of every answer is the same
// for the known and the new resident, apart from the signal's own id, the
// times, and log positions (compared as the distance from the log's head
// before the request).
func TestSignallersLearnNothing(t *testing.T) {
	var head func(context.Context) (uint64, error)
	s := startServerHooks(t, "", nil, hooks{head: func(h func(context.Context) (uint64, error)) { head = h }})
	known := raiseBody("Bekende Bewoner")
	id := s.must(201, s.do("POST", "/v1/signals", "dirk", known), "the basisteam's case").str("id")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "dirk", map[string]any{"team_id": "team-a"}), "handover")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")

	for _, who := range []string{"carla", "eva"} {
		t.Run(who, func(t *testing.T) {
			// run does the same steps about one resident and returns every
			// answer, normalised.
			run := func(body map[string]any) []map[string]any {
				var out []map[string]any
				step := func(what, method string, path func(id string) string, b any, id string) answer {
					before, err := head(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					a := s.do(method, path(id), who, b)
					out = append(out, normalise(t, what, a, id, before))
					return a
				}
				fixed := func(p string) func(string) string { return func(string) string { return p } }
				onSignal := func(cmd string) func(string) string {
					return func(id string) string { return "/v1/signals/" + id + cmd }
				}
				first := step("raise", "POST", fixed("/v1/signals"), body, "")
				sig := first.str("id")
				step("handover to an unknown team", "POST", onSignal("/handover"), map[string]any{"team_id": "no-such-team"}, sig)
				step("handover by rules without a rule", "POST", onSignal("/handover"), map[string]any{}, sig)
				// After the raise's position: the list is a read model.
				mine := s.must(200, s.do("GET", "/v1/my/signals?min_position="+strconv.Itoa(first.num("position")), who, nil), "my signals")
				out = append(out, map[string]any{"my signal": myItem(t, mine, sig)})
				step("handover", "POST", onSignal("/handover"), map[string]any{"team_id": "team-b"}, sig)
				second := step("raise again", "POST", fixed("/v1/signals"), body, "")
				sig2 := second.str("id")
				step("withdraw", "POST", onSignal("/withdraw"), map[string]any{"reason": "vergissing"}, sig2)
				step("withdraw again", "POST", onSignal("/withdraw"), map[string]any{"reason": "vergissing"}, sig2)
				return out
			}
			aboutKnown := run(known)
			aboutNew := run(raiseBody("Nieuwe Bewoner " + who))
			if diff := cmp.Diff(aboutNew, aboutKnown); diff != "" {
				t.Errorf("answers about a known resident differ from a new one's (-new +known):\n%s", diff)
			}
		})
	}
}

// normalise keeps what an answer shows a signaller: status, headers and
// body, without the signal's id, the request ids and dates, and with the
// position as its distance from the head before the request.
func normalise(t *testing.T, what string, a answer, id string, before uint64) map[string]any {
	t.Helper()
	h := http.Header{}
	for k, v := range a.header {
		switch k {
		case "Date", "X-Request-Id", "Content-Length":
			continue
		case "Location":
			h[k] = []string{"/v1/signals/{id}"}
			continue
		}
		h[k] = v
	}
	var body map[string]any
	_ = json.Unmarshal(a.raw, &body)
	if body == nil {
		body = map[string]any{}
	}
	delete(body, "request_id")
	if body["id"] == id || id == "" {
		delete(body, "id")
	}
	if p, ok := body["position"].(float64); ok && before > 0 {
		body["position"] = p - float64(before)
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return map[string]any{"what": what, "status": a.status, "headers": h, "header names": keys, "body": body}
}

// myItem is the signaller's view of one of their signals, without its id
// and times.
func myItem(t *testing.T, a answer, id string) map[string]any {
	t.Helper()
	var page struct{ Items []map[string]any }
	if err := json.Unmarshal(a.raw, &page); err != nil {
		t.Fatal(err)
	}
	for _, it := range page.Items {
		if it["id"] == id {
			delete(it, "id")
			delete(it, "raised_at")
			return it
		}
	}
	t.Fatalf("my signals lacks %s", id)
	return nil
}

// TestPartnerNotesAreKept: a partner's notes on a referral are shown on the
// case to its team, in the export, and to the partner itself, and are
// erased with the subject.
func TestPartnerNotesAreKept(t *testing.T) {
	s := startServer(t, "", nil)
	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school"}), "org")
	id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise").str("id")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")
	ref := s.must(201, s.do("POST", "/v1/signals/"+id+"/referrals", "anna", map[string]any{"organisation_id": "school-x", "reason": "steun"}), "refer").str("referral_id")
	const accepted, completed = "partner-aanname-notitie-81", "partner-afronding-notitie-82"
	s.must(200, s.do("POST", "/v1/referrals/"+ref+"/accept", "eva", map[string]any{"note": accepted}), "accept with a note")
	last := s.must(200, s.do("POST", "/v1/referrals/"+ref+"/complete", "eva", map[string]any{"note": completed}), "complete with a note")
	pos := fmt.Sprint(last.num("position"))
	subject := s.subjectOf(id)
	for _, tc := range []struct{ who, path string }{
		{"anna", "/v1/signals/" + id + "?min_position=" + pos},
		{"hanna", "/v1/subjects/" + subject + "/export?min_position=" + pos},
		{"eva", "/v1/referrals/" + ref + "?min_position=" + pos},
	} {
		a := s.must(200, s.do("GET", tc.path, tc.who, nil), tc.path)
		for _, note := range []string{accepted, completed} {
			if !strings.Contains(string(a.raw), note) {
				t.Errorf("%s as %s lacks the partner's note %q", tc.path, tc.who, note)
			}
		}
	}
	if list := s.must(200, s.do("GET", "/v1/referrals", "eva", nil), "the partner's list"); strings.Contains(string(list.raw), accepted) {
		t.Error("the referral list, which is not an audited read, shows notes")
	}
	s.must(200, s.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek", "request_ref": "AVG-2026-5"}), "erase")
	after := s.must(200, s.do("GET", "/v1/referrals/"+ref, "eva", nil), "after the erasure")
	if strings.Contains(string(after.raw), accepted) {
		t.Error("the partner's note is readable after the subject's erasure")
	}
}
