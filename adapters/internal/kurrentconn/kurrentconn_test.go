package kurrentconn_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
)

// TestMain checks that no goroutine outlives the tests (waiting for calls
// abandoned at their deadline to end).
func TestMain(m *testing.M) { kurrenttest.LeakCheckedMain(m) }

func TestParse(t *testing.T) {
	tests := []struct {
		name, conn string
		address    string
		seeds      int
		noTLS      bool
		interval   time.Duration
	}{
		{"kurrentdb", "kurrentdb://127.0.0.1:2113?tls=false", "127.0.0.1:2113", 0, true, 10 * time.Second},
		{"upper case esdb", "ESDB://127.0.0.1:2113", "127.0.0.1:2113", 0, false, 10 * time.Second},
		{"gossip seeds", "kurrent://a:2111,b:2112,c:2113?tls=false", "", 3, true, 10 * time.Second},
		{"keepalive raised to grpc's floor", "esdb://h:2113?keepAliveInterval=1000", "h:2113", 0, false, 10 * time.Second},
		{"longer keepalive kept", "esdb://h:2113?keepAliveInterval=60000", "h:2113", 0, false, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := kurrentconn.Parse(tt.conn)
			if err != nil {
				t.Fatal(err)
			}
			got := []any{cfg.Address, len(cfg.GossipSeeds), cfg.DisableTLS, cfg.KeepAliveInterval}
			if diff := cmp.Diff([]any{tt.address, tt.seeds, tt.noTLS, tt.interval}, got); diff != "" {
				t.Fatalf("address, seeds, no TLS, keepalive (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"", "http://h:2113", "kurrentdb://user:s3cr3t@[bad"} {
		if _, err := kurrentconn.Parse(bad); err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%q: %v, want an error that does not quote the string", bad, err)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, url string, opts kurrentconn.Options) *kurrentconn.Client {
	t.Helper()
	c, err := kurrentconn.Open(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func appendOne(ctx context.Context, c *kurrentconn.Client, stream string, exp esdb.ExpectedRevision) error {
	ev := esdb.EventData{EventID: uuid.New(), EventType: "Proef", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
	_, err := kurrentconn.Call(ctx, c, func(ctx context.Context, cl *esdb.Client) (*esdb.WriteResult, error) {
		return cl.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, ev)
	})
	return err
}

// A call is retried after not-leader answers, and errors are classified.
func TestCallRetriesAndClassifies(t *testing.T) {
	srv := kurrenttest.Start(t)
	c := open(t, srv.URL(), kurrentconn.Options{Timeout: 5 * time.Second})
	srv.AnswerNotLeader(2)
	if err := appendOne(ctxT(t), c, "proef-1", esdb.NoStream{}); err != nil {
		t.Fatalf("append after two not-leader answers: %v", err)
	}
	if srv.NotLeaderAnswers() != 2 {
		t.Fatalf("%d not-leader answers, want 2", srv.NotLeaderAnswers())
	}
	err := appendOne(ctxT(t), c, "proef-1", esdb.NoStream{})
	if f := kurrentconn.Classify(err); f.Code != kurrentconn.WrongExpectedVersion {
		t.Fatalf("append at no_stream to an existing stream: %v (%v)", f.Code, err)
	}
	_, err = kurrentconn.Call(ctxT(t), c, func(ctx context.Context, cl *esdb.Client) (*esdb.DeleteResult, error) {
		return cl.TombstoneStream(ctx, "proef-1", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(7)})
	})
	if f := kurrentconn.Classify(err); f.Code != kurrentconn.WrongExpectedVersion {
		t.Fatalf("tombstone at the wrong revision: %v (%v)", f.Code, err)
	}
	srv.SetDelay(time.Second)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = appendOne(short, c, "proef-2", esdb.NoStream{})
	if f := kurrentconn.Classify(err); f.Code != kurrentconn.Timeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append past its deadline: %v (%v)", f.Code, err)
	}
	srv.SetDelay(0)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if f := kurrentconn.Classify(appendOne(ctxT(t), c, "proef-3", esdb.NoStream{})); f.Code != kurrentconn.Closed {
		t.Fatalf("append after close: %v", f.Code)
	}
}

// Do retries an answer whose outcome is unknown only for an idempotent op,
// and takes the caller's classification: an error it makes final is not
// retried.
func TestDoPolicy(t *testing.T) {
	srv := kurrenttest.Start(t)
	c := open(t, srv.URL(), kurrentconn.Options{Timeout: 5 * time.Second})
	appendTo := func(stream string, exp esdb.ExpectedRevision) func(context.Context, *esdb.Client) (*esdb.WriteResult, error) {
		ev := esdb.EventData{EventID: uuid.New(), EventType: "Proef", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
		return func(ctx context.Context, cl *esdb.Client) (*esdb.WriteResult, error) {
			return cl.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, ev)
		}
	}
	srv.AnswerUnknown(1)
	before := srv.Appends()
	_, err := kurrentconn.Do(ctxT(t), c, kurrentconn.Policy{}, appendTo("do-1", esdb.Any{}))
	if f := kurrentconn.Classify(err); !f.UnknownOutcome || srv.Appends()-before != 1 {
		t.Fatalf("not idempotent: %v after %d appends, want the unknown outcome after one", err, srv.Appends()-before)
	}
	srv.AnswerUnknown(1)
	before = srv.Appends()
	if _, err := kurrentconn.Do(ctxT(t), c, kurrentconn.Policy{Idempotent: true}, appendTo("do-2", esdb.NoStream{})); err != nil || srv.Appends()-before != 2 {
		t.Fatalf("idempotent: %v after %d appends, want success after two", err, srv.Appends()-before)
	}
	mine := errors.New("the caller's own")
	own := func(err error) kurrentconn.Fault {
		if errors.Is(err, mine) {
			return kurrentconn.Fault{}
		}
		return kurrentconn.Classify(err)
	}
	calls := 0
	_, err = kurrentconn.Do(ctxT(t), c, kurrentconn.Policy{Idempotent: true, Classify: own}, func(context.Context, *esdb.Client) (int, error) {
		calls++
		return 0, mine
	})
	if !errors.Is(err, mine) || calls != 1 {
		t.Fatalf("a final error: %v after %d calls", err, calls)
	}
}

// StartScavenge asks a single node, and every node of a cluster with the
// leader last, through the operations API.
func TestStartScavenge(t *testing.T) {
	single := kurrenttest.Start(t)
	got, err := open(t, single.URL(), kurrentconn.Options{}).StartScavenge(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Node != single.Addr() || !got[0].Leader || got[0].Result != "Started" {
		t.Fatalf("single node: %+v", got)
	}
	if reqs := single.Scavenges(); len(reqs) != 1 || reqs[0].ID != got[0].ID {
		t.Fatalf("the node recorded %+v", reqs)
	}
	cl := kurrenttest.StartCluster(t, 3, kurrenttest.Options{})
	cl.Elect(1)
	got, err = open(t, cl.URL(), kurrentconn.Options{}).StartScavenge(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Node != cl.Nodes[1].Addr() || !got[2].Leader {
		t.Fatalf("cluster: %+v; want three answers, the leader's last", got)
	}
	for i, n := range cl.Nodes {
		if len(n.Scavenges()) != 1 {
			t.Fatalf("node %d was asked %d times", i, len(n.Scavenges()))
		}
	}
}

// What the client's errors mean, for the errors a test server cannot make.
func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		want  kurrentconn.Code
		retry bool
		elect bool
	}{
		{"an election: no leader", status.Error(codes.Unknown, "No leader info available"), kurrentconn.Unavailable, true, true},
		{"an append ended before it was sent", esdbError(io.EOF), kurrentconn.Unavailable, true, false},
		{"an unknown failure", status.Error(codes.Unknown, "boom"), kurrentconn.Unavailable, true, false},
		{"a delete at the wrong revision", status.Error(codes.FailedPrecondition, "Delete failed due to WrongExpectedVersion. Stream: s"), kurrentconn.WrongExpectedVersion, false, false},
		{"another precondition", status.Error(codes.FailedPrecondition, "no"), kurrentconn.Invalid, false, false},
		{"refused credentials", status.Error(codes.PermissionDenied, "Access Denied"), kurrentconn.Denied, false, false},
		{"no operations API", status.Error(codes.Unimplemented, "unknown service"), kurrentconn.Invalid, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := kurrentconn.Classify(tt.err)
			if diff := cmp.Diff([]any{tt.want, tt.retry, tt.elect}, []any{f.Code, f.Retry, f.Election}); diff != "" {
				t.Fatalf("code, retry, election (-want +got):\n%s", diff)
			}
		})
	}
}

func esdbError(err error) error {
	e, _ := esdb.FromError(err)
	return e
}
