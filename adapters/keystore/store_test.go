package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func TestSealOpenRoundTripAndReopen(t *testing.T) {
	ctx := t.Context()
	dir, m := t.TempDir(), newMaster(t)
	s := openStore(t, dir, m, Options{})
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{0}},
		{"name", []byte("Johanna de Vries-Bakker")},
		{"json", []byte(`{"name":"Ĳsbrand van 't Hof","birth_date":"1941-03-12"}`)},
		{"64 KiB", bytes.Repeat([]byte("x"), 64<<10)},
	}
	ids := map[string]uuid.UUID{}
	sealed := map[string][]byte{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uuid.New()
			ct, err := s.Seal(ctx, id, tt.plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.plaintext) > 4 && bytes.Contains(ct, tt.plaintext) {
				t.Fatal("the ciphertext holds the plaintext")
			}
			pt, err := s.Open(ctx, id, ct)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.plaintext, pt); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			ids[tt.name], sealed[tt.name] = id, ct
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, m, Options{})
	for _, tt := range tests {
		pt, err := s.Open(ctx, ids[tt.name], sealed[tt.name])
		if err != nil {
			t.Fatalf("%s after reopen: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.plaintext, pt); diff != "" {
			t.Fatalf("%s after reopen (-want +got):\n%s", tt.name, diff)
		}
	}
	if n, err := s.Count(); err != nil || n != len(tests) {
		t.Fatalf("count after reopen: %d %v, want %d", n, err, len(tests))
	}
}

// Many first Seals of one subject at once make one key, and every
// ciphertext opens.
func TestConcurrentFirstSealsMakeOneKey(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), newMaster(t), Options{})
	id := uuid.New()
	cts := make([][]byte, 64)
	var wg sync.WaitGroup
	for i := range cts {
		wg.Go(func() {
			ct, err := s.Seal(ctx, id, fmt.Appendf(nil, "geheim %d", i))
			if err != nil {
				t.Error(err)
			}
			cts[i] = ct
		})
	}
	wg.Wait()
	s.cache.Clear() // open with the stored key, not a cached one
	for i, ct := range cts {
		pt, err := s.Open(ctx, id, ct)
		if err != nil || string(pt) != fmt.Sprintf("geheim %d", i) {
			t.Fatalf("ciphertext %d: %q %v", i, pt, err)
		}
	}
	if n, _ := s.Count(); n != 1 {
		t.Fatalf("%d keys, want 1", n)
	}
}

