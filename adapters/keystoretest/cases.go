package keystoretest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// The suite's tests, one per behaviour; Run lists them.

func testRoundTrip(t *testing.T, h *harness) {
	ks := h.instance()
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{0}},
		{"a name", []byte("Testpersoon de Vries-Bakker")},
		{"json", []byte(`{"name":"Ĳsbrand van 't Testhof","birth_date":"1941-03-12"}`)},
		{"64 KiB", bytes.Repeat([]byte("x"), 64<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uuid.New()
			ct, err := ks.Seal(ctxT(t), id, tt.plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.plaintext) > 4 && bytes.Contains(ct, tt.plaintext) {
				t.Fatal("the ciphertext holds the plaintext")
			}
			pt, err := ks.Open(ctxT(t), id, ct)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.plaintext, pt); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			// A second Seal uses the same key.
			ct2 := mustSeal(t, ks, id, "een notitie")
			mustOpen(t, ks, id, ct2, "een notitie")
			if erased, err := ks.Erased(ctxT(t), id); err != nil || erased {
				t.Fatalf("erased: %v %v", erased, err)
			}
		})
	}
	waitCount(t, ks, len(tests))
}

func testBoundToSubject(t *testing.T, h *harness) {
	ks := h.instance()
	a, b, none := uuid.New(), uuid.New(), uuid.New()
	ctA := mustSeal(t, ks, a, "van a")
	mustSeal(t, ks, b, "van b")
	tampered := bytes.Clone(ctA)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name    string
		subject uuid.UUID
		ct      []byte
		code    string
	}{
		{"another subject's key", b, ctA, "ciphertext_invalid"},
		{"a subject without a key", none, ctA, "key_missing"},
		{"a tampered ciphertext", a, tampered, "ciphertext_invalid"},
		{"garbage", a, []byte("geen ciphertext"), "ciphertext_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := ks.Open(ctxT(t), tt.subject, tt.ct)
			if pt != nil {
				t.Fatal("a plaintext came out")
			}
			wantKind(t, "open", err, domain.KindInternal, tt.code)
		})
	}
}

func testErasureIsFinal(t *testing.T, h *harness) {
	ks := h.instance()
	p := newPerson()
	id, never := uuid.New(), uuid.New()
	ct := mustSeal(t, ks, id, "geheim")
	mustPut(t, ks, "net", p.token(ks), id)
	mustShred(t, ks, id)
	mustShred(t, ks, id)    // again: fine
	mustShred(t, ks, never) // a subject that never had a key
	check := func(t *testing.T, ks KeyStore) {
		t.Helper()
		for _, sub := range []uuid.UUID{id, never} {
			_, err := ks.Open(ctxT(t), sub, ct)
			wantErased(t, "open", err)
			_, err = ks.Seal(ctxT(t), sub, []byte("opnieuw"))
			wantErased(t, "seal", err)
			wantErased(t, "put", ks.Put(ctxT(t), "net", "t-"+sub.String(), sub))
			if erased, err := ks.Erased(ctxT(t), sub); err != nil || !erased {
				t.Fatalf("erased: %v %v", erased, err)
			}
		}
		wantFind(t, ks, "net", p.token(ks), uuid.Nil, false)
	}
	check(t, ks)
	check(t, h.second(ks))
}

func testErasureFreesIndex(t *testing.T, h *harness) {
	ks := h.instance()
	p, q := newPerson(), newPerson()
	tok, other := p.token(ks), q.token(ks)
	first, late, keep := uuid.New(), uuid.New(), uuid.New()
	mustSeal(t, ks, first, "x")
	mustSeal(t, ks, late, "x")
	mustPut(t, ks, "net", tok, first)
	mustPut(t, ks, "net", tok, first) // the same entry again changes nothing
	mustPut(t, ks, "net", tok, late)  // first subject wins
	mustPut(t, ks, "other", tok, late)
	mustPut(t, ks, "net", other, keep) // indexed before its first Seal
	wantFind(t, ks, "net", tok, first, true)
	wantFind(t, ks, "other", tok, late, true)

	// Shredding late leaves first's entry alone.
	mustShred(t, ks, late)
	wantFind(t, ks, "net", tok, first, true)
	wantFind(t, ks, "other", tok, uuid.Nil, false)
	// Shredding first frees the token for a new subject of the same person.
	mustShred(t, ks, first)
	wantFind(t, ks, "net", tok, uuid.Nil, false)
	newcomer := uuid.New()
	mustSeal(t, ks, newcomer, "x")
	mustPut(t, ks, "net", tok, newcomer)
	wantFind(t, ks, "net", tok, newcomer, true)
	wantFind(t, ks, "net", other, keep, true)
	again := h.second(ks)
	wantFind(t, again, "net", tok, newcomer, true)
	wantFind(t, again, "other", tok, uuid.Nil, false)
	// And once more, after the newcomer is erased too.
	mustShred(t, again, newcomer)
	third := uuid.New()
	mustPut(t, again, "net", tok, third)
	wantFind(t, again, "net", tok, third, true)
}

