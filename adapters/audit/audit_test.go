package audit

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

type plainCipher struct{}

func (plainCipher) Seal(_ context.Context, _ uuid.UUID, p []byte) ([]byte, error) {
	return append([]byte("sealed:"), p...), nil
}
func (plainCipher) Open(_ context.Context, _ uuid.UUID, c []byte) ([]byte, error) {
	return bytes.TrimPrefix(c, []byte("sealed:")), nil
}
func (plainCipher) Shred(context.Context, uuid.UUID) error          { return nil }
func (plainCipher) Erased(context.Context, uuid.UUID) (bool, error) { return false, nil }

type fixedClock struct{ t atomic.Int64 }

func (c *fixedClock) now() time.Time { return time.Unix(0, c.t.Load()).UTC() }

// writeTrail records accesses from many goroutines over two days.
func writeTrail(t *testing.T) (eventlog.Store, []eventlog.RecordedEvent) {
	t.Helper()
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := &fixedClock{}
	clock.t.Store(time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC).UnixNano())
	log := New(store, plainCipher{}, "replica-1", clock.now)
	defer log.Close()
	for day := 0; day < 2; day++ {
		var wg sync.WaitGroup
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					a := domain.Access{AccessRecord: domain.AccessRecord{At: clock.now(), ActorID: "anna", ActorRole: "professional", Action: "read", View: "/v1/signals/{id}",
						Basis: domain.BasisTeam, Subjects: []uuid.UUID{uuid.New()}, Signals: []uuid.UUID{uuid.New()}, Outcome: "allowed", RequestID: "r"}}
					var err error
					if i%5 == 0 {
						a.Basis, a.Reason = domain.BasisBreakGlass, "waarneming"
					}
					if i%7 == 0 {
						err = log.RecordDenied(context.Background(), a)
					} else {
						err = log.RecordAccess(context.Background(), a)
					}
					if err != nil {
						t.Error(err)
					}
				}
			}(g)
		}
		wg.Wait()
		clock.t.Add(int64(2 * time.Hour)) // into the next day: a new stream
	}
	rep, err := Verify(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Streams != 2 || rep.Records != 320 {
		t.Fatalf("fresh trail: %+v", rep)
	}
	var events []eventlog.RecordedEvent
	all, err := store.ReadAll(context.Background(), 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.StreamID[:6] == "audit-" {
			events = append(events, e)
		}
	}
	return store, events
}

// TestTamperingIsDetected makes 1,000 random edits, deletions, reorders and
// truncations of audit records, and checks every one is found: a broken
// chain, or a head digest other than the one an operator stored.
func TestTamperingIsDetected(t *testing.T) {
	_, events := writeTrail(t)
	orig := VerifyEvents(events)
	rng := rand.New(rand.NewPCG(7, 11))
	kinds := map[string]int{}
	detected := 0
	const trials = 1000
	for trial := 0; trial < trials; trial++ {
		mut := make([]eventlog.RecordedEvent, len(events))
		for i, e := range events {
			e.Data = bytes.Clone(e.Data)
			mut[i] = e
		}
		i := rng.IntN(len(mut))
		kind := []string{"edit", "delete", "reorder", "truncate"}[rng.IntN(4)]
		kinds[kind]++
		switch kind {
		case "edit":
			d := mut[i].Data
			p := rng.IntN(len(d))
			d[p] ^= byte(1 + rng.IntN(255))
		case "delete":
			mut = slices.Delete(mut, i, i+1)
		case "reorder":
			j := rng.IntN(len(mut))
			for j == i || mut[j].StreamID != mut[i].StreamID {
				j = rng.IntN(len(mut))
			}
			mut[i].Data, mut[j].Data = mut[j].Data, mut[i].Data
		case "truncate":
			stream := mut[i].StreamID
			cut := 1 + rng.IntN(5)
			var kept []eventlog.RecordedEvent
			var last []int
			for k, e := range mut {
				if e.StreamID == stream {
					last = append(last, k)
				}
			}
			drop := map[int]bool{}
			for _, k := range last[len(last)-min(cut, len(last)):] {
				drop[k] = true
			}
			for k, e := range mut {
				if !drop[k] {
					kept = append(kept, e)
				}
			}
			mut = kept
		}
		rep := VerifyEvents(mut)
		if !rep.OK || rep.Head != orig.Head {
			detected++
		} else {
			t.Errorf("trial %d: %s of record %d not detected", trial, kind, i)
		}
	}
	t.Logf("tamper trials: %d (%v), detected: %d", trials, kinds, detected)
	if detected != trials {
		t.Fatalf("detected %d of %d", detected, trials)
	}
}

