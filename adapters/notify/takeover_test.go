package notify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/loglease"
	"github.com/buurtsignaal/buurtsignaal/adapters/logoutbox"
	"github.com/buurtsignaal/buurtsignaal/adapters/notify"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// replica is one server's notifier on a shared store: its own store
// client, projections, lease and outbox handle, as a process has.
type replica struct {
	t       testing.TB
	name    string
	store   eventlog.Store
	runner  *projections.Runner
	outbox  *logoutbox.Outbox
	n       *notify.Notifier
	reg     *prometheus.Registry
	log     *syncBuffer
	crashed atomic.Bool

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newReplica builds a replica on store; lease wraps its lease (nil: as is).
func newReplica(t testing.TB, name string, store eventlog.Store, lopts loglease.Options, hook *notify.Webhook, wrap func(domain.Lease) domain.Lease) *replica {
	r := &replica{t: t, name: name, store: store, reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	cases, targets := projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil)), projections.NewNotificationTargets()
	r.runner = projections.NewRunner(store, domain.NewRegistry(), cases, targets)
	ctx, stopRunner := context.WithCancel(context.Background())
	runnerDone := make(chan struct{})
	go func() { defer close(runnerDone); _ = r.runner.Run(ctx) }()
	t.Cleanup(func() { stopRunner(); <-runnerDone })
	lopts.Replica = name
	var lease domain.Lease = crashable{Lease: loglease.New(store, "notifier", lopts), crashed: &r.crashed}
	if wrap != nil {
		lease = wrap(lease)
	}
	r.outbox = logoutbox.Open(store, "notifier", logoutbox.Options{Replica: name})
	r.n = &notify.Notifier{Outbox: r.outbox, Lease: lease, Store: store, Reg: domain.NewRegistry(), Runner: r.runner, Cases: cases, Targets: targets,
		Webhook: hook, Secret: []byte("secret"), ScanEvery: time.Hour, Metrics: notify.NewMetrics(r.reg, r.outbox.Count),
		Log: slog.New(slog.NewTextHandler(r.log, nil))}
	t.Cleanup(r.stop)
	return r
}

// crashable is a lease whose terms are not released once the replica
// crashed: its context ends and nothing else happens, as when a process
// dies.
type crashable struct {
	domain.Lease
	crashed *atomic.Bool
}

func (c crashable) Acquire(ctx context.Context) (domain.LeaseTerm, error) {
	term, err := c.Lease.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return crashTerm{LeaseTerm: term, crashed: c.crashed}, nil
}

type crashTerm struct {
	domain.LeaseTerm
	crashed *atomic.Bool
}

func (t crashTerm) Release(ctx context.Context) error {
	if t.crashed.Load() {
		return nil
	}
	return t.LeaseTerm.Release(ctx)
}

func (r *replica) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	done := r.done
	go func() { defer close(done); _ = r.n.Run(ctx) }()
}

// stop ends the notifier as a shutdown does: it releases the lease.
func (r *replica) stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel = nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// crash ends the notifier without releasing anything.
func (r *replica) crash() {
	r.crashed.Store(true)
	r.stop()
}

func (r *replica) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancel != nil
}

// leading reads the replica's buurtsignaal_notifier_leader gauge.
func (r *replica) leading() bool {
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "buurtsignaal_notifier_leader" {
			return mf.GetMetric()[0].GetGauge().GetValue() == 1
		}
	}
	return false
}

// receiver records every arrival by idempotency key; paths in failing
// answer 500.
type receiver struct {
	mu      sync.Mutex
	got     map[string][]notify.Notification
	paths   map[string]string // key -> path
	failing map[string]bool
}

