package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

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
