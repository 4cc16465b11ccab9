package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func master(t testing.TB) tink.AEAD {
	t.Helper()
	m, err := LoadOrCreateMasterKey(filepath.Join(t.TempDir(), "master.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func open(t testing.TB, dir string, m tink.AEAD) *Store {
	t.Helper()
	s, err := Open(dir, m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// anyFileContains reads every byte of every file under dir.
func anyFileContains(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil && bytes.Contains(data, needle) {
			hits = append(hits, filepath.Base(path))
		}
		return nil
	})
	return hits
}

func TestSealOpenShred(t *testing.T) {
	ctx := context.Background()
	dir, m := t.TempDir(), master(t)
	s := open(t, dir, m)
	subjects := make([]uuid.UUID, 50)
	sealed := map[uuid.UUID][]byte{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range subjects {
		subjects[i] = uuid.New()
		wg.Add(1)
		go func(id uuid.UUID, i int) {
			defer wg.Done()
			ct, err := s.Seal(ctx, id, []byte(fmt.Sprintf("geheim-%d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			sealed[id] = ct
			mu.Unlock()
		}(subjects[i], i)
	}
	wg.Wait()
	if n, _ := s.Count(); n != len(subjects) {
		t.Fatalf("%d keys, want %d", n, len(subjects))
	}
	victim := subjects[7]
	wrapped, ok, err := s.get(keyKey(victim))
	if err != nil || !ok {
		t.Fatalf("no wrapped key: %v", err)
	}
	// A wrapped key only opens for its own subject.
	if _, err := s.unwrap(subjects[8], wrapped); err == nil {
		t.Fatal("a wrapped key opened for another subject")
	}
	if err := s.Shred(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if hits := anyFileContains(t, dir, wrapped); len(hits) > 0 {
		t.Fatalf("the shredded key's bytes are still in %v", hits)
	}
	if _, err := s.Open(ctx, victim, sealed[victim]); !errors.Is(err, domain.ErrErased) {
		t.Fatalf("open after shred: %v", err)
	}
	if _, err := s.Seal(ctx, victim, []byte("again")); !errors.Is(err, domain.ErrErased) {
		t.Fatalf("seal after shred: %v", err)
	}
	if erased, _ := s.Erased(ctx, victim); !erased {
		t.Fatal("not marked erased")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if hits := anyFileContains(t, dir, wrapped); len(hits) > 0 {
		t.Fatalf("after close, the shredded key's bytes are in %v", hits)
	}
	s = open(t, dir, m)
	defer s.Close()
	for i, id := range subjects {
		pt, err := s.Open(ctx, id, sealed[id])
		if id == victim {
			if !errors.Is(err, domain.ErrErased) {
				t.Fatalf("reopened: victim opens: %v", err)
			}
			continue
		}
		if err != nil || string(pt) != fmt.Sprintf("geheim-%d", i) {
			t.Fatalf("reopened: subject %d: %q %v", i, pt, err)
		}
	}
	// Shredding a subject that never had a key is fine and marks it.
	never := uuid.New()
	if err := s.Shred(ctx, never); err != nil {
		t.Fatal(err)
	}
	if erased, _ := s.Erased(ctx, never); !erased {
		t.Fatal("unknown subject not marked erased")
	}
}

func TestWrongMasterKeyFailsClearly(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, master(t))
	s.Close()
	if _, err := Open(dir, master(t), Options{}); err == nil {
		t.Fatal("opened with another master key")
	}
}

func TestNormalizeName(t *testing.T) {
	same := [][]string{
		{"J. de Vries-Bakker", "j de vries bakker", "  J  de   VRIES bakker "},
		{"Zoë Ĳzerman", "Zoe Ĳzerman", "ZOË ĳzerman"},
		{"Renée d'Ancona", "Renee dAncona", "renée d’ancona"},
		{"Mohammed El Idrissi", "mohammed el-idrissi"},
	}
	for _, group := range same {
		for _, n := range group[1:] {
			if NormalizeName(n) != NormalizeName(group[0]) {
				t.Errorf("%q -> %q, %q -> %q", group[0], NormalizeName(group[0]), n, NormalizeName(n))
			}
		}
	}
	if NormalizeName("Jan de Vries") == NormalizeName("Jan de Vriesen") {
		t.Error("different names normalize alike")
	}
	b := NewBlindIndex([]byte("k1"))
	if b.Token("Jan", "1950-01-01") == b.Token("Jan", "1950-01-02") {
		t.Error("birth date ignored")
	}
	if b.Token("Jan", "1950-01-01") == NewBlindIndex([]byte("k2")).Token("Jan", "1950-01-01") {
		t.Error("token does not depend on the key")
	}
}

func BenchmarkSealNewSubjects(b *testing.B) {
	s := open(b, b.TempDir(), master(b))
	defer s.Close()
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Seal(context.Background(), uuid.New(), []byte("naam en adres")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "seals/s")
}

func BenchmarkSealOpenExisting(b *testing.B) {
	s := open(b, b.TempDir(), master(b))
	defer s.Close()
	id := uuid.New()
	ct, _ := s.Seal(context.Background(), id, []byte("naam en adres"))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Open(context.Background(), id, ct); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "opens/s")
}

func TestBlindIndexEntriesGoWithTheKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, master(t))
	defer s.Close()
	a, b := uuid.New(), uuid.New()
	tokA := s.BlindIndex().Token("Johanna Pieterse", "1941-03-12")
	tokB := s.BlindIndex().Token("Kees van Dam", "1956-07-01")
	for _, x := range []struct {
		id  uuid.UUID
		tok string
	}{{a, tokA}, {b, tokB}} {
		if _, err := s.Seal(ctx, x.id, []byte("data")); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "net", x.tok, x.id); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, err := s.Find(ctx, "net", s.BlindIndex().Token("johanna  pieterse", "1941-03-12")); err != nil || !ok || got != a {
		t.Fatalf("find: %v %v %v", got, ok, err)
	}
	if _, ok, _ := s.Find(ctx, "other-network", tokA); ok {
		t.Fatal("found in another network")
	}
	if err := s.Shred(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Find(ctx, "net", tokA); ok {
		t.Fatal("an erased subject is still found")
	}
	if got, ok, _ := s.Find(ctx, "net", tokB); !ok || got != b {
		t.Fatal("another subject's entry went too")
	}
	if err := s.Put(ctx, "net", tokA, a); !errors.Is(err, domain.ErrErased) {
		t.Fatalf("indexing an erased subject: %v", err)
	}
}
