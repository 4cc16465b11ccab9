package keystore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs/crashfs"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestKeysAndErasuresSurvivePowerLoss: writers create keys (a first Seal)
// and shred them while the power is cut at a random moment: an operation
// of the key store's directory, the erased-subjects file or the master
// key's, chosen at random among the first few hundred. The store on what
// the cut left must open and hold every key a Seal returned with, every
// erasure a Shred returned from (and the erased-subjects file must list
// it), and the same master key.
func TestKeysAndErasuresSurvivePowerLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	modes := []crashfs.Mode{crashfs.PowerCut, crashfs.PowerCut, crashfs.Partial, crashfs.Kill}
	for round := range 12 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			cutKeysAt(t, rand.New(rand.NewPCG(rng.Uint64(), 1)), modes[round%len(modes)])
		})
	}
}

func cutKeysAt(t *testing.T, rng *rand.Rand, mode crashfs.Mode) {
	const (
		masterPath = "/srv/secrets/master-key.json"
		dir        = "/srv/data/keys"
		erasedPath = "/srv/data.erased-subjects"
	)
	fs := crashfs.New()
	ctx := context.Background()

	var (
		mu      sync.Mutex
		sealed  = map[uuid.UUID][]byte{} // acknowledged first Seals: ciphertext
		erased  = map[uuid.UUID]bool{}   // acknowledged Shreds
		started = map[uuid.UUID]bool{}   // Shreds begun
		got     struct {
			fs            *crashfs.FS
			sealed        map[uuid.UUID][]byte
			erased, begun map[uuid.UUID]bool
			ops           int
			op            crashfs.Op
		}
	)
	cutAt := 1 + rng.IntN(400)
	ops := 0
	fs.SetHook(func(op crashfs.Op) {
		if !strings.HasPrefix(op.Path, "/srv") {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		ops++
		if ops != cutAt {
			return
		}
		got.sealed, got.erased, got.begun = maps.Clone(sealed), maps.Clone(erased), maps.Clone(started)
		got.fs, got.ops, got.op = fs.Crash(mode, rng), ops, op
	})

	master, err := LoadOrCreateMasterKey(fs, masterPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, master, Options{FS: fs, ErasedFile: erasedPath})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if w == 0 && i%3 == 2 { // the first writer also shreds
					mu.Lock()
					var victim uuid.UUID
					for id := range sealed {
						if !started[id] {
							victim = id
							break
						}
					}
					if victim != uuid.Nil {
						started[victim] = true
					}
					mu.Unlock()
					if victim != uuid.Nil {
						if err := s.Shred(ctx, victim); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						erased[victim] = true
						mu.Unlock()
						continue
					}
				}
				id := uuid.New()
				ct, err := s.Seal(ctx, id, []byte("gegevens "+id.String()))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sealed[id] = ct
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		done := got.fs != nil || ops > cutAt
		mu.Unlock()
		if done || t.Failed() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got.fs == nil {
		t.Fatalf("the power was never cut (%d operations)", ops)
	}

	// What the cut left.
	cut := got.fs
	master2, err := LoadOrCreateMasterKey(cut, masterPath)
	if err != nil {
		t.Fatalf("master key after a %s at operation %d (%s %s): %v", mode, got.ops, got.op.Kind, got.op.Path, err)
	}
	if len(got.sealed) > 0 {
		sameKey(t, master, master2)
	}
	s2, err := Open(dir, master2, Options{FS: cut, ErasedFile: erasedPath})
	if err != nil {
		t.Fatalf("open after a %s at operation %d (%s %s): %v", mode, got.ops, got.op.Kind, got.op.Path, err)
	}
	defer s2.Close()
	listed, err := ReadErased(cut, erasedPath)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for id, ct := range got.sealed {
		if got.begun[id] {
			continue // erased or not: the shred was under way
		}
		if pt, err := s2.Open(ctx, id, ct); err != nil || string(pt) != "gegevens "+id.String() {
			lost++
			t.Errorf("a key acknowledged before the cut: %v", err)
		}
	}
	for id := range got.erased {
		if e, err := s2.Erased(ctx, id); err != nil || !e {
			t.Errorf("an erasure acknowledged before the cut is undone: erased %t, %v", e, err)
		}
		if _, err := s2.Open(ctx, id, got.sealed[id]); !errors.Is(err, domain.ErrErased) {
			t.Errorf("an erased subject's data opens: %v", err)
		}
		if !slices.Contains(listed, id) {
			t.Error("an erasure acknowledged before the cut is not in the erased-subjects file")
		}
	}
	t.Logf("%s at operation %d (%s %s): %d keys, %d erasures acknowledged, lost %d", mode, got.ops, got.op.Kind, got.op.Path,
		len(got.sealed), len(got.erased), lost)
}
