package notify_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/adapters/logoutbox"
	"github.com/buurtsignaal/buurtsignaal/adapters/notify"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// inbox is a webhook receiver that answers 500 to every failEvery-th
// request and records each notification delivered, by id.
type inbox struct {
	mu        sync.Mutex
	requests  int
	failEvery int
	got       map[string][]notify.Notification
}

func (b *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests++
	if b.failEvery > 0 && b.requests%b.failEvery == 0 {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	n, err := notify.DecodeEvent(body)
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	b.got[n.ID] = append(b.got[n.ID], n)
	w.WriteHeader(http.StatusNoContent)
}

func (b *inbox) delivered() map[string][]notify.Notification {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string][]notify.Notification, len(b.got))
	for k, v := range b.got {
		out[k] = append([]notify.Notification(nil), v...)
	}
	return out
}

func appendEvents(t interface{ Fatal(...any) }, store eventlog.Store, stream string, expected eventlog.ExpectedVersion, at time.Time, events ...domain.Event) {
	var data []eventlog.EventData
	for _, e := range events {
		body, err := domain.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, eventlog.EventData{ID: uuid.New(), Type: e.EventType(), Data: body,
			Metadata: eventlog.Metadata{OccurredAt: at, ActorID: "carla", Network: "net", SchemaVersion: domain.VersionOf(e)}})
	}
	if _, err := store.Append(context.Background(), stream, expected, data...); err != nil {
		t.Fatal(err)
	}
}

type fataler interface{ Fatal(...any) }

// outboxKind opens a rig's outbox: the local Pebble outbox, or the outbox
// kept in the log that replicas share.
type outboxKind struct {
	name string
	open func(r *rig) (domain.Outbox, error)
}

var outboxKinds = []outboxKind{
	{"local", func(r *rig) (domain.Outbox, error) { return notify.OpenOutbox(r.outboxDir, nil) }},
	{"log", func(r *rig) (domain.Outbox, error) {
		return logoutbox.Open(r.store, "notifier", logoutbox.Options{SegmentEvents: 64, Replica: "rig"}), nil
	}},
}

// onEachOutbox runs f once per outbox kind.
func onEachOutbox(t *testing.T, f func(t *testing.T, kind outboxKind)) {
	for _, k := range outboxKinds {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

// rig is a notifier's world: a Pebble store with notification targets,
// the projections the notifier reads, and an outbox notifying from the
// log's head.
type rig struct {
	store     *pebblestore.Store
	runner    *projections.Runner
	cases     *projections.Cases
	targets   *projections.NotificationTargets
	kind      outboxKind
	outboxDir string
	outbox    domain.Outbox
	at        time.Time
	stop      []func()
}

func newRig(t fataler, dir string, kind outboxKind, targets ...domain.NotificationTarget) *rig {
	r := &rig{at: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), outboxDir: filepath.Join(dir, "outbox"), kind: kind}
	var err error
	if r.store, err = pebblestore.Open(filepath.Join(dir, "events"), pebblestore.Options{}); err != nil {
		t.Fatal(err)
	}
	r.stop = append(r.stop, func() { _ = r.store.Close() })
	appendEvents(t, r.store, domain.NotificationStream("net"), eventlog.NoStream(), r.at, domain.NotificationTargetsSet{Network: "net", Targets: targets})
	r.cases, r.targets = projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil)), projections.NewNotificationTargets()
	r.runner = projections.NewRunner(r.store, domain.NewRegistry(), r.cases, r.targets)
	ctx, stopRunner := context.WithCancel(context.Background())
	runnerDone := make(chan struct{})
	go func() { defer close(runnerDone); _ = r.runner.Run(ctx) }()
	r.stop = append(r.stop, func() { stopRunner(); <-runnerDone })
	if r.outbox, err = kind.open(r); err != nil {
		t.Fatal(err)
	}
	r.stop = append(r.stop, func() { _ = r.outbox.Close() })
	head, _ := r.store.Head(ctx)
	if err := r.outbox.Claim(context.Background(), "rig"); err != nil {
		t.Fatal(err)
	}
	if err := r.outbox.Start(context.Background(), head); err != nil { // notify from here on
		t.Fatal(err)
	}
	return r
}

func (r *rig) close() {
	for i := len(r.stop) - 1; i >= 0; i-- {
		r.stop[i]()
	}
}

// reopen closes and opens the outbox, as a restart does.
func (r *rig) reopen(t fataler) {
	if err := r.outbox.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.outbox, err = r.kind.open(r); err != nil {
		t.Fatal(err)
	}
}

// start runs a notifier until stop is called.
func (r *rig) start(webhook *notify.Webhook, workers int) (stop func()) {
	n := &notify.Notifier{Outbox: r.outbox, Store: r.store, Reg: domain.NewRegistry(), Runner: r.runner, Cases: r.cases, Targets: r.targets,
		Webhook: webhook, Secret: []byte("secret"), ScanEvery: time.Hour, Workers: workers}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	return func() { cancel(); <-done }
}

