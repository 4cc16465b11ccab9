// Package keystoretest is the one conformance suite of the key store port
// (domain.KeyStore): every key store runs Run, so the local store
// (adapters/keystore) and the cluster store (adapters/clusterkeys) keep the
// same semantics: sealing and opening, subjects bound to their keys,
// erasure for good (and of the index entries), one key per subject under
// concurrent creation, one blind index key, and what survives a reopen.
//
// A store whose instances can be open side by side on one backing store
// (Config.Replicas: the replicas of a cluster store) also runs the checks of
// several live instances: a second instance sees a first's new subject and
// its index entry at once, concurrent creation across instances still makes
// one key, and an erasure on one reaches the other's cached key within
// Config.EraseWithin.
//
// The suite holds no personal data: its names and birth dates are made up.
package keystoretest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// KeyStore is the port under test.
type KeyStore = domain.KeyStore

// Config says how to reach the key store under test.
type Config struct {
	// New makes a fresh, empty backing store for t (a directory, a cluster)
	// and returns a function that opens an instance of the key store on it.
	// open may be called several times, from several goroutines at once
	// when Replicas is set; the suite closes every instance it opens. The
	// backing store goes with t (t.Cleanup).
	New func(t *testing.T) (open func() (KeyStore, error))
	// Replicas: several instances may be open on one backing store at
	// once, as the replicas of a cluster store are.
	Replicas bool
	// EraseWithin bounds how long an erasure through one instance takes to
	// reach the cached keys of another (default 1 s); with Replicas only.
	EraseWithin time.Duration
}

// Run runs the whole suite, one subtest per behaviour, each on a backing
// store of its own from cfg.New.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("keystoretest: Config.New is nil")
	}
	if cfg.EraseWithin <= 0 {
		cfg.EraseWithin = time.Second
	}
	tests := []struct {
		name     string
		fn       func(t *testing.T, h *harness)
		replicas bool // needs instances side by side
	}{
		{"SealOpenRoundTrip", testRoundTrip, false},
		{"CiphertextsAreBoundToTheirSubject", testBoundToSubject, false},
		{"ErasureIsFinal", testErasureIsFinal, false},
		{"ErasureFreesTheIndexEntries", testErasureFreesIndex, false},
		{"OneKeyUnderConcurrentCreation", testConcurrentCreation, false},
		{"OneIndexEntryUnderConcurrentPuts", testConcurrentPuts, false},
		{"AnotherInstanceSeesNewSubjectsAtOnce", testSecondInstanceSees, false},
		{"ErasureReachesAnotherInstancesCachedKey", testErasureReachesCache, true},
		{"OneBlindIndexKey", testOneBlindIndexKey, false},
		{"FindUnknownToken", testFindUnknown, false},
		{"ReopenKeepsEverything", testReopen, false},
		{"ClosedStoreIsUnavailable", testClosed, false},
		{"MatchesAModelUnderRandomOperations", testModel, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.replicas && !cfg.Replicas {
				t.Skip("the store's instances cannot be open side by side")
			}
			h := &harness{t: t, cfg: cfg, open: cfg.New(t)}
			tt.fn(t, h)
		})
	}
}

// harness opens instances on one backing store and closes them.
type harness struct {
	t    *testing.T
	cfg  Config
	open func() (KeyStore, error)
}

// instance opens an instance, closed when the test ends.
func (h *harness) instance() KeyStore {
	h.t.Helper()
	ks, err := h.open()
	if err != nil {
		h.t.Fatalf("open a key store instance: %v", err)
	}
	h.t.Cleanup(func() { _ = ks.Close() })
	return ks
}

// instances opens n instances at once (concurrently with Replicas, else one
// after another, each closed before the next opens). With Replicas they are
// all open when it returns; without, only the last is.
func (h *harness) instances(n int) []KeyStore {
	h.t.Helper()
	out := make([]KeyStore, n)
	if !h.cfg.Replicas {
		for i := range out {
			if i > 0 {
				mustClose(h.t, out[i-1])
			}
			out[i] = h.instance()
		}
		return out
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() { out[i], errs[i] = h.open() })
	}
	wg.Wait()
	for i, ks := range out {
		if ks != nil {
			h.t.Cleanup(func() { _ = ks.Close() })
		}
		if errs[i] != nil {
			h.t.Fatalf("open instance %d of %d at once: %v", i, n, errs[i])
		}
	}
	return out
}

// second returns another instance next to first: a replica when the store
// has them, else first closed and the store opened again.
func (h *harness) second(first KeyStore) KeyStore {
	h.t.Helper()
	if !h.cfg.Replicas {
		mustClose(h.t, first)
	}
	return h.instance()
}

func mustClose(t *testing.T, ks KeyStore) {
	t.Helper()
	if err := ks.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// ctxT is a context for one test's calls, bounded so that a hung store
// fails the test instead of the whole run.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustSeal(t *testing.T, ks KeyStore, id uuid.UUID, pt string) []byte {
	t.Helper()
	ct, err := ks.Seal(ctxT(t), id, []byte(pt))
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return ct
}

func mustOpen(t *testing.T, ks KeyStore, id uuid.UUID, ct []byte, want string) {
	t.Helper()
	pt, err := ks.Open(ctxT(t), id, ct)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if string(pt) != want {
		t.Fatalf("open: the plaintext differs from what was sealed")
	}
}

func mustPut(t *testing.T, ks KeyStore, network, token string, id uuid.UUID) {
	t.Helper()
	if err := ks.Put(ctxT(t), network, token, id); err != nil {
		t.Fatalf("put: %v", err)
	}
}

func mustShred(t *testing.T, ks KeyStore, id uuid.UUID) {
	t.Helper()
	if err := ks.Shred(ctxT(t), id); err != nil {
		t.Fatalf("shred: %v", err)
	}
}

// wantFind asserts what Find answers for the token.
func wantFind(t *testing.T, ks KeyStore, network, token string, want uuid.UUID, found bool) {
	t.Helper()
	got, ok, err := ks.Find(ctxT(t), network, token)
	if err != nil {
		t.Fatalf("find: %v", err)
	}
	if ok != found || got != want {
		t.Fatalf("find: %v %v, want %v %v", got, ok, want, found)
	}
}

// wantKind asserts err is a *domain.Error of the kind, and of one of the
// codes when codes are given.
func wantKind(t *testing.T, what string, err error, kind domain.Kind, codes ...string) {
	t.Helper()
	e := domain.AsError(err)
	if e == nil {
		t.Fatalf("%s: error %v (%T) is not a *domain.Error", what, err, err)
	}
	if e.Kind != kind || (len(codes) > 0 && !slices.Contains(codes, e.Code)) {
		t.Fatalf("%s: error %v: kind %v code %q, want %v %q", what, err, e.Kind, e.Code, kind, codes)
	}
}

func wantErased(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, domain.ErrErased) {
		t.Fatalf("%s: %v, want ErrErased", what, err)
	}
}

// waitCount waits (up to 10 s: a store may count from a subscription) until
// Count answers want.
func waitCount(t *testing.T, ks KeyStore, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := ks.Count()
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("count: %d (%v), want %d", n, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// person is made-up identifying data.
type person struct{ name, birthDate string }

func newPerson() person {
	return person{name: "Testpersoon " + uuid.NewString()[:8], birthDate: "1950-01-01"}
}

func (p person) token(ks KeyStore) string { return ks.BlindIndex().Token(p.name, p.birthDate) }
