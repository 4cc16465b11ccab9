package keystore

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
)

// workers is the concurrency of the benchmarks: the server's request
// goroutines, not GOMAXPROCS.
const workers = 64

// parallel runs fn b.N times over exactly workers goroutines and reports ops/s.
func parallel(b *testing.B, fn func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := fn(int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// preSeal makes n subjects' keys and one ciphertext each; with index, a
// blind-index entry each too, as a raise does.
func preSeal(b *testing.B, s *Store, n int, index bool) ([]uuid.UUID, [][]byte) {
	b.Helper()
	ids := make([]uuid.UUID, n)
	cts := make([][]byte, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				ids[i] = uuid.New()
				ct, err := s.Seal(context.Background(), ids[i], []byte("Johanna de Vries, Dorpsstraat 7"))
				if err != nil {
					b.Error(err)
					return
				}
				cts[i] = ct
				if index {
					tok := s.BlindIndex().Token("Persoon "+ids[i].String(), "1950-01-01")
					if err := s.Put(context.Background(), "net", tok, ids[i]); err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return ids, cts
}

// A raise creates a subject: a new key, made durable, group-committed.
func BenchmarkSealNewSubjects(b *testing.B) {
	s := openStore(b, b.TempDir(), newMaster(b), Options{})
	pt := []byte("Johanna de Vries, Dorpsstraat 7")
	ctx := context.Background()
	parallel(b, func(int) error {
		_, err := s.Seal(ctx, uuid.New(), pt)
		return err
	})
}

func BenchmarkSealExistingSubjects(b *testing.B) {
	s := openStore(b, b.TempDir(), newMaster(b), Options{})
	ids, _ := preSeal(b, s, 10_000, false)
	pt := []byte("een notitie bij de zaak")
	ctx := context.Background()
	parallel(b, func(i int) error {
		_, err := s.Seal(ctx, ids[(i*7919)%len(ids)], pt)
		return err
	})
}

func BenchmarkOpenExistingSubjects(b *testing.B) {
	s := openStore(b, b.TempDir(), newMaster(b), Options{})
	ids, cts := preSeal(b, s, 10_000, false)
	ctx := context.Background()
	parallel(b, func(i int) error {
		j := (i * 7919) % len(ids)
		_, err := s.Open(ctx, ids[j], cts[j])
		return err
	})
}

// Opens of subjects mostly out of the cache: a read from Pebble and an
// unwrap each.
func BenchmarkOpenColdCache(b *testing.B) {
	s := openStore(b, b.TempDir(), newMaster(b), Options{CacheSize: 1024})
	ids, cts := preSeal(b, s, 20_000, false)
	ctx := context.Background()
	parallel(b, func(i int) error {
		j := (i * 7919) % len(ids)
		_, err := s.Open(ctx, ids[j], cts[j])
		return err
	})
}

// One Shred at a time in a store of 100,000 subjects with index entries
// (flushed and compacted), with its check of the files. A shred's batch
// spans the key and index ranges, so each purge rewrites most of the store:
// the cost grows with the store.
func BenchmarkShred(b *testing.B) {
	s := openStore(b, b.TempDir(), newMaster(b), Options{})
	ids, _ := preSeal(b, s, 100_000, true)
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	if b.N > len(ids) {
		b.Fatalf("b.N %d beyond the %d subjects", b.N, len(ids))
	}
	b.ResetTimer()
	for i := range b.N {
		if err := s.Shred(context.Background(), ids[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "shreds/s")
}

// Concurrent Shreds share a purge.
func BenchmarkShredConcurrent(b *testing.B) {
	s := openStore(b, b.TempDir(), newMaster(b), Options{})
	ids, _ := preSeal(b, s, 100_000, true)
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	if b.N > len(ids) {
		b.Fatalf("b.N %d beyond the %d subjects", b.N, len(ids))
	}
	parallel(b, func(i int) error { return s.Shred(context.Background(), ids[i]) })
}
