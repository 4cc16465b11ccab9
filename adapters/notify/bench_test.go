package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/loglease"
	"github.com/buurtsignaal/buurtsignaal/adapters/logoutbox"
	"github.com/buurtsignaal/buurtsignaal/adapters/notify"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// BenchmarkNotifierOutbox measures the notifier's throughput with each
// outbox: b.N handovers are in the log after the outbox's checkpoint, and
// the timer runs from the notifier's start until a receiver on loopback
// has every webhook. The variants: embedded/local is the embedded store
// with the local Pebble outbox (one machine); kurrentdb/local the log on
// KurrentDB (the protocol test server) with the local outbox (a cluster
// where one replica notifies); kurrentdb/cluster the log on KurrentDB with
// the outbox in it and the lease (every replica may notify). Run it with
//
//	go test ./adapters/notify -run X -bench NotifierOutbox -benchtime 2000x
func BenchmarkNotifierOutbox(b *testing.B) {
	b.Run("embedded/local", func(b *testing.B) {
		store, err := pebblestore.Open(filepath.Join(b.TempDir(), "events"), pebblestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = store.Close() })
		benchOutbox(b, store, store, false)
	})
	b.Run("kurrentdb/local", func(b *testing.B) {
		srv := kurrenttest.Start(b)
		benchOutbox(b, kurrentClient(b, srv.URL()), kurrentClient(b, srv.URL()), false)
	})
	b.Run("kurrentdb/cluster", func(b *testing.B) {
		srv := kurrenttest.Start(b)
		benchOutbox(b, kurrentClient(b, srv.URL()), kurrentClient(b, srv.URL()), true)
	})
}

func benchOutbox(b *testing.B, writer, store eventlog.Store, cluster bool) {
	var (
		got  atomic.Int64
		done = make(chan struct{})
		once sync.Once
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got.Add(1) >= int64(b.N) {
			once.Do(func() { close(done) })
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(recv.Close)
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	appendEvents(b, writer, domain.NotificationStream("net"), eventlog.NoStream(), at, domain.NotificationTargetsSet{Network: "net",
		Targets: []domain.NotificationTarget{hookTo("bench", recv.URL)}})
	cases, targets := projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil)), projections.NewNotificationTargets()
	runner := projections.NewRunner(store, domain.NewRegistry(), cases, targets)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runnerDone := make(chan struct{})
	go func() { defer close(runnerDone); _ = runner.Run(ctx) }()
	defer func() { cancel(); <-runnerDone }()

	n := &notify.Notifier{Store: store, Reg: domain.NewRegistry(), Runner: runner, Cases: cases, Targets: targets,
		Webhook: &notify.Webhook{Attempts: 3}, Secret: []byte("secret"), ScanEvery: time.Hour}
	if cluster {
		n.Outbox = logoutbox.Open(store, "notifier", logoutbox.Options{Replica: "bench"})
		n.Lease = loglease.New(store, "notifier", loglease.Options{Replica: "bench"})
	} else {
		o, err := notify.OpenOutbox(filepath.Join(b.TempDir(), "outbox"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer o.Close()
		n.Outbox = o
	}
	head, err := writer.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Outbox.Claim(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	if err := n.Outbox.Start(ctx, head); err != nil {
		b.Fatal(err)
	}
	work := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				handOverOn(b, writer, at)
			}
		}()
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	if head, err = writer.Head(ctx); err != nil {
		b.Fatal(err)
	}
	if err := runner.WaitFor(ctx, head); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	start := time.Now()
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = n.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("delivered %d of %d", got.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-runDone
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "notifications/s")
}
