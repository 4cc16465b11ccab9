// Package readstoretest is the one conformance suite every read-model store
// (projections.ReadStore) runs: the Pebble adapter and the memory store.
// It is imported by tests only.
package readstoretest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/projections"
)

// Opener opens the store under test in dir, which is the same directory on
// a reopen; a memory store ignores dir and keeps its contents itself.
type Opener func(t testing.TB, dir string) projections.ReadStore

type kv struct{ K, V string }

func scan(t testing.TB, s projections.ReadStore, lower, upper string, reverse bool) []kv {
	t.Helper()
	var out []kv
	var up []byte
	if upper != "" {
		up = []byte(upper)
	}
	if err := s.Scan([]byte(lower), up, reverse, func(k, v []byte) bool {
		out = append(out, kv{string(k), string(v)})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t testing.TB, s projections.ReadStore, fill func(b *projections.Batch)) {
	t.Helper()
	var b projections.Batch
	fill(&b)
	if err := s.Write(&b); err != nil {
		t.Fatal(err)
	}
}

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	t.Run("GetSetDelete", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		if _, ok, err := s.Get([]byte("a")); ok || err != nil {
			t.Fatalf("empty store: ok %t err %v", ok, err)
		}
		write(t, s, func(b *projections.Batch) {
			b.Set([]byte("a"), []byte("1"))
			b.Set([]byte("b"), []byte("2"))
			b.Set([]byte("a"), []byte("3")) // a later write of the same key wins
			b.Set([]byte("e"), nil)         // an empty value is a value
		})
		for _, tc := range []struct {
			key, want string
			ok        bool
		}{{"a", "3", true}, {"b", "2", true}, {"e", "", true}, {"c", "", false}} {
			v, ok, err := s.Get([]byte(tc.key))
			if err != nil || ok != tc.ok || string(v) != tc.want {
				t.Errorf("Get(%q) = %q, %t, %v; want %q, %t", tc.key, v, ok, err, tc.want, tc.ok)
			}
		}
		v, _, _ := s.Get([]byte("a"))
		v[0] = 'x' // a copy: the store keeps its value
		if again, _, _ := s.Get([]byte("a")); string(again) != "3" {
			t.Fatalf("Get returned the store's own bytes: now %q", again)
		}
		write(t, s, func(b *projections.Batch) { b.Delete([]byte("a")); b.Delete([]byte("zz")) })
		if _, ok, _ := s.Get([]byte("a")); ok {
			t.Fatal("deleted key still there")
		}
	})

	t.Run("ScanOrderAndBounds", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		keys := []string{"a", "a\x00", "ab", "a\xff", "b", "b\x01\x02", "c"}
		write(t, s, func(b *projections.Batch) {
			for i, k := range slices.Backward(keys) {
				b.Set([]byte(k), []byte(fmt.Sprint(i)))
			}
		})
		all := scan(t, s, "", "", false)
		var got []string
		for _, e := range all {
			got = append(got, e.K)
		}
		if diff := cmp.Diff(keys, got); diff != "" {
			t.Fatalf("full scan order (-want +got):\n%s", diff)
		}
		for _, tc := range []struct {
			lower, upper string
			reverse      bool
			want         []string
		}{
			{"a", "b", false, []string{"a", "a\x00", "ab", "a\xff"}},
			{"a", "b", true, []string{"a\xff", "ab", "a\x00", "a"}},
			{"a\x01", "b\x01\x03", false, []string{"ab", "a\xff", "b", "b\x01\x02"}},
			{"b", "", false, []string{"b", "b\x01\x02", "c"}},
			{"b", "", true, []string{"c", "b\x01\x02", "b"}},
			{"d", "", false, nil},
			{"b", "b", false, nil},
			{"c", "b", false, nil},
			{"c", "b", true, nil},
		} {
			var got []string
			for _, e := range scan(t, s, tc.lower, tc.upper, tc.reverse) {
				got = append(got, e.K)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Scan(%q, %q, reverse %t) (-want +got):\n%s", tc.lower, tc.upper, tc.reverse, diff)
			}
		}
		n := 0
		_ = s.Scan(nil, nil, false, func(k, v []byte) bool { n++; return n < 3 })
		if n != 3 {
			t.Fatalf("Scan went on after fn returned false: %d calls", n)
		}
	})

	t.Run("GetMany", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		write(t, s, func(b *projections.Batch) {
			for _, k := range []string{"a", "b", "bb", "d"} {
				b.Set([]byte(k), []byte("v"+k))
			}
		})
		var got []kv
		keys := [][]byte{[]byte("a"), []byte("ba"), []byte("bb"), []byte("c"), []byte("d"), []byte("e")}
		if err := s.GetMany(keys, func(k, v []byte) bool {
			got = append(got, kv{string(k), string(v)})
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]kv{{"a", "va"}, {"bb", "vbb"}, {"d", "vd"}}, got); diff != "" {
			t.Fatalf("GetMany (-want +got):\n%s", diff)
		}
		n := 0
		_ = s.GetMany(keys, func(k, v []byte) bool { n++; return false })
		if n != 1 {
			t.Fatalf("GetMany went on after fn returned false: %d calls", n)
		}
		if err := s.GetMany(nil, func(k, v []byte) bool { t.Fatal("called for no keys"); return true }); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("DeleteRange", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		write(t, s, func(b *projections.Batch) {
			for _, k := range []string{"a1", "b1", "b2", "b\xff", "c1"} {
				b.Set([]byte(k), []byte("v"))
			}
		})
		write(t, s, func(b *projections.Batch) {
			b.DeleteRange([]byte("b"), []byte("c"))
			b.Set([]byte("b3"), []byte("after")) // a set after the range delete stays
		})
		if diff := cmp.Diff([]kv{{"a1", "v"}, {"b3", "after"}, {"c1", "v"}}, scan(t, s, "", "", false)); diff != "" {
			t.Fatalf("after DeleteRange (-want +got):\n%s", diff)
		}
	})

	t.Run("ReopenKeepsWrites", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		write(t, s, func(b *projections.Batch) { b.Set([]byte("k"), []byte("v")) })
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir)
		defer s.Close()
		if v, ok, err := s.Get([]byte("k")); !ok || err != nil || string(v) != "v" {
			t.Fatalf("after reopen: %q %t %v", v, ok, err)
		}
	})

	t.Run("ReadersSeeWholeBatches", func(t *testing.T) {
		// Each batch moves a counter to every one of ten keys; a reader's scan
		// must see all ten equal.
		s := open(t, t.TempDir())
		defer s.Close()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		errs := make(chan string, 1)
		for r := 0; r < 2; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var vals [][]byte
					_ = s.Scan([]byte("n"), []byte("o"), false, func(k, v []byte) bool {
						vals = append(vals, bytes.Clone(v))
						return true
					})
					for _, v := range vals {
						if !bytes.Equal(v, vals[0]) {
							select {
							case errs <- fmt.Sprintf("a scan saw half a batch: %q", vals):
							default:
							}
							return
						}
					}
				}
			}()
		}
		for i := 0; i < 300; i++ {
			write(t, s, func(b *projections.Batch) {
				for k := 0; k < 10; k++ {
					b.Set([]byte(fmt.Sprintf("n%02d", k)), []byte(fmt.Sprint(i)))
				}
			})
		}
		close(stop)
		wg.Wait()
		select {
		case e := <-errs:
			t.Fatal(e)
		default:
		}
	})

	t.Run("BehavesLikeASortedMap", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		defer func() { s.Close() }()
		rapid.Check(t, func(rt *rapid.T) {
			write(t, s, func(b *projections.Batch) { b.DeleteRange([]byte{0}, []byte{0xff}) })
			model := map[string]string{}
			keyGen := rapid.StringMatching(`[a-d]{1,3}`)
			for range rapid.IntRange(1, 20).Draw(rt, "batches") {
				var b projections.Batch
				for range rapid.IntRange(0, 8).Draw(rt, "ops") {
					k := "\x01" + keyGen.Draw(rt, "key")
					switch rapid.IntRange(0, 3).Draw(rt, "op") {
					case 0, 1:
						v := rapid.StringMatching(`[x-z]{0,4}`).Draw(rt, "value")
						b.Set([]byte(k), []byte(v))
						model[k] = v
					case 2:
						b.Delete([]byte(k))
						delete(model, k)
					case 3:
						end := "\x01" + keyGen.Draw(rt, "end")
						b.DeleteRange([]byte(k), []byte(end))
						for mk := range model {
							if mk >= k && mk < end {
								delete(model, mk)
							}
						}
					}
				}
				if err := s.Write(&b); err != nil {
					rt.Fatal(err)
				}
			}
			var want []kv
			for k, v := range model {
				want = append(want, kv{k, v})
			}
			slices.SortFunc(want, func(a, b kv) int { return bytes.Compare([]byte(a.K), []byte(b.K)) })
			if diff := cmp.Diff(want, scan(t, s, "\x01", "\x02", false), cmpopts.EquateEmpty()); diff != "" {
				rt.Fatalf("store and model differ (-model +store):\n%s", diff)
			}
			if rapid.Bool().Draw(rt, "reopen") {
				if err := s.Close(); err != nil {
					rt.Fatal(err)
				}
				s = open(t, dir)
			}
		})
	})
}
