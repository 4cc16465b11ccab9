package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// hooks is an in-test webhook receiver: every delivery by its key, with how
// many times each key arrived. Signatures are the notifier's concern (its
// own tests verify them); here only keys and counts matter.
type hooks struct {
	srv *httptest.Server

	mu    sync.Mutex
	byKey map[string]int    // idempotency key -> deliveries
	kinds map[string]string // idempotency key -> "kind signal"
	at    map[string]time.Time
}

func newHooks(t *testing.T) *hooks {
	h := &hooks{byKey: map[string]int{}, kinds: map[string]string{}, at: map[string]time.Time{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var event struct {
			Data struct {
				ID, Kind string
				Signal   string `json:"signal_id"`
			} `json:"data"`
		}
		body, _ := io.ReadAll(r.Body)
		n := &event.Data
		if json.Unmarshal(body, &event) != nil || n.ID == "" || n.ID != r.Header.Get("Idempotency-Key") {
			http.Error(w, "bad notification", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.byKey[n.ID]++
		h.kinds[n.ID] = n.Kind + " " + n.Signal
		if _, seen := h.at[n.ID]; !seen {
			h.at[n.ID] = time.Now()
		}
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// keysFor returns the keys received for "kind signal".
func (h *hooks) keysFor(what string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for k, w := range h.kinds {
		if w == what {
			out = append(out, k)
		}
	}
	return out
}

func (h *hooks) waitFor(t *testing.T, what string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(h.keysFor(what)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no notification %q within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestThreeReplicas runs one KurrentDB (the in-repo protocol server, or a
// real cluster with BUURTSIGNAAL_KURRENTDB_URL) and three real server
// processes on loopback. A signal raised on replica 1 reads, decrypted, on
// 2 and matches on 3; an erasure on 2 shows on 1 and 3 within a second;
// notifications arrive once; a console session made on 1 works on 3. Then,
// under 64 clients spread over the replicas, one replica is SIGKILLed: no
// acknowledged signal is lost, the others keep answering, notifications
// resume within 30 s and none arrives twice under different keys.
func TestThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts three servers")
	}
	ctx := context.Background()
	tokens, err := tokensFile()
	if err != nil {
		t.Fatal(err)
	}
	store := os.Getenv("BUURTSIGNAAL_KURRENTDB_URL")
	h := newHooks(t)
	d, err := startDeployment(ctx, serverBinary(t), 3, store, tokens, "--notify-scan-interval", "500ms")
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	b := d.bases()
	on := func(i int) *driver { return newDriver(b[i], options{concurrency: 4}) }
	must := func(want int) func(int, map[string]any, error) map[string]any {
		return func(st int, m map[string]any, err error) map[string]any {
			t.Helper()
			if err != nil || st != want {
				t.Fatalf("status %d (%v), want %d: %v", st, err, want, m)
			}
			return m
		}
	}
	pos := func(m map[string]any) string { return fmt.Sprint(int64(m["position"].(float64))) }

	// Notifications for team-1's handovers go to the receiver.
	targets := map[string]any{"targets": []any{map[string]any{"id": "team-1-hook", "subscriber": "team", "subscriber_id": "team-1",
		"channel": "webhook", "url": h.srv.URL + "/team-1", "kinds": []string{"handed_over"}}}}
	must(200)(on(0).call(ctx, "PUT", "/v1/notification-targets", "coo1", targets))

	// Raise on 1, hand over and accept on 1; read and decrypt on 2.
	body := func(name string) map[string]any {
		return map[string]any{"subject": map[string]any{"name": name, "birth_date": "1944-04-04"}, "neighbourhood": "centrum",
			"categories": []string{"loneliness"}, "urgency": "high", "consent": "informed", "description": "Replica-test beschrijving"}
	}
	first := must(201)(on(0).call(ctx, "POST", "/v1/signals", "vol1", body("Replica Bewoner")))
	id := first["id"].(string)
	must(200)(on(0).call(ctx, "POST", "/v1/signals/"+id+"/handover", "coo1", map[string]any{"team_id": "team-1"}))
	acc := must(200)(on(0).call(ctx, "POST", "/v1/signals/"+id+"/accept", "pro1", nil))
	got := must(200)(on(1).call(ctx, "GET", "/v1/signals/"+id+"?min_position="+pos(acc), "pro1", nil))
	if subj, _ := got["subject"].(map[string]any); subj["name"] != "Replica Bewoner" {
		t.Fatalf("replica 2 does not decrypt replica 1's resident: %v", got["subject"])
	}

	// The same resident raised on 3 is matched with the signal of 1.
	second := must(201)(on(2).call(ctx, "POST", "/v1/signals", "pro2", body("Replica Bewoner")))
	if second["subject_id"] != got["subject_id"] { // volunteers are not told the subject; the professional's read is
		t.Fatalf("replica 3 made a new subject for a known resident: %v vs %v", second["subject_id"], got["subject_id"])
	}
	matched := must(200)(on(2).call(ctx, "GET", "/v1/signals/"+id+"?min_position="+pos(second), "pro1", nil))
	if ids, _ := matched["matched_signal_ids"].([]any); len(ids) != 1 || ids[0] != second["id"] {
		t.Errorf("the case on replica 3 does not show the match: %v", matched["matched_signal_ids"])
	}

	// Exactly one delivery of the handover's notification.
	h.waitFor(t, "handed_over "+id, 30*time.Second)
	time.Sleep(time.Second) // time for a duplicate to show
	for _, k := range h.keysFor("handed_over " + id) {
		if n := h.byKey[k]; n != 1 {
			t.Errorf("notification %s arrived %d times", k, n)
		}
	}
	if keys := h.keysFor("handed_over " + id); len(keys) != 1 {
		t.Errorf("the handover was notified under %d keys", len(keys))
	}

	// A console session made on 1 works on 3.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	page, _ := browser.Get(b[0] + "/console/login")
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(string(html))
	if csrf == nil {
		t.Fatal("no sign-in form on replica 1")
	}
	req, _ := http.NewRequest(http.MethodPost, b[0]+"/console/login", strings.NewReader(url.Values{"token": {"load-pro1"}, "csrf": {csrf[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b[0])
	if resp, err := browser.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign in on replica 1: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Cookies are per host, not per port: the jar sends replica 1's cookie
	// to replica 3, as a browser behind one load balancer address would.
	resp, err := browser.Get(b[2] + "/console/caseload")
	if err != nil || resp.StatusCode != 200 || resp.Request.URL.Path != "/console/caseload" {
		t.Fatalf("replica 1's console session on replica 3: %v %v", resp, err)
	}
	resp.Body.Close()

	// Erase on 2: erased on 1 and 3 within a second.
	subject := got["subject_id"].(string)
	must(200)(on(1).call(ctx, "POST", "/v1/subjects/"+subject+"/erasure", "pri1", map[string]any{"reason": "verzoek", "request_ref": "AVG-R-1"}))
	erasedAt := time.Now()
	for _, i := range []int{0, 2} {
		for {
			st, m, err := on(i).call(ctx, "GET", "/v1/signals/"+id, "pro1", nil)
			if subj, _ := m["subject"].(map[string]any); err == nil && st == 200 && subj["erased"] == true {
				break
			}
			if time.Since(erasedAt) > time.Second {
				t.Fatalf("replica %d still shows the erased subject after a second: %d %v", i+1, st, m["subject"])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("erasure visible on replicas 1 and 3 after %s", time.Since(erasedAt).Round(time.Millisecond))

	// 64 clients over the three replicas; the replica that delivers the
	// notifications (it holds the lease) is SIGKILLed after 3 s, so another
	// must take over.
	victim := leaderOf(t, b)
	var survivors []int
	for i := range b {
		if i != victim {
			survivors = append(survivors, i)
		}
	}
	load := newDriver(b[0], options{mix: "full", duration: 9 * time.Second, concurrency: 64, maxRequests: 5_000_000, seed: 11}, b[1], b[2])
	if err := load.setup(ctx); err != nil {
		t.Fatal(err)
	}
	var killedAt time.Time
	go func() {
		time.Sleep(3 * time.Second)
		killedAt = time.Now()
		d.kill(victim)
	}()
	load.drive(ctx)
	var report strings.Builder
	load.report(&report)
	t.Logf("load over three replicas, replica %d (the notifier's leader) killed after 3 s:\n%s", victim+1, report.String())
	failed := regexp.MustCompile(`requests=(\d+) errors=(\d+)`).FindStringSubmatch(report.String())
	t.Logf("failed requests during the switch: %s of %s; refused and sent to another replica: %d", failed[2], failed[1], load.lb.switched.Load())

	// No acknowledged signal is lost: every one is in the log.
	log, err := kurrentdb.Open(ctx, d.store, kurrentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	lost := 0
	for _, sid := range load.acked {
		if _, err := log.ReadStream(ctx, "signal-"+sid, eventlog.Forwards, 0, 1); err != nil {
			lost++
		}
	}
	t.Logf("acknowledged raises: %d, lost: %d", len(load.acked), lost)
	if lost > 0 {
		t.Errorf("%d acknowledged signals are not in the log", lost)
	}

	// Notifications resume within 30 s of the kill: a handover made now
	// arrives, and none arrives twice under different keys.
	late := must(201)(on(survivors[0]).call(ctx, "POST", "/v1/signals", "vol1", body("Na De Storing")))
	must(200)(on(survivors[1]).call(ctx, "POST", "/v1/signals/"+late["id"].(string)+"/handover", "coo1", map[string]any{"team_id": "team-1"}))
	h.waitFor(t, "handed_over "+late["id"].(string), 30*time.Second-time.Since(killedAt))
	t.Logf("notifications resumed %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	h.mu.Lock()
	keysOf := map[string]map[string]bool{}
	for k, what := range h.kinds {
		if keysOf[what] == nil {
			keysOf[what] = map[string]bool{}
		}
		keysOf[what][k] = true
	}
	h.mu.Unlock()
	for what, keys := range keysOf {
		if len(keys) > 1 {
			t.Errorf("%s arrived under %d keys", what, len(keys))
		}
	}
}

// leaderOf returns the index of the replica whose notifier holds the lease
// (buurtsignaal_notifier_leader 1), waiting up to 30 s for one to.
func leaderOf(t *testing.T, bases []string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for i, b := range bases {
			resp, err := http.Get(b + "/metrics")
			if err != nil {
				continue
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(raw), "\nbuurtsignaal_notifier_leader 1\n") {
				return i
			}
		}
	}
	t.Fatal("no replica holds the notifier's lease")
	return -1
}
