// Package storetest is the one conformance suite of the event log port:
// every event store adapter runs Run against fresh stores, so the embedded
// store and the KurrentDB adapter keep exactly the same semantics.
//
// The suite names every stream it writes uniquely and looks only at its own
// streams wherever it can, so it also runs against a shared server whose log
// holds other events (a real KurrentDB writes system events of its own).
// Checks that need the whole log to be the suite's (dense positions) run
// only with Config.DensePositions.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	// New returns a fresh, empty store; the suite closes it (t.Cleanup).
	New func(t *testing.T) eventlog.Store
	// DensePositions: positions are 1, 2, 3, ... with no gaps (the
	// embedded store), and the store holds only the suite's events.
	DensePositions bool
}

// Run runs the whole suite, one subtest per behaviour, each on a store of
// its own from cfg.New.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("storetest: Config.New is nil")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, cfg Config, s eventlog.Store)
	}{
		{"ExpectedVersions", testExpectedVersions},
		{"IdempotentRetry", testIdempotentRetry},
		{"PartialOverlapConflicts", testPartialOverlap},
		{"RacingWritersOneWinsEachRound", testRacingWriters},
		{"GlobalOrderUnderConcurrentAppends", testGlobalOrder},
		{"ReadStream", testReadStream},
		{"ReadAllAfterPosition", testReadAll},
		{"Head", testHead},
		{"MetadataRoundTrips", testMetadata},
		{"RejectsInvalidAppends", testRejects},
		{"AppendsUpToMaxAppendBytes", testAppendBytes},
		{"CancelledAppendWritesNothing", testCancelledAppend},
		{"SubscriptionHistoryThenLive", testSubscriptionLive},
		{"SubscriptionCatchUpWhileWriting", testSubscriptionCatchUpRace},
		{"SubscriptionFilters", testSubscriptionFilters},
		{"SubscriptionResumesFromCheckpoint", testSubscriptionResume},
		{"SubscriptionCancellationLeaksNothing", testSubscriptionCancel},
		{"StoreCloseEndsEverything", testStoreClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cfg.New(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, cfg, s)
		})
	}
}

// stream returns a stream name unique across processes and runs, so that a
// shared server works.
func stream(category string) string {
	return eventlog.StreamName(category, strings.ReplaceAll(uuid.NewString(), "-", ""))
}

func event(typ, body string) eventlog.EventData {
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

// ctxT is a context for one call, bounded so that a hung store fails the
// test instead of the whole run.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, s eventlog.Store, stream string, exp eventlog.ExpectedVersion, evs ...eventlog.EventData) eventlog.AppendResult {
	t.Helper()
	r, err := s.Append(ctxT(t), stream, exp, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s (%s): %v", len(evs), stream, exp, err)
	}
	return r
}

