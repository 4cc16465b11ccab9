package keystoretest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// model is the port's contract over a few subjects and tokens: who is
// erased, what was sealed for whom, and which subject each token finds.
type model struct {
	subjects []uuid.UUID
	erased   map[uuid.UUID]bool
	sealed   map[uuid.UUID][]sealedText
	owner    map[indexKey]uuid.UUID // first subject wins, until it is erased
}

type sealedText struct {
	ct []byte
	pt string
}

type indexKey struct{ network, token string }

var (
	modelNetworks = []string{"net", "elders"}
	modelTokens   = []string{"token-a", "token-b", "token-c"}
)

// testModel runs random sequences of Seal, Open, Put, Find, Shred and
// reopens, each on a random instance (with Replicas), against the model;
// after each erasure it waits (up to EraseWithin) until every instance
// answers it. rapid's -rapid.checks sets how many sequences (100).
func testModel(t *testing.T, h *harness) {
	rapid.Check(t, func(rt *rapid.T) {
		open := h.cfg.New(t)
		var stores []KeyStore
		defer func() {
			for _, ks := range stores {
				_ = ks.Close()
			}
		}()
		mustOpen := func() KeyStore {
			ks, err := open()
			if err != nil {
				rt.Fatalf("open: %v", err)
			}
			return ks
		}
		n := 1
		if h.cfg.Replicas {
			n = 2
		}
		for range n {
			stores = append(stores, mustOpen())
		}
		m := &model{erased: map[uuid.UUID]bool{}, sealed: map[uuid.UUID][]sealedText{}, owner: map[indexKey]uuid.UUID{}}
		for range 4 {
			m.subjects = append(m.subjects, uuid.New())
		}
		ctx := ctxT(t)
		pick := func(rt *rapid.T) (KeyStore, uuid.UUID) {
			return stores[rapid.IntRange(0, len(stores)-1).Draw(rt, "instance")], rapid.SampledFrom(m.subjects).Draw(rt, "subject")
		}
		seq := 0
		actions := map[string]func(*rapid.T){
			"seal": func(rt *rapid.T) {
				ks, id := pick(rt)
				seq++
				pt := fmt.Sprint("gegevens ", seq)
				ct, err := ks.Seal(ctx, id, []byte(pt))
				switch {
				case m.erased[id]:
					if !errors.Is(err, domain.ErrErased) {
						rt.Fatalf("seal of an erased subject: %v", err)
					}
				case err != nil:
					rt.Fatalf("seal: %v", err)
				default:
					m.sealed[id] = append(m.sealed[id], sealedText{ct, pt})
				}
			},
			"open": func(rt *rapid.T) {
				ks, id := pick(rt)
				if len(m.sealed[id]) == 0 {
					return // nothing sealed for the subject
				}
				s := rapid.SampledFrom(m.sealed[id]).Draw(rt, "ciphertext")
				pt, err := ks.Open(ctx, id, s.ct)
				switch {
				case m.erased[id]:
					if !errors.Is(err, domain.ErrErased) {
						rt.Fatalf("open of an erased subject: %v", err)
					}
				case err != nil || string(pt) != s.pt:
					rt.Fatalf("open: %v", err)
				}
			},
			"put": func(rt *rapid.T) {
				ks, id := pick(rt)
				k := indexKey{rapid.SampledFrom(modelNetworks).Draw(rt, "network"), rapid.SampledFrom(modelTokens).Draw(rt, "token")}
				err := ks.Put(ctx, k.network, k.token, id)
				if m.erased[id] {
					if !errors.Is(err, domain.ErrErased) {
						rt.Fatalf("put of an erased subject: %v", err)
					}
					return
				}
				if err != nil {
					rt.Fatalf("put: %v", err)
				}
				if _, taken := m.owner[k]; !taken {
					m.owner[k] = id
				}
			},
			"find": func(rt *rapid.T) {
				ks := stores[rapid.IntRange(0, len(stores)-1).Draw(rt, "instance")]
				k := indexKey{rapid.SampledFrom(modelNetworks).Draw(rt, "network"), rapid.SampledFrom(modelTokens).Draw(rt, "token")}
				want, ok := m.owner[k]
				got, found, err := ks.Find(ctx, k.network, k.token)
				if err != nil || found != ok || got != want {
					rt.Fatalf("find %v: %v %v %v, want %v %v", k, got, found, err, want, ok)
				}
			},
			"shred": func(rt *rapid.T) {
				ks, id := pick(rt)
				if err := ks.Shred(ctx, id); err != nil {
					rt.Fatalf("shred: %v", err)
				}
				m.erased[id] = true
				for k, owner := range m.owner {
					if owner == id {
						delete(m.owner, k)
					}
				}
				if len(m.sealed[id]) == 0 {
					return
				}
				// Every instance's cached key goes within EraseWithin.
				deadline := time.Now().Add(h.cfg.EraseWithin)
				for _, other := range stores {
					for {
						_, err := other.Open(ctx, id, m.sealed[id][0].ct)
						if errors.Is(err, domain.ErrErased) {
							break
						}
						if time.Now().After(deadline) {
							rt.Fatalf("an instance still opens an erased subject after %v: %v", h.cfg.EraseWithin, err)
						}
						time.Sleep(2 * time.Millisecond)
					}
				}
			},
			"reopen": func(rt *rapid.T) {
				i := rapid.IntRange(0, len(stores)-1).Draw(rt, "instance")
				if err := stores[i].Close(); err != nil {
					rt.Fatalf("close: %v", err)
				}
				stores[i] = mustOpen()
			},
		}
		names := make([]string, 0, len(actions))
		for name := range actions {
			names = append(names, name)
		}
		slices.Sort(names)
		// A few steps per example (rapid's Repeat takes 30 or more): the
		// local store's erasure purges its files, which takes a while.
		for range rapid.IntRange(1, 12).Draw(rt, "steps") {
			actions[rapid.SampledFrom(names).Draw(rt, "action")](rt)
		}
		for _, id := range m.subjects {
			if erased, err := stores[0].Erased(ctx, id); err != nil || erased != m.erased[id] {
				rt.Fatalf("erased: %v %v, want %v", erased, err, m.erased[id])
			}
		}
	})
}
