package projections_test

// An external test package: it drives the runner through a real event
// store and the on-disk read-model store.

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/adapters/readstore"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// twice delivers every event twice, from reads and subscriptions alike.
type twice struct{ eventlog.Store }

func (s twice) ReadAll(ctx context.Context, after uint64, limit int) ([]eventlog.RecordedEvent, error) {
	recs, err := s.Store.ReadAll(ctx, after, limit)
	var out []eventlog.RecordedEvent
	for _, r := range recs {
		out = append(out, r, r)
	}
	return out, err
}

func (s twice) Subscribe(ctx context.Context, after uint64, f eventlog.Filter) (eventlog.Subscription, error) {
	sub, err := s.Store.Subscribe(ctx, after, f)
	return &twiceSub{Subscription: sub}, err
}

type twiceSub struct {
	eventlog.Subscription
	again *eventlog.RecordedEvent
}

func (s *twiceSub) Next(ctx context.Context) (eventlog.RecordedEvent, error) {
	if s.again != nil {
		r := *s.again
		s.again = nil
		return r, nil
	}
	r, err := s.Subscription.Next(ctx)
	if err == nil {
		s.again = &r
	}
	return r, err
}

// dying is a read-model store that fails every write from the given one on,
// as a process killed between applying a batch in memory and writing it.
type dying struct {
	projections.ReadStore
	left int // writes before the failure; negative: never
}

var errKilled = errors.New("killed")

func (d *dying) Write(b *projections.Batch) error {
	switch {
	case d.left == 0:
		return errKilled
	case d.left > 0:
		d.left--
	}
	return d.ReadStore.Write(b)
}

func openReadStore(t testing.TB, dir string) *readstore.Store {
	t.Helper()
	rs, err := readstore.Open(dir, readstore.Options{CacheBytes: 1 << 20, MemTableBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// runToHead runs the runner until it has applied the log's head.
func catchUpTo(t testing.TB, store eventlog.Store, s set) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.runner.Run(ctx) }()
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := s.runner.WaitFor(wctx, head); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
}

// TestKilledProjectorWithDuplicatesEqualsRebuild: the server is killed at
// random moments and started again, while events arrive live and every
// event is delivered twice. A kill stops the runner at a random moment
// (catching up, following, idle), or fails the write of a batch after its
// events were applied in memory; each restart builds new projections from
// the on-disk read models alone. At the end they equal a fresh rebuild.
func TestKilledProjectorWithDuplicatesEqualsRebuild(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		base := filepath.Join(t.TempDir(), rapid.StringMatching(`[a-z]{12}`).Draw(rt, "dir"))
		store, err := pebblestore.Open(filepath.Join(base, "events"), pebblestore.Options{NoSync: true})
		if err != nil {
			rt.Fatal(err)
		}
		defer store.Close()
		ctx := context.Background()
		steps := logScript(rapid.Uint64().Draw(rt, "seed"), rapid.IntRange(1, 14).Draw(rt, "signals"))
		next := rapid.IntRange(0, len(steps)).Draw(rt, "before")
		appendSteps(t, store, steps[:next])
		dir := filepath.Join(base, "readmodels")
		for round := rapid.IntRange(1, 6).Draw(rt, "kills"); round > 0; round-- {
			rs := &dying{ReadStore: openReadStore(t, dir), left: rapid.IntRange(-1, 4).Draw(rt, "writes before the kill")}
			live := newSet(twice{store})
			if _, err := live.runner.Open(ctx, rs, false); errors.Is(err, errKilled) {
				rs.Close() // killed while clearing a read model
				continue
			} else if err != nil {
				rt.Fatal(err)
			}
			runCtx, kill := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- live.runner.Run(runCtx) }()
			k := rapid.IntRange(0, 6).Draw(rt, "live")
			appendSteps(t, store, steps[next:min(next+k, len(steps))])
			next = min(next+k, len(steps))
			time.Sleep(time.Duration(rapid.IntRange(0, 3).Draw(rt, "ms")) * time.Millisecond)
			kill()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errKilled) {
				rt.Fatal(err)
			}
			if err := rs.Close(); err != nil {
				rt.Fatal(err)
			}
		}
		appendSteps(t, store, steps[next:])
		rs := openReadStore(t, dir)
		defer rs.Close()
		live := newSet(twice{store})
		if _, err := live.runner.Open(ctx, rs, false); err != nil {
			rt.Fatal(err)
		}
		catchUpTo(t, store, live)

		freshRS := openReadStore(t, filepath.Join(base, "fresh"))
		defer freshRS.Close()
		fresh := newSet(store)
		if _, err := fresh.runner.Open(ctx, freshRS, false); err != nil {
			rt.Fatal(err)
		}
		catchUpTo(t, store, fresh)
		if diff := snapshotDiff(fresh.snapshot(t), live.snapshot(t)); diff != "" {
			rt.Fatalf("after kills and duplicates (-rebuild +live):\n%s", diff)
		}
	})
}