// mustRead returns a whole stream forwards, nil when it does not exist.
func mustRead(t *testing.T, s eventlog.Store, stream string) []eventlog.RecordedEvent {
	t.Helper()
	got, err := s.ReadStream(ctxT(t), stream, eventlog.Forwards, 0, 100_000)
	if errors.Is(err, eventlog.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return got
}

func mustHead(t *testing.T, s eventlog.Store) uint64 {
	t.Helper()
	h, err := s.Head(ctxT(t))
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return h
}

// mustReadAll reads every event after a position, in pages of 100.
func mustReadAll(t *testing.T, s eventlog.Store, after uint64) []eventlog.RecordedEvent {
	t.Helper()
	const page = 100
	var out []eventlog.RecordedEvent
	for {
		got, err := s.ReadAll(ctxT(t), after, page)
		if err != nil {
			t.Fatalf("read all after %d: %v", after, err)
		}
		if len(got) > page {
			t.Fatalf("read all with limit %d returned %d events", page, len(got))
		}
		out = append(out, got...)
		if len(got) < page {
			return out
		}
		after = got[len(got)-1].Position
	}
}

func mustSubscribe(t *testing.T, s eventlog.Store, ctx context.Context, after uint64, f eventlog.Filter) eventlog.Subscription {
	t.Helper()
	sub, err := s.Subscribe(ctx, after, f)
	if err != nil {
		t.Fatalf("subscribe after %d: %v", after, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// mustCollect reads n events from a subscription.
func mustCollect(t *testing.T, sub eventlog.Subscription, n int) []eventlog.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make([]eventlog.RecordedEvent, 0, n)
	for len(out) < n {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("subscription: after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, e)
	}
	return out
}

// mustBeQuiet fails if the subscription delivers anything within d.
func mustBeQuiet(t *testing.T, sub eventlog.Subscription, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if e, err := sub.Next(ctx); err == nil {
		t.Fatalf("subscription delivered an unexpected %s in %s at %d", e.Type, e.StreamID, e.Position)
	}
}

// mustBeConflict fails unless err is the port's wrong-expected-version error.
func mustBeConflict(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, eventlog.ErrWrongExpectedVersion) || domain.KindOf(err) != domain.KindConflict {
		t.Fatalf("%s: err = %v, want ErrWrongExpectedVersion (conflict)", what, err)
	}
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

func inStream(evs []eventlog.RecordedEvent, prefix string) []eventlog.RecordedEvent {
	var out []eventlog.RecordedEvent
	for _, e := range evs {
		if strings.HasPrefix(e.StreamID, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// checkStream checks a whole stream: the ids in order, revisions 0, 1, ...
// and increasing positions.
func checkStream(t *testing.T, s eventlog.Store, st string, want []uuid.UUID) []eventlog.RecordedEvent {
	t.Helper()
	got := mustRead(t, s, st)
	if diff := cmp.Diff(want, ids(got), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("stream %s ids (-want +got):\n%s", st, diff)
	}
	for i, e := range got {
		if e.StreamID != st || e.Revision != uint64(i) || e.Position == 0 || (i > 0 && e.Position <= got[i-1].Position) {
			t.Fatalf("stream %s: event %d is %s@%d at position %d", st, i, e.StreamID, e.Revision, e.Position)
		}
	}
	return got
}

func testExpectedVersions(t *testing.T, _ Config, s eventlog.Store) {
	tests := []struct {
		name     string
		existing int // events in the stream before the append
		exp      eventlog.ExpectedVersion
		conflict bool
	}{
		{"any on a missing stream", 0, eventlog.Any(), false},
		{"any on an existing stream", 3, eventlog.Any(), false},
		{"no_stream on a missing stream", 0, eventlog.NoStream(), false},
		{"no_stream on an existing stream", 3, eventlog.NoStream(), true},
		{"stream_exists on a missing stream", 0, eventlog.StreamExists(), true},
		{"stream_exists on an existing stream", 3, eventlog.StreamExists(), false},
		{"revision at the head", 3, eventlog.Revision(2), false},
		{"revision 0 at the head", 1, eventlog.Revision(0), false},
		{"revision behind the head", 3, eventlog.Revision(1), true},
		{"revision past the head", 3, eventlog.Revision(3), true},
		{"revision 0 on a missing stream", 0, eventlog.Revision(0), true},
		{"revision far ahead on a missing stream", 0, eventlog.Revision(41), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stream("ev")
			var want []uuid.UUID
			if tt.existing > 0 {
				old := events(tt.existing, "Old")
				mustAppend(t, s, st, eventlog.NoStream(), old...)
				want = dataIDs(old)
			}
			evs := events(2, "New")
			r, err := s.Append(ctxT(t), st, tt.exp, evs...)
			if tt.conflict {
				mustBeConflict(t, "append", err)
				checkStream(t, s, st, want) // a failed append writes nothing
				return
			}
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			got := checkStream(t, s, st, append(want, dataIDs(evs)...))
			last := got[len(got)-1]
			if diff := cmp.Diff(eventlog.AppendResult{NextRevision: last.Revision, Position: last.Position}, r); diff != "" {
				t.Fatalf("append result (-want +got):\n%s", diff)
			}
		})
	}
}

func testIdempotentRetry(t *testing.T, _ Config, s eventlog.Store) {
	tests := []struct {
		name     string
		existing int
		exp      eventlog.ExpectedVersion
	}{
		{"any", 1, eventlog.Any()},
		{"stream_exists", 1, eventlog.StreamExists()},
		{"revision", 2, eventlog.Revision(1)},
		{"no_stream", 0, eventlog.NoStream()},
		{"any on a new stream", 0, eventlog.Any()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stream("idem")
			old := events(tt.existing, "Old")
			if tt.existing > 0 {
				mustAppend(t, s, st, eventlog.NoStream(), old...)
			}
			evs := events(3, "New")
			first := mustAppend(t, s, st, tt.exp, evs...)
			again := mustAppend(t, s, st, tt.exp, evs...)
			if diff := cmp.Diff(first, again); diff != "" {
				t.Fatalf("the retry answers differently (-first +retry):\n%s", diff)
			}
			checkStream(t, s, st, append(dataIDs(old), dataIDs(evs)...))
			if after := inStream(mustReadAll(t, s, first.Position), st); len(after) != 0 {
				t.Fatalf("the retry wrote %d events to the log", len(after))
			}

			// Another append follows; retrying the first one still answers
			// where it landed and writes nothing.
			more := mustAppend(t, s, st, eventlog.Any(), event("Later", "x"))
			late := mustAppend(t, s, st, tt.exp, evs...)
			if diff := cmp.Diff(first, late); diff != "" {
				t.Fatalf("a retry after another append answers differently (-first +retry):\n%s", diff)
			}
			if after := inStream(mustReadAll(t, s, more.Position), st); len(after) != 0 {
				t.Fatalf("the late retry wrote %d events to the log", len(after))
			}
		})
	}
}

func testPartialOverlap(t *testing.T, _ Config, s eventlog.Store) {
	tests := []struct {
		name  string
		exp   eventlog.ExpectedVersion // the original append's was revision 0
		retry func(stored []eventlog.EventData) []eventlog.EventData
	}{
		{"any: a stored id then a new one", eventlog.Any(), func(st []eventlog.EventData) []eventlog.EventData {
			return []eventlog.EventData{st[1], event("T", "new")}
		}},
		{"revision: the first id then a new one", eventlog.Revision(0), func(st []eventlog.EventData) []eventlog.EventData {
			return []eventlog.EventData{st[0], event("T", "new")}
		}},
		{"revision: all ids and one more", eventlog.Revision(0), func(st []eventlog.EventData) []eventlog.EventData {
			return append(append([]eventlog.EventData{}, st...), event("T", "new"))
		}},
		{"revision: the ids out of order", eventlog.Revision(0), func(st []eventlog.EventData) []eventlog.EventData {
			return []eventlog.EventData{st[0], st[2], st[1]}
		}},
		{"stream_exists: a stored id then a new one", eventlog.StreamExists(), func(st []eventlog.EventData) []eventlog.EventData {
			return []eventlog.EventData{st[0], event("T", "new")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stream("overlap")
			head := event("T", "head")
			mustAppend(t, s, st, eventlog.NoStream(), head)
			stored := events(3, "T")
			mustAppend(t, s, st, eventlog.Revision(0), stored...)
			_, err := s.Append(ctxT(t), st, tt.exp, tt.retry(stored)...)
			mustBeConflict(t, "partly overlapping retry", err)
			checkStream(t, s, st, append([]uuid.UUID{head.ID}, dataIDs(stored)...))
		})
	}
}

func testRacingWriters(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("race")
	mustAppend(t, s, st, eventlog.NoStream(), event("T", "0"))
	const writers, rounds = 32, 20
	want := []uuid.UUID{mustRead(t, s, st)[0].ID}
	for round := uint64(0); round < rounds; round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []uuid.UUID
		var results []eventlog.AppendResult
		start := make(chan struct{})
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := event("T", "r")
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				<-start
				r, err := s.Append(ctx, st, eventlog.Revision(round), e)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, e.ID)
					results = append(results, r)
				case !errors.Is(err, eventlog.ErrWrongExpectedVersion):
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1", round, len(winners))
		}
		if results[0].NextRevision != round+1 {
			t.Fatalf("round %d: the winner landed at revision %d", round, results[0].NextRevision)
		}
		want = append(want, winners[0])
	}
	checkStream(t, s, st, want)
}

func testGlobalOrder(t *testing.T, cfg Config, s eventlog.Store) {
	before := mustHead(t, s)
	prefix := stream("order")
	const writers, each, shared = 32, 12, 4
	type appended struct {
		stream string
		ids    []uuid.UUID
		r      eventlog.AppendResult
	}
	var mu sync.Mutex
	var done []appended
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				st := fmt.Sprintf("%s_own%d", prefix, w)
				if i%3 == 0 {
					st = fmt.Sprintf("%s_shared%d", prefix, (w+i)%shared)
				}
				evs := events(1+(w+i)%3, "T")
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				r, err := s.Append(ctx, st, eventlog.Any(), evs...)
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				done = append(done, appended{st, dataIDs(evs), r})
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	all := mustReadAll(t, s, before)
	mine := inStream(all, prefix)
	total := 0
	for _, a := range done {
		total += len(a.ids)
	}
	if len(mine) != total {
		t.Fatalf("read all found %d of the %d events appended", len(mine), total)
	}
	byID := map[uuid.UUID]eventlog.RecordedEvent{}
	perStream := map[string]uint64{}
	for i, e := range all {
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("positions not increasing: %d after %d", e.Position, all[i-1].Position)
		}
		if cfg.DensePositions && e.Position != before+uint64(i)+1 {
			t.Fatalf("position %d at index %d: not dense after %d", e.Position, i, before)
		}
		if !strings.HasPrefix(e.StreamID, prefix) {
			continue
		}
		if _, dup := byID[e.ID]; dup {
			t.Fatalf("event %s read twice", e.ID)
		}
		byID[e.ID] = e
		if next := perStream[e.StreamID]; e.Revision != next {
			t.Fatalf("%s: revision %d where %d was next", e.StreamID, e.Revision, next)
		}
		perStream[e.StreamID] = e.Revision + 1
	}
	// Each append's events are consecutive in their stream, in order, and its
	// result names its last event.
	for _, a := range done {
		first := byID[a.ids[0]]
		for k, id := range a.ids {
			e, ok := byID[id]
			if !ok || e.StreamID != a.stream || e.Revision != first.Revision+uint64(k) {
				t.Fatalf("append to %s: event %d is %s@%d (found %v)", a.stream, k, e.StreamID, e.Revision, ok)
			}
			if k > 0 && e.Position <= byID[a.ids[k-1]].Position {
				t.Fatalf("append to %s: event %d at position %d, before its predecessor", a.stream, k, e.Position)
			}
			if cfg.DensePositions && e.Position != first.Position+uint64(k) {
				t.Fatalf("append to %s: event %d at position %d, not next to %d", a.stream, k, e.Position, first.Position)
			}
		}
		last := byID[a.ids[len(a.ids)-1]]
		if diff := cmp.Diff(eventlog.AppendResult{NextRevision: last.Revision, Position: last.Position}, a.r); diff != "" {
			t.Fatalf("append result (-want +got):\n%s", diff)
		}
	}
	if head := mustHead(t, s); head < mine[len(mine)-1].Position || (cfg.DensePositions && head != all[len(all)-1].Position) {
		t.Fatalf("head %d, last event at %d", head, all[len(all)-1].Position)
	}
}

func testReadStream(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("read")
	evs := events(10, "T")
	mustAppend(t, s, st, eventlog.NoStream(), evs[:4]...)
	mustAppend(t, s, stream("other"), eventlog.NoStream(), event("T", "between"))
	mustAppend(t, s, st, eventlog.Revision(3), evs[4:]...)
	tests := []struct {
		name  string
		dir   eventlog.Direction
		from  uint64
		limit int
		want  []int // revisions, which are indexes into evs
	}{
		{"forwards from 0", eventlog.Forwards, 0, 100, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"forwards from 7", eventlog.Forwards, 7, 100, []int{7, 8, 9}},
		{"forwards limited", eventlog.Forwards, 2, 3, []int{2, 3, 4}},
		{"forwards limit 1", eventlog.Forwards, 0, 1, []int{0}},
		{"forwards from the last", eventlog.Forwards, 9, 5, []int{9}},
		{"forwards past the end", eventlog.Forwards, 10, 5, []int{}},
		{"forwards from End", eventlog.Forwards, eventlog.End, 5, []int{}},
		{"backwards from End", eventlog.Backwards, eventlog.End, 100, []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{"backwards from End limited", eventlog.Backwards, eventlog.End, 3, []int{9, 8, 7}},
		{"backwards from 4", eventlog.Backwards, 4, 100, []int{4, 3, 2, 1, 0}},
		{"backwards from 5 limited", eventlog.Backwards, 5, 2, []int{5, 4}},
		{"backwards from 0", eventlog.Backwards, 0, 10, []int{0}},
		{"backwards from past the end", eventlog.Backwards, 50, 2, []int{9, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ReadStream(ctxT(t), st, tt.dir, tt.from, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]uuid.UUID, len(tt.want))
			for i, j := range tt.want {
				want[i] = evs[j].ID
			}
			if diff := cmp.Diff(want, ids(got), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("ids (-want +got):\n%s", diff)
			}
			for i, e := range got {
				if e.StreamID != st || e.Type != "T" || e.Revision != uint64(tt.want[i]) || e.Position == 0 {
					t.Fatalf("event %d is %s@%d type %q at %d", i, e.StreamID, e.Revision, e.Type, e.Position)
				}
				if i > 0 && (e.Position > got[i-1].Position) != (tt.dir == eventlog.Forwards) {
					t.Fatalf("positions out of order for the direction: %d then %d", got[i-1].Position, e.Position)
				}
			}
		})
	}
	t.Run("missing stream", func(t *testing.T) {
		for _, dir := range []eventlog.Direction{eventlog.Forwards, eventlog.Backwards} {
			_, err := s.ReadStream(ctxT(t), stream("missing"), dir, 0, 10)
			if !errors.Is(err, eventlog.ErrStreamNotFound) || domain.KindOf(err) != domain.KindNotFound {
				t.Fatalf("direction %d: err = %v, want ErrStreamNotFound (not found)", dir, err)
			}
		}
	})
}

func testReadAll(t *testing.T, cfg Config, s eventlog.Store) {
	before := mustHead(t, s)
	prefix := stream("all")
	var want []uuid.UUID
	for i := 0; i < 5; i++ {
		evs := events(1+i%3, "T")
		mustAppend(t, s, fmt.Sprintf("%s_%d", prefix, i%2), eventlog.Any(), evs...)
		want = append(want, dataIDs(evs)...)
	}
	all := inStream(mustReadAll(t, s, before), prefix)
	if diff := cmp.Diff(want, ids(all)); diff != "" {
		t.Fatalf("read all (-want +got):\n%s", diff)
	}
	if cfg.DensePositions && before == 0 {
		if all[0].Position != 1 {
			t.Fatalf("the first event at position %d, want 1", all[0].Position)
		}
	}
	positions := func(evs []eventlog.RecordedEvent) []uint64 {
		out := make([]uint64, len(evs))
		for i, e := range evs {
			out[i] = e.Position
		}
		return out
	}
	last := all[len(all)-1].Position
	tests := []struct {
		name  string
		after uint64
		limit int
		want  []eventlog.RecordedEvent
		dense bool // only where positions are dense: others may not know the position
	}{
		{"after the first of ours", all[0].Position, 100, all[1:], false},
		{"after the third, limit 4", all[2].Position, 4, all[3:7], false},
		{"limit 1", all[5].Position, 1, all[6:7], false},
		{"after the last", last, 100, nil, false},
		{"far past the end", last + 1_000_000, 100, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dense && !cfg.DensePositions {
				t.Skip("positions are not dense")
			}
			got, err := s.ReadAll(ctxT(t), tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > tt.limit {
				t.Fatalf("%d events for limit %d", len(got), tt.limit)
			}
			for i, e := range got {
				if e.Position <= tt.after || (i > 0 && e.Position <= got[i-1].Position) {
					t.Fatalf("event %d at %d: not in order after %d", i, e.Position, tt.after)
				}
			}
			want, mine := positions(tt.want), positions(inStream(got, prefix))
			if !cfg.DensePositions && len(got) == tt.limit && len(mine) < len(want) {
				// Others' events interleave on a shared server: ours come first.
				want = want[:len(mine)]
			}
			if diff := cmp.Diff(want, mine, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("positions (-want +got):\n%s", diff)
			}
			if cfg.DensePositions && len(got) != len(tt.want) {
				t.Fatalf("%d events, want %d", len(got), len(tt.want))
			}
		})
	}
}

func testHead(t *testing.T, cfg Config, s eventlog.Store) {
	before := mustHead(t, s)
	if cfg.DensePositions && before != 0 {
		t.Fatalf("head of a fresh store is %d, want 0", before)
	}
	st := stream("head")
	r := mustAppend(t, s, st, eventlog.NoStream(), events(3, "T")...)
	if r.Position <= before {
		t.Fatalf("append landed at %d, not after the head %d", r.Position, before)
	}
	if cfg.DensePositions && r.Position != before+3 {
		t.Fatalf("three events after %d end at %d", before, r.Position)
	}
	head := mustHead(t, s)
	if head < r.Position || (cfg.DensePositions && head != r.Position) {
		t.Fatalf("head %d after an append ending at %d", head, r.Position)
	}
	// Failed appends do not move it.
	_, err := s.Append(ctxT(t), st, eventlog.NoStream(), event("T", "x"))
	mustBeConflict(t, "append", err)
	if _, err := s.Append(ctxT(t), st, eventlog.Any()); !errors.Is(err, eventlog.ErrEmptyAppend) {
		t.Fatalf("empty append: %v", err)
	}
	if after := mustHead(t, s); cfg.DensePositions && after != head {
		t.Fatalf("head moved from %d to %d on failed appends", head, after)
	}
}

func testMetadata(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("meta")
	before := mustHead(t, s)
	amsterdam := time.FixedZone("CET", 3600)
	full := event("SomethingHappened", "full")
	full.Metadata = eventlog.Metadata{
		OccurredAt: time.Date(2026, 11, 22, 10, 11, 12, 345678000, time.UTC), ActorID: "actor-1", ActorRole: "professional",
		OnBehalfOf: "actor-2", CorrelationID: "corr-1", CausationID: "cause-1", RequestID: "req-1", Network: "net-1", SchemaVersion: 3,
		IdempotencyFingerprint: "0123456789abcdef0123456789abcdef",
	}
	zoned := event("SomethingElse", "zoned")
	zoned.Data = []byte(`{"nested":{"list":[1,2,3],"s":"\u00e9"}}`)
	zoned.Metadata = eventlog.Metadata{OccurredAt: time.Date(2026, 3, 29, 2, 30, 0, 123456000, amsterdam), ActorID: "actor-3", SchemaVersion: 1}
	r := mustAppend(t, s, st, eventlog.NoStream(), full, zoned)

	want := []eventlog.RecordedEvent{
		{StreamID: st, Revision: 0, Position: r.Position - 1, ID: full.ID, Type: full.Type, Data: full.Data, Metadata: full.Metadata},
		{StreamID: st, Revision: 1, Position: r.Position, ID: zoned.ID, Type: zoned.Type, Data: zoned.Data, Metadata: zoned.Metadata},
	}
	want[1].Metadata.OccurredAt = want[1].Metadata.OccurredAt.UTC()
	opts := cmp.Options{cmpopts.IgnoreFields(eventlog.RecordedEvent{}, "RecordedAt", "Position")}
	check := func(how string, got []eventlog.RecordedEvent) {
		t.Helper()
		if diff := cmp.Diff(want, got, opts); diff != "" {
			t.Fatalf("%s: round trip (-want +got):\n%s", how, diff)
		}
		for i, e := range got {
			if loc := e.Metadata.OccurredAt.Location(); loc != time.UTC {
				t.Fatalf("%s: event %d occurred at %v, in %v, not UTC", how, i, e.Metadata.OccurredAt, loc)
			}
			if e.RecordedAt.IsZero() || time.Until(e.RecordedAt).Abs() > time.Hour {
				t.Fatalf("%s: event %d recorded at %v", how, i, e.RecordedAt)
			}
		}
		if got[1].Position != r.Position || got[0].Position >= got[1].Position {
			t.Fatalf("%s: positions %d, %d; the append ended at %d", how, got[0].Position, got[1].Position, r.Position)
		}
	}
	check("read stream", mustRead(t, s, st))
	check("read all", inStream(mustReadAll(t, s, before), st))
	sub := mustSubscribe(t, s, ctxT(t), before, eventlog.Filter{StreamPrefixes: []string{st}})
	check("subscription", mustCollect(t, sub, 2))
}

func testRejects(t *testing.T, cfg Config, s eventlog.Store) {
	before := mustHead(t, s)
	big := event("T", "")
	big.Data = make([]byte, eventlog.MaxEventBytes+1)
	noID := event("T", "x")
	noID.ID = uuid.Nil
	noType := event("", "x")
	tests := []struct {
		name   string
		stream string
		evs    []eventlog.EventData
		want   error
		kind   domain.Kind
	}{
		{"empty append", stream("reject"), nil, eventlog.ErrEmptyAppend, domain.KindInvalid},
		{"oversized event after a good one", stream("reject"), []eventlog.EventData{event("T", "ok"), big}, eventlog.ErrEventTooLarge, domain.KindTooLarge},
		{"too many events", stream("reject"), events(eventlog.MaxAppendEvents+1, "T"), eventlog.ErrAppendTooLarge, domain.KindTooLarge},
		{"event without id", stream("reject"), []eventlog.EventData{noID}, eventlog.ErrInvalidEvent, domain.KindInvalid},
		{"event without type", stream("reject"), []eventlog.EventData{noType}, eventlog.ErrInvalidEvent, domain.KindInvalid},
		{"empty stream name", "", []eventlog.EventData{event("T", "x")}, eventlog.ErrInvalidEvent, domain.KindInvalid},
		{"system stream name", "$" + stream("reject"), []eventlog.EventData{event("T", "x")}, eventlog.ErrInvalidEvent, domain.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(ctxT(t), tt.stream, eventlog.Any(), tt.evs...)
			if !errors.Is(err, tt.want) || domain.KindOf(err) != tt.kind {
				t.Fatalf("err = %v, want %v (%v)", err, tt.want, tt.kind)
			}
			if tt.stream != "" && !strings.HasPrefix(tt.stream, "$") {
				if got := mustRead(t, s, tt.stream); len(got) != 0 {
					t.Fatalf("a rejected append wrote %d events", len(got))
				}
			}
		})
	}
	// An event exactly at the limit is fine.
	limit := event("T", "")
	limit.Data = make([]byte, eventlog.MaxEventBytes-limit.Size())
	st := stream("limit")
	mustAppend(t, s, st, eventlog.NoStream(), limit)
	if got := mustRead(t, s, st); len(got) != 1 || len(got[0].Data) != len(limit.Data) {
		t.Fatalf("an event at the size limit did not round-trip")
	}
	if cfg.DensePositions {
		if head := mustHead(t, s); head != before+1 {
			t.Fatalf("head moved from %d to %d; only one append succeeded", before, head)
		}
	}
}

// testAppendBytes: an append of exactly eventlog.MaxAppendBytes (counted
// by eventlog.AppendSize, with long types and every metadata field set) is
// taken as one, and one byte more is ErrAppendTooLarge and writes nothing.
// Against a KurrentDB server this shows that the port's bound fits the
// server's default maximum append size (1 MiB).
func testAppendBytes(t *testing.T, _ Config, s eventlog.Store) {
	typ := strings.Repeat("T", 100)
	fill := func(n, extra int) []eventlog.EventData {
		evs := make([]eventlog.EventData, n)
		for i := range evs {
			e := event(typ, "")
			e.Metadata.ActorRole, e.Metadata.OnBehalfOf, e.Metadata.Network = "professional", "tester-2", "net-1"
			e.Metadata.CorrelationID, e.Metadata.CausationID, e.Metadata.RequestID = uuid.NewString(), uuid.NewString(), uuid.NewString()
			e.Metadata.IdempotencyFingerprint = strings.Repeat("f", 64)
			e.Data = nil
			evs[i] = e
		}
		room := eventlog.MaxAppendBytes - eventlog.AppendSize(evs) + extra
		for i := range evs {
			size := room / n
			if i == n-1 {
				size = room - (n-1)*(room/n)
			}
			// A JSON string of the size: quotes and letters.
			evs[i].Data = []byte(`"` + strings.Repeat("x", size-2) + `"`)
		}
		if got := eventlog.AppendSize(evs); got != eventlog.MaxAppendBytes+extra {
			t.Fatalf("the test's append counts %d bytes, want %d", got, eventlog.MaxAppendBytes+extra)
		}
		return evs
	}
	for _, n := range []int{5, 40} { // each event under MaxEventBytes
		over := stream("bytes")
		_, err := s.Append(ctxT(t), over, eventlog.NoStream(), fill(n, 1)...)
		if !errors.Is(err, eventlog.ErrAppendTooLarge) || domain.KindOf(err) != domain.KindTooLarge {
			t.Fatalf("%d events of MaxAppendBytes+1: err = %v, want ErrAppendTooLarge", n, err)
		}
		if got := mustRead(t, s, over); len(got) != 0 {
			t.Fatalf("a refused append wrote %d events", len(got))
		}
		at := stream("bytes")
		evs := fill(n, 0)
		mustAppend(t, s, at, eventlog.NoStream(), evs...)
		checkStream(t, s, at, dataIDs(evs))
	}
}

func testCancelledAppend(t *testing.T, _ Config, s eventlog.Store) {
	st := stream("cancelled")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, st, eventlog.Any(), event("T", "x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled context: err = %v, want context.Canceled", err)
	}
	if got := mustRead(t, s, st); len(got) != 0 {
		t.Fatalf("an append with a cancelled context wrote %d events", len(got))
	}
}

