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
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

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