// countingLog counts the events read from the log.
type countingLog struct {
	eventlog.Store
	read atomic.Int64
}

func (c *countingLog) ReadAll(ctx context.Context, after uint64, limit int) ([]eventlog.RecordedEvent, error) {
	recs, err := c.Store.ReadAll(ctx, after, limit)
	c.read.Add(int64(len(recs)))
	return recs, err
}

func (c *countingLog) Subscribe(ctx context.Context, after uint64, f eventlog.Filter) (eventlog.Subscription, error) {
	sub, err := c.Store.Subscribe(ctx, after, f)
	return &countingSub{Subscription: sub, read: &c.read}, err
}

type countingSub struct {
	eventlog.Subscription
	read *atomic.Int64
}

func (s *countingSub) Next(ctx context.Context) (eventlog.RecordedEvent, error) {
	r, err := s.Subscription.Next(ctx)
	if err == nil {
		s.read.Add(1)
	}
	return r, err
}

// TestRestartCatchesUpFromTheCheckpoint: a restart over the on-disk read
// models reads the log only after their checkpoint, and ends where a fresh
// rebuild ends; a read model whose stored version is not its code's is
// rebuilt on its own, and a store built from another log is rebuilt whole.
func TestRestartCatchesUpFromTheCheckpoint(t *testing.T) {
	dir := t.TempDir()
	store, err := pebblestore.Open(filepath.Join(dir, "events"), pebblestore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	steps := logScript(42, 60)
	half := len(steps) / 2
	appendSteps(t, store, steps[:half])
	rsDir := filepath.Join(dir, "readmodels")

	rs := openReadStore(t, rsDir)
	first := newSet(store)
	if cleared, err := first.runner.Open(ctx, rs, false); err != nil || len(cleared) != 0 {
		t.Fatalf("a new store: cleared %v, %v", cleared, err)
	}
	catchUpTo(t, store, first)
	checkpoint := first.runner.Position()
	rs.Close()

	appendSteps(t, store, steps[half:])
	head, _ := store.Head(ctx)
	rs = openReadStore(t, rsDir)
	log := &countingLog{Store: store}
	again := newSet(log)
	if cleared, err := again.runner.Open(ctx, rs, false); err != nil || len(cleared) != 0 {
		t.Fatalf("restart: cleared %v, %v", cleared, err)
	}
	if got := again.runner.Position(); got != checkpoint {
		t.Fatalf("restart resumes after %d, the checkpoint is %d", got, checkpoint)
	}
	catchUpTo(t, log, again)
	// The check of the log at the checkpoint reads one event.
	if read, want := log.read.Load(), int64(head-checkpoint); read > want+1 {
		t.Fatalf("restart read %d events of the log, %d were new", read, want)
	}
	if applied := again.runner.Applied(); applied != head-checkpoint {
		t.Fatalf("restart applied %d events, %d were new", applied, head-checkpoint)
	}
	freshRS := openReadStore(t, filepath.Join(dir, "fresh"))
	defer freshRS.Close()
	fresh := newSet(store)
	if _, err := fresh.runner.Open(ctx, freshRS, false); err != nil {
		t.Fatal(err)
	}
	catchUpTo(t, store, fresh)
	if diff := snapshotDiff(fresh.snapshot(t), again.snapshot(t)); diff != "" {
		t.Fatalf("restarted read models differ from a rebuild (-rebuild +restarted):\n%s", diff)
	}
	want := fresh.snapshot(t)
	rs.Close()

	// Another code version of the audit trail: only it is rebuilt.
	rs = openReadStore(t, rsDir)
	var b projections.Batch
	b.Set([]byte("!audit"), []byte{99, 1})
	if err := rs.Write(&b); err != nil {
		t.Fatal(err)
	}
	log = &countingLog{Store: store}
	bumped := newSet(log)
	if cleared, err := bumped.runner.Open(ctx, rs, false); err != nil || len(cleared) != 1 || cleared[0] != "audit" {
		t.Fatalf("after a version change: cleared %v, %v", cleared, err)
	}
	catchUpTo(t, log, bumped)
	if read := log.read.Load(); read < int64(head) {
		t.Fatalf("the audit trail was rebuilt from %d events of %d", read, head)
	}
	if diff := snapshotDiff(want, bumped.snapshot(t)); diff != "" {
		t.Fatalf("after rebuilding one read model (-rebuild +got):\n%s", diff)
	}
	rs.Close()

	// The same store against another log: everything is rebuilt.
	other, err := pebblestore.Open(filepath.Join(dir, "other"), pebblestore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	appendSteps(t, other, logScript(43, 60))
	rs = openReadStore(t, rsDir)
	defer rs.Close()
	moved := newSet(other)
	if cleared, err := moved.runner.Open(ctx, rs, false); err != nil || len(cleared) != 4 {
		t.Fatalf("against another log: cleared %v, %v", cleared, err)
	}
	catchUpTo(t, other, moved)
	otherRS := openReadStore(t, filepath.Join(dir, "other-fresh"))
	defer otherRS.Close()
	otherFresh := newSet(other)
	if _, err := otherFresh.runner.Open(ctx, otherRS, false); err != nil {
		t.Fatal(err)
	}
	catchUpTo(t, other, otherFresh)
	if diff := snapshotDiff(otherFresh.snapshot(t), moved.snapshot(t)); diff != "" {
		t.Fatalf("against another log (-rebuild +got):\n%s", diff)
	}
}

// recorded is the log of a script as the store records it.
func recorded(t testing.TB, steps []step) []eventlog.RecordedEvent {
	t.Helper()
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	appendSteps(t, store, steps)
	recs, err := store.ReadAll(context.Background(), 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func onDisk(t testing.TB) set {
	t.Helper()
	rs := openReadStore(t, t.TempDir())
	t.Cleanup(func() { rs.Close() })
	s := newSet(nil)
	if _, err := s.runner.Open(context.Background(), rs, false); err != nil {
		t.Fatal(err)
	}
	return s
}

func deliver(t testing.TB, s set, recs ...eventlog.RecordedEvent) {
	t.Helper()
	for _, re := range recs {
		if err := s.runner.Apply(re); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplayTwiceOnDiskGivesIdenticalReadModels: two replays of one log
// into on-disk read models answer alike, and so does a rebuild over the
// first one's store.
func TestReplayTwiceOnDiskGivesIdenticalReadModels(t *testing.T) {
	recs := recorded(t, logScript(1, 80))
	a, b := onDisk(t), onDisk(t)
	deliver(t, a, recs...)
	deliver(t, b, recs...)
	want := a.snapshot(t)
	if diff := snapshotDiff(want, b.snapshot(t)); diff != "" {
		t.Fatalf("two replays differ (-first +second):\n%s", diff)
	}
	again := newSet(nil)
	if cleared, err := again.runner.Open(context.Background(), a.runner.ReadStore(), true); err != nil || len(cleared) != 4 {
		t.Fatalf("rebuild: cleared %v, %v", cleared, err)
	}
	deliver(t, again, recs...)
	if diff := snapshotDiff(want, again.snapshot(t)); diff != "" {
		t.Fatalf("a rebuild over the same store differs (-first +rebuilt):\n%s", diff)
	}
	if n := again.cases.Len(); n != 80 {
		t.Fatalf("cases = %d, want 80", n)
	}
}

// TestDeliveringEveryEventTwiceOnDiskChangesNothing: every event delivered
// twice, and older ones again now and then (as after a resubscribe), leave
// the on-disk read models as one delivery does.
func TestDeliveringEveryEventTwiceOnDiskChangesNothing(t *testing.T) {
	recs := recorded(t, logScript(2, 80))
	once, dup := onDisk(t), onDisk(t)
	deliver(t, once, recs...)
	for i, re := range recs {
		deliver(t, dup, re, re)
		if i > 0 && i%3 == 0 {
			deliver(t, dup, recs[i/2:i]...)
		}
	}
	if diff := snapshotDiff(once.snapshot(t), dup.snapshot(t)); diff != "" {
		t.Fatalf("duplicate delivery changed the read models (-once +twice):\n%s", diff)
	}
}

// slowStore takes its time writing, as a busy disk does.
type slowStore struct{ projections.ReadStore }

func (s slowStore) Write(b *projections.Batch) error {
	time.Sleep(5 * time.Millisecond)
	return s.ReadStore.Write(b)
}

// TestLiveEventsAreWrittenInBatches: events that arrive while a batch is
// being written go into the next batch, so a burst costs a few writes, not
// one per event, and readers see every event once it is written.
func TestLiveEventsAreWrittenInBatches(t *testing.T) {
	ctx := context.Background()
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s := newSet(store)
	if _, err := s.runner.Open(ctx, slowStore{projections.NewMemoryStore()}, false); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.runner.Run(runCtx) }()
	defer func() { stop(); <-done }()
	if err := s.runner.WaitFor(ctx, 0); err != nil {
		t.Fatal(err)
	}
	before := s.runner.Writes()
	steps := logScript(5, 60)
	appendSteps(t, store, steps)
	head, _ := store.Head(ctx)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.runner.WaitFor(wctx, head); err != nil {
		t.Fatal(err)
	}
	writes := s.runner.Writes() - before
	if writes == 0 || writes > uint64(len(steps))/4 {
		t.Fatalf("%d appends were written in %d batches", len(steps), writes)
	}
	if got := s.cases.Len(); got != 60 {
		t.Fatalf("%d cases after the burst, want 60", got)
	}
}
