package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	var n notify.Notification
	if err := json.Unmarshal(body, &n); err != nil {
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

// TestNotifierRestartsLoseNothing: signals are handed over while the
// notifier is stopped at random moments (its outbox closed and reopened at
// some) and the receiver fails some requests; in the end every handover
// was delivered, each under one stable idempotency key with the same
// content every time it arrived.
func TestNotifierRestartsLoseNothing(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir := t.TempDir()
		store, err := pebblestore.Open(filepath.Join(dir, fmt.Sprintf("events-%d", rapid.Int().Draw(rt, "dir"))), pebblestore.Options{})
		if err != nil {
			rt.Fatal(err)
		}
		defer store.Close()
		box := &inbox{failEvery: rapid.SampledFrom([]int{0, 2, 3, 5}).Draw(rt, "failEvery"), got: map[string][]notify.Notification{}}
		recv := httptest.NewServer(box)
		defer recv.Close()
		at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
		appendEvents(rt, store, domain.NotificationStream("net"), eventlog.NoStream(), at, domain.NotificationTargetsSet{Network: "net", Targets: []domain.NotificationTarget{
			{ID: "hook", Subscriber: domain.SubscribeTeam, SubscriberID: "team-a", Channel: domain.ChannelWebhook, URL: recv.URL, Kinds: []string{domain.NotifyHandedOver}},
		}})

		cases, targets := projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil)), projections.NewNotificationTargets()
		runner := projections.NewRunner(store, domain.NewRegistry(), cases, targets)
		ctx, stopRunner := context.WithCancel(context.Background())
		runnerDone := make(chan struct{})
		go func() { defer close(runnerDone); _ = runner.Run(ctx) }()
		defer func() { stopRunner(); <-runnerDone }()

		outboxDir := filepath.Join(dir, fmt.Sprintf("outbox-%d", rapid.Int().Draw(rt, "outbox")))
		outbox, err := notify.OpenOutbox(outboxDir)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { _ = outbox.Close() }()
		head, _ := store.Head(ctx)
		if err := outbox.Start(head); err != nil { // notify from here on
			rt.Fatal(err)
		}
		start := func() (stop func()) {
			n := &notify.Notifier{Outbox: outbox, Store: store, Reg: domain.NewRegistry(), Runner: runner, Cases: cases, Targets: targets,
				Webhook: &notify.Webhook{Attempts: 50, Base: time.Millisecond, Max: 5 * time.Millisecond}, Secret: []byte("secret"), ScanEvery: time.Hour}
			nctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); _ = n.Run(nctx) }()
			return func() { cancel(); <-done }
		}

		signals := rapid.IntRange(1, 15).Draw(rt, "signals")
		var want []string
		handOver := func(i int) {
			id := uuid.New()
			stream := domain.SignalCategory + "-" + id.String()
			appendEvents(rt, store, stream, eventlog.NoStream(), at, domain.SignalRaised{SignalID: id, SubjectID: uuid.New(), RaisedBy: "carla",
				Source: domain.RoleBuurtsteun, Network: "net", Neighbourhood: "centrum", Categories: []string{"loneliness"}, Urgency: "high",
				Consent: "informed", Description: domain.Sealed("x"), RaisedAt: at})
			appendEvents(rt, store, stream, eventlog.Revision(0), at, domain.SignalHandedOver{TeamID: "team-a"})
			want = append(want, id.String())
		}
		next := 0
		for round := rapid.IntRange(1, 5).Draw(rt, "restarts"); round > 0; round-- {
			stop := start()
			for k := rapid.IntRange(0, 4).Draw(rt, "handovers"); k > 0 && next < signals; k-- {
				handOver(next)
				next++
			}
			time.Sleep(time.Duration(rapid.IntRange(0, 5).Draw(rt, "ms")) * time.Millisecond)
			stop() // at a random moment: following, queueing or delivering
			if rapid.Bool().Draw(rt, "reopen") {
				if err := outbox.Close(); err != nil {
					rt.Fatal(err)
				}
				if outbox, err = notify.OpenOutbox(outboxDir); err != nil {
					rt.Fatal(err)
				}
			}
		}
		for ; next < signals; next++ {
			handOver(next)
		}
		stop := start()
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
