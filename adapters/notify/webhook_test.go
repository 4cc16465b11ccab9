package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func TestSignAndVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"id":"n-1"}`)
	now := time.Unix(1_800_000_000, 0)
	h := Sign(secret, now, body)
	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		at     time.Time
		want   error
	}{
		{"valid", secret, h, body, now.Add(time.Minute), nil},
		{"other secret", []byte("other"), h, body, now, ErrBadSignature},
		{"tampered body", secret, h, []byte(`{"id":"n-2"}`), now, ErrBadSignature},
		{"replayed after the window", secret, h, body, now.Add(6 * time.Minute), ErrStale},
		{"from the future", secret, h, body, now.Add(-6 * time.Minute), ErrStale},
		{"no signature", secret, "t=1800000000", body, now, ErrBadSignature},
		{"garbage", secret, "nonsense", body, now, ErrBadSignature},
	}
	for _, tt := range tests {
		if err := Verify(tt.secret, tt.header, tt.body, tt.at, 5*time.Minute); !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// receiver is an in-test webhook endpoint that verifies signatures, answers
// the given statuses in turn, and records what it accepted.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	seen     []string // idempotency keys of verified deliveries
	bad      int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := Verify([]byte("s3cret"), r.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		rc.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var n Notification
	if json.Unmarshal(body, &n) != nil || n.ID != r.Header.Get("Idempotency-Key") {
		rc.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.seen = append(rc.seen, n.ID)
	status := http.StatusNoContent
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	w.WriteHeader(status)
}

func TestDeliverRetriesWithBackoff(t *testing.T) {
	rc := &receiver{statuses: []int{500, 503, 429}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var waits []time.Duration
	retried := 0
	w := &Webhook{Attempts: 5, Base: 100 * time.Millisecond, Max: 300 * time.Millisecond,
		Sleep:   func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil },
		Retried: func() { retried++ }}
	body, _ := json.Marshal(Notification{ID: "n-1", Kind: "handed_over", Signal: "s-1", Team: "team-a", Network: "net", At: time.Now()})
	if err := w.Deliver(context.Background(), srv.URL, []byte("s3cret"), "n-1", body); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(rc.seen) != 4 || rc.bad != 0 || retried != 3 {
		t.Fatalf("deliveries %v (bad %d), retries %d; want 4 signed deliveries, 3 retries", rc.seen, rc.bad, retried)
	}
	for i, d := range waits { // full jitter under 100ms, 200ms, then the 300ms cap
		if limit := min(300*time.Millisecond, 100*time.Millisecond<<i); d < 0 || d > limit {
			t.Errorf("wait %d = %v, want within [0, %v]", i, d, limit)
		}
	}
}

func TestDeliverGivesUp(t *testing.T) {
	rc := &receiver{statuses: []int{500, 500, 500}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := &Webhook{Attempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }}
	if err := w.Deliver(context.Background(), srv.URL, []byte("s3cret"), "n-2", []byte(`{"id":"n-2"}`)); err == nil {
		t.Fatal("three 500s: want an error to dead-letter")
	}
	if len(rc.seen) != 3 {
		t.Fatalf("%d attempts, want 3", len(rc.seen))
	}
	// A refusal (4xx) is final: no retry.
	rc2 := &receiver{statuses: []int{422}}
	srv2 := httptest.NewServer(rc2)
	defer srv2.Close()
	if err := w.Deliver(context.Background(), srv2.URL, []byte("s3cret"), "n-3", []byte(`{"id":"n-3"}`)); err == nil || len(rc2.seen) != 1 {
		t.Fatalf("a 422: err %v after %d attempts, want an error after 1", err, len(rc2.seen))
	}
	// A wrong secret is refused by the receiver.
	if err := w.Deliver(context.Background(), srv2.URL, []byte("wrong"), "n-4", []byte(`{"id":"n-4"}`)); err == nil || rc2.bad != 1 {
		t.Fatalf("wrong secret: err %v, receiver saw %d bad signatures", err, rc2.bad)
	}
}

// FuzzVerify: any header and body; Verify never panics, and accepts only
// a header that holds the HMAC of its own timestamp and the body.
func FuzzVerify(f *testing.F) {
	secret := []byte("receiver-secret")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"x","kind":"handed_over"}`)
	f.Add(Sign(secret, now, body), body)
	f.Add("t=1800000000,v1=00", body)
	f.Add("v1=abc,t=", []byte{})
	f.Add("t=-1,v1="+strings.Repeat("a", 64), body)
	f.Add(",,,=,t=1800000000,t=1,v1=x", body)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if Verify(secret, header, body, now, 5*time.Minute) != nil {
			return
		}
		var ts int64 = -1
		for _, part := range strings.Split(header, ",") {
			if k, v, _ := strings.Cut(strings.TrimSpace(part), "="); k == "t" {
				ts, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		want := Sign(secret, time.Unix(ts, 0), body)
		_, sig, _ := strings.Cut(want, ",v1=")
		if !strings.Contains(header, "v1="+sig) {
			t.Fatalf("accepted %q for a body it does not sign", header)
		}
	})
}

