package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
)

// waitReady polls GET /readyz until it answers want, and fails the test
// after limit.
func (s *server) waitReady(want int, limit time.Duration, what string) time.Duration {
	s.t.Helper()
	start := time.Now()
	for {
		a := s.do("GET", "/readyz", "", nil)
		if a.status == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			s.t.Fatalf("%s: /readyz answers %d after %v, want %d: %s", what, a.status, limit, want, a.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric returns the line of a metric without labels on /metrics.
func (s *server) metric(name string) string {
	s.t.Helper()
	for _, l := range strings.Split(string(s.do("GET", "/metrics", "", nil).raw), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// TestReadinessFollowsTheStore: on KurrentDB (the protocol test server)
// GET /readyz and buurtsignaal_ready follow what the replica can serve:
// not ready while the store does not answer, while the projections' subscription
// is stalled and the log moves on without them, and for good once the log
// is another one (the runner stops, logged as an error); ready again as
// soon as the store answers and the projections catch up.
func TestReadinessFollowsTheStore(t *testing.T) {
	srv := kurrenttest.Start(t)
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_STORE": srv.URL(), "BUURTSIGNAAL_NO_NOTIFY": "true",
		"BUURTSIGNAAL_READY_INTERVAL": "50ms", "BUURTSIGNAAL_READY_MAX_LAG": "1s"})
	s.waitReady(200, 10*time.Second, "at start")
	if m := s.metric("buurtsignaal_ready"); m != "buurtsignaal_ready 1" {
		t.Fatalf("metric: %q", m)
	}

	// The store does not answer (every call held past its deadline).
	srv.SetDelay(time.Minute)
	took := s.waitReady(503, 10*time.Second, "store unreachable")
	if m := s.metric("buurtsignaal_store_reachable"); m != "buurtsignaal_store_reachable 0" {
		t.Fatalf("metric: %q", m)
	}
	srv.SetDelay(0)
	back := s.waitReady(200, 10*time.Second, "store back")
	t.Logf("store unreachable: not ready after %v, ready %v after it answered", took.Round(time.Millisecond), back.Round(time.Millisecond))

	// The subscription is dropped and refused while the log moves on.
	srv.FailSubscriptions(1<<30, codes.Unavailable)
	for srv.DropSubscriptions() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	raw := rawStoreClient(t, srv.URL())
	if _, err := raw.AppendToStream(context.Background(), "other-1", esdb.AppendToStreamOptions{},
		esdb.EventData{EventType: "SomethingElse", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	took = s.waitReady(503, 10*time.Second, "subscription stalled")
	srv.FailSubscriptions(0, codes.Unavailable)
	back = s.waitReady(200, 20*time.Second, "subscription back")
	t.Logf("subscription stalled: not ready after %v (max lag 1s), ready %v after it was let back", took.Round(time.Millisecond), back.Round(time.Millisecond))

	// Another log behind the address: the projections stop for good.
	srv.ReplaceLog()
	s.waitReady(503, 10*time.Second, "another log")
	time.Sleep(200 * time.Millisecond)
	s.waitReady(503, time.Second, "still another log")
	if !strings.Contains(s.stderr.String(), `"level":"ERROR","msg":"projections stopped","err":"the event log diverged: `) {
		t.Fatalf("the stop is not logged as an error:\n%s", s.stderr.String())
	}
}

func rawStoreClient(t *testing.T, url string) *esdb.Client {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, context.Canceled) {
			t.Log(err)
		}
	})
	return c
}

// TestReadinessMeasuresLagNotMotion: under a steady stream of writes the
// projections are always a little behind the head a probe sees, and stay
// ready; when they stop applying while the log moves on, they are not
// ready once what they miss is older than the maximum lag, and ready again
// when they catch up. An unreachable store and stopped projections are not
// ready either.
func TestReadinessMeasuresLagNotMotion(t *testing.T) {
	var head, pos uint64
	var headErr, stopped error
	r := newReadiness(func(context.Context) (uint64, error) { return head, headErr }, func() uint64 { return pos },
		func() bool { return true }, func() error { return stopped }, time.Second, 10*time.Second, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	step := func(what string, want bool) {
		t.Helper()
		r.probe(context.Background(), now)
		if got := r.Ready(); got != want {
			t.Fatalf("%s at %s: ready %v, want %v (state %q)", what, now.Format(time.TimeOnly), got, want, r.state)
		}
		now = now.Add(time.Second)
	}
	for i := 0; i < 60; i++ { // a minute of writes, applied a probe later
		pos, head = head, head+10
		step("steady writes", true)
	}
	for i := 0; i < 9; i++ { // stuck: the oldest unapplied head (seen a probe ago) ages
		head += 10
		step("stuck", true)
	}
	head += 10
	step("stuck past the maximum lag", false)
	pos = head
	step("caught up", true)
	headErr = errors.New("no answer")
	step("store unreachable", false)
	headErr = nil
	step("store back", true)
	stopped = errors.New("the event log diverged")
	step("projections stopped", false)
}
