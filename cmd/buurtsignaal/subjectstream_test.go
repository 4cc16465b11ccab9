package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// parallel sends n requests at once (built by req) and returns the answers
// in order.
func parallel(s *server, n int, req func(i int) answer) []answer {
	out := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = req(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// get is do for concurrent use: a transport error is an answer with status
// 0, reported by the caller on the test's goroutine.
func (s *server) get(path, who string, headers ...string) answer {
	defer func() { _ = recover() }()
	return s.do("GET", path, who, nil, headers...)
}

// TestParallelExportsAllDeliver: 32 exports of one subject at once all
// deliver the document. Each is an append to the subject's stream that does
// not depend on its state, so a concurrent append is retried, never a 409;
// and every access record written for an export belongs to an export that
// was delivered.
func TestParallelExportsAllDeliver(t *testing.T) {
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"})
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	subject := s.subjectOf(raised.str("id"))
	const n = 32
	got := parallel(s, n, func(i int) answer {
		return s.get(fmt.Sprintf("/v1/subjects/%s/export?request_ref=R-%d&min_position=%d", subject, i, raised.num("position")), "hanna", "X-Request-ID", fmt.Sprintf("export-%d", i))
	})
	failed := 0
	for i, a := range got {
		if a.status != 200 || !strings.Contains(string(a.raw), secretName) {
			failed++
			t.Errorf("export %d of %d: status %d: %s", i, n, a.status, a.raw)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d parallel exports failed", failed, n)
	}
	trail := s.must(200, s.do("GET", "/v1/audit/subjects/"+subject+"?limit=500", "hanna", nil), "access log")
	items, _ := trail.body["items"].([]any)
	exports := 0
	for _, it := range items {
		if m, _ := it.(map[string]any); m["action"] == "export" {
			exports++
		}
	}
	if exports != n {
		t.Fatalf("the access log holds %d exports, %d were delivered", exports, n)
	}
}

// TestParallelExportAndErasure: an erasure while exports of the same
// subject run completes (the key shredded and SubjectErased recorded), and
// every export answers either with the data or as erased, never 409 or 5xx.
func TestParallelExportAndErasure(t *testing.T) {
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"})
	const rounds, exports = 6, 12
	for round := range rounds {
		raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(fmt.Sprintf("Wis Persoon %d", round))), "raise")
		subject := s.subjectOf(raised.str("id"))
		got := parallel(s, exports+1, func(i int) answer {
			if i == exports/2 {
				defer func() { _ = recover() }()
				return s.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek", "request_ref": fmt.Sprintf("AVG-%d", round)})
			}
			return s.get(fmt.Sprintf("/v1/subjects/%s/export?min_position=%d", subject, raised.num("position")), "hanna")
		})
		for i, a := range got {
			if a.status != 200 {
				what := "export"
				if i == exports/2 {
					what = "erasure"
				}
				t.Errorf("round %d: %s %d: status %d: %s", round, what, i, a.status, a.raw)
			}
		}
		erased := got[exports/2]
		if erased.status != 200 {
			continue
		}
		after := s.must(200, s.do("GET", fmt.Sprintf("/v1/subjects/%s/export?min_position=%d", subject, erased.num("position")), "hanna", nil), "export after the erasure")
		if subj, _ := after.body["subject"].(map[string]any); subj["erased"] != true || strings.Contains(string(after.raw), "Wis Persoon") {
			t.Errorf("round %d: after the erasure the export shows %s", round, after.raw)
		}
	}
}

// TestErasureCutShortIsCompletedAtStart: an erasure cut short after it was
// written to the erased-subjects file (a crash before the key was shredded
// or before SubjectErased was recorded) is completed when the server starts
// again: the key is shredded and SubjectErased recorded, once.
func TestErasureCutShortIsCompletedAtStart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"})
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	subject := uuid.MustParse(s.subjectOf(raised.str("id")))
	s.stop()
	// Where earlier versions kept the list: the server moves it out of the
	// data directory first.
	if err := keystore.RecordErased(nil, filepath.Join(dir, "erased-subjects"), subject); err != nil {
		t.Fatal(err)
	}
	erasures := func() (n int, basis string) {
		t.Helper()
		store, err := pebblestore.Open(filepath.Join(dir, "events"), pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		recs, err := store.ReadStream(context.Background(), eventlog.StreamName(domain.SubjectCategory, subject.String()), eventlog.Forwards, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Type == (domain.SubjectErased{}).EventType() {
				var e domain.SubjectErased
				if err := json.Unmarshal(r.Data, &e); err != nil {
					t.Fatal(err)
				}
				n, basis = n+1, e.Basis
			}
		}
		return n, basis
	}
	for round := range 2 { // the second start finds it complete
		s = startServer(t, dir, map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"})
		export := s.must(200, s.do("GET", "/v1/subjects/"+subject.String()+"/export", "hanna", nil), "export")
		if subj, _ := export.body["subject"].(map[string]any); subj["erased"] != true || strings.Contains(string(export.raw), secretName) {
			t.Fatalf("start %d: the export shows %s", round+2, export.raw)
		}
		s.stop()
		if n, basis := erasures(); n != 1 || basis != "completed" {
			t.Fatalf("start %d: %d SubjectErased events (basis %q), want 1 (completed)", round+2, n, basis)
		}
	}
}
