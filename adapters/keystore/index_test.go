package keystore

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func TestSubjectIndex(t *testing.T) {
	ctx := t.Context()
	dir, m := t.TempDir(), newMaster(t)
	s := openStore(t, dir, m, Options{})
	bi := s.BlindIndex()
	anna, kees, late := uuid.New(), uuid.New(), uuid.New()
	tokAnna := bi.Token("Johanna Pieterse", "1941-03-12")
	tokKees := bi.Token("Kees van Dam", "1956-07-01")
	for _, x := range []struct {
		id  uuid.UUID
		tok string
	}{{anna, tokAnna}, {kees, tokKees}} {
		if _, err := s.Seal(ctx, x.id, []byte("data")); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "net", x.tok, x.id); err != nil {
			t.Fatal(err)
		}
	}
	// A second Put of the same entry, and one for another subject, change nothing.
	if err := s.Put(ctx, "net", tokAnna, anna); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "net", tokAnna, late); err != nil {
		t.Fatal(err)
	}
	// Indexed before its first Seal: fine.
	if err := s.Put(ctx, "other", tokAnna, late); err != nil {
		t.Fatal(err)
	}
	finds := []struct {
		name, network, token string
		want                 uuid.UUID
		ok                   bool
	}{
		{"normalized alike", "net", bi.Token("johanna  PIETERSE", "12-03-1941"), anna, true},
		{"first subject wins", "net", tokAnna, anna, true},
		{"another subject", "net", tokKees, kees, true},
		{"another network", "other", tokAnna, late, true},
		{"unknown network", "elders", tokAnna, uuid.Nil, false},
		{"unknown token", "net", bi.Token("Niemand", "2000-01-01"), uuid.Nil, false},
	}
	check := func(t *testing.T) {
		t.Helper()
		for _, f := range finds {
			got, ok, err := s.Find(ctx, f.network, f.token)
			if err != nil || ok != f.ok || got != f.want {
				t.Errorf("%s: %v %v %v, want %v %v", f.name, got, ok, err, f.want, f.ok)
			}
		}
	}
	check(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, m, Options{})
	check(t)

	// late tried to take anna's token in "net": shredding late leaves
	// anna's entry alone, and shredding anna frees the token.
	if err := s.Shred(ctx, late); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := s.Find(ctx, "net", tokAnna); !ok || got != anna {
		t.Fatalf("shredding another subject took anna's entry: %v %v", got, ok)
	}
	if _, ok, _ := s.Find(ctx, "other", tokAnna); ok {
		t.Fatal("a shredded subject is still found")
	}
	if err := s.Shred(ctx, anna); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Find(ctx, "net", tokAnna); ok {
		t.Fatal("a shredded subject is still found")
	}
	if got, ok, _ := s.Find(ctx, "net", tokKees); !ok || got != kees {
		t.Fatal("another subject's entry went too")
	}
	if err := s.Put(ctx, "net", tokAnna, anna); !errors.Is(err, domain.ErrErased) {
		t.Fatalf("indexing an erased subject: %v", err)
	}
	newcomer := uuid.New()
	if err := s.Put(ctx, "net", tokAnna, newcomer); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := s.Find(ctx, "net", tokAnna); !ok || got != newcomer {
		t.Fatalf("the freed token: %v %v", got, ok)
	}
}
