package clusterkeys

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
)

// The benchmarks run against the in-repo test server on loopback: they
// measure the store's own round trips and work, not a real cluster's
// latency (a real one adds its network and its disk's fsync per append).

func benchStore(b *testing.B) *Store {
	b.Helper()
	return open(b, kurrenttest.Start(b).URL(), newMaster(b), testOpts)
}

var plaintext = []byte("Testpersoon de Vries, Dorpsstraat 7")

// A raise's first Seal: a read that finds no key, a new key appended.
func BenchmarkSealNewSubject(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Seal(ctx, uuid.New(), plaintext); err != nil {
			b.Fatal(err)
		}
	}
}

// Opens of a key in this replica's cache: no I/O.
func BenchmarkOpenCached(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	id := uuid.New()
	ct, err := s.Seal(ctx, id, plaintext)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Open(ctx, id, ct); err != nil {
			b.Fatal(err)
		}
	}
}

// Opens of a key not in the cache: a read of its stream and an unwrap.
func BenchmarkOpenFromCluster(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	id := uuid.New()
	ct, err := s.Seal(ctx, id, plaintext)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s.cache.Clear()
		if _, err := s.Open(ctx, id, ct); err != nil {
			b.Fatal(err)
		}
	}
}

// A raise about a new resident: Find (a miss), Seal (a new key), Put.
func BenchmarkRaiseNewResident(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		id := uuid.New()
		tok := s.BlindIndex().Token("Testpersoon "+id.String(), "1950-01-01")
		if _, ok, err := s.Find(ctx, "net", tok); err != nil || ok {
			b.Fatal(ok, err)
		}
		if _, err := s.Seal(ctx, id, plaintext); err != nil {
			b.Fatal(err)
		}
		if err := s.Put(ctx, "net", tok, id); err != nil {
			b.Fatal(err)
		}
	}
}

// New subjects' Seals from 64 goroutines, as the server's requests make
// them.
func BenchmarkSealNewSubjectsParallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Seal(ctx, uuid.New(), plaintext); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "seals/s")
}
