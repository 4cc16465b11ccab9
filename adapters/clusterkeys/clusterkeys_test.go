package clusterkeys

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
	"google.golang.org/grpc/codes"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/adapters/internal/subjectkeys"
	"github.com/buurtsignaal/buurtsignaal/adapters/keystoretest"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestMain checks that no goroutine outlives the tests (waiting for calls
// abandoned at their deadline to end).
func TestMain(m *testing.M) { kurrenttest.LeakCheckedMain(m) }

// testOpts are short enough for tests, long enough for -race on 2 cores.
var testOpts = Options{Timeout: 5 * time.Second}

func newMaster(t testing.TB) tink.AEAD {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// open opens a replica's store on the server, closed with the test.
func open(t testing.TB, url string, m tink.AEAD, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The cluster store passes the key store port's conformance suite, with
// every instance a replica: several stores open at once on one test server.
func TestConformance(t *testing.T) {
	keystoretest.Run(t, keystoretest.Config{Replicas: true, New: func(t *testing.T) func() (domain.KeyStore, error) {
		srv, m := kurrenttest.Start(t), newMaster(t)
		return func() (domain.KeyStore, error) {
			s, err := Open(context.Background(), srv.URL(), m, testOpts)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
	}})
}

// The store's events are none of the domain's: projections skip them.
func TestEventsAreNotDomainEvents(t *testing.T) {
	reg := domain.NewRegistry()
	for _, typ := range EventTypes {
		if reg.Known(typ) {
			t.Errorf("%s is a domain event type", typ)
		}
	}
	for _, p := range StreamPrefixes {
		for _, c := range []string{domain.SignalCategory, domain.SubjectCategory, domain.AuditCategory} {
			if strings.HasPrefix(p, c+"-") {
				t.Errorf("stream prefix %s is in the domain's category %s", p, c)
			}
		}
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Store) isWatching() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watching
}

// While a replica's erasure watch is down, its cache is empty and stays
// off: an erasure on another replica in that time is seen at once, and
// nothing read meanwhile is cached. When the watch is back, keys are cached
// again.
func TestCacheIsOffWhileTheWatchIsDown(t *testing.T) {
	srv, m := kurrenttest.Start(t), newMaster(t)
	a, b := open(t, srv.URL(), m, testOpts), open(t, srv.URL(), m, testOpts)
	id, other := uuid.New(), uuid.New()
	ct, err := a.Seal(ctxT(t), id, []byte("geheim"))
	if err != nil {
		t.Fatal(err)
	}
	ct2, err := a.Seal(ctxT(t), other, []byte("ander"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctxT(t), id, ct); err != nil {
		t.Fatal(err)
	}
	if b.cache.Len() != 1 {
		t.Fatalf("%d keys cached, want 1", b.cache.Len())
	}
	srv.FailSubscriptions(1000, codes.Unavailable) // keep the watches down
	srv.DropSubscriptions()
	waitFor(t, "the watch notices the drop", 5*time.Second, func() bool { return !b.isWatching() })
	if n := b.cache.Len(); n != 0 {
		t.Fatalf("%d keys cached after the watch dropped", n)
	}
	if err := a.Shred(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctxT(t), id, ct); !errors.Is(err, domain.ErrErased) {
		t.Fatalf("open of a subject erased while the watch was down: %v", err)
	}
	if _, err := b.Open(ctxT(t), other, ct2); err != nil {
		t.Fatal(err)
	}
	if n := b.cache.Len(); n != 0 {
		t.Fatalf("%d keys cached while the watch is down", n)
	}
	srv.FailSubscriptions(0, codes.Unavailable)
	waitFor(t, "the watch comes back", 10*time.Second, b.isWatching)
	if _, err := b.Open(ctxT(t), other, ct2); err != nil {
		t.Fatal(err)
	}
	if n := b.cache.Len(); n != 1 {
		t.Fatalf("%d keys cached after the watch is back, want 1", n)
	}
}

// An erasure cut short after its marker (a crash, a lost connection) leaves
// the subject erased for every reader; Shred again, or ShredErased, finishes
// it: the index entry goes and the key stream is tombstoned.
func TestAnErasureCutShortIsFinished(t *testing.T) {
	srv, m := kurrenttest.Start(t), newMaster(t)
	s := open(t, srv.URL(), m, testOpts)
	id := uuid.New()
	ct, err := s.Seal(ctxT(t), id, []byte("geheim"))
	if err != nil {
		t.Fatal(err)
	}
	tok := s.BlindIndex().Token("Testpersoon Kort", "1950-01-01")
	if err := s.Put(ctxT(t), "net", tok, id); err != nil {
		t.Fatal(err)
	}
	// Step 2 of Shred alone: the marker.
	k, err := s.readKey(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.appendTo(ctxT(t), keyStream(id), k.expected(), event(typeKeyErased, keyErased{HadKey: true})); err != nil {
		t.Fatal(err)
	}
	other := open(t, srv.URL(), m, testOpts)
	for _, st := range []*Store{s, other} {
		// s cached the key when it sealed: its erasure watch drops it when
		// the marker arrives (milliseconds; seconds on a loaded machine).
		deadline := time.Now().Add(10 * time.Second)
		_, err := st.Open(ctxT(t), id, ct)
		for err == nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			_, err = st.Open(ctxT(t), id, ct)
		}
		if !errors.Is(err, domain.ErrErased) {
			t.Fatalf("open after the marker: %v", err)
		}
		if erased, err := st.Erased(ctxT(t), id); err != nil || !erased {
			t.Fatalf("erased after the marker: %v %v", erased, err)
		}
		if _, ok, err := st.Find(ctxT(t), "net", tok); err != nil || ok {
			t.Fatalf("find after the marker: %v %v", ok, err)
		}
	}
	// The index entry still names the subject, and the stream is not
	// tombstoned: the erasure is not finished.
	if h, _ := s.readIndex(ctxT(t), indexRef{"net", tok}); !h.indexed {
		t.Fatal("the test did not cut the erasure short")
	}
	path := filepath.Join(t.TempDir(), "erased-subjects")
	if err := subjectkeys.RecordErased(nil, path, id); err != nil {
		t.Fatal(err)
	}
	n, err := other.ShredErased(ctxT(t), path)
	if err != nil || n != 1 {
		t.Fatalf("shred erased: %d %v, want 1", n, err)
	}
	if k, err := s.readKey(ctxT(t), id); err != nil || !k.deleted {
		t.Fatalf("the key stream is not tombstoned: %+v %v", k, err)
	}
	if h, err := s.readIndex(ctxT(t), indexRef{"net", tok}); err != nil || h.exists {
		t.Fatalf("the index entry is still there: %+v %v", h, err)
	}
	if n, err := other.ShredErased(ctxT(t), path); err != nil || n != 0 {
		t.Fatalf("shred erased again: %d %v, want 0", n, err)
	}
}

// An erasure leaves no readable key: the key stream is tombstoned, no key
// can be made for the id again, and the index stream's last event (which a
// scavenge keeps) names no subject.
func TestErasureLeavesNoReadableKey(t *testing.T) {
	srv, m := kurrenttest.Start(t), newMaster(t)
	s := open(t, srv.URL(), m, testOpts)
	id := uuid.New()
	if _, err := s.Seal(ctxT(t), id, []byte("geheim")); err != nil {
		t.Fatal(err)
	}
	r := indexRef{"net", s.BlindIndex().Token("Testpersoon Weg", "1950-01-01")}
	if err := s.Put(ctxT(t), r.Network, r.Token, id); err != nil {
		t.Fatal(err)
	}
	if err := s.Shred(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	if _, deleted, err := s.read(ctxT(t), keyStream(id), false); err != nil || !deleted {
		t.Fatalf("key stream: deleted %v, %v", deleted, err)
	}
	_, err := s.appendTo(ctxT(t), keyStream(id), nil, event(typeKeyCreated, keyCreated{Key: []byte("x")}))
	if err == nil {
		t.Fatal("a key was written for an erased subject")
	}
	if _, err := s.Seal(ctxT(t), id, []byte("x")); !errors.Is(err, domain.ErrErased) {
		t.Fatalf("seal: %v", err)
	}
	if evs, _, err := s.read(ctxT(t), indexStream(r), false); err != nil || len(evs) != 0 {
		t.Fatalf("index stream reads %d events, %v; want none (soft-deleted)", len(evs), err)
	}
	// What a scavenge keeps of the index stream: its last event.
	last := lastInAll(t, s, indexStream(r))
	if last.EventType != typeUnindexed || strings.Contains(string(last.Data), id.String()) {
		t.Fatalf("the index stream's last event is %s %s", last.EventType, last.Data)
	}
}

// lastInAll returns the last event of a stream as $all holds it, deleted or
// not (a read of $all bypasses deletions until a scavenge).
func lastInAll(t *testing.T, s *Store, stream string) *esdb.RecordedEvent {
	t.Helper()
	evs, err := kurrentconn.Call(ctxT(t), s.c, func(ctx context.Context, cl *esdb.Client) ([]*esdb.RecordedEvent, error) {
		return kurrentconn.Drain(cl.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Start{}}, 100_000))
	})
	if err != nil {
		t.Fatal(err)
	}
	var last *esdb.RecordedEvent
	for _, e := range evs {
		if e.StreamID == stream && !strings.HasPrefix(e.EventType, "$") {
			last = e
		}
	}
	if last == nil {
		t.Fatalf("no event of %s in $all", stream)
	}
	return last
}

// Errors are classified and hold no secret: a stopped cluster is
// unavailable, a canceled context "canceled".
func TestErrorsAreClassified(t *testing.T) {
	srv, m := kurrenttest.Start(t), newMaster(t)
	url := srv.URL() + "&maxDiscoverAttempts=1&discoveryInterval=10" // give up on a stopped server at once
	s := open(t, url, m, Options{Timeout: 500 * time.Millisecond})
	id := uuid.New()
	secret := []byte("Testpersoon Geheim, Dorpsstraat 7")
	ct, err := s.Seal(ctxT(t), id, secret)
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Seal(canceled, uuid.New(), secret); domain.KindOf(err) != domain.KindUnavailable || domain.AsError(err).Code != "canceled" {
		t.Fatalf("seal with a canceled context: %v", err)
	}
	srv.Stop()
	calls := []struct {
		name string
		call func() error
	}{
		{"seal a new subject", func() error { _, err := s.Seal(ctxT(t), uuid.New(), secret); return err }},
		{"open uncached", func() error { _, err := s.Open(ctxT(t), uuid.New(), ct); return err }},
		{"erased", func() error { _, err := s.Erased(ctxT(t), id); return err }},
		{"shred", func() error { return s.Shred(ctxT(t), id) }},
		{"find", func() error { _, _, err := s.Find(ctxT(t), "net", "t"); return err }},
		{"put", func() error { return s.Put(ctxT(t), "net", "t", id) }},
	}
	for _, c := range calls {
		err := c.call()
		if domain.KindOf(err) != domain.KindUnavailable {
			t.Errorf("%s with the cluster down: %v, want unavailable", c.name, err)
		}
		if err != nil && strings.Contains(err.Error(), string(secret)) {
			t.Errorf("%s: the error holds the plaintext", c.name)
		}
	}
	if _, err := Open(ctxT(t), url, m, Options{Timeout: 300 * time.Millisecond}); domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("open with the cluster down: %v", err)
	}
	if _, err := Open(ctxT(t), "http://x", m, testOpts); domain.KindOf(err) != domain.KindInvalid {
		t.Errorf("open with a bad connection string: %v", err)
	}
	if _, err := Open(ctxT(t), url, nil, testOpts); domain.KindOf(err) != domain.KindInvalid {
		t.Errorf("open without a master key: %v", err)
	}
}

// A cluster's keys made under one master key do not open under another.
func TestAnotherMasterKeyIsRefused(t *testing.T) {
	srv := kurrenttest.Start(t)
	open(t, srv.URL(), newMaster(t), testOpts)
	_, err := Open(ctxT(t), srv.URL(), newMaster(t), testOpts)
	if !errors.Is(err, ErrMasterKeyMismatch) {
		t.Fatalf("open under another master key: %v", err)
	}
}

// Scavenge asks the cluster's nodes to scavenge, through the operations API.
func TestScavengeAsksEveryNode(t *testing.T) {
	c := kurrenttest.StartCluster(t, 3, kurrenttest.Options{})
	s := open(t, c.URL(), newMaster(t), testOpts)
	got, err := s.Scavenge(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[2].Leader || got[0].Leader || got[2].Node != c.Leader().Addr() {
		t.Fatalf("scavenges: %+v; want three, the leader last", got)
	}
	for i, n := range c.Nodes {
		reqs := n.Scavenges()
		if len(reqs) != 1 {
			t.Fatalf("node %d received %d scavenge requests, want 1", i, len(reqs))
		}
	}
	for _, g := range got {
		if g.Result != "Started" || g.ID == "" {
			t.Fatalf("answer %+v", g)
		}
	}
}

// Many Puts and Seals of one subject on two replicas end with one key and
// every token recorded once.
func TestRacingPutsRecordEachTokenOnce(t *testing.T) {
	srv, m := kurrenttest.Start(t), newMaster(t)
	reps := []*Store{open(t, srv.URL(), m, testOpts), open(t, srv.URL(), m, testOpts)}
	id := uuid.New()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			tok := fmt.Sprintf("token-%d", i%4)
			if err := reps[i%2].Put(ctxT(t), "net", tok, id); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	k, err := reps[0].readKey(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.tokens) != 4 || k.wrapped == nil {
		t.Fatalf("key stream: %d tokens, key %v; want 4 and a key", len(k.tokens), k.wrapped != nil)
	}
	evs, _, _ := reps[0].read(ctxT(t), keyStream(id), false)
	if len(evs) != 5 {
		t.Fatalf("%d events in the key stream, want 5 (one key, four tokens)", len(evs))
	}
}
