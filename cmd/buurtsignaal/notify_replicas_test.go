package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/notify"
)

// TestNotificationsSurviveRestart stops the server while its receiver is
// down and every notification is pending or being retried; after the
// restart each arrives, and repeats carry the same idempotency key.
func TestNotificationsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"BUURTSIGNAAL_NOTIFY_ATTEMPTS": "50"}
	s := startServer(t, dir, env)
	rc := newReceiver(t)
	rc.setTargets(s, []map[string]any{hook("team-a", "team", "team-a", rc.url("/team-a"), "handed_over")})
	rc.setFail("/team-a", -1)
	var want []string
	for i := range 20 {
		id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Herstart "+string(rune('A'+i)))), "raise").str("id")
		s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
		want = append(want, "handed_over "+id)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rc.mu.Lock()
		n := rc.attempts["/team-a"]
		rc.mu.Unlock()
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery was tried")
		}
	}
	s.stop()
	rc.setFail("/team-a", 0)
	startServer(t, dir, env) // the same data: the outbox resumes
	rc.waitFor("/team-a", want)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got["/team-a"]) != len(want) {
		t.Errorf("%d distinct keys for %d notifications", len(rc.got["/team-a"]), len(want))
	}
	if len(rc.bad) > 0 {
		t.Errorf("deliveries failed verification: %v", rc.bad)
	}
}