func testConcurrentCreation(t *testing.T, h *harness) {
	n := 2
	if !h.cfg.Replicas {
		n = 1
	}
	stores := h.instances(n)
	id := uuid.New()
	cts := make([][]byte, 32)
	var wg sync.WaitGroup
	for i := range cts {
		wg.Go(func() {
			ct, err := stores[i%n].Seal(ctxT(t), id, fmt.Appendf(nil, "geheim %d", i))
			if err != nil {
				t.Errorf("seal %d: %v", i, err)
			}
			cts[i] = ct
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// A fresh instance (no cached key) opens every ciphertext: one key.
	fresh := h.second(stores[n-1])
	for i, ct := range cts {
		mustOpen(t, fresh, id, ct, fmt.Sprintf("geheim %d", i))
	}
	waitCount(t, fresh, 1)
}

func testConcurrentPuts(t *testing.T, h *harness) {
	n := 2
	if !h.cfg.Replicas {
		n = 1
	}
	stores := h.instances(n)
	tok := newPerson().token(stores[0])
	ids := make([]uuid.UUID, 16)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = uuid.New()
		wg.Go(func() {
			ks := stores[i%n]
			if _, err := ks.Seal(ctxT(t), ids[i], []byte("x")); err != nil {
				t.Errorf("seal %d: %v", i, err)
				return
			}
			if err := ks.Put(ctxT(t), "net", tok, ids[i]); err != nil {
				t.Errorf("put %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	winner, ok, err := stores[0].Find(ctxT(t), "net", tok)
	if err != nil || !ok || !slices.Contains(ids, winner) {
		t.Fatalf("find after racing puts: %v %v %v", winner, ok, err)
	}
	for _, ks := range stores {
		wantFind(t, ks, "net", tok, winner, true)
	}
}

func testSecondInstanceSees(t *testing.T, h *harness) {
	a := h.instance()
	var b KeyStore
	if h.cfg.Replicas {
		b = h.instance() // open before a writes: nothing of it is cached
	}
	p := newPerson()
	id := uuid.New()
	ct := mustSeal(t, a, id, "geheim")
	mustPut(t, a, "net", p.token(a), id)
	if b == nil {
		b = h.second(a)
	}
	// At once: no waiting, no retries.
	wantFind(t, b, "net", p.token(b), id, true)
	mustOpen(t, b, id, ct, "geheim")
	if erased, err := b.Erased(ctxT(t), id); err != nil || erased {
		t.Fatalf("erased: %v %v", erased, err)
	}
	// A Seal on the second instance uses the first's key.
	ct2 := mustSeal(t, b, id, "meer")
	if h.cfg.Replicas {
		mustOpen(t, a, id, ct2, "meer")
	}
}

func testErasureReachesCache(t *testing.T, h *harness) {
	stores := h.instances(2)
	a, b := stores[0], stores[1]
	p := newPerson()
	id := uuid.New()
	ct := mustSeal(t, a, id, "geheim")
	mustPut(t, a, "net", p.token(a), id)
	mustOpen(t, b, id, ct, "geheim") // b caches the key
	mustOpen(t, b, id, ct, "geheim")
	start := time.Now()
	mustShred(t, a, id)
	shredded := time.Now()
	// What is read from the store is exact at once.
	if erased, err := b.Erased(ctxT(t), id); err != nil || !erased {
		t.Fatalf("erased on the other instance: %v %v", erased, err)
	}
	wantFind(t, b, "net", p.token(b), uuid.Nil, false)
	_, err := b.Seal(ctxT(t), id, []byte("opnieuw"))
	wantErased(t, "seal on the other instance", err)
	// The cached key goes within EraseWithin of the erasure.
	for {
		_, err := b.Open(ctxT(t), id, ct)
		if errors.Is(err, domain.ErrErased) {
			break
		}
		if err != nil {
			t.Fatalf("open on the other instance: %v", err)
		}
		if time.Since(shredded) > h.cfg.EraseWithin {
			t.Fatalf("the other instance still opens the subject's data %v after the erasure", time.Since(shredded))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("shred took %v; the other instance answered erased %v after it", shredded.Sub(start), time.Since(shredded))
}

func testOneBlindIndexKey(t *testing.T, h *harness) {
	stores := h.instances(4) // concurrent first starts, with replicas
	p := newPerson()
	want := stores[0].BlindIndex().Token(p.name, p.birthDate)
	for i, ks := range stores {
		if got := ks.BlindIndex().Token(p.name, p.birthDate); got != want {
			t.Fatalf("instance %d has another blind index key", i)
		}
	}
	last := stores[len(stores)-1]
	if got := h.second(last).BlindIndex().Token(p.name, p.birthDate); got != want {
		t.Fatal("the blind index key changed on reopen")
	}
	bi := stores[0].BlindIndex()
	if bi.Token("J. de Testvries-Bakker", "12-03-1941") != bi.Token("j de testvries bakker", "1941-03-12") {
		t.Fatal("the blind index does not normalize")
	}
	if bi.Token("Jan", "1950-01-01") == bi.Token("Jan", "1950-01-02") {
		t.Fatal("the birth date does not count")
	}
	if bi.Fingerprint([]byte("a")) == bi.Fingerprint([]byte("b")) {
		t.Fatal("fingerprints do not depend on the request")
	}
	// A new backing store has a key of its own.
	other := h.cfg.New(t)
	o, err := other()
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.BlindIndex().Token(p.name, p.birthDate) == want {
		t.Fatal("two key stores share a blind index key")
	}
}

func testFindUnknown(t *testing.T, h *harness) {
	ks := h.instance()
	wantFind(t, ks, "net", newPerson().token(ks), uuid.Nil, false)
	wantFind(t, ks, "nergens", newPerson().token(ks), uuid.Nil, false)
	_, _, err := ks.Find(ctxT(t), "net", "")
	wantKind(t, "find an empty token", err, domain.KindInvalid)
	wantKind(t, "put an empty token", ks.Put(ctxT(t), "net", "", uuid.New()), domain.KindInvalid)
}

func testReopen(t *testing.T, h *harness) {
	ks := h.instance()
	type sub struct {
		id    uuid.UUID
		p     person
		plain string
		ct    []byte
	}
	subs := make([]sub, 8)
	for i := range subs {
		subs[i] = sub{id: uuid.New(), p: newPerson(), plain: fmt.Sprintf("gegevens %d", i)}
		subs[i].ct = mustSeal(t, ks, subs[i].id, subs[i].plain)
		mustPut(t, ks, "net", subs[i].p.token(ks), subs[i].id)
	}
	erased := subs[0]
	mustShred(t, ks, erased.id)
	waitCount(t, ks, len(subs)-1)
	mustClose(t, ks)
	ks = h.instance()
	for _, s := range subs[1:] {
		mustOpen(t, ks, s.id, s.ct, s.plain)
		wantFind(t, ks, "net", s.p.token(ks), s.id, true)
	}
	_, err := ks.Open(ctxT(t), erased.id, erased.ct)
	wantErased(t, "open an erased subject after reopen", err)
	wantFind(t, ks, "net", erased.p.token(ks), uuid.Nil, false)
	waitCount(t, ks, len(subs)-1)
}

func testClosed(t *testing.T, h *harness) {
	ks := h.instance()
	id := uuid.New()
	ct := mustSeal(t, ks, id, "x")
	mustClose(t, ks)
	calls := []struct {
		name string
		call func() error
	}{
		{"seal", func() error { _, err := ks.Seal(ctxT(t), id, []byte("x")); return err }},
		{"open", func() error { _, err := ks.Open(ctxT(t), id, ct); return err }},
		{"shred", func() error { return ks.Shred(ctxT(t), id) }},
		{"erased", func() error { _, err := ks.Erased(ctxT(t), id); return err }},
		{"count", func() error { _, err := ks.Count(); return err }},
		{"find", func() error { _, _, err := ks.Find(ctxT(t), "net", "t"); return err }},
		{"put", func() error { return ks.Put(ctxT(t), "net", "t", id) }},
	}
	for _, c := range calls {
		wantKind(t, c.name+" after close", c.call(), domain.KindUnavailable)
	}
	if err := ks.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	// The data is still there for the next instance.
	mustOpen(t, h.instance(), id, ct, "x")
}