// handOver raises a signal and hands it over to team-a.
func (r *rig) handOver(t fataler) string {
	id := uuid.New()
	stream := domain.SignalCategory + "-" + id.String()
	appendEvents(t, r.store, stream, eventlog.NoStream(), r.at, domain.SignalRaised{SignalID: id, SubjectID: uuid.New(), RaisedBy: "carla",
		Source: domain.RoleBuurtsteun, Network: "net", Neighbourhood: "centrum", Categories: []string{"loneliness"}, Urgency: "high",
		Consent: "informed", Description: domain.Sealed("x"), RaisedAt: r.at})
	appendEvents(t, r.store, stream, eventlog.Revision(0), r.at, domain.SignalHandedOver{TeamID: "team-a"})
	return id.String()
}

func hookTo(id, url string) domain.NotificationTarget {
	return domain.NotificationTarget{ID: id, Subscriber: domain.SubscribeTeam, SubscriberID: "team-a", Channel: domain.ChannelWebhook, URL: url, Kinds: []string{domain.NotifyHandedOver}}
}

// TestNotifierRestartsLoseNothing: signals are handed over while the
// notifier is stopped at random moments (its outbox closed and reopened at
// some) and the receiver fails some requests; in the end every handover
// was delivered, each under one stable idempotency key with the same
// content every time it arrived.
func TestNotifierRestartsLoseNothing(t *testing.T) {
	onEachOutbox(t, testRestartsLoseNothing)
}

func testRestartsLoseNothing(t *testing.T, kind outboxKind) {
	rapid.Check(t, func(rt *rapid.T) {
		box := &inbox{failEvery: rapid.SampledFrom([]int{0, 2, 3, 5}).Draw(rt, "failEvery"), got: map[string][]notify.Notification{}}
		recv := httptest.NewServer(box)
		defer recv.Close()
		r := newRig(rt, t.TempDir(), kind, hookTo("hook", recv.URL))
		defer r.close()
		hook := &notify.Webhook{Attempts: 50, Base: time.Millisecond, Max: 5 * time.Millisecond}

		signals := rapid.IntRange(1, 15).Draw(rt, "signals")
		var want []string
		next := 0
		for round := rapid.IntRange(1, 5).Draw(rt, "restarts"); round > 0; round-- {
			stop := r.start(hook, 0)
			for k := rapid.IntRange(0, 4).Draw(rt, "handovers"); k > 0 && next < signals; k-- {
				want = append(want, r.handOver(rt))
				next++
			}
			time.Sleep(time.Duration(rapid.IntRange(0, 5).Draw(rt, "ms")) * time.Millisecond)
			stop() // at a random moment: following, queueing or delivering
			if rapid.Bool().Draw(rt, "reopen") {
				r.reopen(rt)
			}
		}
		for ; next < signals; next++ {
			want = append(want, r.handOver(rt))
		}
		stop := r.start(hook, 0)
		defer stop()
		deadline := time.Now().Add(20 * time.Second)
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
				rt.Fatalf("%d of %d handovers delivered", len(bySignal), len(want))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// TestADeadReceiverDoesNotHoldTheOthers: a receiver that is down gets one
// delivery at a time, so a healthy target's notification goes out while
// the dead one's are still being retried.
func TestADeadReceiverDoesNotHoldTheOthers(t *testing.T) {
	onEachOutbox(t, testADeadReceiverDoesNotHoldTheOthers)
}

func testADeadReceiverDoesNotHoldTheOthers(t *testing.T, kind outboxKind) {
	var (
		mu        sync.Mutex
		deadNow   int // requests in flight to the dead receiver
		deadMost  int
		deadTries int
		okAt      time.Time
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/ok" {
			mu.Lock()
			if okAt.IsZero() {
				okAt = time.Now()
			}
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		mu.Lock()
		deadNow++
		deadTries++
		deadMost = max(deadMost, deadNow)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		deadNow--
		mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer recv.Close()
	dead := hookTo("dead", recv.URL+"/dead")
	r := newRig(t, t.TempDir(), kind, dead)
	defer r.close()
	// Twelve handovers go to the dead receiver first; then a healthy target
	// is added and one more handover goes to both.
	for range 12 {
		r.handOver(t)
	}
	stop := r.start(&notify.Webhook{Attempts: 3, Base: 20 * time.Millisecond, Max: 20 * time.Millisecond}, 4)
	defer stop()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		dl, _ := r.outbox.DeadLetters(context.Background(), 100)
		if len(dl) > 0 {
			break // the dead target is known to fail
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter")
		}
	}
	appendEvents(t, r.store, domain.NotificationStream("net"), eventlog.Revision(0), r.at, domain.NotificationTargetsSet{Network: "net",
		Targets: []domain.NotificationTarget{dead, hookTo("ok", recv.URL+"/ok")}})
	r.handOver(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		delivered := !okAt.IsZero()
		mu.Unlock()
		if delivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the healthy target got nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	dl, _ := r.outbox.DeadLetters(context.Background(), 100)
	pending, _ := r.outbox.Pending(context.Background(), 100)
	if len(pending) < 5 {
		t.Errorf("the healthy target waited for the dead one: %d dead letters and only %d pending when it was served", len(dl), len(pending))
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("dead receiver: %d tries, at most %d at once; %d dead letters, %d pending when the healthy target was served", deadTries, deadMost, len(dl), len(pending))
}
