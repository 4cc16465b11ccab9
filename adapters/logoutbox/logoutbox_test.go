package logoutbox_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/adapters/logoutbox"
	"github.com/buurtsignaal/buurtsignaal/adapters/outboxtest"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func TestMain(m *testing.M) {
	kurrenttest.LeakCheckedMain(m,
		// grpc's and the client's background goroutines end a moment after
		// the connections close.
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/transport.(*controlBuffer).get"),
	)
}

func pebbleStore(t testing.TB) eventlog.Store {
	s, err := pebblestore.Open(filepath.Join(t.TempDir(), "events"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// client opens a client of its own on a KurrentDB server, as a replica does.
func client(t testing.TB, url string) eventlog.Store {
	s, err := kurrentdb.Open(context.Background(), url, kurrentdb.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// small makes segments short, so the suite crosses many of them.
var small = logoutbox.Options{SegmentEvents: 7, Replica: "test"}

// TestOutboxOnTheEmbeddedStore runs the outbox conformance suite with the
// handles side by side on one embedded store, with short segments and with
// the default ones.
func TestOutboxOnTheEmbeddedStore(t *testing.T) {
	for name, opts := range map[string]logoutbox.Options{"short segments": small, "default segments": {Replica: "test"}} {
		t.Run(name, func(t *testing.T) {
			outboxtest.Run(t, outboxtest.Config{Shared: true, New: func(t *testing.T) func(t *testing.T) domain.Outbox {
				store := pebbleStore(t)
				return func(t *testing.T) domain.Outbox { return logoutbox.Open(store, "notifier", opts) }
			}})
		})
	}
}

// TestOutboxOnKurrentDB runs the suite through the real KurrentDB client
// against the protocol test server, each handle with a client of its own.
func TestOutboxOnKurrentDB(t *testing.T) {
	outboxtest.Run(t, outboxtest.Config{Shared: true, New: func(t *testing.T) func(t *testing.T) domain.Outbox {
		srv := kurrenttest.Start(t)
		return func(t *testing.T) domain.Outbox { return logoutbox.Open(client(t, srv.URL()), "notifier", small) }
	}})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTakeoverReadsOneSegment: after many segments, a new handle finds the
// head in a few reads and reads only that segment.
func TestTakeoverReadsOneSegment(t *testing.T) {
	store := &countingStore{Store: pebbleStore(t)}
	o := logoutbox.Open(store, "notifier", logoutbox.Options{SegmentEvents: 50})
	must(t, o.Claim(ctxT(t), "first"))
	for i := range 1000 {
		id := fmt.Sprintf("n%04d", i)
		pos := uint64(i + 1)
		must(t, o.Enqueue(ctxT(t), []domain.Delivery{outboxtest.Delivery(id, "t")}, []string{id}, &pos))
		if i%4 != 0 {
			must(t, o.Done(ctxT(t), id))
		}
	}
	if _, err := o.Pending(ctxT(t), 1); err != nil { // writes the removals kept back
		t.Fatal(err)
	}
	store.reads, store.events = 0, 0
	next := logoutbox.Open(store, "notifier", logoutbox.Options{SegmentEvents: 50})
	must(t, next.Claim(ctxT(t), "second"))
	p, _, err := next.Count(ctxT(t))
	must(t, err)
	cp, _, _ := next.Checkpoint(ctxT(t))
	marked, _ := next.Marked(ctxT(t), "n0001")
	if p != 250 || cp != 1000 || !marked {
		t.Fatalf("after the takeover: %d pending, checkpoint %d, marked %t", p, cp, marked)
	}
	last, _ := store.segments(t)
	t.Logf("%d segments; the takeover read %d events in %d reads", last, store.events, store.reads)
	if last < 20 || store.events > 60 || store.reads > 20 {
		t.Errorf("%d segments; the takeover read %d events in %d reads: want one segment's events in a few reads", last, store.events, store.reads)
	}
}

// TestDeposedOwnerMidRoll: the old owner sealed a segment but did not start
// the next; the new owner starts it, and the old owner's late start of it
// fails or is fenced.
func TestDeposedOwnerMidRoll(t *testing.T) {
	store := pebbleStore(t)
	opts := logoutbox.Options{SegmentEvents: 4}
	old := logoutbox.Open(store, "notifier", opts)
	must(t, old.Claim(ctxT(t), "old"))
	pos := uint64(3)
	must(t, old.Enqueue(ctxT(t), []domain.Delivery{outboxtest.Delivery("a", "t")}, []string{"m"}, &pos))
	// Seal segment 1 by hand, as an owner that died before starting 2.
	head, err := store.ReadStream(ctxT(t), logoutbox.Stream("notifier", 1), eventlog.Backwards, eventlog.End, 1)
	must(t, err)
	data, _ := domain.Encode(domain.OutboxSealed{Next: logoutbox.Stream("notifier", 2)})
	_, err = store.Append(ctxT(t), logoutbox.Stream("notifier", 1), eventlog.Revision(head[0].Revision),
		eventlog.EventData{ID: newID(), Type: "OutboxSealed", Data: data, Metadata: eventlog.Metadata{SchemaVersion: 1}})
	must(t, err)
	next := logoutbox.Open(store, "notifier", opts)
	must(t, next.Claim(ctxT(t), "new"))
	if cp, _, _ := next.Checkpoint(ctxT(t)); cp != 3 {
		t.Fatalf("checkpoint %d after the takeover", cp)
	}
	if err := old.Done(ctxT(t), "a"); err != nil && !errors.Is(err, domain.ErrFenced) {
		t.Fatal(err)
	}
	if _, err := old.Pending(ctxT(t), 10); !errors.Is(err, domain.ErrFenced) { // would write the removal
		t.Fatalf("the old owner wrote after the takeover: %v", err)
	}
	if p, _, _ := next.Count(ctxT(t)); p != 1 {
		t.Fatalf("the old owner's removal landed: %d pending", p)
	}
	must(t, next.Done(ctxT(t), "a"))
	if _, err := next.Pending(ctxT(t), 10); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := old.Count(ctxT(t)); p != 0 {
		t.Fatalf("the old handle reads %d pending", p)
	}
}

// TestAdminRetryDoesNotFenceTheOwner: a retry through another replica's
// handle between the owner's writes costs the owner a reread, not its claim.
func TestAdminRetryDoesNotFenceTheOwner(t *testing.T) {
	srv := kurrenttest.Start(t)
	owner := logoutbox.Open(client(t, srv.URL()), "notifier", logoutbox.Options{})
	admin := logoutbox.Open(client(t, srv.URL()), "notifier", logoutbox.Options{})
	must(t, owner.Claim(ctxT(t), "owner"))
	must(t, owner.Enqueue(ctxT(t), []domain.Delivery{outboxtest.Delivery("a", "t"), outboxtest.Delivery("b", "t")}, nil, nil))
	must(t, owner.Fail(ctxT(t), outboxtest.Delivery("a", "t")))
	if _, err := admin.Retry(ctxT(t), "a"); err != nil {
		t.Fatal(err)
	}
	must(t, owner.Done(ctxT(t), "b"))
	ds, err := owner.Pending(ctxT(t), 10)
	must(t, err)
	if len(ds) != 1 || ds[0].Notification.ID != "a" {
		t.Fatalf("pending on the owner: %+v", ds)
	}
}
