// Package storetest is the one conformance suite of the event log port:
// every event store adapter runs Run against a fresh store, so the embedded
// store and the KurrentDB adapter keep exactly the same semantics.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// Config says how to make the store under test.
type Config struct {
	// New returns a fresh, empty store; the suite closes it.
	New func(t *testing.T) eventlog.Store
	// DensePositions: positions are 1, 2, 3, ... with no gaps.
	DensePositions bool
}

// Run runs the whole suite.
func Run(t *testing.T, cfg Config) {
	tests := []struct {
		name string
		fn   func(t *testing.T, cfg Config, s eventlog.Store)
	}{
		{"ExpectedVersions", testExpectedVersions},
		{"IdempotentRetry", testIdempotentRetry},
		{"PartialOverlapConflicts", testPartialOverlap},
		{"RacingWritersOneWinsEachRound", testRacingWriters},
		{"GlobalOrderUnderConcurrentAppends", testGlobalOrder},
		{"ReadStreamBothDirections", testReadStream},
		{"ReadAllAfterPosition", testReadAll},
		{"MetadataRoundTrips", testMetadata},
		{"RejectsEmptyAndOversized", testRejects},
		{"SubscriptionHistoryThenLive", testSubscriptionLive},
		{"SubscriptionFilters", testSubscriptionFilters},
		{"SubscriptionResumesFromCheckpoint", testSubscriptionResume},
		{"SubscriptionCancellationLeaksNothing", testSubscriptionCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cfg.New(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, cfg, s)
		})
	}
}

var nextStream struct {
	sync.Mutex
	n int
}

// stream returns a stream name unique in the process, so a shared server works.
func stream(category string) string {
	nextStream.Lock()
	defer nextStream.Unlock()
	nextStream.n++
	return fmt.Sprintf("%s-%s", category, uuid.NewString())
}