func TestRecordFailsClosedWhenTheStoreFails(t *testing.T) {
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := New(store, plainCipher{}, "r", time.Now)
	defer log.Close()
	if err := log.RecordAccess(context.Background(), domain.Access{AccessRecord: domain.AccessRecord{ActorID: "a", Outcome: "allowed"}}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	if err := log.RecordAccess(context.Background(), domain.Access{AccessRecord: domain.AccessRecord{ActorID: "a", Outcome: "allowed"}}); err == nil {
		t.Fatal("recorded on a closed store")
	}
}

func TestBreakGlassReasonIsSealed(t *testing.T) {
	_, events := writeTrail(t)
	for _, e := range events {
		if bytes.Contains(e.Data, []byte("waarneming")) {
			t.Fatal("a break-glass reason is in clear in the log")
		}
	}
}

// TestMain fails the run when a test leaves the writer goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// caseloadRead is an access record of a caseload page: 50 cases, each a
// subject and a signal.
func caseloadRead(at time.Time) domain.Access {
	a := domain.Access{AccessRecord: domain.AccessRecord{At: at, ActorID: "anna", ActorRole: "professional", Action: "read",
		View: "/v1/caseload", Purpose: "care", Basis: domain.BasisTeam, Outcome: "allowed", ClientAddr: "192.0.2.10",
		RequestID: uuid.NewString(), Network: "default"}}
	for range 50 {
		a.Subjects = append(a.Subjects, uuid.New())
		a.Signals = append(a.Signals, uuid.New())
	}
	return a
}

// recordAtOnce records n caseload reads from n goroutines while the store
// holds every call for a moment, so that they queue up for one group
// commit; it returns the errors.
func recordAtOnce(t *testing.T, log *Log, n int) []error {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs[i] = log.RecordAccess(ctx, caseloadRead(time.Now()))
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return failed
}

// TestGroupCommitsFitKurrentDBsMaximumAppendSize: 512 caseload reads at
// once, through the KurrentDB adapter, against the protocol test server with
// KurrentDB's default maximum append size (1 MiB), and against one set to a
// quarter of it. The writer's group commit of those records is over 2 MB;
// it splits it by bytes (and again when the server refuses a part), every
// record is written, and the chain verifies.
func TestGroupCommitsFitKurrentDBsMaximumAppendSize(t *testing.T) {
	one, err := domain.Encode(domain.RecordAccessed{AccessRecord: caseloadRead(time.Now()).AccessRecord})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("an access record listing 50 cases: %d bytes; %d of them fill MaxBatch", len(one), MaxBatch)
	for _, max := range []int{0, 256 << 10} {
		t.Run(fmt.Sprintf("max append size %d", max), func(t *testing.T) {
			srv := kurrenttest.StartWith(t, kurrenttest.Options{MaxAppendSize: max})
			store, err := kurrentdb.Open(context.Background(), srv.URL(), kurrentdb.Options{Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			log := New(store, plainCipher{}, "replica-1", time.Now)
			defer log.Close()
			srv.SetDelay(200 * time.Millisecond) // the first record's commit holds the writer: the rest queue up
			failed := recordAtOnce(t, log, MaxBatch)
			srv.SetDelay(0)
			if len(failed) > 0 {
				t.Fatalf("%d of %d records failed; the first: %v", len(failed), MaxBatch, failed[0])
			}
			rep, err := Verify(context.Background(), store)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK || rep.Records != MaxBatch {
				t.Fatalf("verify: %+v", rep)
			}
			t.Logf("%d records in %d appends", rep.Records, srv.Appends())
		})
	}
}

// failingStore fails the append calls after the first ok of them.
type failingStore struct {
	eventlog.Store
	mu      sync.Mutex
	ok      int
	appends int
}

func (f *failingStore) Append(ctx context.Context, stream string, exp eventlog.ExpectedVersion, evs ...eventlog.EventData) (eventlog.AppendResult, error) {
	f.mu.Lock()
	f.appends++
	fail := f.appends > f.ok
	f.mu.Unlock()
	if fail {
		return eventlog.AppendResult{}, eventlog.ErrUnavailable
	}
	return f.Store.Append(ctx, stream, exp, evs...)
}

// TestAPartlyWrittenGroupCommitAnswersEachRecord: a group commit split in
// several appends of which the second fails answers the records of the
// first as written and the others as failed (their reads fail closed); the
// next record continues the chain from what was written.
func TestAPartlyWrittenGroupCommitAnswersEachRecord(t *testing.T) {
	base, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	store := &failingStore{Store: base, ok: 1}
	log := New(store, plainCipher{}, "r", time.Now)
	defer log.Close()
	now := time.Now()
	batch := make([]*pending, 40)
	for i := range batch {
		rec := caseloadRead(now).AccessRecord
		batch[i] = &pending{event: domain.RecordAccessed{AccessRecord: rec}, rec: rec, done: make(chan error, 1)}
	}
	// Called the way the writer calls it, with a bound of about ten
	// records an append.
	log.maxBytes = 10 * 5000
	log.commit(batch)
	written := 0
	for i, p := range batch {
		err := <-p.done
		if err == nil {
			if i != written {
				t.Fatalf("record %d written after a failed one", i)
			}
			written++
		}
	}
	if written == 0 || written == len(batch) {
		t.Fatalf("%d of %d records written, want the first append's", written, len(batch))
	}
	store.mu.Lock()
	store.ok = 1 << 30
	store.mu.Unlock()
	if err := log.RecordAccess(context.Background(), caseloadRead(time.Now())); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Records != written+1 {
		t.Fatalf("%d written, then one: %+v", written, rep)
	}
}
