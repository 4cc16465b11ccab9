package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestMatchingTellsOnlyTheProfessionalsInvolved raises two signals about one
// person, written differently: the second joins the first's subject, both
// cases show the match to their teams, and a volunteer learns nothing.
func TestMatchingTellsOnlyTheProfessionalsInvolved(t *testing.T) {
	s := startServer(t, "", nil)
	first := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Johanna de Vries-Bakker")), "first")
	s.must(200, s.do("POST", "/v1/signals/"+first.str("id")+"/handover", "carla", map[string]any{"team_id": "team-b"}), "handover")
	pos := fmt.Sprint(s.must(200, s.do("POST", "/v1/signals/"+first.str("id")+"/accept", "bob", nil), "accept").num("position"))
	s.must(200, s.do("GET", "/v1/caseload?min_position="+pos, "bob", nil), "wait")

	byVolunteer := s.must(201, s.do("POST", "/v1/signals", "dirk", raiseBody("johanna  DE VRIES bakker")), "second by a volunteer")
	if s.subjectOf(byVolunteer.str("id")) != s.subjectOf(first.str("id")) {
		t.Fatalf("the same person got a new subject: %s vs %s", s.subjectOf(byVolunteer.str("id")), s.subjectOf(first.str("id")))
	}
	if strings.Contains(string(byVolunteer.raw), first.str("id")) {
		t.Fatalf("a volunteer was told about another signal: %s", byVolunteer.raw)
	}
	byPro := s.must(201, s.do("POST", "/v1/signals", "anna", raiseBody("Johanna de Vries Bakker")), "third by a professional")
	if !strings.Contains(string(byPro.raw), first.str("id")) {
		t.Fatalf("the professional's answer lacks the match: %s", byPro.raw)
	}
	other := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Iemand Anders")), "another person")
	if s.subjectOf(other.str("id")) == s.subjectOf(first.str("id")) {
		t.Fatal("another person joined the subject")
	}
	got := s.must(200, s.do("GET", "/v1/signals/"+first.str("id")+"?min_position="+fmt.Sprint(byPro.num("position")), "bob", nil), "first case")
	if !strings.Contains(string(got.raw), byPro.str("id")) || !strings.Contains(string(got.raw), byVolunteer.str("id")) {
		t.Fatalf("the first case does not show its matches: %s", got.raw)
	}
}

// TestMinPositionBeyondTheLogIs503 asks for a position the log does not
// have yet: the server waits briefly, then says to retry.
func TestMinPositionBeyondTheLogIs503(t *testing.T) {
	s := startServer(t, "", nil)
	a := s.do("GET", "/v1/caseload?min_position=999999", "anna", nil)
	if a.status != 503 || a.header.Get("Retry-After") == "" || a.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, Retry-After %q: %s", a.status, a.header.Get("Retry-After"), a.raw)
	}
	s.must(422, s.do("GET", "/v1/caseload?min_position=abc", "anna", nil), "bad min_position")
}

// TestPartnersSeeOnlyTheReferralsMinimum lists and reads a referral as the
// partner it is addressed to: no name, reason or notes.
func TestPartnersSeeOnlyTheReferralsMinimum(t *testing.T) {
	s := startServer(t, "", nil)
	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school"}), "org")
	id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise").str("id")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")
	ref := s.must(201, s.do("POST", "/v1/signals/"+id+"/referrals", "anna", map[string]any{"organisation_id": "school-x", "service": "Maatschappelijk werk", "reason": secretNote}), "refer")
	list := s.must(200, s.do("GET", "/v1/referrals?min_position="+fmt.Sprint(ref.num("position")), "eva", nil), "partner list")
	one := s.must(200, s.do("GET", "/v1/referrals/"+ref.str("referral_id"), "eva", nil), "partner read")
	for _, body := range []string{string(list.raw), string(one.raw)} {
		if !strings.Contains(body, ref.str("referral_id")) || !strings.Contains(body, "Maatschappelijk werk") {
			t.Fatalf("partner view lacks the referral: %s", body)
		}
		for _, secret := range []string{secretName, secretNote, secretDesc, id} {
			if strings.Contains(body, secret) {
				t.Fatalf("partner view shows more than the minimum: %s", body)
			}
		}
	}
	if other := s.must(200, s.do("GET", "/v1/referrals", "femke", nil), "other partner"); strings.Contains(string(other.raw), ref.str("referral_id")) {
		t.Fatal("another organisation sees the referral")
	}
	s.must(403, s.do("GET", "/v1/referrals/"+ref.str("referral_id"), "femke", nil), "other partner reads")
}
