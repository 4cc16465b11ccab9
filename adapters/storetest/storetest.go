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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

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