func newReceiver(t testing.TB) (*receiver, string) {
	rc := &receiver{got: map[string][]notify.Notification{}, paths: map[string]string{}, failing: map[string]bool{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.failing[r.URL.Path] {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	n, err := notify.DecodeEvent(body)
	if err != nil || n.ID != r.Header.Get("Idempotency-Key") {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	rc.got[n.ID] = append(rc.got[n.ID], n)
	rc.paths[n.ID] = r.URL.Path
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) fail(path string, on bool) {
	rc.mu.Lock()
	rc.failing[path] = on
	rc.mu.Unlock()
}

// signals returns, for each signal notified on path, its key, and the
// keys that arrived more than once.
func (rc *receiver) signals(path string) (bySignal map[string]string, repeated []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	bySignal = map[string]string{}
	for id, ns := range rc.got {
		if rc.paths[id] != path {
			continue
		}
		bySignal[ns[0].Signal] = id
		if len(ns) > 1 {
			repeated = append(repeated, id)
		}
	}
	return bySignal, repeated
}

// waitAll waits until every signal in want was notified on path.
func (rc *receiver) waitAll(t testing.TB, path string, want []string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(5 * time.Millisecond) {
		got, _ := rc.signals(path)
		missing := 0
		for _, s := range want {
			if _, ok := got[s]; !ok {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d signals not notified on %s", missing, len(want), path)
		}
	}
}

// startOutbox starts the shared outbox at the log's head, as the first
// notifier would, so that what the test hands over next is never taken for
// history however soon it comes.
func startOutbox(t fataler, store eventlog.Store) {
	o := logoutbox.Open(store, "notifier", logoutbox.Options{Replica: "setup"})
	defer o.Close()
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Claim(context.Background(), "setup"); err != nil {
		t.Fatal(err)
	}
	if err := o.Start(context.Background(), head); err != nil {
		t.Fatal(err)
	}
}

// handOverOn raises a signal and hands it over to team-a.
func handOverOn(t fataler, store eventlog.Store, at time.Time) string {
	id := uuid.New()
	stream := domain.SignalCategory + "-" + id.String()
	appendEvents(t, store, stream, eventlog.NoStream(), at, domain.SignalRaised{SignalID: id, SubjectID: uuid.New(), RaisedBy: "carla",
		Source: domain.RoleBuurtsteun, Network: "net", Neighbourhood: "centrum", Categories: []string{"loneliness"}, Urgency: "high",
		Consent: "informed", Description: domain.Sealed("x"), RaisedAt: at})
	appendEvents(t, store, stream, eventlog.Revision(0), at, domain.SignalHandedOver{TeamID: "team-a"})
	return id.String()
}

func kurrentClient(t testing.TB, url string) eventlog.Store {
	s, err := kurrentdb.Open(context.Background(), url, kurrentdb.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// helper is what waitLeading needs of a test (rapid's T included).
type helper interface {
	Helper()
	Fatalf(format string, args ...any)
}

func waitLeading(t helper, r *replica, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for !r.leading() {
		if time.Since(start) > within {
			t.Fatalf("replica %s does not deliver after %v", r.name, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

var quickHook = &notify.Webhook{Attempts: 3, Base: time.Millisecond, Max: 5 * time.Millisecond}

// TestTwoReplicasOnKurrentDB: two notifiers, each with its own client of
// one KurrentDB (the protocol test server), its own projections and the
// default lease, deliver to one receiver. One delivers at a time and every
// notification arrives once; the leader crashes (its context ends, nothing
// is released) while more signals are handed over, and the other takes
// over within 30 s, resumes from the shared checkpoint, and delivers what
// was missed, again once each. Then the dead letters: listed and retried
// through the replica that does not deliver.
func TestTwoReplicasOnKurrentDB(t *testing.T) {
	srv := kurrenttest.Start(t)
	writer := kurrentClient(t, srv.URL())
	rc, url := newReceiver(t)
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	appendEvents(t, writer, domain.NotificationStream("net"), eventlog.NoStream(), at, domain.NotificationTargetsSet{Network: "net",
		Targets: []domain.NotificationTarget{hookTo("hook", url+"/in")}})
	startOutbox(t, writer)
	a := newReplica(t, "a", kurrentClient(t, srv.URL()), loglease.Options{}, quickHook, nil)
	b := newReplica(t, "b", kurrentClient(t, srv.URL()), loglease.Options{}, quickHook, nil)
	a.start()
	waitLeading(t, a, 10*time.Second)
	b.start()
	var want []string
	for range 20 {
		want = append(want, handOverOn(t, writer, at))
	}
	rc.waitAll(t, "/in", want, 20*time.Second)
	if b.leading() {
		t.Fatal("both replicas deliver")
	}

	// The crash: a moment after the last delivery (the outbox writes its
	// removals within 20 ms; what a crash cuts off sooner is sent again,
	// under the same key), the connection is gone and the context ends,
	// with nothing released.
	time.Sleep(100 * time.Millisecond)
	a.crashed.Store(true)
	_ = a.store.Close()
	a.crash()
	crashed := time.Now()
	for range 20 {
		want = append(want, handOverOn(t, writer, at))
	}
	took := waitLeading(t, b, 30*time.Second)
	rc.waitAll(t, "/in", want, 30*time.Second)
	t.Logf("takeover: the other replica delivered %v after the crash; all 20 missed ones were delivered %v after it", took, time.Since(crashed))
	time.Sleep(200 * time.Millisecond)
	got, repeated := rc.signals("/in")
	if len(got) != len(want) || len(repeated) > 0 {
		t.Fatalf("%d signals notified for %d handovers; keys that arrived twice: %v", len(got), len(want), repeated)
	}

	// A dead letter, seen and retried through a restarted "a", which does
	// not deliver: b holds the lease.
	appendEvents(t, writer, domain.NotificationStream("net"), eventlog.Revision(0), at, domain.NotificationTargetsSet{Network: "net",
		Targets: []domain.NotificationTarget{hookTo("hook", url+"/in"), hookTo("broken", url+"/broken")}})
	rc.fail("/broken", true)
	a2 := newReplica(t, "a", kurrentClient(t, srv.URL()), loglease.Options{}, quickHook, nil)
	a2.start()
	broken := handOverOn(t, writer, at)
	var dead []domain.Delivery
	for deadline := time.Now().Add(20 * time.Second); len(dead) == 0; time.Sleep(20 * time.Millisecond) {
		var err error
		if dead, err = a2.n.DeadLetters(ctxT(t), 10); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter seen through the other replica")
		}
	}
	if len(dead) != 1 || dead[0].TargetID != "broken" || dead[0].Notification.Signal != broken {
		t.Fatalf("dead letters: %+v", dead)
	}
	rc.fail("/broken", false)
	if _, err := a2.n.RetryDeadLetter(ctxT(t), dead[0].Notification.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a2.n.RetryDeadLetter(ctxT(t), dead[0].Notification.ID); !errors.Is(err, domain.ErrNoDeadLetter) {
		t.Fatalf("a second retry: %v", err)
	}
	rc.waitAll(t, "/broken", []string{broken}, 20*time.Second)
	if bs, _ := rc.signals("/broken"); bs[broken] != dead[0].Notification.ID {
		t.Fatalf("the retried notification arrived under another key")
	}
	if a2.leading() || !b.leading() {
		t.Fatalf("after the retry: a delivers %t, b delivers %t", a2.leading(), b.leading())
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// deafLease holds the lease once without hearing that it lost it: its
// first term stops renewing at once, as a process frozen past the lease's
// TTL, and never reports the loss. Later terms are the lease's own.
type deafLease struct {
	domain.Lease
	used atomic.Bool
}

func (d *deafLease) Acquire(ctx context.Context) (domain.LeaseTerm, error) {
	if d.used.Swap(true) {
		return d.Lease.Acquire(ctx)
	}
	lctx, stopRenewing := context.WithCancel(ctx)
	term, err := d.Lease.Acquire(lctx)
	stopRenewing()
	if err != nil {
		return nil, err
	}
	return deafTerm{term}, nil
}

type deafTerm struct{ domain.LeaseTerm }

func (deafTerm) Lost() <-chan struct{}         { return nil }
func (deafTerm) Err() error                    { return nil }
func (deafTerm) Release(context.Context) error { return nil }

var shortLease = loglease.Options{TTL: time.Second, RenewEvery: 200 * time.Millisecond, RenewDeadline: 600 * time.Millisecond, PollEvery: 20 * time.Millisecond}

// TestADeposedLeaderIsFenced: a replica that lost the lease without
// noticing (its lease never reports the loss) keeps its loops running
// while another replica takes over. The outbox fences it: its first write
// or look at the queue after the takeover fails, it stops, and every
// notification arrives exactly once. Without the fencing both would
// deliver everything handed over after the takeover.
func TestADeposedLeaderIsFenced(t *testing.T) {
	srv := kurrenttest.Start(t)
	writer := kurrentClient(t, srv.URL())
	rc, url := newReceiver(t)
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	appendEvents(t, writer, domain.NotificationStream("net"), eventlog.NoStream(), at, domain.NotificationTargetsSet{Network: "net",
		Targets: []domain.NotificationTarget{hookTo("hook", url+"/in")}})
	startOutbox(t, writer)
	a := newReplica(t, "a", kurrentClient(t, srv.URL()), shortLease, quickHook, func(l domain.Lease) domain.Lease { return &deafLease{Lease: l} })
	b := newReplica(t, "b", kurrentClient(t, srv.URL()), shortLease, quickHook, nil)
	a.start()
	waitLeading(t, a, 10*time.Second)
	var want []string
	for range 3 {
		want = append(want, handOverOn(t, writer, at))
	}
	rc.waitAll(t, "/in", want, 10*time.Second)
	b.start()
	waitLeading(t, b, 10*time.Second) // a's lease expired; a has not noticed
	for range 10 {
		want = append(want, handOverOn(t, writer, at))
	}
	rc.waitAll(t, "/in", want, 10*time.Second)
	time.Sleep(time.Second) // time for a second delivery of any of them
	got, repeated := rc.signals("/in")
	if len(got) != len(want) || len(repeated) > 0 {
		t.Fatalf("%d signals notified for %d handovers; %d keys arrived more than once", len(got), len(want), len(repeated))
	}
	if a.leading() {
		t.Fatal("the deposed replica still delivers")
	}
	if !strings.Contains(a.log.String(), domain.ErrFenced.Message) {
		t.Errorf("the deposed replica did not stop on the fence:\n%s", a.log.String())
	}
}

// TestNotifierTakeoversLoseNothing: three replicas share one store, one
// lease (short, real-time settings) and the outbox in the log; signals are
// handed over while the delivering replica crashes (nothing released; a
// new process of it may start, and reclaims its lease at once), stops
// cleanly (releasing the lease) or a stopped one starts again, and the
// receiver fails some requests. In the end every handover was delivered,
// each under one key with the same content every time it arrived.
func TestNotifierTakeoversLoseNothing(t *testing.T) {
	lease := loglease.Options{TTL: 150 * time.Millisecond, RenewEvery: 30 * time.Millisecond, RenewDeadline: 90 * time.Millisecond, PollEvery: 5 * time.Millisecond}
	hook := &notify.Webhook{Attempts: 50, Base: time.Millisecond, Max: 5 * time.Millisecond}
	var crashes, stops, handovers atomic.Int64
	defer func() {
		t.Logf("%d handovers; %d crashes and %d clean stops of the delivering replica", handovers.Load(), crashes.Load(), stops.Load())
	}()
	rapid.Check(t, func(rt *rapid.T) {
		box := &inbox{failEvery: rapid.SampledFrom([]int{0, 2, 3, 5}).Draw(rt, "failEvery"), got: map[string][]notify.Notification{}}
		recv := httptest.NewServer(box)
		defer recv.Close()
		store, err := pebblestore.Open(filepath.Join(t.TempDir(), "events"), pebblestore.Options{})
		if err != nil {
			rt.Fatal(err)
		}
		defer store.Close()
		at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
		appendEvents(rt, store, domain.NotificationStream("net"), eventlog.NoStream(), at, domain.NotificationTargetsSet{Network: "net",
			Targets: []domain.NotificationTarget{hookTo("hook", recv.URL)}})
		startOutbox(rt, store)
		var reps []*replica
		defer func() {
			for _, r := range reps {
				r.stop()
			}
		}()
		names := []string{"a", "b", "c"}
		for _, name := range names {
			reps = append(reps, newReplica(t, name, store, lease, hook, nil))
		}
		reps[0].start()
		reps[1].start()
		var want []string
		leader := func() int { return slices.IndexFunc(reps, func(r *replica) bool { return r.leading() }) }
		for steps := rapid.IntRange(1, 8).Draw(rt, "steps"); steps > 0; steps-- {
			for k := rapid.IntRange(0, 3).Draw(rt, "handovers"); k > 0; k-- {
				want = append(want, handOverOn(rt, store, at))
			}
			time.Sleep(time.Duration(rapid.IntRange(0, 20).Draw(rt, "ms")) * time.Millisecond)
			i := leader()
			switch action := rapid.SampledFrom([]string{"crash", "stop", "start", "wait"}).Draw(rt, "action"); {
			case action == "crash" && i >= 0:
				crashes.Add(1)
				reps[i].crash()
				reps[i] = newReplica(t, names[i], store, lease, hook, nil) // a new process of the same replica, not yet started
			case action == "stop" && i >= 0:
				stops.Add(1)
				reps[i].stop()
			case action == "start":
				for _, r := range reps {
					if !r.running() {
						r.start()
						break
					}
				}
			}
			if slices.IndexFunc(reps, func(r *replica) bool { return r.running() }) < 0 {
				reps[rapid.IntRange(0, 2).Draw(rt, "restart")].start()
			}
		}
		for _, r := range reps {
			r.start()
		}
		handovers.Add(int64(len(want)))
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := box.delivered()
			bySignal := map[string]string{}
			for id, ns := range got {
				for _, n := range ns {
					if diff := cmp.Diff(ns[0], n); diff != "" {
						rt.Fatalf("notification %s changed between deliveries:\n%s", id, diff)
					}
				}
				if prev, dup := bySignal[ns[0].Signal]; dup {
					rt.Fatalf("signal %s notified under two keys: %s and %s", ns[0].Signal, prev, id)
				}
				bySignal[ns[0].Signal] = id
			}
			if len(bySignal) == len(want) {
				for _, s := range want {
					if _, ok := bySignal[s]; !ok {
						rt.Fatalf("signal %s was never notified", s)
					}
				}
				return
			}
			if time.Now().After(deadline) {
				for _, r := range reps {
					lines := strings.Split(strings.TrimSpace(r.log.String()), "\n")
					t.Logf("replica %s (running %t, leading %t), its last log lines:\n%s", r.name, r.running(), r.leading(),
						strings.Join(lines[max(0, len(lines)-15):], "\n"))
				}
				rt.Fatalf("%d of %d handovers delivered", len(bySignal), len(want))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
