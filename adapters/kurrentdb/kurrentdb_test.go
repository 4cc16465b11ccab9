package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/storetest"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func TestMain(m *testing.M) {
	kurrenttest.LeakCheckedMain(m)
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
