package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/storetest"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func TestBackoffIsCappedAndJittered(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name    string
		b       kurrentconn.Backoff
		middles []time.Duration // the waits' middles, in order
	}{
		{"resubscription", kurrentconn.Backoff{First: 50 * ms, Max: 300 * ms}, []time.Duration{50 * ms, 100 * ms, 200 * ms, 300 * ms, 300 * ms, 300 * ms}},
		{"call retries", kurrentconn.Backoff{First: 20 * ms, Max: time.Second}, []time.Duration{20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second}},
		{"no wait", kurrentconn.Backoff{}, []time.Duration{0, 0}},
	}
	for _, tt := range tests {
		for round := 0; round < 50; round++ {
			b := tt.b
			distinct := map[time.Duration]bool{}
			for i, m := range tt.middles {
				if i == 3 && round%2 == 1 {
					b.Reset()
					for _, m := range tt.middles[:i] {
						if d := b.Next(); d < m/2 || (m > 0 && d >= m*3/2) {
							t.Fatalf("%s after reset: %v outside [%v, %v)", tt.name, d, m/2, m*3/2)
						}
					}
				}
				d := b.Next()
				if d < m/2 || (m > 0 && d >= m*3/2) || (m == 0 && d != 0) {
					t.Fatalf("%s: wait %d is %v, outside [%v, %v)", tt.name, i, d, m/2, m*3/2)
				}
				distinct[d] = true
			}
			if tt.middles[0] > 0 && len(distinct) < 2 {
				t.Fatalf("%s: no jitter", tt.name)
			}
		}
	}
}

// TestAFailedFirstConnectionIsReplaced: the node refuses the client's first
// connection; the v4 client then closes itself for good, and the adapter
// replaces it within the same call.
func TestAFailedFirstConnectionIsReplaced(t *testing.T) {
	srv := kurrenttest.Start(t)
	srv.RefuseConnections(1)
	s := open(t, srv.URL()+"&maxDiscoverAttempts=1&discoveryInterval=10", testOpts)
	r := mustAppend(t, s, "first-1", eventlog.NoStream(), ev("T", 0))
	if r.NextRevision != 0 || srv.Refused() != 1 {
		t.Fatalf("result %+v, %d connections refused", r, srv.Refused())
	}
}

// TestConcurrentCallsWhileConnectingFailsReturn: many calls while the node
// refuses connections. Calls queue behind one connection attempt at a time
// instead of inside a client that may close itself (the v4 client would
// never answer them), and they all succeed once the node accepts. The
// package's goroutine leak check covers the rest.
func TestConcurrentCallsWhileConnectionsFail(t *testing.T) {
	srv := kurrenttest.Start(t)
	srv.RefuseConnections(3)
	s := open(t, srv.URL()+"&maxDiscoverAttempts=1&discoveryInterval=10", testOpts)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Append(ctxT(t, 10*time.Second), fmt.Sprintf("many-%d", i), eventlog.NoStream(), ev("T", i))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestDeadlines: a node that holds calls, and one that accepts connections
// but never speaks; every call returns at its deadline with ErrUnavailable.
func TestDeadlines(t *testing.T) {
	slow := kurrenttest.Start(t)
	slow.SetDelay(time.Minute)
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	opts := Options{Timeout: 300 * time.Millisecond}
	stores := map[string]*Store{
		"held calls": open(t, slow.URL(), opts),
		// The client spends gossipTimeout (3 s) on its connection attempt,
		// deaf to contexts.
		"a node that never answers": open(t, "esdb://"+mute.Addr().String()+"?tls=false&gossipTimeout=3&maxDiscoverAttempts=1", opts),
	}
	calls := map[string]func(s *Store) error{
		"Append": func(s *Store) error {
			_, err := s.Append(context.Background(), "late-1", eventlog.NoStream(), ev("T", 0))
			return err
		},
		"ReadStream": func(s *Store) error {
			_, err := s.ReadStream(context.Background(), "late-1", eventlog.Forwards, 0, 1)
			return err
		},
		"ReadAll": func(s *Store) error { _, err := s.ReadAll(context.Background(), 0, 1); return err },
		"Head":    func(s *Store) error { _, err := s.Head(context.Background()); return err },
	}
	for sname, s := range stores {
		for cname, call := range calls {
			start := time.Now()
			err := call(s)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("%s, %s: returned after %v", sname, cname, took)
			}
			if !errors.Is(err, eventlog.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s, %s: %v, want ErrUnavailable after the deadline", sname, cname, err)
			}
		}
	}
	// The caller's earlier deadline wins over the adapter's.
	s := open(t, slow.URL(), Options{Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Head(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Head with a 200 ms context: %v", err)
	}
	for _, s := range stores {
		_ = s.Close()
		waitUnused(t, s) // the abandoned calls end with the client's attempt
	}
}

// waitUnused waits until no call uses the store's client any more.
func waitUnused(t *testing.T, s *Store) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		refs := s.c.InUse()
		if refs == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still inside the client", refs)
		}
	}
}

