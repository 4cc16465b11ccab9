package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs/crashfs"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// TestAcknowledgedAppendsSurvivePowerLoss: eight writers append while the
// power is cut in the middle of a group commit (before the k-th sync of the
// write-ahead log), or at any other operation. The store on what the cut
// left opens and holds every acknowledged append at its position and
// revision, with positions from 1 without a gap; after a partial cut
// (unsynced blocks and entries kept at random, in no order) it may instead
// refuse to open, with an error, never serve a wrong log.
func TestAcknowledgedAppendsSurvivePowerLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	modes := []crashfs.Mode{crashfs.PowerCut, crashfs.PowerCut, crashfs.PowerCut, crashfs.Partial, crashfs.Kill}
	for round := range 20 {
		mode := modes[round%len(modes)]
		t.Run(fmt.Sprintf("%d-%s", round, strings.ReplaceAll(mode.String(), " ", "-")), func(t *testing.T) {
			cutAppendsAt(t, rand.New(rand.NewPCG(rng.Uint64(), 1)), mode, round%2 == 0)
		})
	}
}

type ackedAppend struct {
	stream   string
	revision uint64
	position uint64
	id       uuid.UUID
}

func cutAppendsAt(t *testing.T, rng *rand.Rand, mode crashfs.Mode, walSyncs bool) {
	fs := crashfs.New()
	var (
		mu    sync.Mutex
		acked []ackedAppend
		cut   *crashfs.FS
		saw   []ackedAppend
		where string
		ops   int
	)
	k := 1 + rng.IntN(200)
	fs.SetHook(func(op crashfs.Op) {
		if walSyncs && !(op.Kind == crashfs.Sync && strings.HasSuffix(op.Path, ".log")) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if ops++; ops == k {
			saw, where = append([]ackedAppend(nil), acked...), fmt.Sprintf("%s %s", op.Kind, op.Path)
			cut = fs.Crash(mode, rng)
		}
	})
	st, err := Open("/srv/data/events", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("signal-%d", w)
			for ctx.Err() == nil {
				id := uuid.New()
				r, err := st.Append(ctx, stream, eventlog.Any(), eventlog.EventData{ID: id, Type: "T", Data: []byte(`{"w":1}`)})
				if err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				if cut == nil {
					acked = append(acked, ackedAppend{stream, r.NextRevision, r.Position, id})
				}
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		done := cut != nil
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if cut == nil {
		t.Fatalf("no cut in 5 s (%d operations)", ops)
	}

	got, err := Open("/srv/data/events", Options{FS: cut})
	if err != nil && mode == crashfs.Partial {
		t.Logf("%s at %s: refused to open: %v", mode, where, err)
		return
	}
	if err != nil {
		t.Fatalf("%s at %s: open: %v", mode, where, err)
	}
	defer got.Close()
	head, _ := got.Head(ctx)
	all, err := got.ReadAll(ctx, 0, int(head)+1)
	if err != nil {
		t.Fatalf("%s at %s: read the log: %v", mode, where, err)
	}
	for i, re := range all {
		if re.Position != uint64(i+1) {
			t.Fatalf("%s at %s: position %d at index %d: a gap", mode, where, re.Position, i)
		}
	}
	lost := 0
	for _, a := range saw {
		recs, err := got.ReadStream(ctx, a.stream, eventlog.Forwards, a.revision, 1)
		if err != nil && !errors.Is(err, eventlog.ErrStreamNotFound) {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].ID != a.id || recs[0].Position != a.position {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%s at %s: %d of %d acknowledged appends lost", mode, where, lost, len(saw))
	}
	t.Logf("%s at %s: %d acknowledged, head %d", mode, where, len(saw), head)
}

// TestCheckpointAfterACutInTheFirstOpen: a crash in the store's very first
// open, after its manifest and before its write-ahead log, leaves a
// database with no log to replay; Pebble opens it without a manifest writer
// of its own until the first flush. A checkpoint then must still open (it
// held an empty manifest before Checkpoint flushed first).
func TestCheckpointAfterACutInTheFirstOpen(t *testing.T) {
	fs := crashfs.New()
	var cut *crashfs.FS
	fs.SetHook(func(op crashfs.Op) {
		if cut == nil && op.Kind == crashfs.Create && strings.HasSuffix(op.Path, ".log") {
			cut = fs.Crash(crashfs.PowerCut, nil)
		}
	})
	st, err := Open("/srv/events", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if cut == nil {
		t.Fatal("the first open made no write-ahead log")
	}
	st, err = Open("/srv/events", Options{FS: cut})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Checkpoint("/srv/backup"); err != nil {
		t.Fatal(err)
	}
	cp, err := Open("/srv/backup", Options{FS: cut})
	if err != nil {
		t.Fatalf("open the checkpoint: %v", err)
	}
	if err := cp.Close(); err != nil {
		t.Fatal(err)
	}
}
