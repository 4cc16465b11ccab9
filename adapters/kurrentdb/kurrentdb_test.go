package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/storetest"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testOpts are short enough for tests, long enough for -race on 2 cores.
var testOpts = Options{Timeout: 5 * time.Second, MaxBackoff: 200 * time.Millisecond}

func open(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func ev(typ string, i int) eventlog.EventData {
	return eventlog.EventData{ID: uuid.New(), Type: typ, Data: []byte(fmt.Sprintf(`{"i":%d}`, i)),
		Metadata: eventlog.Metadata{OccurredAt: time.Now().UTC(), ActorID: "tester"}}
}

func mustAppend(t testing.TB, s *Store, stream string, exp eventlog.ExpectedVersion, evs ...eventlog.EventData) eventlog.AppendResult {
	t.Helper()
	r, err := s.Append(ctxT(t, 10*time.Second), stream, exp, evs...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return r
}

// TestConformanceAgainstTheTestServer runs the port's conformance suite
// through the real v4 client against the protocol test server, a fresh
// node for each subtest.
func TestConformanceAgainstTheTestServer(t *testing.T) {
	storetest.Run(t, storetest.Config{New: func(t *testing.T) eventlog.Store {
		s, err := Open(context.Background(), kurrenttest.Start(t).URL(), testOpts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
}

// TestConformanceAgainstASharedCluster runs the suite again with every
// subtest on one three-node cluster, found by gossip, as a real deployment
// shares one: the log holds the other subtests' events, and writes go to
// the leader.
func TestConformanceAgainstASharedCluster(t *testing.T) {
	c := kurrenttest.StartCluster(t, 3, kurrenttest.Options{})
	c.Elect(2)
	storetest.Run(t, storetest.Config{New: func(t *testing.T) eventlog.Store {
		s, err := Open(context.Background(), c.URL(), testOpts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
	for i, n := range c.Nodes[:2] {
		if n.Appends() != 0 {
			t.Errorf("follower %d took %d appends", i, n.Appends())
		}
	}
}

// TestConformanceAgainstARealServer runs the suite against a real KurrentDB
// when BUURTSIGNAAL_KURRENTDB_URL is set (scripts/kurrentdb-up.sh starts
// one and prints it); with BUURTSIGNAAL_REQUIRE_KURRENTDB=1 a missing URL
// fails instead of skipping. The suite's stream names are unique, so the
// subtests share the server.
func TestConformanceAgainstARealServer(t *testing.T) {
	url := os.Getenv("BUURTSIGNAAL_KURRENTDB_URL")
	if url == "" {
		if os.Getenv("BUURTSIGNAAL_REQUIRE_KURRENTDB") == "1" {
			t.Fatal("BUURTSIGNAAL_REQUIRE_KURRENTDB=1 but BUURTSIGNAAL_KURRENTDB_URL is not set")
		}
		t.Skip("set BUURTSIGNAAL_KURRENTDB_URL to run the suite against a real KurrentDB")
	}
	storetest.Run(t, storetest.Config{New: func(t *testing.T) eventlog.Store {
		s, err := Open(context.Background(), url, Options{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
}

func TestParseConn(t *testing.T) {
	tests := []struct {
		name     string
		conn     string
		address  string
		seeds    int
		dns      bool
		noTLS    bool
		user     string
		pref     esdb.NodePreference
		interval time.Duration
		timeout  time.Duration
	}{
		{"kurrentdb", "kurrentdb://127.0.0.1:2113?tls=false", "127.0.0.1:2113", 0, false, true, "", esdb.NodePreferenceLeader, 10 * time.Second, 10 * time.Second},
		{"kurrent, upper case scheme", "KURRENT://127.0.0.1:2113?tls=false", "127.0.0.1:2113", 0, false, true, "", esdb.NodePreferenceLeader, 10 * time.Second, 10 * time.Second},
		{"esdb with TLS and credentials", "esdb://admin:changeit@db.example:2113", "db.example:2113", 0, false, false, "admin", esdb.NodePreferenceLeader, 10 * time.Second, 10 * time.Second},
		{"gossip seeds", "kurrentdb://a:2111,b:2112,c:2113?tls=false", "", 3, false, true, "", esdb.NodePreferenceLeader, 10 * time.Second, 10 * time.Second},
		{"dns discovery", "kurrentdb+discover://cluster.example:2113", "cluster.example:2113", 0, true, false, "", esdb.NodePreferenceLeader, 10 * time.Second, 10 * time.Second},
		{"esdb+discover", "esdb+discover://cluster.example:2113", "cluster.example:2113", 0, true, false, "", esdb.NodePreferenceLeader, 10 * time.Second, 10 * time.Second},
		{"explicit follower preference", "esdb://127.0.0.1:2113?tls=false&nodePreference=follower", "127.0.0.1:2113", 0, false, true, "", esdb.NodePreferenceFollower, 10 * time.Second, 10 * time.Second},
		{"keepalive below grpc's floor is raised", "esdb://127.0.0.1:2113?keepAliveInterval=1000&keepAliveTimeout=0", "127.0.0.1:2113", 0, false, false, "", esdb.NodePreferenceLeader, 10 * time.Second, 10 * time.Second},
		{"longer keepalive kept", "esdb://127.0.0.1:2113?keepAliveInterval=60000&keepAliveTimeout=20000", "127.0.0.1:2113", 0, false, false, "", esdb.NodePreferenceLeader, time.Minute, 20 * time.Second},
		{"keepalive disabled kept", "esdb://127.0.0.1:2113?keepAliveInterval=-1", "127.0.0.1:2113", 0, false, false, "", esdb.NodePreferenceLeader, -1, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := kurrentconn.Parse(tt.conn)
			if err != nil {
				t.Fatal(err)
			}
			got := []any{cfg.Address, len(cfg.GossipSeeds), cfg.DnsDiscover, cfg.DisableTLS, cfg.Username, cfg.NodePreference, cfg.KeepAliveInterval, cfg.KeepAliveTimeout}
			want := []any{tt.address, tt.seeds, tt.dns, tt.noTLS, tt.user, tt.pref, tt.interval, tt.timeout}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("address, seeds, dns, no TLS, user, preference, keepalive interval, timeout (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"", "http://127.0.0.1:2113", "kurrentdb://user:s3cr3t@[bad", "kurrentdb://user:s3cr3t@host:port?tls=false"} {
		if _, err := kurrentconn.Parse(bad); err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%q: err = %v, want an error that does not quote the string", bad, err)
		}
	}
}

func TestOpenTimeouts(t *testing.T) {
	tests := []struct {
		name string
		conn string
		opts Options
		want time.Duration
	}{
		{"default", "esdb://127.0.0.1:2113?tls=false", Options{}, 10 * time.Second},
		{"the connection string's defaultDeadline", "esdb://127.0.0.1:2113?tls=false&defaultDeadline=2500", Options{}, 2500 * time.Millisecond},
		{"the option wins", "esdb://127.0.0.1:2113?tls=false&defaultDeadline=2500", Options{Timeout: time.Second}, time.Second},
	}
	for _, tt := range tests {
		s := open(t, tt.conn, tt.opts)
		// The client's own deadline comes after the call's, whose context
		// then always reports the timeout.
		got := []time.Duration{s.opts.Timeout, *s.c.Config().DefaultDeadline}
		if diff := cmp.Diff([]time.Duration{tt.want, tt.want + time.Second}, got); diff != "" {
			t.Errorf("%s: timeout, client deadline (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestSubscribeOptionsPutOneFilterOnTheServer(t *testing.T) {
	tests := []struct {
		name   string
		filter eventlog.Filter
		want   esdb.SubscriptionFilter
	}{
		{"none: no system events", eventlog.Filter{}, *esdb.ExcludeSystemEventsFilter()},
		{"stream prefixes", eventlog.Filter{StreamPrefixes: []string{"signal-", "org-"}}, esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"signal-", "org-"}}},
		{"event types, exactly", eventlog.Filter{EventTypes: []string{"SignalRaised", "a.b"}}, esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: `^(?:SignalRaised|a\.b)$`}},
		{"both: prefixes on the server", eventlog.Filter{StreamPrefixes: []string{"signal-"}, EventTypes: []string{"SignalRaised"}}, esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"signal-"}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, *subscribeOptions(tt.filter).Filter); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// clientErrors makes real errors of the v4 client against test servers.
func clientErrors(t *testing.T) map[string]error {
	srv := kurrenttest.Start(t)
	raw := rawClient(t, srv.URL())
	ctx := ctxT(t, 10*time.Second)
	out := map[string]error{}
	evd := esdb.EventData{EventID: uuid.New(), EventType: "T", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
	_, out["wrong expected version"] = raw.AppendToStream(ctx, "c-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(5)}, evd)
	if _, err := raw.TombstoneStream(ctx, "c-2", esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	_, out["stream deleted"] = raw.AppendToStream(ctx, "c-2", esdb.AppendToStreamOptions{}, evd)
	rs, err := raw.ReadStream(ctx, "c-3", esdb.ReadStreamOptions{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, out["stream not found"] = rs.Recv()
	rs.Close()
	srv.AnswerNotLeader(1)
	_, out["not leader"] = raw.AppendToStream(ctx, "c-4", esdb.AppendToStreamOptions{}, evd)
	// Let the client finish reconnecting before it is closed: it leaks the
	// new connection if closing interrupts that.
	if _, err := raw.AppendToStream(ctx, "c-4", esdb.AppendToStreamOptions{}, evd); err != nil {
		t.Fatal(err)
	}
	closed := rawClient(t, srv.URL())
	_ = closed.Close()
	_, out["closed client"] = closed.AppendToStream(ctx, "c-5", esdb.AppendToStreamOptions{}, evd)
	gone := kurrenttest.Start(t)
	goneClient := rawClient(t, gone.URL())
	if _, err := goneClient.AppendToStream(ctx, "c-6", esdb.AppendToStreamOptions{}, evd); err != nil {
		t.Fatal(err)
	}
	gone.Stop()
	_, out["node gone"] = goneClient.AppendToStream(ctx, "c-6", esdb.AppendToStreamOptions{}, evd)
	return out
}

func TestClassify(t *testing.T) {
	real := clientErrors(t)
	grpcErr := func(c codes.Code, msg string) error { return status.Error(c, msg) }
	tests := []struct {
		name    string
		err     error
		want    *domain.Error
		retry   bool
		replace bool
	}{
		{"wrong expected version", real["wrong expected version"], eventlog.ErrWrongExpectedVersion, false, false},
		{"stream deleted", real["stream deleted"], eventlog.ErrStreamDeleted, false, false},
		{"stream not found", real["stream not found"], eventlog.ErrStreamNotFound, false, false},
		{"not leader", real["not leader"], eventlog.ErrUnavailable, true, false},
		{"closed client", real["closed client"], eventlog.ErrUnavailable, true, true},
		{"node gone", real["node gone"], eventlog.ErrUnavailable, true, true},
		{"a client error wrapped", fmt.Errorf("context: %w", real["wrong expected version"]), eventlog.ErrWrongExpectedVersion, false, false},
		{"raw grpc unavailable (a dropped subscription)", grpcErr(codes.Unavailable, "Server Is Not Ready"), eventlog.ErrUnavailable, true, false},
		{"maximum append size", fmt.Errorf("x: %w", grpcErr(codes.InvalidArgument, "Maximum Append Size of 1048576 Exceeded.")), eventlog.ErrAppendTooLarge, false, false},
		{"maximum append event size", grpcErr(codes.InvalidArgument, "Event with Id: x and Size: 9 exceeds Maximum Append Event Size of 8."), eventlog.ErrEventTooLarge, false, false},
		{"access denied", grpcErr(codes.PermissionDenied, "Access Denied"), eventlog.ErrUnavailable, false, false},
		{"an append ended before it was sent (EOF)", fmt.Errorf("could not send append request. Reason: %w", io.EOF), eventlog.ErrUnavailable, true, true},
		{"unknown", errors.New("boom"), eventlog.ErrUnavailable, false, false},
		{"no leader info (an election)", grpcErr(codes.Unknown, "No leader info available in response"), eventlog.ErrUnavailable, true, true},
		{"status unknown: retried only when idempotent", grpcErr(codes.Unknown, "Unexpected error"), eventlog.ErrUnavailable, false, false},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: the client returned no error", tt.name)
			continue
		}
		f := classify(tt.err)
		if !errors.Is(f.err, tt.want) || domain.KindOf(f.err) != tt.want.Kind || f.retry != tt.retry || f.replace != tt.replace {
			t.Errorf("%s: %v (retry %v, replace %v), want %v (retry %v, replace %v)", tt.name, f.err, f.retry, f.replace, tt.want, tt.retry, tt.replace)
		}
		if !errors.Is(f.err, tt.err) {
			t.Errorf("%s: the cause is lost: %v", tt.name, f.err)
		}
	}
}

func TestEndsOfSubscriptions(t *testing.T) {
	srv := kurrenttest.Start(t)
	tests := []struct {
		name string
		end  func(s *Store, sub eventlog.Subscription, cancel context.CancelFunc)
		want error
	}{
		{"Close", func(_ *Store, sub eventlog.Subscription, _ context.CancelFunc) { _ = sub.Close() }, context.Canceled},
		{"the Subscribe context", func(_ *Store, _ eventlog.Subscription, cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"the store's Close", func(s *Store, _ eventlog.Subscription, _ context.CancelFunc) { _ = s.Close() }, eventlog.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, srv.URL(), testOpts)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sub, err := s.Subscribe(ctx, 0, eventlog.Filter{StreamPrefixes: []string{"none-"}})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			time.Sleep(50 * time.Millisecond)
			tt.end(s, sub, cancel)
			if _, err := sub.Next(ctxT(t, 10*time.Second)); !errors.Is(err, tt.want) {
				t.Fatalf("Next = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestClosedStore(t *testing.T) {
	s := open(t, kurrenttest.Start(t).URL(), testOpts)
	mustAppend(t, s, "closed-1", eventlog.NoStream(), ev("T", 0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 5*time.Second)
	_, errAppend := s.Append(ctx, "closed-1", eventlog.Any(), ev("T", 1))
	_, errRead := s.ReadStream(ctx, "closed-1", eventlog.Forwards, 0, 10)
	_, errAll := s.ReadAll(ctx, 0, 10)
	_, errHead := s.Head(ctx)
	_, errSub := s.Subscribe(ctx, 0, eventlog.Filter{})
	for i, err := range []error{errAppend, errRead, errAll, errHead, errSub} {
		if !errors.Is(err, eventlog.ErrClosed) {
			t.Errorf("call %d after Close: %v, want ErrClosed", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// collect reads n events from a subscription.
func collect(t *testing.T, sub eventlog.Subscription, n int) []eventlog.RecordedEvent {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	var out []eventlog.RecordedEvent
	for len(out) < n {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, e)
	}
	return out
}

// TestSubscriptionSurvivesDrops drops the server side of the subscription
// (a raw gRPC Unavailable) again and again, with events appended before and
// while it is down; Next delivers every event once, in order, and the
// adapter resubscribed each time.
func TestSubscriptionSurvivesDrops(t *testing.T) {
	srv := kurrenttest.Start(t)
	s := open(t, srv.URL(), testOpts)
	ctx := ctxT(t, 30*time.Second)
	sub, err := s.Subscribe(ctx, 0, eventlog.Filter{StreamPrefixes: []string{"drop-"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const rounds, each = 5, 6
	var want []uuid.UUID
	var got []eventlog.RecordedEvent
	for r := 0; r < rounds; r++ {
		for i := 0; i < each; i++ {
			if i == each/2 {
				// Drop the live subscription (wait until there is one).
				for srv.DropSubscriptions() == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			e := ev("T", i)
			want = append(want, e.ID)
			mustAppend(t, s, fmt.Sprintf("drop-%d", i%3), eventlog.Any(), e)
		}
		got = append(got, collect(t, sub, each)...)
	}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Fatalf("position %d after %d", got[i].Position, got[i-1].Position)
		}
	}
	if n := srv.Subscribes(); n != rounds+1 {
		t.Fatalf("%d subscription requests, want %d", n, rounds+1)
	}
	ctx2, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if e, err := sub.Next(ctx2); err == nil {
		t.Fatalf("a duplicate after the drops: %s", e.StreamID)
	}
}

func ids(evs []eventlog.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// TestSubscriptionRetriesUntilTheServerAccepts: a node that refuses
// subscriptions for a while (Unavailable, or access denied: a password
// rotation, an ACL being changed) is retried with backoff; an invalid
// argument ends the subscription with an error.
func TestSubscriptionRetriesUntilTheServerAccepts(t *testing.T) {
	tests := []struct {
		name     string
		code     codes.Code
		refusals int
		wantKind domain.Kind // 0: the events arrive
	}{
		{"unavailable, then accepted", codes.Unavailable, 4, 0},
		{"access denied, then accepted", codes.PermissionDenied, 3, 0},
		{"invalid argument", codes.InvalidArgument, 1, domain.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := kurrenttest.Start(t)
			s := open(t, srv.URL(), testOpts)
			mustAppend(t, s, "retry-1", eventlog.NoStream(), ev("T", 0))
			srv.FailSubscriptions(tt.refusals, tt.code)
			sub, err := s.Subscribe(ctxT(t, 30*time.Second), 0, eventlog.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			e, err := sub.Next(ctxT(t, 20*time.Second))
			if tt.wantKind == 0 {
				if err != nil || e.StreamID != "retry-1" {
					t.Fatalf("Next = %+v, %v", e, err)
				}
				if got := srv.Subscribes(); got != int64(tt.refusals+1) {
					t.Fatalf("%d subscription requests, want %d", got, tt.refusals+1)
				}
				return
			}
			if err == nil || domain.KindOf(err) != tt.wantKind {
				t.Fatalf("Next = %+v, %v; want a %v error", e, err, tt.wantKind)
			}
		})
	}
}

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

// TestPartialOverlapWithANewFirstID: KurrentDB decides an any/stream_exists
// retry by its first id only, and writes a batch whose first id is new even
// when a later one is stored; the adapter makes that a conflict, as the
// port says.
func TestPartialOverlapWithANewFirstID(t *testing.T) {
	srv := kurrenttest.Start(t)
	s := open(t, srv.URL(), testOpts)
	stored := ev("T", 0)
	mustAppend(t, s, "overlap-1", eventlog.NoStream(), stored, ev("T", 1))
	for _, exp := range []eventlog.ExpectedVersion{eventlog.Any(), eventlog.StreamExists()} {
		_, err := s.Append(ctxT(t, 5*time.Second), "overlap-1", exp, ev("T", 2), stored)
		if !errors.Is(err, eventlog.ErrWrongExpectedVersion) || domain.KindOf(err) != domain.KindConflict {
			t.Fatalf("%s: %v, want a conflict", exp, err)
		}
	}
	got, err := s.ReadStream(ctxT(t, 5*time.Second), "overlap-1", eventlog.Forwards, 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("%d events, %v", len(got), err)
	}
	// What the server alone does (and why the adapter checks).
	raw := rawClient(t, srv.URL())
	_, err = raw.AppendToStream(ctxT(t, 5*time.Second), "overlap-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}},
		esdb.EventData{EventID: uuid.New(), EventType: "T", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)},
		esdb.EventData{EventID: stored.ID, EventType: "T", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
	if err != nil {
		t.Fatalf("the server refused it too: %v", err)
	}
}

func rawClient(t testing.TB, url string) *esdb.Client {
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
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestIdempotentAnyRetryAnswersTheFirstResult covers the adapter's own
// recognition of any/stream_exists retries (the server's would do too).
func TestIdempotentRetries(t *testing.T) {
	s := open(t, kurrenttest.Start(t).URL(), testOpts)
	tests := []struct {
		name string
		exp  func(head uint64) eventlog.ExpectedVersion
	}{
		{"any", func(uint64) eventlog.ExpectedVersion { return eventlog.Any() }},
		{"stream exists", func(uint64) eventlog.ExpectedVersion { return eventlog.StreamExists() }},
		{"revision", eventlog.Revision},
	}
	for i, tt := range tests {
		st := fmt.Sprintf("idem-%d", i)
		mustAppend(t, s, st, eventlog.NoStream(), ev("T", 0))
		evs := []eventlog.EventData{ev("T", 1), ev("T", 2)}
		first := mustAppend(t, s, st, tt.exp(0), evs...)
		mustAppend(t, s, st, eventlog.Any(), ev("T", 3)) // the stream moves on
		again := mustAppend(t, s, st, tt.exp(0), evs...)
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("%s: retry (-first +retry):\n%s", tt.name, diff)
		}
		got, _ := s.ReadStream(ctxT(t, 5*time.Second), st, eventlog.Forwards, 0, 10)
		if len(got) != 4 {
			t.Errorf("%s: %d events, want 4", tt.name, len(got))
		}
	}
}

// TestSystemEventsAreSkipped: stream metadata, soft deletes and tombstones
// put system events in $all (and a fresh node starts with some); ReadAll,
// Head and subscriptions skip them.
func TestSystemEventsAreSkipped(t *testing.T) {
	srv := kurrenttest.Start(t)
	s := open(t, srv.URL(), testOpts)
	ctx := ctxT(t, 20*time.Second)
	if head, err := s.Head(ctx); err != nil || head != 0 {
		t.Fatalf("head of a log with only system events: %d, %v", head, err)
	}
	var want []uuid.UUID
	for i := 0; i < 5; i++ {
		e := ev("T", i)
		want = append(want, e.ID)
		mustAppend(t, s, fmt.Sprintf("sys-%d", i), eventlog.NoStream(), e)
	}
	last := mustAppend(t, s, "sys-keep", eventlog.NoStream(), ev("T", 9))
	want = append(want, uuid.Nil) // placeholder for the last one
	raw := rawClient(t, srv.URL())
	for i := 0; i < 40; i++ {
		if _, err := raw.SetStreamMetadata(ctx, "sys-0", esdb.AppendToStreamOptions{}, esdb.StreamMetadata{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.DeleteStream(ctx, "sys-1", esdb.DeleteStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.TombstoneStream(ctx, "sys-2", esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	head, err := s.Head(ctx)
	if err != nil || head != last.Position {
		t.Fatalf("head %d, %v; want the last user event at %d", head, err, last.Position)
	}
	all, err := s.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := ids(all)
	want[len(want)-1] = got[len(got)-1]
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("read all (-want +got):\n%s", diff)
	}
	for limit := 1; limit <= 3; limit++ {
		var paged []uuid.UUID
		for after := uint64(0); ; {
			page, err := s.ReadAll(ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, ids(page)...)
			after = page[len(page)-1].Position
		}
		if diff := cmp.Diff(got, paged); diff != "" {
			t.Fatalf("paged by %d (-want +got):\n%s", limit, diff)
		}
	}
	sub, err := s.Subscribe(ctx, 0, eventlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if diff := cmp.Diff(got, ids(collect(t, sub, len(got)))); diff != "" {
		t.Fatalf("subscription (-want +got):\n%s", diff)
	}
	if _, err := s.Append(ctx, "sys-2", eventlog.Any(), ev("T", 0)); !errors.Is(err, eventlog.ErrStreamDeleted) {
		t.Fatalf("append to a tombstoned stream: %v", err)
	}
	if _, err := s.ReadStream(ctx, "sys-2", eventlog.Forwards, 0, 1); !errors.Is(err, eventlog.ErrStreamDeleted) {
		t.Fatalf("read of a tombstoned stream: %v", err)
	}
	for _, from := range []uint64{0, eventlog.End} {
		if _, err := s.ReadStream(ctx, "sys-1", eventlog.Forwards, from, 1); !errors.Is(err, eventlog.ErrStreamNotFound) {
			t.Fatalf("read of a deleted stream from %d: %v", from, err)
		}
	}
}

// TestEventTypeFilters: a filter on event types alone is exact on the
// server; with stream prefixes as well, the types are checked here.
func TestEventTypeFilters(t *testing.T) {
	s := open(t, kurrenttest.Start(t).URL(), testOpts)
	var want []uuid.UUID
	for i, typ := range []string{"A", "AB", "B", "A.x", "AxX"} {
		e := ev(typ, i)
		if typ == "A" || typ == "A.x" {
			want = append(want, e.ID)
		}
		mustAppend(t, s, fmt.Sprintf("types-%d", i), eventlog.NoStream(), e)
	}
	for _, f := range []eventlog.Filter{{EventTypes: []string{"A", "A.x"}}, {StreamPrefixes: []string{"types-"}, EventTypes: []string{"A", "A.x"}}} {
		sub, err := s.Subscribe(ctxT(t, 10*time.Second), 0, f)
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, sub, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		extra, err := sub.Next(ctx)
		cancel()
		sub.Close()
		if err == nil {
			t.Fatalf("%+v: unexpected %s", f, extra.Type)
		}
		if diff := cmp.Diff(want, ids(got)); diff != "" {
			t.Fatalf("%+v (-want +got):\n%s", f, diff)
		}
	}
}

// TestMaximumAppendSize: an append the server's maximum append size
// refuses (a server configured below the default) is ErrAppendTooLarge,
// both when the client has sent every event before the refusal comes (small
// events) and when the server ends the append while the client is still
// sending (events over grpc's flow-control window: the client then reports
// only an EOF, not the server's status).
func TestMaximumAppendSize(t *testing.T) {
	tests := []struct {
		name       string
		max, event int
	}{
		{"sent before the refusal", 4096, 3000},
		{"refused while sending", 256 << 10, 100 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := kurrenttest.StartWith(t, kurrenttest.Options{MaxAppendSize: tt.max})
			s := open(t, srv.URL(), testOpts)
			big := func() eventlog.EventData {
				e := ev("T", 0)
				e.Data = []byte(`"` + strings.Repeat("x", tt.event) + `"`)
				return e
			}
			evs := []eventlog.EventData{big(), big(), big()}
			_, err := s.Append(ctxT(t, 5*time.Second), "big-1", eventlog.NoStream(), evs...)
			if !errors.Is(err, eventlog.ErrAppendTooLarge) || domain.KindOf(err) != domain.KindTooLarge {
				t.Fatalf("err = %v, want too large", err)
			}
			mustAppend(t, s, "big-1", eventlog.NoStream(), evs[:tt.max/(tt.event+512)]...) // as many as fit
		})
	}
}

func TestMetadataAndRecordedAt(t *testing.T) {
	s := open(t, kurrenttest.Start(t).URL(), testOpts)
	e := ev("Happened", 1)
	e.Metadata = eventlog.Metadata{OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), ActorID: "a", ActorRole: "r",
		OnBehalfOf: "b", CorrelationID: "c", CausationID: "d", RequestID: "e", Network: "n", SchemaVersion: 2}
	before := time.Now()
	r := mustAppend(t, s, "meta-1", eventlog.NoStream(), e)
	got, err := s.ReadStream(ctxT(t, 5*time.Second), "meta-1", eventlog.Backwards, eventlog.End, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("%d events, %v", len(got), err)
	}
	want := eventlog.RecordedEvent{StreamID: "meta-1", Position: r.Position, ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
	if diff := cmp.Diff(want, got[0], cmpopts.IgnoreFields(eventlog.RecordedEvent{}, "RecordedAt")); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if at := got[0].RecordedAt; at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("recorded at %v, appended at %v", at, before)
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

// TestLegacyTransactionsAreDeliveredWhole: the events of a legacy explicit
// transaction (a log written by old TCP clients) share one commit position
// and differ in their prepare positions. ReadAll and a subscription deliver
// each of them, also when the subscription is resumed in the middle of the
// transaction, since the adapter compares whole (commit, prepare)
// positions; the port's position of each is the commit position.
func TestLegacyTransactionsAreDeliveredWhole(t *testing.T) {
	srv := kurrenttest.Start(t)
	s := open(t, srv.URL(), testOpts)
	first := ev("T", 0)
	mustAppend(t, s, "legacy-0", eventlog.NoStream(), first)
	tx := srv.WriteTransaction("legacy-1", 3)
	last := ev("T", 4)
	after := mustAppend(t, s, "legacy-2", eventlog.NoStream(), last)
	want := append(append([]uuid.UUID{first.ID}, tx...), last.ID)

	all, err := s.ReadAll(ctxT(t, 5*time.Second), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, ids(all)); diff != "" {
		t.Fatalf("read all (-want +got):\n%s", diff)
	}
	if all[1].Position != all[3].Position || all[1].Position >= after.Position {
		t.Fatalf("positions %d .. %d, %d", all[1].Position, all[3].Position, after.Position)
	}
	if head, err := s.Head(ctxT(t, 5*time.Second)); err != nil || head != after.Position {
		t.Fatalf("head %d, %v; want %d", head, err, after.Position)
	}
	// A subscription that the server cuts after the transaction's first
	// event resumes from the middle of it.
	srv.CutNextSubscription(2)
	sub, err := s.Subscribe(ctxT(t, 20*time.Second), 0, eventlog.Filter{StreamPrefixes: []string{"legacy-"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if diff := cmp.Diff(want, ids(collect(t, sub, len(want)))); diff != "" {
		t.Fatalf("subscription (-want +got):\n%s", diff)
	}
	if n := srv.Subscribes(); n != 2 {
		t.Fatalf("%d subscription requests, want 2", n)
	}
}

// TestALogThatWentBackwardsEndsTheSubscription: a subscription that
// resubscribes to a log restored from an older backup, or to another
// cluster behind the same address, and one that starts from a stored
// checkpoint that is not a position of the log, ends with ErrLogDiverged
// (logged as an error) instead of waiting for positions the log may never
// reach, or reading another log from a position that means nothing there.
func TestALogThatWentBackwardsEndsTheSubscription(t *testing.T) {
	tests := []struct {
		name string
		// change changes the log under a live subscription (nil: none);
		// from is the position to subscribe after.
		change func(srv *kurrenttest.Server, backup *kurrenttest.Snapshot)
		from   func(last uint64) uint64
	}{
		{"restored from an older backup", func(srv *kurrenttest.Server, b *kurrenttest.Snapshot) { srv.Restore(b) }, nil},
		{"restored, then written past where it was", func(srv *kurrenttest.Server, b *kurrenttest.Snapshot) {
			srv.Restore(b)
			raw := rawClient(t, srv.URL())
			for i := range 20 {
				if _, err := raw.AppendToStream(ctxT(t, 5*time.Second), fmt.Sprintf("later-%d", i), esdb.AppendToStreamOptions{},
					esdb.EventData{EventType: "T", ContentType: esdb.ContentTypeJson, Data: []byte(`{"later":true}`)}); err != nil {
					t.Error(err)
				}
			}
		}, nil},
		{"another cluster behind the address", func(srv *kurrenttest.Server, _ *kurrenttest.Snapshot) { srv.ReplaceLog() }, nil},
		{"a stored checkpoint past the log's end", nil, func(last uint64) uint64 { return last + 1000 }},
		{"a stored checkpoint that is no position of the log", nil, func(last uint64) uint64 { return last - 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := kurrenttest.Start(t)
			var logs strings.Builder
			var mu sync.Mutex
			opts := testOpts
			opts.Log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelError}))
			s := open(t, srv.URL(), opts)
			mustAppend(t, s, "back-1", eventlog.NoStream(), ev("T", 0))
			backup := srv.Snapshot()
			var last eventlog.AppendResult
			for i := 1; i < 6; i++ {
				last = mustAppend(t, s, "back-1", eventlog.Revision(uint64(i-1)), ev("T", i))
			}
			from := uint64(0)
			if tt.from != nil {
				from = tt.from(last.Position)
			}
			sub, err := s.Subscribe(ctxT(t, 20*time.Second), from, eventlog.Filter{StreamPrefixes: []string{"back-"}})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if tt.change != nil {
				collect(t, sub, 6)
				tt.change(srv, backup)
			}
			_, err = sub.Next(ctxT(t, 10*time.Second))
			if !errors.Is(err, eventlog.ErrLogDiverged) {
				t.Fatalf("Next = %v, want ErrLogDiverged", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(logs.String(), "level=ERROR") {
				t.Fatalf("nothing logged as an error:\n%s", logs.String())
			}
		})
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
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

// TestPasswordRotationDoesNotEndTheSubscription: the node's password is
// rotated under a live subscription, which the node then drops; while the
// replica's credentials are refused the subscription keeps trying (with
// backoff), and once they are accepted again it goes on where it was. So
// an access denied during a rotation does not stop projections for good.
func TestPasswordRotationDoesNotEndTheSubscription(t *testing.T) {
	srv := kurrenttest.StartWith(t, kurrenttest.Options{TLS: true, Users: map[string]string{"admin": "changeit"}})
	var logs strings.Builder
	var mu sync.Mutex
	opts := testOpts
	opts.Log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := open(t, srv.URLAs("admin", "changeit"), opts)
	mustAppend(t, s, "rotate-1", eventlog.NoStream(), ev("T", 0))
	sub, err := s.Subscribe(ctxT(t, 30*time.Second), 0, eventlog.Filter{StreamPrefixes: []string{"rotate-"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	collect(t, sub, 1)
	srv.SetPassword("admin", "rotated")
	for srv.DropSubscriptions() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// Another client, with the new password, writes meanwhile.
	other := open(t, srv.URLAs("admin", "rotated"), testOpts)
	later := ev("T", 1)
	mustAppend(t, other, "rotate-1", eventlog.Revision(0), later)
	for srv.RefusedCredentials() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.Append(ctxT(t, 5*time.Second), "rotate-2", eventlog.NoStream(), ev("T", 2)); !errors.Is(err, eventlog.ErrUnavailable) {
		t.Fatalf("an append with the old password: %v", err)
	}
	srv.SetPassword("admin", "changeit") // the rotation is rolled back (or the replica's credentials updated)
	if e := collect(t, sub, 1)[0]; e.ID != later.ID {
		t.Fatalf("after the rotation: %s@%d", e.StreamID, e.Revision)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "level=WARN msg=\"kurrentdb: the event store refused the subscription's credentials; retrying\"") {
		t.Fatalf("no warning about the refused credentials:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "changeit") || strings.Contains(logs.String(), "rotated") {
		t.Fatalf("a password is in the log:\n%s", logs.String())
	}
}

// TestResubscriptionBackoffResetsAfterASuccess: a subscription confirmed at
// the end of a quiet log hears nothing from a server that sends no
// caught-up message; when such a subscription has stayed up for a while, a
// drop is a first failure again: it resubscribes after the first backoff,
// not after the longest, however many drops came before.
func TestResubscriptionBackoffResetsAfterASuccess(t *testing.T) {
	srv := kurrenttest.StartWith(t, kurrenttest.Options{NoCaughtUp: true})
	opts := testOpts
	opts.MaxBackoff = 400 * time.Millisecond
	s := open(t, srv.URL(), opts)
	head := mustAppend(t, s, "quiet-1", eventlog.NoStream(), ev("T", 0))
	sub, err := s.Subscribe(ctxT(t, 30*time.Second), head.Position, eventlog.Filter{StreamPrefixes: []string{"quiet-"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var waits []time.Duration
	for i := 0; i < 6; i++ {
		for srv.Subscribes() != int64(i+1) {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(opts.MaxBackoff + 100*time.Millisecond) // a success: up longer than the longest wait
		for srv.DropSubscriptions() == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		dropped := time.Now()
		for srv.Subscribes() != int64(i+2) {
			time.Sleep(2 * time.Millisecond)
		}
		waits = append(waits, time.Since(dropped).Round(time.Millisecond))
	}
	t.Logf("resubscribed after %v", waits)
	for i, w := range waits {
		if w > 180*time.Millisecond { // the first wait is 25-75 ms; the longest 200-600 ms
			t.Fatalf("drop %d: resubscribed after %v: the backoff did not reset (%v)", i+1, w, waits)
		}
	}
	later := ev("T", 1)
	mustAppend(t, s, "quiet-1", eventlog.Revision(0), later)
	if e := collect(t, sub, 1)[0]; e.ID != later.ID {
		t.Fatalf("got %s@%d", e.StreamID, e.Revision)
	}
}

// TestWarningsAreRateLimitedDuringAnOutage: while the node is gone, calls
// and a subscription retry again and again, and the client logs a warning
// or an error for most tries. The adapter passes on the first of each kind
// and then at most one per LogEvery, with the number it left out.
func TestWarningsAreRateLimitedDuringAnOutage(t *testing.T) {
	srv := kurrenttest.Start(t)
	var logs strings.Builder
	var mu sync.Mutex
	opts := Options{Timeout: 500 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, LogEvery: time.Hour,
		Log: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	s := open(t, srv.URL()+"&maxDiscoverAttempts=1&discoveryInterval=10&gossipTimeout=1", opts)
	mustAppend(t, s, "outage-1", eventlog.NoStream(), ev("T", 0))
	sub, err := s.Subscribe(ctxT(t, 30*time.Second), 0, eventlog.Filter{StreamPrefixes: []string{"outage-"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	collect(t, sub, 1)
	srv.Stop()
	calls := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); calls++ {
		if _, err := s.Append(context.Background(), "outage-1", eventlog.Revision(0), ev("T", 1)); err == nil {
			t.Fatal("an append to a stopped node succeeded")
		}
	}
	_ = sub.Close()
	_ = s.Close()
	waitUnused(t, s)
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	t.Logf("%d calls in 3 s of outage: %d warning and error lines", calls, len(lines))
	seen := map[string]int{}
	digits := regexp.MustCompile(`[0-9]+`)
	for _, l := range lines {
		msg := l
		if i := strings.Index(l, "msg="); i >= 0 {
			msg = l[i:]
		}
		if i := strings.Index(msg, " suppressed="); i >= 0 {
			msg = msg[:i]
		}
		seen[digits.ReplaceAllString(msg, "#")]++ // ports and counts vary
	}
	for msg, n := range seen {
		if n > 1 {
			t.Errorf("%d lines of %s", n, msg)
		}
	}
}