func testSubscriptionLive(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("sub")
	head := mustHead(t, s)
	history := events(5, "T")
	mustAppend(t, s, prefix+"_a", eventlog.NoStream(), history...)
	sub := mustSubscribe(t, s, ctxT(t), head, eventlog.Filter{StreamPrefixes: []string{prefix}})
	got := mustCollect(t, sub, 5)
	live := events(5, "T")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, e := range live {
			// Events the filter does not select, in between.
			if _, err := s.Append(context.Background(), stream("unrelated"), eventlog.Any(), event("T", "noise")); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Append(context.Background(), prefix+"_b", eventlog.Any(), e); err != nil {
				t.Error(err)
				return
			}
			if i == 2 {
				time.Sleep(20 * time.Millisecond) // the subscriber waits for live events
			}
		}
	}()
	got = append(got, mustCollect(t, sub, 5)...)
	<-done
	want := append(dataIDs(history), dataIDs(live)...)
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Fatalf("history then live (-want +got):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Fatalf("out of order at %d: %d after %d", i, got[i].Position, got[i-1].Position)
		}
	}
	mustBeQuiet(t, sub, 50*time.Millisecond)
}

// testSubscriptionCatchUpRace subscribes while writers append, so the
// subscription moves from history to live events under load: every event
// arrives once, in order.
func testSubscriptionCatchUpRace(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("catchup")
	head := mustHead(t, s)
	const writers, each = 4, 40
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Append(context.Background(), fmt.Sprintf("%s_%d", prefix, w), eventlog.Any(), event("T", "x")); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	time.Sleep(5 * time.Millisecond) // some history first
	sub := mustSubscribe(t, s, ctxT(t), head, eventlog.Filter{StreamPrefixes: []string{prefix}})
	got := mustCollect(t, sub, writers*each)
	wg.Wait()
	seen := map[uuid.UUID]bool{}
	for i, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s delivered twice", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.Position <= got[i-1].Position {
			t.Fatalf("out of order at %d: %d after %d", i, e.Position, got[i-1].Position)
		}
	}
	if diff := cmp.Diff(ids(inStream(mustReadAll(t, s, head), prefix)), ids(got)); diff != "" {
		t.Fatalf("subscription against read all (-want +got):\n%s", diff)
	}
	mustBeQuiet(t, sub, 50*time.Millisecond)
}

