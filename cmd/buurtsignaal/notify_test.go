package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/buurtsignaal/buurtsignaal/adapters/notify"
	"github.com/buurtsignaal/buurtsignaal/adapters/notify/notifytest"
)

// receiver is an in-test webhook receiver on loopback. Each path is one
// target; it verifies every delivery's signature with that target's key and
// records what arrives. fail[path] > 0 answers 500 that many more times
// (-1: always).
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	secrets  map[string][]byte                    // path -> signing key (the deprecated header's)
	hooks    map[string]*standardwebhooks.Webhook // path -> Standard Webhooks verifier
	fail     map[string]int
	attempts map[string]int                            // path -> requests
	got      map[string]map[string]notify.Notification // path -> id -> notification
	raw      []string
	bad      []string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, secrets: map[string][]byte{}, hooks: map[string]*standardwebhooks.Webhook{}, fail: map[string]int{}, attempts: map[string]int{}, got: map[string]map[string]notify.Notification{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	path := req.URL.Path
	r.attempts[path]++
	r.raw = append(r.raw, string(body))
	// The Standard Webhooks signature, checked by its reference library,
	// and the deprecated header, still sent for one version.
	wh := r.hooks[path]
	if wh == nil {
		r.bad = append(r.bad, path+": no signing secret")
		http.Error(w, "unknown", http.StatusNotFound)
		return
	}
	if err := wh.Verify(body, req.Header); err != nil {
		r.bad = append(r.bad, path+": "+err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	//lint:ignore SA1019 the deprecated header is still sent for one version, and this checks it
	if err := notify.Verify(r.secrets[path], req.Header.Get(notify.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		r.bad = append(r.bad, path+": deprecated header: "+err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if f := r.fail[path]; f != 0 {
		if f > 0 {
			r.fail[path]--
		}
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	// The body is a CloudEvent, read by the CloudEvents SDK.
	n, err := readCloudEvent(req, body)
	if err != nil {
		r.bad = append(r.bad, path+": "+err.Error())
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if r.got[path] == nil {
		r.got[path] = map[string]notify.Notification{}
	}
	r.got[path][n.ID] = n
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) url(path string) string { return r.srv.URL + path }

// setFail makes path answer 500 n more times (-1: always, 0: never).
func (r *receiver) setFail(path string, n int) {
	r.mu.Lock()
	r.fail[path] = n
	r.mu.Unlock()
}

// kinds returns "kind signal" of everything path received, sorted.
func (r *receiver) kinds(path string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.got[path] {
		out = append(out, n.Kind+" "+n.Signal)
	}
	slices.Sort(out)
	return out
}

// waitFor waits until path has received want (as kinds returns it).
func (r *receiver) waitFor(path string, want []string) {
	r.t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := r.kinds(path)
		if cmp.Equal(want, got) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s received (-want +got):\n%s", path, cmp.Diff(want, got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setTargets puts the targets and hands the receiver each webhook's key.
func (r *receiver) setTargets(s *server, targets []map[string]any) {
	r.t.Helper()
	s.must(200, s.do("PUT", "/v1/notification-targets", "gert", map[string]any{"targets": targets}), "set targets")
	got := s.must(200, s.do("GET", "/v1/notification-targets", "ivo", nil), "read targets")
	var view struct {
		Targets []struct {
			URL           string `json:"url"`
			Secret        string `json:"secret"`
			SigningSecret string `json:"signing_secret"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(got.raw, &view); err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tg := range view.Targets {
		if tg.URL == "" {
			continue
		}
		key, err := hex.DecodeString(tg.Secret)
		if err != nil || len(key) != 32 {
			r.t.Fatalf("webhook target without a signing key: %+v", tg)
		}
		wh, err := standardwebhooks.NewWebhook(tg.SigningSecret)
		if err != nil {
			r.t.Fatalf("webhook target's signing secret %q: %v", tg.SigningSecret, err)
		}
		r.secrets[strings.TrimPrefix(tg.URL, r.srv.URL)] = key
		r.hooks[strings.TrimPrefix(tg.URL, r.srv.URL)] = wh
	}
}

// readCloudEvent reads a webhook's body with the CloudEvents SDK: a valid
// CloudEvent 1.0 in structured mode, whose id is the idempotency key (and
// webhook-id), whose type names the kind, and whose data is the
// notification.
func readCloudEvent(req *http.Request, body []byte) (notify.Notification, error) {
	var n notify.Notification
	if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, cloudevents.ApplicationCloudEventsJSON) {
		return n, fmt.Errorf("content type %q", ct)
	}
	e := cloudevents.NewEvent()
	if err := json.Unmarshal(body, &e); err != nil {
		return n, fmt.Errorf("not a CloudEvent: %w", err)
	}
	if err := e.Validate(); err != nil {
		return n, fmt.Errorf("invalid CloudEvent: %w", err)
	}
	if err := e.DataAs(&n); err != nil {
		return n, fmt.Errorf("CloudEvent data: %w", err)
	}
	switch {
	case e.SpecVersion() != "1.0" || e.DataContentType() != "application/json":
		return n, fmt.Errorf("CloudEvent %s with data %s", e.SpecVersion(), e.DataContentType())
	case e.ID() != n.ID || e.ID() != req.Header.Get("Idempotency-Key") || e.ID() != req.Header.Get("webhook-id"):
		return n, fmt.Errorf("CloudEvent id %q, notification %q, Idempotency-Key %q, webhook-id %q", e.ID(), n.ID, req.Header.Get("Idempotency-Key"), req.Header.Get("webhook-id"))
	case e.Type() != "nl.buurtsignaal.signal."+n.Kind || e.Subject() != n.Signal || !e.Time().Equal(n.At):
		return n, fmt.Errorf("CloudEvent type %q, subject %q, time %v for %s of %s at %v", e.Type(), e.Subject(), e.Time(), n.Kind, n.Signal, n.At)
	}
	return n, nil
}

func hook(id, subscriber, subscriberID, url string, kinds ...string) map[string]any {
	t := map[string]any{"id": id, "subscriber": subscriber, "channel": "webhook", "url": url}
	if subscriberID != "" {
		t["subscriber_id"] = subscriberID
	}
	if len(kinds) > 0 {
		t["kinds"] = kinds
	}
	return t
}

// TestNotificationsEndToEnd drives every notification kind through the
// real server to signed webhooks: routing, handover, match (only the teams
// involved), referral, feedback, and the response norm about to lapse,
// lapsed and at three times, on an injected clock; retries after 500s, the
// dead letters and their retry; metrics; and no personal data in any body.
func TestNotificationsEndToEnd(t *testing.T) {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	start := clientFacingStart(t, time.Date(2026, 11, 23, 10, 0, 0, 0, ams)) // a Monday
	c := &clock{t: start}
	// E-mail goes to a relay on loopback that requires STARTTLS and AUTH.
	relayTLS, _ := notifytest.Cert()
	relay := (&notifytest.Relay{TLS: relayTLS, User: "buurtsignaal", Pass: "relay-pw"}).Start(t)
	caFile := filepath.Join(t.TempDir(), "relay-ca.pem")
	if err := os.WriteFile(caFile, notifytest.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The public URL (links in notifications, the console's origin) is the
	// address the test reaches the server at: a port chosen beforehand.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := startServerWith(t, "", map[string]string{
		"BUURTSIGNAAL_NOTIFY_SCAN_INTERVAL": "50ms", "BUURTSIGNAAL_NOTIFY_ATTEMPTS": "3",
		"BUURTSIGNAAL_ADDR": addr, "BUURTSIGNAAL_PUBLIC_URL": "http://" + addr,
		"BUURTSIGNAAL_SMTP_ADDR": relay.Addr, "BUURTSIGNAAL_SMTP_CA_FILE": caFile, "BUURTSIGNAAL_SMTP_FROM": "buurtsignaal@gemeente.example",
		"BUURTSIGNAAL_SMTP_USERNAME": "buurtsignaal", "BUURTSIGNAAL_SMTP_PASSWORD": "relay-pw",
	}, c.now)
	rc := newReceiver(t)
	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school"}), "register school")
	s.must(200, s.do("PUT", "/v1/routing-rules", "gert", map[string]any{"rules": []any{map[string]any{"id": "acute", "urgency": "acute", "team_id": "team-a"}}}), "routing")
	rc.setTargets(s, []map[string]any{
		hook("team-a", "team", "team-a", rc.url("/team-a")),
		hook("team-b", "team", "team-b", rc.url("/team-b"), "matched", "norm_lapsing", "norm_lapsed"),
		hook("school", "organisation", "school-x", rc.url("/school")),
		hook("carla", "principal", "carla", rc.url("/carla")),
		hook("coordinators", "coordinators", "", rc.url("/coord")),
		hook("broken", "team", "team-a", rc.url("/broken"), "handed_over"),
		{"id": "team-a-mail", "subscriber": "team", "subscriber_id": "team-a", "channel": "email", "email": "team-a@gemeente.example", "kinds": []string{"handed_over"}},
		{"id": "coordinators-mail", "subscriber": "coordinators", "channel": "email", "email": "coordinatie@gemeente.example", "language": "en", "kinds": []string{"norm_escalated"}},
	})
	rc.setFail("/team-a", 2) // the first two tries fail: retried
	rc.setFail("/broken", -1)

	acute := func(who, name string) answer {
		b := raiseBody(name)
		b["urgency"] = "acute"
		return s.must(201, s.do("POST", "/v1/signals", who, b), "raise")
	}
	// S1 goes to team-a by the routing rule.
	raised := acute("carla", "Naam Een")
	s1 := raised.str("id")
	s.must(200, s.do("POST", "/v1/signals/"+s1+"/handover", "carla", map[string]any{}), "handover by the rules")
	rc.waitFor("/team-a", []string{"handed_over " + s1})
	// S2 is about the same resident: matched with S1. Only team-a holds a
	// signal of the match; team-b, subscribed to matches, hears nothing.
	s2 := s.must(201, s.do("POST", "/v1/signals", "dirk", raiseBody("Naam Een")), "raise the same resident")
	if s.subjectOf(s2.str("id")) != s.subjectOf(raised.str("id")) {
		t.Fatalf("no match: %s", s2.raw)
	}
	rc.waitFor("/team-a", []string{"handed_over " + s1, "matched " + s1}) // about team-a's own case
	// Referral and feedback on S1.
	s.must(200, s.do("POST", "/v1/signals/"+s1+"/accept", "anna", nil), "accept")
	ref := s.must(201, s.do("POST", "/v1/signals/"+s1+"/referrals", "anna", map[string]any{"organisation_id": "school-x", "reason": secretDesc}), "refer")
	s.must(200, s.do("POST", "/v1/signals/"+s1+"/feedback", "anna", map[string]any{"code": "in_progress"}), "feedback")
	rc.waitFor("/school", []string{"referral_made " + s1})
	rc.waitFor("/carla", []string{"feedback_given " + s1})

	// S3 (acute, 24 h) with team-b: lapsing at 80%, lapsed at 24 h, and the
	// coordinators at 72 h. S2 (high: 3 working days, no team) lapses to the
	// coordinators, who also hear that it is still without a team one
	// working day after it was raised.
	s3 := acute("dirk", "Naam Drie").str("id")
	s.must(200, s.do("POST", "/v1/signals/"+s3+"/handover", "dirk", map[string]any{"team_id": "team-b"}), "handover to team-b")
	c.set(start.Add(20 * time.Hour))
	rc.waitFor("/team-b", []string{"norm_lapsing " + s3})
	c.set(start.Add(25 * time.Hour))
	rc.waitFor("/team-b", []string{"norm_lapsing " + s3, "norm_lapsed " + s3})
	c.set(start.Add(73 * time.Hour))
	rc.waitFor("/coord", []string{"norm_lapsed " + s2.str("id"), "norm_escalated " + s3, "unrouted " + s2.str("id")})
	time.Sleep(300 * time.Millisecond) // several more scans: nothing is sent twice
	rc.waitFor("/team-b", []string{"norm_lapsing " + s3, "norm_lapsed " + s3})
	rc.waitFor("/coord", []string{"norm_lapsed " + s2.str("id"), "norm_escalated " + s3, "unrouted " + s2.str("id")})

	// The mails: Dutch to team-a, English to the coordinators, over
	// STARTTLS with AUTH, each with its idempotency key.
	var mails []notifytest.Mail
	for deadline := time.Now().Add(20 * time.Second); len(mails) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, _, mails = relay.Seen()
	}
	got := map[string]string{}
	for _, m := range mails {
		if !m.TLS || m.Auth != "buurtsignaal" || len(m.To) != 1 {
			t.Errorf("mail without STARTTLS or AUTH: %+v", m)
		}
		got[m.To[0]] = m.Data
		for _, secret := range []string{"Naam", "Dorpsstraat", "1941-03-12", "unieke"} {
			if strings.Contains(m.Data, secret) {
				t.Errorf("a mail holds personal data:\n%s", m.Data)
			}
		}
	}
	for to, want := range map[string][]string{
		"team-a@gemeente.example":      {"Subject: Buurtsignaal: signaal overgedragen aan uw team", s1, "Idempotency-Key: "},
		"coordinatie@gemeente.example": {"Subject: Buurtsignaal: signal escalated, response norm passed three times", s3, "Idempotency-Key: "},
	} {
		for _, w := range want {
			if !strings.Contains(got[to], w) {
				t.Errorf("mail to %s lacks %q:\n%s", to, w, got[to])
			}
		}
	}
	if len(mails) != 2 {
		t.Errorf("%d mails, want 2", len(mails))
	}

	// What a notification holds: ids, codes and a link.
	rc.mu.Lock()
	for _, n := range rc.got["/school"] {
		want := notify.Notification{ID: n.ID, Kind: "referral_made", Signal: s1, Org: "school-x", Referral: ref.str("referral_id"),
			Link: "http://" + addr + "/console/cases/" + s1, At: n.At, Network: "default"}
		if diff := cmp.Diff(want, n); diff != "" {
			t.Errorf("referral notification (-want +got):\n%s", diff)
		}
	}
	for _, n := range rc.got["/carla"] {
		if n.Code != "in_progress" {
			t.Errorf("feedback notification without its code: %+v", n)
		}
	}
	if rc.attempts["/team-a"] != len(rc.got["/team-a"])+2 {
		t.Errorf("team-a: %d requests for %d notifications, want 2 retries", rc.attempts["/team-a"], len(rc.got["/team-a"]))
	}
	if len(rc.bad) > 0 {
		t.Errorf("deliveries failed verification: %v", rc.bad)
	}
	for _, raw := range rc.raw {
		for _, secret := range []string{"Naam", secretDesc, "Dorpsstraat", "1941-03-12"} {
			if strings.Contains(raw, secret) {
				t.Errorf("a notification holds personal data: %s", raw)
			}
		}
	}
	rc.mu.Unlock()

	// The broken target's notification is dead after 3 tries; an admin
	// retries it once the receiver is back, with the same key.
	var dead []notify.Delivery
	deadline := time.Now().Add(20 * time.Second)
	for len(dead) == 0 && time.Now().Before(deadline) {
		a := s.must(200, s.do("GET", "/v1/notifications/dead-letters", "ivo", nil), "dead letters")
		var page struct{ Items []notify.Delivery }
		_ = json.Unmarshal(a.raw, &page)
		dead = page.Items
		time.Sleep(50 * time.Millisecond)
	}
	if len(dead) != 1 || dead[0].TargetID != "broken" || dead[0].Notification.Kind != "handed_over" || dead[0].Attempts != 1 {
		t.Fatalf("dead letters: %+v", dead)
	}
	if strings.Contains(dead[0].Error, rc.srv.URL) || !strings.Contains(dead[0].Error, "500") {
		t.Errorf("dead letter error %q: want the status, not the address", dead[0].Error)
	}
	s.must(403, s.do("POST", "/v1/notifications/dead-letters/"+dead[0].Notification.ID+"/retry", "gert", nil), "coordinators do not retry")
	rc.setFail("/broken", 0)
	// The admin retries it in the console.
	admin := newConsoleClient(t, s)
	admin.signIn("tok-ivo")
	admin.must(200, admin.get("/console/notifications"), "dead letters page", `data-id="`+dead[0].Notification.ID+`"`, "broken", "500")
	admin.must(200, admin.post("/console/notifications/"+dead[0].Notification.ID+"/retry", url.Values{}), "retry in the console", "Opgeslagen.")
	rc.waitFor("/broken", []string{"handed_over " + s1})
	rc.mu.Lock()
	if _, ok := rc.got["/broken"][dead[0].Notification.ID]; !ok {
		t.Errorf("the retried notification arrived with another key: %v", rc.got["/broken"])
	}
	if rc.attempts["/broken"] != 4 {
		t.Errorf("broken target: %d requests, want 3 failed and 1 delivered", rc.attempts["/broken"])
	}
	rc.mu.Unlock()
	s.must(404, s.do("POST", "/v1/notifications/dead-letters/"+dead[0].Notification.ID+"/retry", "ivo", nil), "retried already")

	// The receiver records a delivery before the server counts it: the
	// figures settle a moment later.
	want := []string{
		`buurtsignaal_notifications_sent_total{channel="webhook",kind="handed_over"} 2`,
		`buurtsignaal_notifications_sent_total{channel="email",kind="handed_over"} 1`,
		`buurtsignaal_notifications_sent_total{channel="email",kind="norm_escalated"} 1`,
		`buurtsignaal_notifications_retried_total{channel="webhook"} 4`,
		`buurtsignaal_notifications_failed_total{channel="webhook"} 5`,
		`buurtsignaal_notifications_dead_lettered_total{channel="webhook"} 1`,
		`buurtsignaal_notifications_dead_letters 0`,
		`buurtsignaal_notifications_pending 0`,
		`buurtsignaal_notifications_delivery_lag_seconds_count 12`, // 11, and unrouted to the coordinators
	}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		metrics := string(s.do("GET", "/metrics", "", nil).raw)
		missing = missing[:0]
		for _, line := range want {
			if !strings.Contains(metrics, line+"\n") {
				missing = append(missing, line)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, line := range missing {
		t.Errorf("metrics lack %s", line)
	}
}
