package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

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