func testSubscriptionFilters(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("filt")
	head := mustHead(t, s)
	type in struct{ stream, typ string }
	input := []in{{prefix + "x-1", "A"}, {prefix + "y-1", "A"}, {prefix + "x-2", "B"}, {prefix + "y-2", "B"}, {prefix + "x-3", "A"}, {prefix + "z-1", "C"}}
	var all []eventlog.EventData
	for _, i := range input {
		e := event(i.typ, "f")
		all = append(all, e)
		mustAppend(t, s, i.stream, eventlog.Any(), e)
	}
	tests := []struct {
		name   string
		filter eventlog.Filter
		mine   bool // keep only the suite's events (the filter selects others' too)
		want   []int
	}{
		{"no filter", eventlog.Filter{}, true, []int{0, 1, 2, 3, 4, 5}},
		{"stream prefix", eventlog.Filter{StreamPrefixes: []string{prefix + "x"}}, false, []int{0, 2, 4}},
		{"two stream prefixes", eventlog.Filter{StreamPrefixes: []string{prefix + "x-1", prefix + "y-2"}}, false, []int{0, 3}},
		{"event type", eventlog.Filter{EventTypes: []string{"B"}}, true, []int{2, 3}},
		{"two event types", eventlog.Filter{StreamPrefixes: []string{prefix}, EventTypes: []string{"B", "C"}}, false, []int{2, 3, 5}},
		{"prefix and type", eventlog.Filter{StreamPrefixes: []string{prefix + "y"}, EventTypes: []string{"A"}}, false, []int{1}},
		{"prefix and type, last", eventlog.Filter{StreamPrefixes: []string{prefix + "x"}, EventTypes: []string{"B"}}, false, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := mustSubscribe(t, s, ctxT(t), head, tt.filter)
			var got []eventlog.RecordedEvent
			if tt.mine {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for len(got) < len(tt.want) {
					e, err := sub.Next(ctx)
					if err != nil {
						t.Fatalf("after %d events: %v", len(got), err)
					}
					if !tt.filter.Match(e.StreamID, e.Type) {
						t.Fatalf("the filter does not select %s in %s", e.Type, e.StreamID)
					}
					if strings.HasPrefix(e.StreamID, prefix) {
						got = append(got, e)
					}
				}
			} else {
				got = mustCollect(t, sub, len(tt.want))
				mustBeQuiet(t, sub, 50*time.Millisecond)
			}
			want := make([]uuid.UUID, len(tt.want))
			for i, j := range tt.want {
				want[i] = all[j].ID
			}
			if diff := cmp.Diff(want, ids(got)); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("live events filtered", func(t *testing.T) {
		sub := mustSubscribe(t, s, ctxT(t), mustHead(t, s), eventlog.Filter{StreamPrefixes: []string{prefix + "x"}, EventTypes: []string{"A"}})
		wanted := event("A", "live")
		mustAppend(t, s, prefix+"y-1", eventlog.Any(), event("A", "other stream"))
		mustAppend(t, s, prefix+"x-1", eventlog.Any(), event("B", "other type"))
		mustAppend(t, s, prefix+"x-9", eventlog.Any(), wanted)
		if got := mustCollect(t, sub, 1); got[0].ID != wanted.ID {
			t.Fatalf("got %s in %s, want the live A in x-9", got[0].Type, got[0].StreamID)
		}
		mustBeQuiet(t, sub, 50*time.Millisecond)
	})
}

func testSubscriptionResume(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("resume")
	head := mustHead(t, s)
	evs := events(30, "T")
	for i, e := range evs[:20] {
		// Interleave unselected events so that positions have holes for the filter.
		mustAppend(t, s, fmt.Sprintf("%s_%d", prefix, i%3), eventlog.Any(), e)
		mustAppend(t, s, stream("unrelated"), eventlog.Any(), event("T", "noise"))
	}
	filter := eventlog.Filter{StreamPrefixes: []string{prefix}}
	var got []eventlog.RecordedEvent
	checkpoint := head
	for _, n := range []int{8, 7, 5} { // stop and resume twice in history, then go live
		ctx, cancel := context.WithCancel(context.Background())
		sub := mustSubscribe(t, s, ctx, checkpoint, filter)
		page := mustCollect(t, sub, n)
		_ = sub.Close()
		cancel()
		got = append(got, page...)
		checkpoint = page[len(page)-1].Position
	}
	sub := mustSubscribe(t, s, ctxT(t), checkpoint, filter)
	go func() {
		for i, e := range evs[20:] {
			if _, err := s.Append(context.Background(), fmt.Sprintf("%s_%d", prefix, i%3), eventlog.Any(), e); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	got = append(got, mustCollect(t, sub, 10)...)
	if diff := cmp.Diff(dataIDs(evs), ids(got)); diff != "" {
		t.Fatalf("resumed from checkpoints (-want +got):\n%s", diff)
	}
	mustBeQuiet(t, sub, 50*time.Millisecond)
}

// testSubscriptionCancellation ends subscriptions every way the port allows,
// while Next is blocked, and checks that Next returns and nothing leaks.
func testSubscriptionCancel(t *testing.T, _ Config, s eventlog.Store) {
	// Warm up first: an adapter may connect lazily or run background
	// goroutines of its own, which are not a subscription's leak.
	head := mustHead(t, s)
	warm := mustSubscribe(t, s, context.Background(), head, eventlog.Filter{StreamPrefixes: []string{stream("warm")}})
	mustBeQuiet(t, warm, 10*time.Millisecond)
	_ = warm.Close()
	leaks := goleak.IgnoreCurrent()

	tests := []struct {
		name string
		want error
		// end ends the subscription while Next(nextCtx) is blocked.
		end func(sub eventlog.Subscription, cancelSubscribe, cancelNext context.CancelFunc)
	}{
		{"subscribe context cancelled", context.Canceled, func(_ eventlog.Subscription, cs, _ context.CancelFunc) { cs() }},
		{"next context cancelled", context.Canceled, func(_ eventlog.Subscription, _, cn context.CancelFunc) { cn() }},
		{"subscription closed", context.Canceled, func(sub eventlog.Subscription, _, _ context.CancelFunc) { _ = sub.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 5
			var wg sync.WaitGroup
			errs := make(chan error, n)
			var subs []eventlog.Subscription
			for i := 0; i < n; i++ {
				subCtx, cancelSub := context.WithCancel(context.Background())
				nextCtx, cancelNext := context.WithCancel(context.Background())
				defer cancelSub()
				defer cancelNext()
				sub, err := s.Subscribe(subCtx, head, eventlog.Filter{StreamPrefixes: []string{stream("never")}})
				if err != nil {
					t.Fatal(err)
				}
				subs = append(subs, sub)
				blocked := make(chan struct{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					close(blocked)
					_, err := sub.Next(nextCtx)
					errs <- err
				}()
				<-blocked
				time.Sleep(2 * time.Millisecond) // let Next block
				tt.end(sub, cancelSub, cancelNext)
			}
			for i := 0; i < n; i++ {
				select {
				case err := <-errs:
					if !errors.Is(err, tt.want) {
						t.Fatalf("Next returned %v, want %v", err, tt.want)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Next did not return after the subscription ended")
				}
			}
			wg.Wait()
			for _, sub := range subs {
				if err := sub.Close(); err != nil {
					t.Fatalf("close: %v", err)
				}
				if err := sub.Close(); err != nil {
					t.Fatalf("second close: %v", err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := sub.Next(ctx)
				cancel()
				if err == nil || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Next after Close: %v, want an immediate error", err)
				}
			}
		})
	}
	t.Run("close concurrent with next", func(t *testing.T) {
		sub := mustSubscribe(t, s, context.Background(), head, eventlog.Filter{StreamPrefixes: []string{stream("never")}})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = sub.Next(context.Background()) }()
		go func() { defer wg.Done(); _ = sub.Close() }()
		wg.Wait()
	})
	goleak.VerifyNone(t, leaks)
}

func testStoreClose(t *testing.T, _ Config, s eventlog.Store) {
	head := mustHead(t, s)
	sub := mustSubscribe(t, s, context.Background(), head, eventlog.Filter{StreamPrefixes: []string{stream("never")}})
	errs := make(chan error, 1)
	go func() {
		_, err := sub.Next(context.Background())
		errs <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, eventlog.ErrClosed) {
			t.Fatalf("Next after the store closed: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after the store closed")
	}
	if _, err := s.Append(ctxT(t), stream("closed"), eventlog.Any(), event("T", "x")); !errors.Is(err, eventlog.ErrClosed) || domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("append after close: %v, want ErrClosed (unavailable)", err)
	}
}