// TestWebhooksVerifyWithStandardLibraries: a delivery of a notification is
// a CloudEvent that the CloudEvents SDK reads, signed so that the Standard
// Webhooks reference library verifies it with the target's signing secret
// as the API shows it; a changed body, id or timestamp fails that check.
func TestWebhooksVerifyWithStandardLibraries(t *testing.T) {
	key := TargetSecret([]byte("server secret"), "team-hook")
	wh, err := standardwebhooks.NewWebhook(SigningSecret(key))
	if err != nil {
		t.Fatal(err)
	}
	n := Notification{ID: "6a1f3c2b-0b5c-4c8e-9a51-1f0e6d0a7d40", Kind: domain.NotifyHandedOver, Signal: "0b5c1f0e-6d0a-4c8e-9a51-6a1f3c2b7d40",
		Team: "basisteam-beesd", Link: "https://buurtsignaal.example/console/cases/0b5c1f0e-6d0a-4c8e-9a51-6a1f3c2b7d40", At: time.Date(2026, 12, 4, 9, 15, 0, 0, time.UTC), Network: "default"}
	body, err := Event(n, EventSource("https://buurtsignaal.example/"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		header http.Header
		body   []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.header, got.body = r.Header.Clone(), must(io.ReadAll(r.Body))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	if err := (&Webhook{Attempts: 1}).Deliver(context.Background(), srv.URL, key, n.ID, body); err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(got.body, got.header); err != nil {
		t.Fatalf("the Standard Webhooks library refuses the delivery: %v\n%v", err, got.header)
	}
	if sig, _ := wh.Sign(n.ID, time.Unix(mustInt(t, got.header.Get("webhook-timestamp")), 0), got.body); sig != got.header.Get("webhook-signature") {
		t.Errorf("webhook-signature %q, the library signs %q", got.header.Get("webhook-signature"), sig)
	}
	e := cloudevents.NewEvent()
	if err := json.Unmarshal(got.body, &e); err != nil {
		t.Fatalf("the CloudEvents SDK cannot read the body: %v\n%s", err, got.body)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("not a valid CloudEvent: %v", err)
	}
	var data Notification
	if err := e.DataAs(&data); err != nil {
		t.Fatal(err)
	}
	wantAttrs := []string{"1.0", n.ID, "https://buurtsignaal.example", "nl.buurtsignaal.signal.handed_over", n.Signal, "application/json", n.At.Format(time.RFC3339)}
	gotAttrs := []string{e.SpecVersion(), e.ID(), e.Source(), e.Type(), e.Subject(), e.DataContentType(), e.Time().Format(time.RFC3339)}
	if diff := cmp.Diff(wantAttrs, gotAttrs); diff != "" {
		t.Errorf("CloudEvent attributes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(n, data); diff != "" {
		t.Errorf("CloudEvent data (-want +got):\n%s", diff)
	}
	if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, cloudevents.ApplicationCloudEventsJSON) {
		t.Errorf("Content-Type %q", ct)
	}
	if err := Verify(key, got.header.Get(SignatureHeader), got.body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("the deprecated header: %v", err)
	}
	tests := []struct {
		name   string
		change func(h http.Header, b []byte) []byte
	}{
		{"body", func(_ http.Header, b []byte) []byte {
			return bytes.Replace(b, []byte("handed_over"), []byte("matched"), 1)
		}},
		{"id", func(h http.Header, b []byte) []byte { h.Set("webhook-id", "another"); return b }},
		{"timestamp", func(h http.Header, b []byte) []byte {
			h.Set("webhook-timestamp", strconv.FormatInt(mustInt(t, h.Get("webhook-timestamp"))-1, 10))
			return b
		}},
		{"key", func(h http.Header, b []byte) []byte {
			sig, _ := must2(standardwebhooks.NewWebhook(SigningSecret(TargetSecret([]byte("server secret"), "other")))).Sign(h.Get("webhook-id"), time.Now(), b)
			h.Set("webhook-signature", sig)
			return b
		}},
	}
	for _, tt := range tests {
		h := got.header.Clone()
		b := tt.change(h, bytes.Clone(got.body))
		if err := wh.Verify(b, h); err == nil {
			t.Errorf("a delivery with another %s verifies", tt.name)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func must2[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
