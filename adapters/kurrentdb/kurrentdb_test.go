package kurrentdb

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/storetest"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, Options{Timeout: 5 * time.Second, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformanceAgainstTheTestServer runs the port's conformance suite
// through the real v4 client against the in-repo protocol test server.
func TestConformanceAgainstTheTestServer(t *testing.T) {
	storetest.Run(t, storetest.Config{New: func(t *testing.T) eventlog.Store {
		return open(t, kurrenttest.Start(t).URL())
	}})
}

// TestConformanceAgainstARealServer runs the suite against a real KurrentDB
// when BUURTSIGNAAL_KURRENTDB_URL is set (scripts/kurrentdb-up.sh starts
// one); with BUURTSIGNAAL_REQUIRE_KURRENTDB=1 a missing server fails.
func TestConformanceAgainstARealServer(t *testing.T) {
	url := os.Getenv("BUURTSIGNAAL_KURRENTDB_URL")
	if url == "" {
		if os.Getenv("BUURTSIGNAAL_REQUIRE_KURRENTDB") == "1" {
			t.Fatal("BUURTSIGNAAL_REQUIRE_KURRENTDB=1 but BUURTSIGNAAL_KURRENTDB_URL is not set")
		}
		t.Skip("set BUURTSIGNAAL_KURRENTDB_URL to run against a real KurrentDB")
	}
	storetest.Run(t, storetest.Config{New: func(t *testing.T) eventlog.Store { return open(t, url) }})
}

func ev(i int) eventlog.EventData {
	return eventlog.EventData{ID: uuid.New(), Type: "T", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
}

// TestSubscriptionSurvivesDrops drops the server side of the subscription
// (gRPC Unavailable) again and again; Next delivers every event once, in order.
func TestSubscriptionSurvivesDrops(t *testing.T) {
	srv := kurrenttest.Start(t)
	s := open(t, srv.URL())
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := s.Subscribe(ctx, 0, eventlog.Filter{StreamPrefixes: []string{"drop-"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 60
	go func() {
		for i := 0; i < n; i++ {
			if _, err := s.Append(ctx, "drop-1", eventlog.Any(), ev(i)); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 5 {
				srv.DropSubscriptions()
			}
		}
	}()
	var last uint64
	for i := 0; i < n; i++ {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d events: %v", i, err)
		}
		if e.Revision != uint64(i) || e.Position <= last {
			t.Fatalf("event %d: revision %d position %d after %d", i, e.Revision, e.Position, last)
		}
		last = e.Position
	}
}

// TestAFailedFirstConnectionIsReplaced opens the adapter before any server
// listens: the v4 client closes itself for good; the adapter replaces it.
func TestAFailedFirstConnectionIsReplaced(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := open(t, "esdb://"+addr+"?tls=false&maxDiscoverAttempts=1&discoveryInterval=10")
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Append(ctx, "first-1", eventlog.Any(), ev(0)); err == nil {
		t.Fatal("append without a server succeeded")
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skip("the port was taken meanwhile:", err)
	}
	srv := kurrenttest.New()
	srv.Serve(ln)
	defer srv.Stop()
	var lastErr error
	for i := 0; i < 20; i++ {
		if _, lastErr = s.Append(ctx, "first-1", eventlog.Any(), ev(1)); lastErr == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the adapter did not recover: %v", lastErr)
}

// TestNotLeaderIsRetried: a follower answers not-leader; the client
// reconnects to the leader it names and the adapter retries the append.
func TestNotLeaderIsRetried(t *testing.T) {
	srv := kurrenttest.Start(t)
	s := open(t, srv.URL())
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Append(ctx, "leader-1", eventlog.NoStream(), ev(0)); err != nil {
		t.Fatal(err)
	}
	srv.AnswerNotLeader(1)
	before := srv.Appends()
	r, err := s.Append(ctx, "leader-1", eventlog.Revision(0), ev(1))
	if err != nil {
		t.Fatal(err)
	}
	if r.NextRevision != 1 || srv.Appends()-before < 2 {
		t.Fatalf("result %+v after %d append calls", r, srv.Appends()-before)
	}
	got, err := s.ReadStream(ctx, "leader-1", eventlog.Forwards, 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("%d events, %v", len(got), err)
	}
}

func TestParseURL(t *testing.T) {
	for _, u := range []string{"kurrentdb://127.0.0.1:2113?tls=false", "kurrent://127.0.0.1:2113?tls=false", "esdb://127.0.0.1:2113?tls=false", "kurrentdb+discover://a:2113,b:2113,c:2113?tls=false"} {
		if _, err := ParseURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if _, err := ParseURL("kurrentdb://user:secret@[bad"); err == nil || contains(err.Error(), "secret") {
		t.Errorf("bad URL: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