// TestNotLeaderIsRetried: a node that has just lost the leadership answers
// not-leader once; the client reconnects to the leader it names and the
// adapter retries the append.
func TestNotLeaderIsRetried(t *testing.T) {
	srv := kurrenttest.Start(t)
	s := open(t, srv.URL(), testOpts)
	mustAppend(t, s, "leader-1", eventlog.NoStream(), ev("T", 0))
	srv.AnswerNotLeader(1)
	before := srv.Appends()
	r := mustAppend(t, s, "leader-1", eventlog.Revision(0), ev("T", 1))
	if r.NextRevision != 1 || srv.Appends()-before != 2 || srv.NotLeaderAnswers() != 1 {
		t.Fatalf("result %+v after %d append calls, %d not-leader answers", r, srv.Appends()-before, srv.NotLeaderAnswers())
	}
	got, err := s.ReadStream(ctxT(t, 5*time.Second), "leader-1", eventlog.Forwards, 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("%d events, %v", len(got), err)
	}
}

// TestClusterLeaderChange: the client finds the leader by gossip, and after
// an election the former leader answers the adapter's requires-leader with
// not-leader; the client reconnects to the new leader and the append lands
// there, once.
func TestClusterLeaderChange(t *testing.T) {
	c := kurrenttest.StartCluster(t, 3, kurrenttest.Options{})
	c.Elect(1)
	s := open(t, c.URL(), testOpts)
	mustAppend(t, s, "cluster-1", eventlog.NoStream(), ev("T", 0))
	appends := func() []int64 {
		var out []int64
		for _, n := range c.Nodes {
			out = append(out, n.Appends())
		}
		return out
	}
	if diff := cmp.Diff([]int64{0, 1, 0}, appends()); diff != "" {
		t.Fatalf("appends per node (-want +got):\n%s", diff)
	}
	c.Elect(2)
	mustAppend(t, s, "cluster-1", eventlog.Revision(0), ev("T", 1))
	if diff := cmp.Diff([]int64{0, 2, 1}, appends()); diff != "" {
		t.Fatalf("appends per node after the election (-want +got):\n%s", diff)
	}
	if c.Nodes[1].NotLeaderAnswers() != 1 {
		t.Fatalf("the former leader answered not-leader %d times", c.Nodes[1].NotLeaderAnswers())
	}
	// Reads follow the leader too.
	got, err := s.ReadStream(ctxT(t, 5*time.Second), "cluster-1", eventlog.Forwards, 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("%d events, %v", len(got), err)
	}

	// A subscription dropped by a node that lost the leadership moves to
	// the new leader and goes on where it was.
	sub, err := s.Subscribe(ctxT(t, 20*time.Second), 0, eventlog.Filter{StreamPrefixes: []string{"cluster-"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if diff := cmp.Diff(ids(got), ids(collect(t, sub, 2))); diff != "" {
		t.Fatalf("history (-want +got):\n%s", diff)
	}
	c.Elect(0)
	if n := c.Nodes[2].DropSubscriptions(); n != 1 {
		t.Fatalf("%d subscriptions on the former leader", n)
	}
	later := ev("T", 2)
	mustAppend(t, s, "cluster-1", eventlog.Revision(1), later)
	if e := collect(t, sub, 1)[0]; e.ID != later.ID {
		t.Fatalf("after the drop: %s@%d", e.StreamID, e.Revision)
	}
	if c.Nodes[0].Subscribes() != 1 {
		t.Fatalf("the new leader served %d subscriptions", c.Nodes[0].Subscribes())
	}
}

// TestFollowerPreference: with nodePreference=follower the adapter sends
// no requires-leader, and a follower takes the writes (a real one forwards
// them to the leader).
func TestFollowerPreference(t *testing.T) {
	c := kurrenttest.StartCluster(t, 3, kurrenttest.Options{})
	s := open(t, c.URL()+"&nodePreference=follower", testOpts)
	mustAppend(t, s, "follow-1", eventlog.NoStream(), ev("T", 0))
	if c.Nodes[0].Appends() != 0 {
		t.Fatal("the leader took the write")
	}
	for _, n := range c.Nodes {
		if n.NotLeaderAnswers() != 0 {
			t.Fatal("a node answered not-leader")
		}
	}
}

// TestKeepaliveAcceptedByAnEnforcingServer keeps a connection idle, asking
// for pings every second, against a node that enforces a ping policy (no
// pings less than 9 s apart): the client pings, at 10 s intervals (the
// adapter raises the interval to grpc's floor), and the node keeps the
// connection.
func TestKeepaliveAcceptedByAnEnforcingServer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 21 s")
	}
	t.Parallel()
	srv := kurrenttest.StartWith(t, kurrenttest.Options{KeepaliveMinTime: 9 * time.Second})
	s := open(t, srv.URL()+"&keepAliveInterval=1000&keepAliveTimeout=5000", testOpts)
	mustAppend(t, s, "idle-1", eventlog.NoStream(), ev("T", 0))
	idle := time.Now().Add(time.Second) // after any bandwidth probe of the first call
	time.Sleep(21 * time.Second)
	var pings []time.Time
	for _, p := range srv.Pings() {
		if p.After(idle) {
			pings = append(pings, p)
		}
	}
	if len(pings) == 0 || len(pings) > 2 {
		t.Fatalf("%d keepalive pings in 20 s idle, want 1 or 2 (every 10 s)", len(pings))
	}
	for i := 1; i < len(pings); i++ {
		if d := pings[i].Sub(pings[i-1]); d < 9*time.Second {
			t.Fatalf("pings %v apart", d)
		}
	}
	mustAppend(t, s, "idle-1", eventlog.Revision(0), ev("T", 1))
	if srv.Connections() != 1 {
		t.Fatalf("%d connections: the node sent the client away", srv.Connections())
	}
}

// TestElectionsAreWaitedOut: during an election every node answers calls
// needing the leader with "No leader info available" (status Unknown, no
// leader named). Appends, reads, Head and a subscription started during it
// wait it out within their deadline and go on with the new leader; the
// appends land there once.
func TestElectionsAreWaitedOut(t *testing.T) {
	c := kurrenttest.StartCluster(t, 3, kurrenttest.Options{})
	s := open(t, c.URL(), testOpts)
	first := mustAppend(t, s, "election-1", eventlog.NoStream(), ev("T", 0))
	c.Elect(-1)
	time.AfterFunc(700*time.Millisecond, func() { c.Elect(2) })
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i, call := range []func(ctx context.Context) error{
		func(ctx context.Context) error {
			_, err := s.Append(ctx, "election-1", eventlog.Revision(0), ev("T", 1))
			return err
		},
		func(ctx context.Context) error {
			_, err := s.Append(ctx, "election-2", eventlog.Any(), ev("T", 2))
			return err
		},
		func(ctx context.Context) error {
			_, err := s.ReadStream(ctx, "election-1", eventlog.Forwards, 0, 10)
			return err
		},
		func(ctx context.Context) error { _, err := s.ReadAll(ctx, 0, 10); return err },
		func(ctx context.Context) error { _, err := s.Head(ctx); return err },
		func(ctx context.Context) error {
			sub, err := s.Subscribe(ctx, first.Position, eventlog.Filter{StreamPrefixes: []string{"election-"}})
			if err != nil {
				return err
			}
			defer sub.Close()
			_, err = sub.Next(ctx)
			return err
		},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := call(ctxT(t, 5*time.Second)); err != nil {
				errs <- fmt.Errorf("call %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var noLeader int64
	for _, n := range c.Nodes {
		noLeader += n.NoLeaderAnswers()
	}
	t.Logf("the calls waited %v; %d no-leader answers", time.Since(start).Round(time.Millisecond), noLeader)
	if noLeader == 0 {
		t.Fatal("no call met the election")
	}
	for st, want := range map[string]int{"election-1": 2, "election-2": 1} {
		got, err := s.ReadStream(ctxT(t, 5*time.Second), st, eventlog.Forwards, 0, 10)
		if err != nil || len(got) != want {
			t.Fatalf("%s: %d events, want %d; %v", st, len(got), want, err)
		}
	}
}

// TestUnknownOutcomes: a call answered with status Unknown may or may not
// have happened. Reads are retried; an append is retried when a retry is
// idempotent (an exact revision or no_stream: the server recognises it; any
// or stream_exists: the adapter checks the stream's last events again
// first), and lands once.
func TestUnknownOutcomes(t *testing.T) {
	srv := kurrenttest.Start(t)
	s := open(t, srv.URL(), testOpts)
	for i, exp := range []eventlog.ExpectedVersion{eventlog.NoStream(), eventlog.Revision(0), eventlog.Any(), eventlog.StreamExists()} {
		srv.AnswerUnknown(1) // written, then answered Unknown
		e := ev("T", i)
		r, err := s.Append(ctxT(t, 5*time.Second), "unknown-1", exp, e)
		if err != nil {
			t.Fatalf("%s: %v", exp, err)
		}
		if r.NextRevision != uint64(i) {
			t.Fatalf("%s: revision %d, want %d", exp, r.NextRevision, i)
		}
	}
	srv.AnswerUnknown(1)
	got, err := s.ReadStream(ctxT(t, 5*time.Second), "unknown-1", eventlog.Forwards, 0, 10)
	if err != nil || len(got) != 4 {
		t.Fatalf("%d events (want each append once), %v", len(got), err)
	}
	srv.AnswerUnknown(1)
	if _, err := s.ReadAll(ctxT(t, 5*time.Second), 0, 10); err != nil {
		t.Fatal(err)
	}
}

// TestConformanceOverTLSWithCredentials runs the conformance suite over TLS
// (a self-signed certificate for the loopback address, trusted through
// tlsCAFile) with a user's credentials, which the node checks on every
// call.
func TestConformanceOverTLSWithCredentials(t *testing.T) {
	storetest.Run(t, storetest.Config{New: func(t *testing.T) eventlog.Store {
		srv := kurrenttest.StartWith(t, kurrenttest.Options{TLS: true, Users: map[string]string{"admin": "changeit"}})
		s, err := Open(context.Background(), srv.URLAs("admin", "changeit"), testOpts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
}

// TestRefusedConnections: a wrong password, no credentials, and a
// certificate the client does not trust are ErrUnavailable within the
// deadline, and the error names no credentials.
func TestRefusedConnections(t *testing.T) {
	srv := kurrenttest.StartWith(t, kurrenttest.Options{TLS: true, Users: map[string]string{"admin": "changeit"}})
	tests := []struct{ name, url string }{
		{"wrong password", srv.URLAs("admin", "s3cr3t-wrong")},
		{"no credentials", srv.URL()},
		{"an untrusted certificate", "esdb://admin:changeit@" + srv.Addr() + "?maxDiscoverAttempts=1&discoveryInterval=10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, tt.url, Options{Timeout: 2 * time.Second})
			start := time.Now()
			_, err := s.Append(context.Background(), "refused-1", eventlog.NoStream(), ev("T", 0))
			if !errors.Is(err, eventlog.ErrUnavailable) || time.Since(start) > 3*time.Second {
				t.Fatalf("after %v: %v, want ErrUnavailable", time.Since(start), err)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "changeit") {
				t.Fatalf("the error names the credentials: %v", err)
			}
		})
	}
}