// A wrapped key moved to another subject does not unwrap, and a ciphertext
// does not open for another subject.
func TestKeysAndCiphertextsAreBoundToTheirSubject(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), newMaster(t), Options{})
	a, b := uuid.New(), uuid.New()
	ctA, err := s.Seal(ctx, a, []byte("van a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seal(ctx, b, []byte("van b")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Open(ctx, b, ctA)
	wantErr(t, err, domain.KindInternal, ErrCiphertext.Code)

	if err := s.db.Set(keyKey(b), storedKey(t, s, a), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.cache.Clear()
	_, err = s.Open(ctx, b, ctA)
	wantErr(t, err, domain.KindInternal, ErrUnwrap.Code)
	_, err = s.Seal(ctx, b, []byte("x"))
	wantErr(t, err, domain.KindInternal, ErrUnwrap.Code)
}

// Every error is a *domain.Error of the documented kind, and no message
// carries plaintext or key bytes.
func TestErrorsAreClassified(t *testing.T) {
	ctx := t.Context()
	m := newMaster(t)
	s := openStore(t, t.TempDir(), m, Options{})
	secret := []byte("Johanna Geheim, Dorpsstraat 7")
	live, erased := uuid.New(), uuid.New()
	ct, err := s.Seal(ctx, live, secret)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := storedKey(t, s, live)
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-1] ^= 1
	if _, err := s.Seal(ctx, erased, secret); err != nil {
		t.Fatal(err)
	}
	if err := s.Shred(ctx, erased); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()

	tests := []struct {
		name string
		call func() error
		kind domain.Kind
		code string
	}{
		{"open tampered", func() error { _, err := s.Open(ctx, live, tampered); return err }, domain.KindInternal, ErrCiphertext.Code},
		{"open erased", func() error { _, err := s.Open(ctx, erased, ct); return err }, domain.KindNotFound, domain.ErrErased.Code},
		{"seal erased", func() error { _, err := s.Seal(ctx, erased, secret); return err }, domain.KindNotFound, domain.ErrErased.Code},
		{"put erased", func() error { return s.Put(ctx, "net", "t", erased) }, domain.KindNotFound, domain.ErrErased.Code},
		{"open without key", func() error { _, err := s.Open(ctx, uuid.New(), ct); return err }, domain.KindInternal, ErrKeyMissing.Code},
		{"seal canceled", func() error { _, err := s.Seal(canceled, uuid.New(), secret); return err }, domain.KindUnavailable, "canceled"},
		{"put bad network", func() error { return s.Put(ctx, "a\x00b", "t", live) }, domain.KindInvalid, "validation"},
		{"find empty token", func() error { _, _, err := s.Find(ctx, "net", ""); return err }, domain.KindInvalid, "validation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantErr(t, err, tt.kind, tt.code)
			msg := err.Error()
			for _, secret := range [][]byte{secret, wrapped, rawKey(t, m, live, wrapped)} {
				if strings.Contains(msg, string(secret)) || strings.Contains(msg, fmt.Sprintf("%x", secret)) {
					t.Fatalf("the message %q holds secret bytes", msg)
				}
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed := []struct {
		name string
		call func() error
	}{
		{"seal", func() error { _, err := s.Seal(ctx, live, secret); return err }},
		{"open", func() error { _, err := s.Open(ctx, live, ct); return err }},
		{"shred", func() error { return s.Shred(ctx, live) }},
		{"erased", func() error { _, err := s.Erased(ctx, live); return err }},
		{"count", func() error { _, err := s.Count(); return err }},
		{"find", func() error { _, _, err := s.Find(ctx, "net", "t"); return err }},
		{"put", func() error { return s.Put(ctx, "net", "t", live) }},
	}
	for _, tt := range closed {
		if err := tt.call(); !errors.Is(err, ErrClosed) || domain.KindOf(err) != domain.KindUnavailable {
			t.Errorf("%s after close: %v", tt.name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestCacheIsBoundedAndShredEmptiesIt(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), newMaster(t), Options{CacheSize: 10})
	ids := make([]uuid.UUID, 100)
	cts := make([][]byte, len(ids))
	for i := range ids {
		ids[i] = uuid.New()
		var err error
		if cts[i], err = s.Seal(ctx, ids[i], []byte("data")); err != nil {
			t.Fatal(err)
		}
		if n := s.cache.Len(); n > 10 {
			t.Fatalf("%d keys cached, bound 10", n)
		}
	}
	for i, id := range ids {
		if _, err := s.Open(ctx, id, cts[i]); err != nil {
			t.Fatal(err)
		}
	}
	last := ids[len(ids)-1]
	if _, ok := s.cache.Get(last); !ok {
		t.Fatal("the last key opened is not cached")
	}
	if err := s.Shred(ctx, last); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.cache.Get(last); ok {
		t.Fatal("a shredded key is still cached")
	}
}

// A store of the earlier layout (erased subjects as e<id>) opens with its
// subjects still erased.
func TestEarlierErasedMarkersMigrate(t *testing.T) {
	ctx := t.Context()
	dir, m := t.TempDir(), newMaster(t)
	s := openStore(t, dir, m, Options{})
	old := uuid.New()
	if err := s.db.Set(append([]byte{'e'}, old[:]...), nil, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, m, Options{})
	if erased, err := s.Erased(ctx, old); err != nil || !erased {
		t.Fatalf("erased: %v %v", erased, err)
	}
	if _, err := s.Seal(ctx, old, []byte("x")); !errors.Is(err, domain.ErrErased) {
		t.Fatalf("seal: %v", err)
	}
	if _, ok, _ := s.get(append([]byte{'e'}, old[:]...)); ok {
		t.Fatal("the old marker is still there")
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix, want []byte
	}{
		{[]byte("k"), []byte("l")},
		{[]byte{'r', 1, 0xff}, []byte{'r', 2}},
		{[]byte{'r', 0xff, 0xff}, []byte{'s'}},
		{[]byte{0xff}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, prefixEnd(tt.prefix)); diff != "" {
			t.Errorf("prefixEnd(%x) (-want +got):\n%s", tt.prefix, diff)
		}
	}
}

// Keys whose bytes after the prefix are 0xff are scanned too.
func TestScanPrefixReachesTheEnd(t *testing.T) {
	s := openStore(t, t.TempDir(), newMaster(t), Options{})
	var ids []uuid.UUID
	for _, first := range []byte{0x00, 0x7f, 0xff} {
		id := uuid.New()
		id[0] = first
		ids = append(ids, id)
		if err := s.db.Set(keyKey(id), []byte("w"), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	var got []uuid.UUID
	if err := s.scanPrefix([]byte{'k'}, func(k, _ []byte) error {
		got = append(got, uuid.UUID(k[1:]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Fatalf("scanned (-want +got):\n%s", diff)
	}
}
