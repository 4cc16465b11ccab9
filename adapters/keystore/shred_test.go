package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

type subject struct {
	id    uuid.UUID
	token string
	plain string
	ct    []byte
}

// fill seals data for n subjects at once (group-committed) and indexes each.
func fill(t *testing.T, s *Store, n int) []subject {
	t.Helper()
	ctx := t.Context()
	subs := make([]subject, n)
	var wg sync.WaitGroup
	for i := range subs {
		subs[i] = subject{id: uuid.New(), plain: fmt.Sprintf("naam %d, Dorpsstraat %d", i, i)}
		subs[i].token = s.BlindIndex().Token("Persoon "+subs[i].id.String(), "1950-01-01")
		wg.Go(func() {
			var err error
			if subs[i].ct, err = s.Seal(ctx, subs[i].id, []byte(subs[i].plain)); err != nil {
				t.Error(err)
				return
			}
			if err := s.Put(ctx, "net", subs[i].token, subs[i].id); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return subs
}

// checkLive asserts every subject but the erased ones still opens and is found.
func checkLive(t *testing.T, s *Store, subs []subject, erased map[uuid.UUID]bool) {
	t.Helper()
	ctx := t.Context()
	for _, sub := range subs {
		pt, err := s.Open(ctx, sub.id, sub.ct)
		found, ok, ferr := s.Find(ctx, "net", sub.token)
		if erased[sub.id] {
			if !errors.Is(err, domain.ErrErased) {
				t.Fatalf("open of an erased subject: %v", err)
			}
			if _, err := s.Seal(ctx, sub.id, []byte("again")); !errors.Is(err, domain.ErrErased) {
				t.Fatalf("seal of an erased subject: %v", err)
			}
			if e, err := s.Erased(ctx, sub.id); err != nil || !e {
				t.Fatalf("erased: %v %v", e, err)
			}
			if ok || ferr != nil {
				t.Fatalf("an erased subject is found: %v %v", ok, ferr)
			}
			continue
		}
		if err != nil || string(pt) != sub.plain {
			t.Fatalf("open: %q %v", pt, err)
		}
		if !ok || ferr != nil || found != sub.id {
			t.Fatalf("find: %v %v %v", found, ok, ferr)
		}
	}
	if n, err := s.Count(); err != nil || n != len(subs)-len(erased) {
		t.Fatalf("count %d %v, want %d", n, err, len(subs)-len(erased))
	}
}

// Shred leaves no byte of the wrapped key, of the raw key or of the blind
// index token in any file, wherever the key was: only in the memtable and
// the write-ahead log, in a fresh table, or compacted to the bottom level.
func TestShredIsPhysical(t *testing.T) {
	placements := []struct {
		name  string
		place func(t *testing.T, s *Store) []subject // returns subjects it adds
	}{
		{"memtable and log", func(*testing.T, *Store) []subject { return nil }},
		{"flushed table", func(t *testing.T, s *Store) []subject {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{"bottom level", func(t *testing.T, s *Store) []subject {
			if err := s.db.Compact(t.Context(), []byte{0}, []byte{0xff}, false); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{"table, then more writes in the log", func(t *testing.T, s *Store) []subject {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
			return fill(t, s, 20)
		}},
	}
	for _, p := range placements {
		t.Run(p.name, func(t *testing.T) {
			ctx := t.Context()
			dir, m := t.TempDir(), newMaster(t)
			s := openStore(t, dir, m, Options{})
			subs := fill(t, s, 100)
			subs = append(subs, p.place(t, s)...)
			victim := subs[7]
			needles := append(keyNeedles(t, m, victim.id, storedKey(t, s, victim.id)), tokenNeedles(victim.token)...)
			if len(findOnDisk(t, dir, needles)) == 0 {
				t.Fatal("the victim's key is not on disk before the shred: the check sees nothing")
			}
			if err := s.Shred(ctx, victim.id); err != nil {
				t.Fatal(err)
			}
			if hits := findOnDisk(t, dir, needles); len(hits) > 0 {
				t.Fatalf("after Shred, on disk: %v", hits)
			}
			erased := map[uuid.UUID]bool{victim.id: true}
			checkLive(t, s, subs, erased)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if hits := findOnDisk(t, dir, needles); len(hits) > 0 {
				t.Fatalf("after Close, on disk: %v", hits)
			}
			s = openStore(t, dir, m, Options{})
			checkLive(t, s, subs, erased)
			if hits := findOnDisk(t, dir, needles); len(hits) > 0 {
				t.Fatalf("after reopen, on disk: %v", hits)
			}
		})
	}
}

// Keys are stored wrapped only: no raw subject key is ever on disk.
func TestRawKeysNeverOnDisk(t *testing.T) {
	dir, m := t.TempDir(), newMaster(t)
	s := openStore(t, dir, m, Options{})
	subs := fill(t, s, 50)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	var needles []needle
	for _, sub := range subs {
		needles = append(needles, needle{what: "raw key", bytes: rawKey(t, m, sub.id, storedKey(t, s, sub.id))})
	}
	if hits := findOnDisk(t, dir, needles); len(hits) > 0 {
		t.Fatalf("raw keys on disk: %v", hits)
	}
}

func TestShredOfUnknownOrErasedSubjectIsIdempotent(t *testing.T) {
	ctx := t.Context()
	dir, m := t.TempDir(), newMaster(t)
	s := openStore(t, dir, m, Options{})
	subs := fill(t, s, 3)
	never := uuid.New()
	for range 2 {
		if err := s.Shred(ctx, never); err != nil {
			t.Fatal(err)
		}
		if err := s.Shred(ctx, subs[0].id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []uuid.UUID{never, subs[0].id} {
		if e, err := s.Erased(ctx, id); err != nil || !e {
			t.Fatalf("erased: %v %v", e, err)
		}
		if _, err := s.Seal(ctx, id, []byte("x")); !errors.Is(err, domain.ErrErased) {
			t.Fatalf("seal: %v", err)
		}
		if err := s.Put(ctx, "net", "token", id); !errors.Is(err, domain.ErrErased) {
			t.Fatalf("put: %v", err)
		}
	}
	if e, _ := s.Erased(ctx, uuid.New()); e {
		t.Fatal("a subject never shredded reads as erased")
	}
	checkLive(t, s, subs, map[uuid.UUID]bool{subs[0].id: true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, m, Options{})
	if e, err := s.Erased(ctx, never); err != nil || !e {
		t.Fatalf("after reopen, erased: %v %v", e, err)
	}
}

// Concurrent Shreds share one purge while new keys keep being made.
func TestConcurrentShredsAndSeals(t *testing.T) {
	ctx := t.Context()
	dir, m := t.TempDir(), newMaster(t)
	s := openStore(t, dir, m, Options{})
	subs := fill(t, s, 200)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	erased := map[uuid.UUID]bool{}
	var needles []needle
	for _, sub := range subs[:12] {
		erased[sub.id] = true
		needles = append(needles, keyNeedles(t, m, sub.id, storedKey(t, s, sub.id))...)
		needles = append(needles, tokenNeedles(sub.token)...)
	}
	stop := make(chan struct{})
	var sealers sync.WaitGroup
	for range 4 {
		sealers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Seal(ctx, uuid.New(), []byte("nieuw")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var shredders sync.WaitGroup
	for _, sub := range subs[:12] {
		shredders.Go(func() {
			if err := s.Shred(ctx, sub.id); err != nil {
				t.Error(err)
			}
		})
	}
	shredders.Wait()
	if hits := findOnDisk(t, dir, needles); len(hits) > 0 {
		t.Fatalf("after the Shreds, on disk: %v", hits)
	}
	close(stop)
	sealers.Wait()
	for _, sub := range subs {
		_, err := s.Open(ctx, sub.id, sub.ct)
		if erased[sub.id] != errors.Is(err, domain.ErrErased) || (!erased[sub.id] && err != nil) {
			t.Fatalf("open: %v (erased %v)", err, erased[sub.id])
		}
	}
}

// Pebble recycles write-ahead logs by default, which keeps a deleted value
// on disk; the store's configuration does not.
func TestWriteAheadLogsAreNotRecycled(t *testing.T) {
	ctx := t.Context()
	secret := make([]byte, 64)
	_, _ = rand.Read(secret)
	churn := func(t *testing.T, db *pebble.DB) {
		t.Helper()
		steps := []func() error{
			// Filler first, so the secret lies past what the next log's
			// first writes overwrite in a recycled file.
			func() error { return db.Set([]byte("aa"), make([]byte, 8<<10), pebble.Sync) },
			func() error { return db.Set([]byte("zz"), secret, pebble.Sync) },
			db.Flush,
			func() error { return db.Delete([]byte("zz"), pebble.Sync) },
			db.Flush,
			func() error { return db.Compact(ctx, []byte{0}, []byte{0xff}, false) },
			func() error { return db.Set([]byte("zy"), []byte("later"), pebble.Sync) },
			db.Flush,
		}
		for _, step := range steps {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("pebble default", func(t *testing.T) {
		dir := t.TempDir()
		db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		churn(t, db)
		if db.Metrics().WAL.ObsoleteFiles == 0 {
			t.Fatal("the default keeps no log for reuse: the premise changed")
		}
		if len(findOnDisk(t, dir, cut("secret", secret, 8))) == 0 {
			t.Fatal("the default left no trace of the deleted value: the premise changed")
		}
	})
	t.Run("key store", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir, newMaster(t), Options{})
		churn(t, s.db)
		if n := s.db.Metrics().WAL.ObsoleteFiles; n != 0 {
			t.Fatalf("%d logs kept for reuse", n)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(findOnDisk(t, dir, cut("secret", secret, 8))) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the deleted value stays on disk: %v", findOnDisk(t, dir, cut("secret", secret, 8)))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := os.Stat(filepath.Join(dir, "archive")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("an archive directory: %v", err)
		}
		if n := s.fs.failures.Load(); n != 0 {
			t.Fatalf("%d files could not be zeroed", n)
		}
	})
}

// A purge that cannot finish in time (a reader holds the old table) fails
// with ErrShredIncomplete; the subject is erased all the same, and the purge
// resumes at the next Shred, or at the next Open after a restart.
func TestInterruptedPurgeResumes(t *testing.T) {
	for _, resume := range []string{"shred again", "reopen"} {
		t.Run(resume, func(t *testing.T) {
			ctx := t.Context()
			dir, m := t.TempDir(), newMaster(t)
			s, err := Open(dir, m, Options{ShredTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			subs := fill(t, s, 20)
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
			victim := subs[3]
			needles := keyNeedles(t, m, victim.id, storedKey(t, s, victim.id))
			it, err := s.db.NewIter(nil) // pins the table that holds the key
			if err != nil {
				t.Fatal(err)
			}
			err = s.Shred(ctx, victim.id)
			wantErr(t, err, domain.KindInternal, ErrShredIncomplete.Code)
			if len(findOnDisk(t, dir, needles)) == 0 {
				t.Fatal("the pinned table is gone: the test proves nothing")
			}
			if _, err := s.Open(ctx, victim.id, victim.ct); !errors.Is(err, domain.ErrErased) {
				t.Fatalf("open after a failed purge: %v", err)
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			switch resume {
			case "shred again":
				if err := s.Shred(ctx, victim.id); err != nil {
					t.Fatal(err)
				}
			case "reopen":
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if s, err = Open(dir, m, Options{}); err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			if hits := findOnDisk(t, dir, needles); len(hits) > 0 {
				t.Fatalf("after resuming, on disk: %v", hits)
			}
			if _, ok, _ := s.get(pendingKey(victim.id)); ok {
				t.Fatal("the pending marker stays")
			}
			checkLive(t, s, subs, map[uuid.UUID]bool{victim.id: true})
		})
	}
}

// A crash between the erasure and the purge leaves a pending marker; Open
// purges before it returns.
func TestCrashBeforePurgeIsPurgedAtOpen(t *testing.T) {
	dir, m := t.TempDir(), newMaster(t)
	s := openStore(t, dir, m, Options{})
	subs := fill(t, s, 20)
	if err := s.db.Compact(t.Context(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	victim := subs[5]
	needles := keyNeedles(t, m, victim.id, storedKey(t, s, victim.id))
	// What erase writes, without the purge that would follow.
	b := s.db.NewBatch()
	_ = b.Set(keyKey(victim.id), nil, nil)
	_ = b.Set(pendingKey(victim.id), nil, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	s.live.Add(-1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(findOnDisk(t, dir, needles)) == 0 {
		t.Fatal("the key is gone without a purge: the test proves nothing")
	}
	s = openStore(t, dir, m, Options{})
	if hits := findOnDisk(t, dir, needles); len(hits) > 0 {
		t.Fatalf("after Open, on disk: %v", hits)
	}
	if _, ok, _ := s.get(pendingKey(victim.id)); ok {
		t.Fatal("the pending marker stays")
	}
	// The crash lost the index entries' deletion: only the key is checked.
	if _, err := s.Open(t.Context(), victim.id, victim.ct); !errors.Is(err, domain.ErrErased) {
		t.Fatalf("open: %v", err)
	}
	if n, _ := s.Count(); n != 19 {
		t.Fatalf("count %d, want 19", n)
	}
}

func TestShredHonoursACanceledContext(t *testing.T) {
	s := openStore(t, t.TempDir(), newMaster(t), Options{})
	id := uuid.New()
	if _, err := s.Seal(t.Context(), id, []byte("x")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	wantErr(t, s.Shred(ctx, id), domain.KindUnavailable, "canceled")
	if e, _ := s.Erased(t.Context(), id); e {
		t.Fatal("a canceled Shred erased the subject")
	}
}
