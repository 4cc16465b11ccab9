package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// auditItems decodes an audit page's items.
func auditItems(t *testing.T, a answer) []map[string]any {
	t.Helper()
	var page struct{ Items []map[string]any }
	if err := json.Unmarshal(a.raw, &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// TestAuditViewsStayInTheirNetwork: a privacy officer of another network
// sees none of this network's access records: not its break-glass reads
// (with their decrypted reasons), not an actor's log, not a subject's.
func TestAuditViewsStayInTheirNetwork(t *testing.T) {
	s := startServer(t, "", nil)
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	id, subject := raised.str("id"), raised.str("subject_id")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
	const reason = "vervanging-collega-reden-5512"
	s.must(200, s.do("GET", "/v1/signals/"+id, "bob", nil, "X-Break-Glass-Reason", reason), "break-glass read")
	pos := fmt.Sprint(s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept").num("position"))

	// The network's own privacy officer sees the break-glass read and its reason.
	own := auditItems(t, s.must(200, s.do("GET", "/v1/audit/break-glass?min_position="+pos, "hanna", nil), "own break-glass list"))
	if len(own) != 1 || own[0]["break_glass_reason"] != reason {
		t.Fatalf("own network's break-glass list: %v", own)
	}
	for _, path := range []string{"/v1/audit/break-glass", "/v1/audit/actors/bob", "/v1/audit/actors/anna", "/v1/audit/subjects/" + subject} {
		a := s.must(200, s.do("GET", path+"?min_position="+pos, "wanda", nil), "other network: "+path)
		if items := auditItems(t, a); len(items) != 0 {
			t.Errorf("%s: a privacy officer of another network sees %d records: %s", path, len(items), a.raw)
		}
		if strings.Contains(string(a.raw), reason) {
			t.Errorf("%s: another network reads the break-glass reason", path)
		}
	}
	s.must(404, s.do("GET", "/v1/subjects/"+subject+"/export", "wanda", nil), "other network exports")
}

// TestAccessRecordsHoldNoClientText: X-Purpose is a closed list and
// X-On-Behalf-Of a bounded id, both refused before anything is read or
// recorded; on-behalf-of is sealed under the subject's key (the privacy
// officer reads it, nothing on disk holds it in clear, erasure makes it
// unreadable); the request id of a record is the server's, and a client's
// X-Request-ID is kept apart and echoed.
func TestAccessRecordsHoldNoClientText(t *testing.T) {
	s := startServer(t, "", nil)
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	id, subject := raised.str("id"), raised.str("subject_id")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")

	for _, tc := range []struct{ header, value, field string }{
		{"X-Purpose", "Johanna Testpersoon-Geheim heeft hulp nodig", "X-Purpose"},
		{"X-Purpose", "research", "X-Purpose"},
		{"X-On-Behalf-Of", strings.Repeat("x", 101), "X-On-Behalf-Of"},
		{"X-On-Behalf-Of", "Johanna Testpersoon-Geheim", "X-On-Behalf-Of"}, // a space: not an id
	} {
		for _, who := range []string{"anna", "bob"} { // allowed and denied reads alike
			a := s.must(422, s.do("GET", "/v1/signals/"+id, who, nil, tc.header, tc.value), tc.header+" "+who)
			if !strings.Contains(string(a.raw), tc.field) || strings.Contains(string(a.raw), "Testpersoon") {
				t.Errorf("%s=%q as %s: %s", tc.header, tc.value, who, a.raw)
			}
		}
	}

	const delegate = "delegate-77aa"
	got := s.must(200, s.do("GET", "/v1/signals/"+id, "anna", nil, "X-On-Behalf-Of", delegate, "X-Purpose", "quality", "X-Request-ID", "client-chosen-1"), "read on behalf of")
	if got.header.Get("X-Request-ID") == "client-chosen-1" || got.header.Get("X-Client-Request-ID") != "client-chosen-1" {
		t.Errorf("request ids: X-Request-ID %q, X-Client-Request-ID %q", got.header.Get("X-Request-ID"), got.header.Get("X-Client-Request-ID"))
	}
	serverID := got.header.Get("X-Request-ID")
	log := s.must(200, s.do("GET", "/v1/audit/subjects/"+subject+"?min_position=1", "hanna", nil), "subject's access log")
	var rec map[string]any
	for _, it := range auditItems(t, log) {
		if it["client_request_id"] == "client-chosen-1" {
			rec = it
		}
	}
	if rec == nil || rec["request_id"] != serverID || rec["on_behalf_of"] != delegate || rec["purpose"] != "quality" {
		t.Fatalf("the access record: %v (server request id %s)", rec, serverID)
	}
	s.stop()
	assertNoPlaintext(t, s.dataDir, delegate)

	s = startServer(t, s.dataDir, nil)
	s.must(200, s.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek", "request_ref": "AVG-2026-1"}), "erase")
	log = s.must(200, s.do("GET", "/v1/audit/subjects/"+subject, "hanna", nil), "access log after erasure")
	if strings.Contains(string(log.raw), delegate) {
		t.Error("on-behalf-of is readable after the subject's erasure")
	}
}
