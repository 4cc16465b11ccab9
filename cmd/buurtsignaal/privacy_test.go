package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// countingAuditor records what reaches the audit log and can be made to fail.
type countingAuditor struct {
	inner domain.Auditor
	fail  atomic.Bool
	mu    sync.Mutex
	byReq map[string][]domain.Access
}

func (c *countingAuditor) RecordAccess(ctx context.Context, a domain.Access) error {
	if c.fail.Load() {
		return errors.New("injected audit failure")
	}
	c.mu.Lock()
	c.byReq[a.ClientRequestID] = append(c.byReq[a.ClientRequestID], a) // the test names each request
	c.mu.Unlock()
	return c.inner.RecordAccess(ctx, a)
}

func (c *countingAuditor) RecordDenied(ctx context.Context, a domain.Access) error {
	if c.fail.Load() {
		return errors.New("injected audit failure")
	}
	return c.inner.RecordDenied(ctx, a)
}

func (c *countingAuditor) records(requestID string) []domain.Access {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byReq[requestID]
}

// personalRoutes return personal data (or the access log) and must be
// audited; publicRoutes do not. Every route of the router is in one of them
// or is a command (POST, audited by the event log itself).
var (
	personalRoutes = []string{"GET /v1/signals/{id}", "GET /v1/signals/{id}/history", "GET /v1/caseload",
		"GET /v1/subjects/{id}/export", "POST /v1/subjects/search", "GET /v1/audit/subjects/{id}",
		"GET /v1/audit/actors/{id}", "GET /v1/audit/break-glass", "GET /v1/audit/verify", "GET /v1/referrals/{id}", "GET /v1/subjects/names",
		"GET /v1/audit/flags", "GET /v1/audit/reviews", "GET /v1/audit/report"}
	publicRoutes = []string{"GET /v1/referrals", "GET /v1/my/signals", "GET /v1/organisations", "GET /v1/teams", "GET /v1/categories", "GET /v1/norms", "GET /v1/feedback-texts", "GET /v1/neighbourhoods", "GET /v1/monitor/response", "GET /v1/monitor/overdue", "GET /v1/routing-rules",
		"GET /v1/notification-targets", "GET /v1/notifications/dead-letters",
		"GET /v1/signals/unrouted", "GET /v1/principals", "GET /v1/monitor/signals/{id}", "GET /v1/caseload/counts", "GET /v1/monitor/signals"}
)

// TestEveryReadOfPersonalDataIsAuditedOnce enumerates the router's routes:
// each read of personal data leaves exactly one access record for its
// request, and with the audit log failing it answers 500 with no data.
func TestEveryReadOfPersonalDataIsAuditedOnce(t *testing.T) {
	ca := &countingAuditor{byReq: map[string][]domain.Access{}}
	s := startServerHooks(t, "", nil, hooks{auditor: func(a domain.Auditor) domain.Auditor { ca.inner = a; return ca }})
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	id, subject := raised.str("id"), s.subjectOf(raised.str("id"))
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a", "note": secretNote}), "handover")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")
	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school"}), "org")
	ref := s.must(201, s.do("POST", "/v1/signals/"+id+"/referrals", "anna", map[string]any{"organisation_id": "school-x", "reason": secretNote}), "refer").str("referral_id")
	last := s.must(200, s.do("POST", "/v1/referrals/"+ref+"/accept", "eva", map[string]any{"note": secretNote}), "the partner's note")
	pos := fmt.Sprint(last.num("position"))

	for _, r := range routesOf(t, s) {
		if (strings.HasPrefix(r, "POST ") || strings.HasPrefix(r, "PUT ")) && !slices.Contains(personalRoutes, r) {
			continue // commands
		}
		if !slices.Contains(personalRoutes, r) && !slices.Contains(publicRoutes, r) {
			t.Errorf("route %s is neither listed as returning personal data nor as public", r)
		}
	}
	for n, r := range personalRoutes {
		method, path, _ := strings.Cut(r, " ")
		who := "hanna"
		switch {
		case strings.HasPrefix(path, "/v1/signals"), path == "/v1/caseload":
			who = "anna"
		}
		path = strings.Replace(path, "{id}", id, 1)
		if strings.HasPrefix(r, "GET /v1/subjects") || strings.HasPrefix(r, "GET /v1/audit/subjects") {
			path = strings.Replace(r[4:], "{id}", subject, 1)
		}
		if strings.HasPrefix(r, "GET /v1/audit/actors") {
			path = "/v1/audit/actors/anna"
		}
		if r == "GET /v1/referrals/{id}" { // the partner reads its own note
			who, path = "eva", "/v1/referrals/"+ref
		}
		if r == "GET /v1/subjects/names" {
			path += "?id=" + subject
		}
		var body any
		if method == "POST" {
			body = map[string]any{"name": secretName, "birth_date": "1941-03-12"}
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		reqID := fmt.Sprintf("audit-%d", n)
		got := s.do(method, path+sep+"min_position="+pos, who, body, "X-Request-ID", reqID+"-ok")
		if got.status != 200 {
			t.Errorf("%s: status %d: %s", r, got.status, got.raw)
			continue
		}
		if recs := ca.records(reqID + "-ok"); len(recs) != 1 {
			t.Errorf("%s: %d access records for one request, want 1", r, len(recs))
		} else if recs[0].ActorID != who || recs[0].View == "" || recs[0].Outcome != "allowed" {
			t.Errorf("%s: record %+v", r, recs[0])
		}
		ca.fail.Store(true)
		failed := s.do(method, path, who, body, "X-Request-ID", reqID+"-fail")
		ca.fail.Store(false)
		if failed.status != 500 {
			t.Errorf("%s with the audit log failing: status %d, want 500", r, failed.status)
		}
		for _, secret := range []string{secretName, secretDesc, secretNote, subject} {
			if strings.Contains(string(failed.raw), secret) {
				t.Errorf("%s with the audit log failing leaked data: %s", r, failed.raw)
			}
		}
	}
}

