package loglease_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/loglease"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func TestMain(m *testing.M) {
	kurrenttest.LeakCheckedMain(m,
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/transport.(*controlBuffer).get"),
	)
}

// onEachStore runs f with a maker of store clients: on the embedded store
// every client is the one store; on the KurrentDB test server each is a
// client of its own, as each replica has.
func onEachStore(t *testing.T, f func(t *testing.T, client func() eventlog.Store)) {
	t.Run("embedded", func(t *testing.T) {
		s, err := pebblestore.Open(filepath.Join(t.TempDir(), "events"), pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		f(t, func() eventlog.Store { return s })
	})
	t.Run("kurrentdb", func(t *testing.T) {
		srv := kurrenttest.Start(t)
		f(t, func() eventlog.Store {
			s, err := kurrentdb.Open(context.Background(), srv.URL(), kurrentdb.Options{Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
}

// fakeClock is a replica's clock, moved by the test.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
		} else {
			w.ch <- c.now
		}
	}
	c.waiters = kept
}

// settle waits until n goroutines wait on the clock again (each has done
// what its last timer started).
func (c *fakeClock) settle(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		k := len(c.waiters)
		c.mu.Unlock()
		if k >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d goroutines wait on the clock", k, n)
		}
	}
}

func opts(replica string, c *fakeClock) loglease.Options {
	return loglease.Options{Replica: replica, Clock: c}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// acquireAsync acquires in the background; the channel receives the term.
func acquireAsync(ctx context.Context, l *loglease.Lease) <-chan domain.LeaseTerm {
	got := make(chan domain.LeaseTerm, 1)
	go func() {
		if term, err := l.Acquire(ctx); err == nil {
			got <- term
		} else {
			close(got)
		}
	}()
	return got
}

// last returns the lease stream's last event type and holder.
func last(t *testing.T, s eventlog.Store) (string, string) {
	t.Helper()
	res, err := s.ReadStream(ctxT(t), domain.LeaseStream("job"), eventlog.Backwards, eventlog.End, 1)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Holder string }
	_ = decodeJSON(res[0].Data, &e)
	return res[0].Type, e.Holder
}

// TestRenewalKeepsTheLeaseAndReleaseHandsItOver: a holder renewing in time
// keeps the lease however long a contender waits; its release hands the
// lease over at the contender's next look.
func TestRenewalKeepsTheLeaseAndReleaseHandsItOver(t *testing.T) {
	onEachStore(t, func(t *testing.T, client func() eventlog.Store) {
		ca, cb := newClock(), newClock()
		a := loglease.New(client(), "job", opts("a", ca))
		ta, err := a.Acquire(ctxT(t))
		if err != nil || ta.Term() != 1 {
			t.Fatalf("first acquire: term %v, %v", ta, err)
		}
		defer ta.Release(context.Background())
		b := loglease.New(client(), "job", opts("b", cb))
		bctx, stopB := context.WithCancel(ctxT(t))
		defer stopB()
		got := acquireAsync(bctx, b)
		for elapsed := time.Duration(0); elapsed < 5*loglease.DefaultTTL; elapsed += time.Second {
			ca.settle(t, 1)
			cb.settle(t, 1)
			ca.Advance(time.Second)
			cb.Advance(time.Second)
		}
		ca.settle(t, 1)
		cb.settle(t, 1)
		select {
		case <-got:
			t.Fatal("the contender took a lease that was renewed in time")
		case <-ta.Lost():
			t.Fatalf("the holder lost its lease: %v", ta.Err())
		default:
		}
		if typ, holder := last(t, client()); typ != "LeaseRenewed" || holder != ta.Holder() {
			t.Fatalf("last lease event: %s by %s", typ, holder)
		}
		if err := ta.Release(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		<-ta.Lost()
		cb.Advance(loglease.DefaultPollEvery)
		select {
		case tb := <-got:
			if tb == nil || tb.Term() != 2 {
				t.Fatalf("after the release: %v", tb)
			}
			_ = tb.Release(ctxT(t))
		case <-time.After(10 * time.Second):
			t.Fatal("a released lease was not taken at the next look")
		}
	})
}

// TestTakeoverAfterACrash: the holder's context ends without a release (a
// crash); the contender takes over once it has seen the lease unchanged for
// the TTL on its own clock, and not before.
func TestTakeoverAfterACrash(t *testing.T) {
	onEachStore(t, func(t *testing.T, client func() eventlog.Store) {
		ca, cb := newClock(), newClock()
		actx, crash := context.WithCancel(ctxT(t))
		ta, err := loglease.New(client(), "job", opts("a", ca)).Acquire(actx)
		if err != nil {
			t.Fatal(err)
		}
		crash()
		<-ta.Lost()
		if !errors.Is(ta.Err(), context.Canceled) {
			t.Fatalf("a crashed term ended with %v", ta.Err())
		}
		got := acquireAsync(ctxT(t), loglease.New(client(), "job", opts("b", cb)))
		var waited time.Duration
		for ; ; waited += time.Second {
			select {
			case tb := <-got:
				if waited < loglease.DefaultTTL || waited > loglease.DefaultTTL+loglease.DefaultPollEvery {
					t.Errorf("taken over after %v on the contender's clock, want between the TTL (%v) and one poll more", waited, loglease.DefaultTTL)
				}
				if tb.Term() != 2 {
					t.Errorf("term %d", tb.Term())
				}
				_ = tb.Release(ctxT(t))
				return
			default:
			}
			if waited > 2*loglease.DefaultTTL {
				t.Fatal("no takeover")
			}
			cb.settle(t, 1)
			cb.Advance(time.Second)
		}
	})
}

// TestDeposedHolderLosesAtItsNextRenewal: a holder frozen past the TTL (its
// clock stands still) is taken over; its next renewal fails and ends its
// term, and its release does not touch the new holder's lease.
func TestDeposedHolderLosesAtItsNextRenewal(t *testing.T) {
	onEachStore(t, func(t *testing.T, client func() eventlog.Store) {
		ca, cb := newClock(), newClock()
		ta, err := loglease.New(client(), "job", opts("a", ca)).Acquire(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		got := acquireAsync(ctxT(t), loglease.New(client(), "job", opts("b", cb)))
		var tb domain.LeaseTerm
		for tb == nil {
			cb.settle(t, 1)
			cb.Advance(time.Second)
			select {
			case tb = <-got:
			case <-time.After(5 * time.Millisecond):
			}
		}
		select {
		case <-ta.Lost():
			t.Fatal("the frozen holder noticed before it woke up")
		default:
		}
		ca.Advance(loglease.DefaultRenewEvery) // it wakes up and renews
		select {
		case <-ta.Lost():
		case <-time.After(10 * time.Second):
			t.Fatal("the deposed holder's renewal succeeded")
		}
		if !errors.Is(ta.Err(), domain.ErrLeaseLost) {
			t.Fatalf("deposed with %v", ta.Err())
		}
		if err := ta.Release(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if typ, holder := last(t, client()); typ != "LeaseAcquired" || holder != tb.Holder() {
			t.Fatalf("after the deposed holder's release the last event is %s by %s, want the new holder's", typ, holder)
		}
		_ = tb.Release(ctxT(t))
	})
}

// failing fails appends while fail is set.
type failing struct {
	eventlog.Store
	fail atomic.Bool
}

func (f *failing) Append(ctx context.Context, stream string, exp eventlog.ExpectedVersion, evs ...eventlog.EventData) (eventlog.AppendResult, error) {
	if f.fail.Load() {
		return eventlog.AppendResult{}, eventlog.ErrUnavailable
	}
	return f.Store.Append(ctx, stream, exp, evs...)
}

// TestHolderGivesUpBeforeAContenderMayTakeOver: a holder that cannot
// renew (its connection to the store is down) stops counting on the lease
// at its deadline, before the contender, counting on its own clock, takes
// the lease over.
func TestHolderGivesUpBeforeAContenderMayTakeOver(t *testing.T) {
	onEachStore(t, func(t *testing.T, client func() eventlog.Store) {
		ca, cb := newClock(), newClock()
		sa := &failing{Store: client()}
		ta, err := loglease.New(sa, "job", opts("a", ca)).Acquire(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		sa.fail.Store(true)
		got := acquireAsync(ctxT(t), loglease.New(client(), "job", opts("b", cb)))
		var lostAt, takenAt time.Duration
		for elapsed := time.Duration(0); takenAt == 0; elapsed += time.Second {
			if elapsed > 2*loglease.DefaultTTL {
				t.Fatal("no takeover")
			}
			cb.settle(t, 1)
			if lostAt == 0 {
				ca.settle(t, 1)
			}
			ca.Advance(time.Second)
			cb.Advance(time.Second)
			select {
			case <-ta.Lost():
				if lostAt == 0 {
					lostAt = elapsed + time.Second
				}
			case <-time.After(2 * time.Millisecond):
			}
			select {
			case tb := <-got:
				takenAt = elapsed + time.Second
				_ = tb.Release(ctxT(t))
			case <-time.After(2 * time.Millisecond):
			}
		}
		t.Logf("holder gave up after %v, contender took over after %v", lostAt, takenAt)
		if lostAt == 0 || lostAt > loglease.DefaultRenewDeadline || takenAt < loglease.DefaultTTL || !errors.Is(ta.Err(), domain.ErrLeaseLost) {
			t.Errorf("holder gave up after %v (%v), contender took over after %v: want the holder at its deadline %v, the contender after the TTL %v",
				lostAt, ta.Err(), takenAt, loglease.DefaultRenewDeadline, loglease.DefaultTTL)
		}
	})
}

// TestRestartedReplicaReclaimsAtOnce: a new process of the holder's replica
// takes the lease over on its first acquire, without waiting for the TTL.
func TestRestartedReplicaReclaimsAtOnce(t *testing.T) {
	onEachStore(t, func(t *testing.T, client func() eventlog.Store) {
		actx, crash := context.WithCancel(ctxT(t))
		t1, err := loglease.New(client(), "job", opts("a", newClock())).Acquire(actx)
		if err != nil {
			t.Fatal(err)
		}
		crash()
		<-t1.Lost()
		// Another replica does wait.
		octx, stopOther := context.WithCancel(ctxT(t))
		other := acquireAsync(octx, loglease.New(client(), "job", opts("b", newClock())))
		done := make(chan domain.LeaseTerm, 1)
		go func() {
			t2, err := loglease.New(client(), "job", opts("a", newClock())).Acquire(ctxT(t))
			if err != nil {
				t.Error(err)
			}
			done <- t2
		}()
		select {
		case t2 := <-done:
			if t2.Term() != 2 {
				t.Errorf("term %d", t2.Term())
			}
			_ = t2.Release(ctxT(t))
		case <-other:
			t.Fatal("the other replica took the lease at once")
		case <-time.After(10 * time.Second):
			t.Fatal("the restarted replica waited")
		}
		stopOther()
		if tb := <-other; tb != nil {
			_ = tb.Release(ctxT(t))
		}
	})
}

// TestOneHolderAtATime: eight replicas with short real-time settings
// compete for the lease until each has held it three times; never two at
// once.
func TestOneHolderAtATime(t *testing.T) {
	onEachStore(t, func(t *testing.T, client func() eventlog.Store) {
		var holding, most atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			l := loglease.New(client(), "job", loglease.Options{Replica: string(rune('a' + i)),
				TTL: 2 * time.Second, RenewEvery: 200 * time.Millisecond, RenewDeadline: time.Second, PollEvery: 5 * time.Millisecond})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					term, err := l.Acquire(ctxT(t))
					if err != nil {
						t.Error(err)
						return
					}
					n := holding.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					time.Sleep(2 * time.Millisecond)
					holding.Add(-1)
					if err := term.Release(ctxT(t)); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if most.Load() != 1 {
			t.Fatalf("%d holders at once", most.Load())
		}
	})
}

func decodeJSON(b []byte, v any) error { return json.Unmarshal(b, v) }
