package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	id, subject := raised.str("id"), s.subjectOf(raised.str("id"))
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
	id, subject := raised.str("id"), s.subjectOf(raised.str("id"))
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
	// The access record reaches the audit projection a moment later.
	var rec map[string]any
	for deadline := time.Now().Add(5 * time.Second); rec == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		log := s.must(200, s.do("GET", "/v1/audit/subjects/"+subject, "hanna", nil), "subject's access log")
		for _, it := range auditItems(t, log) {
			if it["client_request_id"] == "client-chosen-1" {
				rec = it
			}
		}
	}
	if rec == nil || rec["request_id"] != serverID || rec["on_behalf_of"] != delegate || rec["purpose"] != "quality" {
		t.Fatalf("the access record: %v (server request id %s)", rec, serverID)
	}
	s.stop()
	assertNoPlaintext(t, s.dataDir, delegate)

	s = startServer(t, s.dataDir, nil)
	s.must(200, s.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek", "request_ref": "AVG-2026-1"}), "erase")
	log := s.must(200, s.do("GET", "/v1/audit/subjects/"+subject, "hanna", nil), "access log after erasure")
	if strings.Contains(string(log.raw), delegate) {
		t.Error("on-behalf-of is readable after the subject's erasure")
	}
}

// TestStrictInputAndRecordedDenials: a field spelt in another case is an
// unknown field (400, nothing written); a request reference must look like
// one (never a name); a read refused on the role alone is recorded as
// denied.
func TestStrictInputAndRecordedDenials(t *testing.T) {
	var head func(context.Context) (uint64, error)
	s := startServerHooks(t, "", nil, hooks{head: func(h func(context.Context) (uint64, error)) { head = h }})
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	id, subject := raised.str("id"), s.subjectOf(raised.str("id"))
	before, _ := head(context.Background())
	s.must(400, s.do("POST", "/v1/signals/"+id+"/withdraw", "carla", `{"Reason":"toch niet"}`), "Reason for reason")
	s.must(400, s.do("POST", "/v1/signals", "carla", strings.Replace(string(mustMarshal(t, raiseBody("Andere Naam"))), `"urgency"`, `"Urgency"`, 1)), "Urgency for urgency")
	if after, _ := head(context.Background()); after != before {
		t.Errorf("refused requests moved the log from %d to %d", before, after)
	}
	for _, ref := range []string{"Johanna Testpersoon", "JANSEN", "AVG 2026 1", strings.Repeat("A1", 40)} {
		a := s.must(422, s.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek", "request_ref": ref}), "request_ref "+ref)
		if !strings.Contains(string(a.raw), "request_ref") {
			t.Errorf("request_ref %q: %s", ref, a.raw)
		}
	}
	s.must(422, s.do("GET", "/v1/subjects/"+subject+"/export?request_ref=Jansen", "hanna", nil), "export request_ref")

	// carla may not read a caseload: the refusal is in her access log.
	s.must(403, s.do("GET", "/v1/caseload", "carla", nil), "a volunteer's caseload")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		log := auditItems(t, s.must(200, s.do("GET", "/v1/audit/actors/carla", "hanna", nil), "carla's access log"))
		found := false
		for _, it := range log {
			if it["action"] == "caseload" && it["outcome"] == "denied" {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused caseload read is not recorded: %v", log)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDataFilesArePrivate: whatever the umask, every file the server keeps
// is readable by its own user only, and files left too open by an earlier
// version are tightened at start.
func TestDataFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, nil)
	s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	s.stop()
	loose := filepath.Join(dir, "events", "left-open")
	if err := os.WriteFile(loose, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, dir, nil)
	s.stop()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil || d.Type()&fs.ModeSocket != 0 {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s is %v: readable by others", strings.TrimPrefix(path, dir), perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAssignStaysInTheTeam: a case is assigned only to a professional of
// its team (when the configuration lists the principals).
func TestAssignStaysInTheTeam(t *testing.T) {
	s := startServer(t, "", nil)
	id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise").str("id")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")
	for _, who := range []string{"bob", "eva", "gert", "nobody-known", "wim"} {
		s.must(422, s.do("POST", "/v1/signals/"+id+"/assign", "anna", map[string]any{"professional_id": who}), "assign to "+who)
	}
	s.must(200, s.do("POST", "/v1/signals/"+id+"/assign", "gert", map[string]any{"professional_id": "anna"}), "assign to anna")
}