// TestErasure erases a subject through the API: its data reads as erased
// everywhere, its lifecycle and access records remain, and its personal data
// is nowhere in the data directory, the logs or the metrics.
func TestErasure(t *testing.T) {
	s := startServer(t, "", nil)
	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school"}), "org")
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	id := raised.str("id")
	sig := "/v1/signals/" + id
	s.must(200, s.do("POST", sig+"/handover", "carla", map[string]any{"team_id": "team-a", "note": secretNote}), "handover")
	s.must(200, s.do("POST", sig+"/accept", "anna", nil), "accept")
	s.must(200, s.do("POST", sig+"/follow-ups", "anna", map[string]any{"kind": "home_visit", "outcome": "reached", "note": secretNote}), "follow-up")
	last := s.must(200, s.do("POST", sig+"/feedback", "anna", map[string]any{"code": "in_progress"}), "feedback")
	pos := fmt.Sprint(last.num("position"))
	s.must(200, s.do("GET", sig+"?min_position="+pos, "anna", nil), "read")
	s.must(200, s.do("GET", sig, "bob", nil, "X-Break-Glass-Reason", "waarneming"), "break-glass read")

	found := s.must(200, s.do("POST", "/v1/subjects/search", "hanna", map[string]any{"name": strings.ToUpper(secretName), "birth_date": "1941-03-12"}), "search")
	ids, _ := found.body["subject_ids"].([]any)
	if len(ids) != 1 || ids[0] != s.subjectOf(raised.str("id")) {
		t.Fatalf("search: %s", found.raw)
	}
	subject := s.subjectOf(raised.str("id"))
	export := s.must(200, s.do("GET", "/v1/subjects/"+subject+"/export", "hanna", nil), "export")
	if !strings.Contains(string(export.raw), secretName) || !strings.Contains(string(export.raw), secretNote) {
		t.Fatalf("export lacks the data: %s", export.raw)
	}
	bg := s.must(200, s.do("GET", "/v1/audit/break-glass", "hanna", nil), "break-glass review")
	if !strings.Contains(string(bg.raw), "waarneming") || !strings.Contains(string(bg.raw), `"actor_id":"bob"`) {
		t.Fatalf("break-glass review: %s", bg.raw)
	}
	s.must(422, s.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek"}), "erasure without a reference")
	s.must(403, s.do("POST", "/v1/subjects/"+subject+"/erasure", "anna", map[string]any{"reason": "x", "request_ref": "R"}), "erasure by a professional")
	er := s.must(200, s.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek betrokkene", "request_ref": "AVG-2026-17"}), "erasure")
	after := fmt.Sprint(er.num("position"))

	got := s.must(200, s.do("GET", sig+"?min_position="+after, "anna", nil), "read after erasure")
	subj, _ := got.body["subject"].(map[string]any)
	if subj["erased"] != true || subj["name"] != nil || got.str("description") != "" || got.str("status") != "in_care" {
		t.Fatalf("after erasure: %s", got.raw)
	}
	if again := s.must(200, s.do("POST", "/v1/subjects/search", "hanna", map[string]any{"name": secretName, "birth_date": "1941-03-12"}), "search again"); strings.Contains(string(again.raw), subject) {
		t.Fatalf("the erased subject is still found: %s", again.raw)
	}
	trail := s.must(200, s.do("GET", "/v1/audit/subjects/"+subject, "hanna", nil), "access log after erasure")
	if items, _ := trail.body["items"].([]any); len(items) < 3 {
		t.Fatalf("access records gone with the erasure: %s", trail.raw)
	}
	mon := s.must(200, s.do("GET", "/v1/monitor/response", "gert", nil), "monitor after erasure")
	// One signal: suppressed (null), not lost (0).
	if v, ok := mon.body["total"]; !ok || v != nil {
		t.Fatalf("monitoring lost the signal: %s", mon.raw)
	}
	// A new signal about the same person starts a new subject.
	re := s.must(201, s.do("POST", "/v1/signals", "dirk", raiseBody(secretName)), "raise again")
	if s.subjectOf(re.str("id")) == subject {
		t.Fatal("a new signal joined the erased subject")
	}
	metrics := s.do("GET", "/metrics", "", nil)
	s.stop()
	assertNoPlaintext(t, s.dataDir, secretName, secretDesc, secretNote, "Dorpsstraat 7", "0612345678")
	for what, text := range map[string]string{"logs": s.stderr.String(), "metrics": string(metrics.raw)} {
		for _, secret := range []string{secretName, secretDesc, secretNote, "Dorpsstraat 7", "waarneming"} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s hold personal data", what)
			}
		}
	}
}