func event(typ string, body string) eventlog.EventData {
	return eventlog.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{"v":"` + body + `"}`),
		Metadata: eventlog.Metadata{OccurredAt: time.Now().UTC().Truncate(time.Microsecond), ActorID: "tester", SchemaVersion: 1}}
}

func events(n int, typ string) []eventlog.EventData {
	out := make([]eventlog.EventData, n)
	for i := range out {
		out[i] = event(typ, fmt.Sprint(i))
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, s eventlog.Store, stream string, exp eventlog.ExpectedVersion, evs ...eventlog.EventData) eventlog.AppendResult {
	t.Helper()
	r, err := s.Append(ctxT(t), stream, exp, evs...)
	if err != nil {
		t.Fatalf("append to %s (%s): %v", stream, exp, err)
	}
	return r
}

func mustRead(t *testing.T, s eventlog.Store, stream string) []eventlog.RecordedEvent {
	t.Helper()
	got, err := s.ReadStream(ctxT(t), stream, eventlog.Forwards, 0, 10_000)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return got
}

func ids(evs []eventlog.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func dataIDs(evs []eventlog.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func testExpectedVersions(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("ev")
	cases := []struct {
		name    string
		exp     eventlog.ExpectedVersion
		wantErr bool
		wantRev uint64
	}{
		{"stream_exists on a missing stream", eventlog.StreamExists(), true, 0},
		{"revision 0 on a missing stream", eventlog.Revision(0), true, 0},
		{"no_stream creates it", eventlog.NoStream(), false, 1},
		{"no_stream again", eventlog.NoStream(), true, 0},
		{"stream_exists now", eventlog.StreamExists(), false, 3},
		{"stale revision", eventlog.Revision(1), true, 0},
		{"future revision", eventlog.Revision(9), true, 0},
		{"exact revision", eventlog.Revision(3), false, 5},
		{"any", eventlog.Any(), false, 7},
	}
	for _, c := range cases {
		r, err := s.Append(ctxT(t), st, c.exp, events(2, "T")...)
		if c.wantErr {
			if !errors.Is(err, eventlog.ErrWrongExpectedVersion) || domain.KindOf(err) != domain.KindConflict {
				t.Fatalf("%s: err = %v, want wrong expected version (conflict)", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.NextRevision != c.wantRev {
			t.Fatalf("%s: next revision %d, want %d", c.name, r.NextRevision, c.wantRev)
		}
	}
	if got := len(mustRead(t, s, st)); got != 8 {
		t.Fatalf("stream has %d events, want 8: failed appends wrote something", got)
	}
	// any on a missing stream creates it.
	if r := mustAppend(t, s, stream("ev"), eventlog.Any(), event("T", "x")); r.NextRevision != 0 {
		t.Fatalf("any on a new stream: revision %d", r.NextRevision)
	}
}

func testIdempotentRetry(t *testing.T, _ Config, s eventlog.Store) {
	for _, exp := range []func(uint64) eventlog.ExpectedVersion{
		func(uint64) eventlog.ExpectedVersion { return eventlog.Any() },
		func(head uint64) eventlog.ExpectedVersion { return eventlog.Revision(head) },
	} {
		st := stream("idem")
		mustAppend(t, s, st, eventlog.NoStream(), event("T", "first"))
		evs := events(3, "T")
		first := mustAppend(t, s, st, exp(0), evs...)
		again := mustAppend(t, s, st, exp(0), evs...)
		if diff := cmp.Diff(first, again); diff != "" {
			t.Fatalf("retry answers differently (-first +retry):\n%s", diff)
		}
		got := mustRead(t, s, st)
		if len(got) != 4 {
			t.Fatalf("retry wrote again: %d events", len(got))
		}
		if diff := cmp.Diff(dataIDs(evs), ids(got[1:])); diff != "" {
			t.Fatalf("ids (-want +got):\n%s", diff)
		}
	}
	// A first append retried with no_stream succeeds too.
	st := stream("idem")
	evs := events(2, "T")
	a := mustAppend(t, s, st, eventlog.NoStream(), evs...)
	b := mustAppend(t, s, st, eventlog.NoStream(), evs...)
	if a != b {
		t.Fatalf("no_stream retry: %+v then %+v", a, b)
	}
}

func testPartialOverlap(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("overlap")
	evs := events(3, "T")
	mustAppend(t, s, st, eventlog.NoStream(), evs...)
	mixed := []eventlog.EventData{evs[1], event("T", "new")}
	if _, err := s.Append(ctxT(t), st, eventlog.Any(), mixed...); !errors.Is(err, eventlog.ErrWrongExpectedVersion) {
		t.Fatalf("partial overlap: err = %v, want conflict", err)
	}
	if got := len(mustRead(t, s, st)); got != 3 {
		t.Fatalf("partial overlap wrote: %d events", got)
	}
}

func testRacingWriters(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("race")
	mustAppend(t, s, st, eventlog.NoStream(), event("T", "0"))
	const writers, rounds = 32, 20
	for round := uint64(0); round < rounds; round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Append(ctxT(t), st, eventlog.Revision(round), event("T", "r"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, eventlog.ErrWrongExpectedVersion):
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1", round, wins)
		}
	}
	got := mustRead(t, s, st)
	if len(got) != rounds+1 {
		t.Fatalf("%d events, want %d", len(got), rounds+1)
	}
	for i, e := range got {
		if e.Revision != uint64(i) {
			t.Fatalf("revision %d at index %d", e.Revision, i)
		}
	}
}

func testGlobalOrder(t *testing.T, cfg Config, s eventlog.Store) {
	before, err := s.Head(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 25
	prefix := stream("order")
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			st := fmt.Sprintf("%s%d", prefix, w)
			for i := 0; i < each; i++ {
				if _, err := s.Append(ctxT(t), st, eventlog.Any(), event("T", fmt.Sprint(i))); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	all := readAllFrom(t, s, before)
	var mine []eventlog.RecordedEvent
	for _, e := range all {
		if len(e.StreamID) > len(prefix) && e.StreamID[:len(prefix)] == prefix {
			mine = append(mine, e)
		}
	}
	if len(mine) != writers*each {
		t.Fatalf("read all found %d events, want %d", len(mine), writers*each)
	}
	perStream := map[string]uint64{}
	for i, e := range all {
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("positions not increasing: %d after %d", e.Position, all[i-1].Position)
		}
		if cfg.DensePositions && e.Position != before+uint64(i)+1 {
			t.Fatalf("position %d at index %d: not dense from %d", e.Position, i, before)
		}
		if next := perStream[e.StreamID]; e.Revision != next {
			t.Fatalf("%s: revision %d where %d was next", e.StreamID, e.Revision, next)
		}
		perStream[e.StreamID] = e.Revision + 1
	}
	head, _ := s.Head(ctxT(t))
	if head != all[len(all)-1].Position {
		t.Fatalf("head %d, last event at %d", head, all[len(all)-1].Position)
	}
}

func readAllFrom(t *testing.T, s eventlog.Store, after uint64) []eventlog.RecordedEvent {
	t.Helper()
	var out []eventlog.RecordedEvent
	for {
		page, err := s.ReadAll(ctxT(t), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 100 {
			return out
		}
		after = page[len(page)-1].Position
	}
}

func testReadStream(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("read")
	evs := events(10, "T")
	mustAppend(t, s, st, eventlog.NoStream(), evs...)
	tests := []struct {
		name  string
		dir   eventlog.Direction
		from  uint64
		limit int
		want  []int // indexes into evs
	}{
		{"forwards from 0", eventlog.Forwards, 0, 100, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"forwards from 7", eventlog.Forwards, 7, 100, []int{7, 8, 9}},
		{"forwards limited", eventlog.Forwards, 2, 3, []int{2, 3, 4}},
		{"forwards past the end", eventlog.Forwards, 10, 5, []int{}},
		{"backwards from the end", eventlog.Backwards, eventlog.End, 3, []int{9, 8, 7}},
		{"backwards from 4", eventlog.Backwards, 4, 100, []int{4, 3, 2, 1, 0}},
		{"backwards from beyond the end", eventlog.Backwards, 50, 2, []int{9, 8}},
	}
	for _, tt := range tests {
		got, err := s.ReadStream(ctxT(t), st, tt.dir, tt.from, tt.limit)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		want := make([]uuid.UUID, len(tt.want))
		for i, j := range tt.want {
			want[i] = evs[j].ID
		}
		if diff := cmp.Diff(want, ids(got), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		for _, e := range got {
			if e.StreamID != st || e.Type != "T" || e.Position == 0 {
				t.Errorf("%s: bad event %+v", tt.name, e)
			}
		}
	}
	if _, err := s.ReadStream(ctxT(t), stream("missing"), eventlog.Forwards, 0, 10); !errors.Is(err, eventlog.ErrStreamNotFound) || domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("missing stream: err = %v, want stream not found", err)
	}
}

func testReadAll(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("all")
	r1 := mustAppend(t, s, st, eventlog.NoStream(), events(5, "T")...)
	all := readAllFrom(t, s, 0)
	if len(all) < 5 {
		t.Fatalf("read all from 0: %d events", len(all))
	}
	mid := all[len(all)-3].Position
	tail, err := s.ReadAll(ctxT(t), mid, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(tail) != 2 || tail[0].Position <= mid || tail[1].Position != r1.Position {
		t.Fatalf("read all after %d: %+v", mid, tail)
	}
	end, err := s.ReadAll(ctxT(t), r1.Position, 100)
	if err != nil || len(end) != 0 {
		t.Fatalf("read all after the head: %d events, %v", len(end), err)
	}
	limited, err := s.ReadAll(ctxT(t), 0, 2)
	if err != nil || len(limited) != 2 {
		t.Fatalf("limit: %d events, %v", len(limited), err)
	}
}

func testMetadata(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("meta")
	e := event("SomethingHappened", "x")
	e.Metadata = eventlog.Metadata{
		OccurredAt: time.Date(2026, 11, 22, 10, 11, 12, 345678000, time.UTC), ActorID: "anna", ActorRole: "professional",
		OnBehalfOf: "bram", CorrelationID: "corr-1", CausationID: "cause-1", RequestID: "req-1", Network: "net-1", SchemaVersion: 3,
	}
	r := mustAppend(t, s, st, eventlog.NoStream(), e)
	got := mustRead(t, s, st)
	if len(got) != 1 {
		t.Fatalf("%d events", len(got))
	}
	want := eventlog.RecordedEvent{StreamID: st, Revision: 0, Position: r.Position, ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
	if diff := cmp.Diff(want, got[0], cmpopts.IgnoreFields(eventlog.RecordedEvent{}, "RecordedAt"), cmpopts.EquateApproxTime(0)); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if got[0].RecordedAt.IsZero() || time.Since(got[0].RecordedAt) > time.Hour {
		t.Fatalf("recorded at %v", got[0].RecordedAt)
	}
}

func testRejects(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("reject")
	if _, err := s.Append(ctxT(t), st, eventlog.Any()); !errors.Is(err, eventlog.ErrEmptyAppend) || domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("empty append: %v", err)
	}
	big := event("T", "")
	big.Data = make([]byte, eventlog.MaxEventBytes+1)
	if _, err := s.Append(ctxT(t), st, eventlog.Any(), event("T", "ok"), big); !errors.Is(err, eventlog.ErrEventTooLarge) || domain.KindOf(err) != domain.KindTooLarge {
		t.Fatalf("oversized event: %v", err)
	}
	noID := event("T", "x")
	noID.ID = uuid.Nil
	if _, err := s.Append(ctxT(t), st, eventlog.Any(), noID); !errors.Is(err, eventlog.ErrInvalidEvent) {
		t.Fatalf("event without id: %v", err)
	}
	if _, err := s.ReadStream(ctxT(t), st, eventlog.Forwards, 0, 10); !errors.Is(err, eventlog.ErrStreamNotFound) {
		t.Fatalf("a rejected append wrote something: %v", err)
	}
}

// collect reads n events from a subscription.
func collect(t *testing.T, sub eventlog.Subscription, n int) []eventlog.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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

func testSubscriptionLive(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("sub")
	head, _ := s.Head(ctxT(t))
	history := events(5, "T")
	mustAppend(t, s, prefix+"a", eventlog.NoStream(), history...)
	sub, err := s.Subscribe(ctxT(t), head, eventlog.Filter{StreamPrefixes: []string{prefix}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := collect(t, sub, 5)
	live := events(5, "T")
	go func() {
		for _, e := range live {
			if _, err := s.Append(context.Background(), prefix+"b", eventlog.Any(), e); err != nil {
				t.Error(err)
			}
		}
	}()
	got = append(got, collect(t, sub, 5)...)
	want := append(dataIDs(history), dataIDs(live)...)
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Fatalf("history then live (-want +got):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Fatalf("out of order at %d", i)
		}
	}
}

func testSubscriptionFilters(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("filt")
	head, _ := s.Head(ctxT(t))
	type in struct{ stream, typ string }
	input := []in{{prefix + "x-1", "A"}, {prefix + "y-1", "A"}, {prefix + "x-2", "B"}, {prefix + "y-2", "B"}, {prefix + "x-3", "A"}}
	var all []eventlog.EventData
	for _, i := range input {
		e := event(i.typ, "f")
		all = append(all, e)
		mustAppend(t, s, i.stream, eventlog.Any(), e)
	}
	tests := []struct {
		name   string
		filter eventlog.Filter
		want   []int
	}{
		{"stream prefix", eventlog.Filter{StreamPrefixes: []string{prefix + "x"}}, []int{0, 2, 4}},
		{"event type", eventlog.Filter{StreamPrefixes: []string{prefix}, EventTypes: []string{"B"}}, []int{2, 3}},
		{"both", eventlog.Filter{StreamPrefixes: []string{prefix + "y"}, EventTypes: []string{"A"}}, []int{1}},
		{"two prefixes", eventlog.Filter{StreamPrefixes: []string{prefix + "x-1", prefix + "y-2"}}, []int{0, 3}},
	}
	for _, tt := range tests {
		sub, err := s.Subscribe(ctxT(t), head, tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, sub, len(tt.want))
		// Nothing else may follow: append a marker that matches every filter's prefix only when wanted.
		sub.Close()
		want := make([]uuid.UUID, len(tt.want))
		for i, j := range tt.want {
			want[i] = all[j].ID
		}
		if diff := cmp.Diff(want, ids(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	// A filter matching nothing more must not deliver anything else.
	sub, err := s.Subscribe(ctxT(t), head, eventlog.Filter{StreamPrefixes: []string{prefix + "x"}, EventTypes: []string{"B"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := collect(t, sub, 1)
	if got[0].ID != all[2].ID {
		t.Fatalf("got %v", got[0].ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if e, err := sub.Next(ctx); err == nil {
		t.Fatalf("unexpected event %s in %s", e.Type, e.StreamID)
	}
}

func testSubscriptionResume(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("resume")
	head, _ := s.Head(ctxT(t))
	evs := events(20, "T")
	for _, e := range evs {
		mustAppend(t, s, prefix+"-s", eventlog.Any(), e)
	}
	filter := eventlog.Filter{StreamPrefixes: []string{prefix}}
	sub, err := s.Subscribe(ctxT(t), head, filter)
	if err != nil {
		t.Fatal(err)
	}
	first := collect(t, sub, 8)
	sub.Close()
	checkpoint := first[len(first)-1].Position
	sub, err = s.Subscribe(ctxT(t), checkpoint, filter)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	rest := collect(t, sub, 12)
	if diff := cmp.Diff(dataIDs(evs), append(ids(first), ids(rest)...)); diff != "" {
		t.Fatalf("resume from checkpoint (-want +got):\n%s", diff)
	}
}

func testSubscriptionCancel(t *testing.T, _ Config, s eventlog.Store) {
	// Warm up first: an adapter may connect lazily, and its connection is not
	// a subscription's leak.
	head, _ := s.Head(ctxT(t))
	before := goleak.IgnoreCurrent()
	var subs []eventlog.Subscription
	errs := make(chan error, 20)
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		sub, err := s.Subscribe(ctx, head, eventlog.Filter{StreamPrefixes: []string{stream("never")}})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
		go func() {
			_, err := sub.Next(ctx)
			errs <- err
		}()
		if i%2 == 0 {
			cancel()
		} else {
			defer cancel()
			go func() { time.Sleep(10 * time.Millisecond); sub.Close() }()
		}
	}
	for i := 0; i < 10; i++ {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("Next returned an event on a cancelled subscription")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Next did not return after cancellation")
		}
	}
	for _, sub := range subs {
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
		_ = sub.Close() // twice is fine
	}
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("time.Sleep"))
}