// TestNotificationsAcrossReplicas runs the real server as replicas of one
// KurrentDB (the protocol test server), each with its own data directory,
// the same master key and the same notification secret. One replica delivers at a time; when it
// stops the other takes over at once (the lease is released) and resumes
// from the shared outbox; a dead letter is listed and retried through a
// replica that does not deliver, and the one that does sends it.
func TestNotificationsAcrossReplicas(t *testing.T) {
	srv, master := kurrenttest.Start(t), newMasterKey(t)
	secret := filepath.Join(t.TempDir(), "notify-secret")
	replica := func(name string) *server {
		env := replicaEnv(srv.URL(), master, name)
		env["BUURTSIGNAAL_NOTIFY_SECRET_FILE"], env["BUURTSIGNAAL_NOTIFY_ATTEMPTS"] = secret, "2"
		return startServer(t, "", env)
	}
	leads := func(s *server) bool {
		return strings.Contains(string(s.do("GET", "/metrics", "", nil).raw), "\nbuurtsignaal_notifier_leader 1\n")
	}
	waitLeads := func(s *server) time.Duration {
		start := time.Now()
		for !leads(s) {
			if time.Since(start) > 30*time.Second {
				t.Fatal("no replica took the notifier over")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	s1 := replica("r1")
	waitLeads(s1)
	s2 := replica("r2")
	rc := newReceiver(t)
	rc.setTargets(s1, []map[string]any{hook("team-a", "team", "team-a", rc.url("/team-a"), "handed_over")})
	var want []string
	handOver := func(s *server, name string) {
		id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(name)), "raise").str("id")
		s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
		want = append(want, "handed_over "+id)
	}
	for i := range 3 {
		handOver(s1, fmt.Sprintf("Replica Een %c", 'A'+i))
		handOver(s2, fmt.Sprintf("Replica Twee %c", 'A'+i))
	}
	rc.waitFor("/team-a", want)
	if leads(s2) {
		t.Fatal("both replicas deliver")
	}

	s1.stop() // releases the lease
	took := waitLeads(s2)
	t.Logf("after a clean stop the other replica delivered within %v", took)
	handOver(s2, "Replica Twee Na")
	rc.waitFor("/team-a", want)

	// A replica that does not deliver lists the dead letter and retries it.
	s3 := replica("r3")
	rc.setTargets(s2, []map[string]any{hook("team-a", "team", "team-a", rc.url("/team-a"), "handed_over"),
		hook("broken", "team", "team-a", rc.url("/broken"), "handed_over")})
	rc.setFail("/broken", -1)
	handOver(s3, "Replica Drie")
	var dead []notify.Delivery
	for deadline := time.Now().Add(20 * time.Second); len(dead) == 0; time.Sleep(50 * time.Millisecond) {
		var page struct{ Items []notify.Delivery }
		_ = json.Unmarshal(s3.must(200, s3.do("GET", "/v1/notifications/dead-letters", "ivo", nil), "dead letters").raw, &page)
		dead = page.Items
		if time.Now().After(deadline) {
			t.Fatal("the replica that does not deliver sees no dead letter")
		}
	}
	rc.setFail("/broken", 0)
	s3.must(202, s3.do("POST", "/v1/notifications/dead-letters/"+dead[0].Notification.ID+"/retry", "ivo", nil), "retry through r3")
	s2.must(404, s2.do("POST", "/v1/notifications/dead-letters/"+dead[0].Notification.ID+"/retry", "ivo", nil), "retried already, seen through r2")
	rc.waitFor("/broken", want[len(want)-1:])
	if leads(s3) || !leads(s2) {
		t.Errorf("r3 delivers %t, r2 delivers %t: want r2 alone", leads(s3), leads(s2))
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.attempts["/team-a"] != len(rc.got["/team-a"]) || len(rc.got["/team-a"]) != len(want) {
		t.Errorf("team-a: %d requests for %d notifications of %d handovers: want each once", rc.attempts["/team-a"], len(rc.got["/team-a"]), len(want))
	}
	if _, ok := rc.got["/broken"][dead[0].Notification.ID]; !ok {
		t.Error("the retried notification arrived under another key")
	}
	if len(rc.bad) > 0 {
		t.Errorf("deliveries failed verification: %v", rc.bad)
	}
}

// BenchmarkNotifyHandover measures the notification pipeline end to end:
// b.N signals are handed over (16 clients) and each handover is delivered
// as a signed webhook to a receiver on loopback. It reports delivered
// notifications a second and the lag from the event to its receipt.
func BenchmarkNotifyHandover(b *testing.B) {
	s := startServer(b, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn"})
	var (
		mu   sync.Mutex
		lags []time.Duration
		done = make(chan struct{})
		want int
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n notify.Notification
		_ = json.NewDecoder(r.Body).Decode(&n)
		mu.Lock()
		lags = append(lags, time.Since(n.At))
		if len(lags) == want {
			close(done)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(recv.Close)
	s.must(200, s.do("PUT", "/v1/notification-targets", "gert", map[string]any{"targets": []any{hook("bench", "team", "team-a", recv.URL+"/in")}}), "targets")
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(fmt.Sprintf("Bench Persoon %d", i))), "raise").str("id")
	}
	mu.Lock()
	want = b.N
	mu.Unlock()
	b.ResetTimer()
	start := time.Now()
	work := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				if a := s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}); a.status != 200 {
					b.Errorf("handover: %d", a.status)
				}
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("delivered %d of %d", len(lags), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "notifications/s")
	b.ReportMetric(float64(lags[len(lags)/2].Milliseconds()), "lag_p50_ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Milliseconds()), "lag_p99_ms")
}

// TestMatchNotificationsReachTeamsThatCanAct: when a new signal about a
// resident matches a case a team holds, that team is told about its own
// case (a link it may open, which shows the match, and its caseload marks
// it); when the new signal is handed over later, the receiving team is told
// of the match too.
func TestMatchNotificationsReachTeamsThatCanAct(t *testing.T) {
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_NOTIFY_SCAN_INTERVAL": "1h"}, nil)
	rc := newReceiver(t)
	rc.setTargets(s, []map[string]any{
		hook("team-a", "team", "team-a", rc.url("/team-a"), "matched"),
		hook("team-b", "team", "team-b", rc.url("/team-b"), "matched"),
	})
	first := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Match Bewoner")), "raise").str("id")
	s.must(200, s.do("POST", "/v1/signals/"+first+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
	s.must(200, s.do("POST", "/v1/signals/"+first+"/accept", "anna", nil), "accept")
	second := s.must(201, s.do("POST", "/v1/signals", "dirk", raiseBody("Match Bewoner")), "the same resident").str("id")
	rc.waitFor("/team-a", []string{"matched " + first})
	rc.mu.Lock()
	var link string
	for _, n := range rc.got["/team-a"] {
		link = n.Link
	}
	rc.mu.Unlock()
	if !strings.HasSuffix(link, "/console/cases/"+first) {
		t.Errorf("team-a's notification links to %q, want its own case", link)
	}
	c := s.must(200, s.do("GET", "/v1/signals/"+first, "anna", nil), "team-a's case")
	if ids, _ := c.body["matched_signal_ids"].([]any); len(ids) != 1 || ids[0] != second {
		t.Errorf("team-a's case shows matches %v, want %s", c.body["matched_signal_ids"], second)
	}
	load := s.must(200, s.do("GET", "/v1/caseload", "anna", nil), "caseload")
	items, _ := load.body["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["matched"] != true {
		t.Errorf("the caseload does not mark the matched case: %s", load.raw)
	}
	if got := rc.kinds("/team-b"); len(got) != 0 {
		t.Errorf("team-b holds no case of the match but heard %v", got)
	}
	s.must(200, s.do("POST", "/v1/signals/"+second+"/handover", "dirk", map[string]any{"team_id": "team-b"}), "hand the new signal over")
	rc.waitFor("/team-b", []string{"matched " + second})
}
