// Package outboxtest is the one conformance suite of the notification
// outbox port (domain.Outbox): the local Pebble outbox and the outbox kept
// in the event log both run Run, so the notifier finds the same semantics
// on one machine and on a cluster.
package outboxtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Config says how to make the outbox under test.
type Config struct {
	// New makes a fresh, empty outbox and returns an opener of handles on
	// it. With Shared, handles are open side by side, as the replicas of a
	// cluster hold them; without, the suite closes a handle before it opens
	// the next (an outbox one process opens at a time), and each must see
	// what the ones before it wrote.
	New func(t *testing.T) (open func(t *testing.T) domain.Outbox)
	// Shared: handles are open at once, and the claim fences.
	Shared bool
}

// Run runs the suite, one subtest per behaviour, each on a fresh outbox.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	tests := []struct {
		name   string
		shared bool // only for shared outboxes
		fn     func(t *testing.T, h *handles)
	}{
		{"NewOutboxIsEmpty", false, testEmpty},
		{"EnqueueKeepsDeliveriesMarksAndCheckpoint", false, testEnqueue},
		{"RedoReplacesPendingAndKeepsDeadLetters", false, testRedo},
		{"DeadLetterRetryAndDone", false, testDeadLetters},
		{"LimitsAndLargeBatches", false, testLarge},
		{"ConcurrentWritersLoseNothing", false, testConcurrent},
		{"ClaimFencesTheEarlierWriter", true, testFencing},
		{"UnclaimedHandleCannotWrite", true, testUnclaimed},
		{"RetryThroughAnyHandle", true, testRetryAnywhere},
	}
	for _, tt := range tests {
		if tt.shared && !cfg.Shared {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			h := &handles{t: t, open: cfg.New(t), shared: cfg.Shared}
			t.Cleanup(h.closeAll)
			tt.fn(t, h)
		})
	}
}

// handles opens handles on one outbox and closes them.
type handles struct {
	t      *testing.T
	open   func(t *testing.T) domain.Outbox
	shared bool
	all    []domain.Outbox
}

// next returns a new handle. Without sharing it closes the previous one
// first, as a restart does.
func (h *handles) next() domain.Outbox {
	h.t.Helper()
	if !h.shared && len(h.all) > 0 {
		last := h.all[len(h.all)-1]
		if err := last.Close(); err != nil {
			h.t.Fatal(err)
		}
		h.all = h.all[:len(h.all)-1]
	}
	o := h.open(h.t)
	h.all = append(h.all, o)
	return o
}

func (h *handles) closeAll() {
	for _, o := range h.all {
		_ = o.Close()
	}
}

// claimed returns a new handle that claimed the outbox.
func (h *handles) claimed(owner string) domain.Outbox {
	h.t.Helper()
	o := h.next()
	if err := o.Claim(ctx(h.t), owner); err != nil {
		h.t.Fatalf("claim by %s: %v", owner, err)
	}
	return o
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var at = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// Delivery returns a delivery with id and target.
func Delivery(id, target string) domain.Delivery {
	return domain.Delivery{Notification: domain.Notification{ID: id, Kind: domain.NotifyHandedOver, Signal: "4b1d7c1e-3f0a-4d2b-9c8e-1a2b3c4d5e6f", Team: "team-a", At: at, Network: "net"},
		TargetID: target, Channel: domain.ChannelWebhook, QueuedAt: at}
}

// ids returns the sorted ids of deliveries.
func ids(ds []domain.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Notification.ID)
	}
	slices.Sort(out)
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pending(t *testing.T, o domain.Outbox) []string {
	t.Helper()
	ds, err := o.Pending(ctx(t), 100_000)
	must(t, err)
	return ids(ds)
}

func dead(t *testing.T, o domain.Outbox) []string {
	t.Helper()
	ds, err := o.DeadLetters(ctx(t), 100_000)
	must(t, err)
	return ids(ds)
}

func count(t *testing.T, o domain.Outbox) [2]int {
	t.Helper()
	p, d, err := o.Count(ctx(t))
	must(t, err)
	return [2]int{p, d}
}

func testEmpty(t *testing.T, h *handles) {
	o := h.next()
	if cp, ok, err := o.Checkpoint(ctx(t)); ok || err != nil {
		t.Fatalf("a new outbox has checkpoint %d (%v)", cp, err)
	}
	if got := dead(t, o); len(got) != 0 {
		t.Fatalf("dead letters: %v", got)
	}
	if c := count(t, o); c != [2]int{} {
		t.Fatalf("count %v", c)
	}
	if m, err := o.Marked(ctx(t), "x/norm_lapsed"); m || err != nil {
		t.Fatalf("marked in a new outbox (%v)", err)
	}
	if _, err := o.Retry(ctx(t), "nope"); !errors.Is(err, domain.ErrNoDeadLetter) {
		t.Fatalf("retry in a new outbox: %v", err)
	}
	must(t, o.Claim(ctx(t), "first"))
	if got := pending(t, o); len(got) != 0 {
		t.Fatalf("pending: %v", got)
	}
	if cp, ok, err := o.Checkpoint(ctx(t)); ok || err != nil {
		t.Fatalf("a claim set checkpoint %d (%v)", cp, err)
	}
}

func testEnqueue(t *testing.T, h *handles) {
	o := h.claimed("first")
	must(t, o.Start(ctx(t), 10))
	if cp, ok, err := o.Checkpoint(ctx(t)); cp != 10 || !ok || err != nil {
		t.Fatalf("checkpoint after start: %d %t %v", cp, ok, err)
	}
	pos := uint64(42)
	must(t, o.Enqueue(ctx(t), []domain.Delivery{Delivery("a", "t"), Delivery("b", "t")}, []string{"sig/norm_lapsed"}, &pos))
	must(t, o.Enqueue(ctx(t), nil, []string{"sig/unrouted"}, nil)) // marks alone keep the checkpoint
	check := func(i int, o domain.Outbox) {
		t.Helper()
		if cp, ok, err := o.Checkpoint(ctx(t)); cp != 42 || !ok || err != nil {
			t.Fatalf("handle %d: checkpoint %d %t %v", i, cp, ok, err)
		}
		for mark, want := range map[string]bool{"sig/norm_lapsed": true, "sig/unrouted": true, "sig/norm_lapsing": false} {
			if m, err := o.Marked(ctx(t), mark); m != want || err != nil {
				t.Errorf("handle %d: marked %s = %t, want %t (%v)", i, mark, m, want, err)
			}
		}
		if diff := cmp.Diff([]string{"a", "b"}, pending(t, o)); diff != "" {
			t.Fatalf("handle %d: pending (-want +got):\n%s", i, diff)
		}
		for id, want := range map[string]bool{"a": true, "c": false} {
			if p, err := o.IsPending(ctx(t), id); p != want || err != nil {
				t.Errorf("handle %d: IsPending(%s) = %t (%v)", i, id, p, err)
			}
		}
		got, err := o.Pending(ctx(t), 10)
		must(t, err)
		if diff := cmp.Diff(Delivery("a", "t"), got[slices.IndexFunc(got, func(d domain.Delivery) bool { return d.Notification.ID == "a" })]); diff != "" {
			t.Errorf("handle %d: a delivery changed in the outbox (-want +got):\n%s", i, diff)
		}
	}
	check(0, o)
	check(1, h.claimed("second")) // another replica's, or the same after a restart
}

func testRedo(t *testing.T, h *handles) {
	o := h.claimed("first")
	pos := uint64(7)
	must(t, o.Enqueue(ctx(t), []domain.Delivery{Delivery("a", "t"), Delivery("b", "t")}, nil, &pos))
	failed := Delivery("a", "t")
	failed.Attempts, failed.FailedAt, failed.Error = 1, at.Add(time.Minute), "webhook answered 500"
	must(t, o.Fail(ctx(t), failed))
	// A redo of the same event after a crash: b is replaced, a stays dead.
	again := Delivery("b", "t2")
	must(t, o.Enqueue(ctx(t), []domain.Delivery{Delivery("a", "t"), again}, nil, &pos))
	o = h.claimed("second")
	if diff := cmp.Diff([]string{"b"}, pending(t, o)); diff != "" {
		t.Fatalf("pending (-want +got):\n%s", diff)
	}
	got, err := o.Pending(ctx(t), 10)
	must(t, err)
	if len(got) != 1 || got[0].TargetID != "t2" {
		t.Errorf("a redo did not replace the pending delivery: %+v", got)
	}
	ds, err := o.DeadLetters(ctx(t), 10)
	must(t, err)
	if diff := cmp.Diff([]domain.Delivery{failed}, ds); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if c := count(t, o); c != [2]int{1, 1} {
		t.Errorf("count %v, want 1 pending and 1 dead", c)
	}
}

func testDeadLetters(t *testing.T, h *handles) {
	o := h.claimed("first")
	must(t, o.Enqueue(ctx(t), []domain.Delivery{Delivery("a", "t"), Delivery("b", "t")}, nil, nil))
	failed := Delivery("a", "t")
	failed.Attempts, failed.FailedAt, failed.Error = 2, at, "smtp 550"
	must(t, o.Fail(ctx(t), failed))
	if _, err := o.Retry(ctx(t), "b"); !errors.Is(err, domain.ErrNoDeadLetter) {
		t.Fatalf("retry of a pending delivery: %v", err)
	}
	back, err := o.Retry(ctx(t), "a")
	must(t, err)
	want := Delivery("a", "t")
	want.Attempts = 2
	if diff := cmp.Diff(want, back); diff != "" {
		t.Errorf("retried delivery (-want +got):\n%s", diff)
	}
	if _, err := o.Retry(ctx(t), "a"); !errors.Is(err, domain.ErrNoDeadLetter) {
		t.Fatalf("a second retry: %v", err)
	}
	o = h.claimed("second")
	if diff := cmp.Diff([]string{"a", "b"}, pending(t, o)); diff != "" {
		t.Fatalf("pending after the retry (-want +got):\n%s", diff)
	}
	for _, id := range []string{"a", "b", "unknown"} {
		must(t, o.Done(ctx(t), id))
	}
	if got := pending(t, o); len(got) != 0 { // Pending writes the removals
		t.Fatalf("pending after done: %v", got)
	}
	o = h.claimed("third")
	if c := count(t, o); c != [2]int{} {
		t.Fatalf("count after delivery: %v", c)
	}
	if p, err := o.IsPending(ctx(t), "a"); p || err != nil {
		t.Fatalf("done but pending (%v)", err)
	}
}

func testLarge(t *testing.T, h *handles) {
	o := h.claimed("first")
	const n = 3000
	var ds []domain.Delivery
	var marks []string
	for i := range n {
		ds = append(ds, Delivery(fmt.Sprintf("%08d-0000-5000-8000-000000000000", i), "target-with-a-longer-name"))
		marks = append(marks, fmt.Sprintf("%08d-0000-4000-8000-000000000000/norm_lapsed", i))
	}
	pos := uint64(99)
	must(t, o.Enqueue(ctx(t), ds, marks, &pos))
	for i := 0; i < n; i += 50 {
		must(t, o.Done(ctx(t), ds[i].Notification.ID))
	}
	_ = pending(t, o)
	o = h.claimed("second")
	if c := count(t, o); c != [2]int{n - n/50, 0} {
		t.Fatalf("count %v, want %d pending", c, n-n/50)
	}
	got, err := o.Pending(ctx(t), 10)
	must(t, err)
	if len(got) != 10 {
		t.Fatalf("Pending(10) returned %d", len(got))
	}
	for _, i := range []int{0, 1, n - 1} {
		if m, err := o.Marked(ctx(t), marks[i]); !m || err != nil {
			t.Fatalf("mark %d lost (%v)", i, err)
		}
	}
	if cp, _, _ := o.Checkpoint(ctx(t)); cp != 99 {
		t.Fatalf("checkpoint %d", cp)
	}
}

func testConcurrent(t *testing.T, h *handles) {
	o := h.claimed("first")
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%03d", w, i)
				pos := uint64(w*1000 + i)
				errs <- o.Enqueue(ctx(t), []domain.Delivery{Delivery(id, "t")}, []string{id + "/mark"}, &pos)
				if i%2 == 0 {
					errs <- o.Done(ctx(t), id)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	_ = pending(t, o)
	o = h.claimed("second")
	if c := count(t, o); c != [2]int{writers * (each / 2), 0} {
		t.Fatalf("count %v, want %d pending", c, writers*(each/2))
	}
	for w := range writers {
		if m, err := o.Marked(ctx(t), fmt.Sprintf("w%d-%03d/mark", w, each-1)); !m || err != nil {
			t.Fatalf("a mark was lost (%v)", err)
		}
	}
}

func testFencing(t *testing.T, h *handles) {
	first := h.claimed("first")
	pos := uint64(5)
	must(t, first.Enqueue(ctx(t), []domain.Delivery{Delivery("a", "t"), Delivery("b", "t")}, nil, &pos))
	second := h.claimed("second")
	if diff := cmp.Diff([]string{"a", "b"}, pending(t, second)); diff != "" {
		t.Fatalf("the new owner does not see the old one's deliveries (-want +got):\n%s", diff)
	}
	// Every write of the deposed owner fails, and changes nothing.
	later := uint64(6)
	for name, err := range map[string]error{
		"start":   first.Start(ctx(t), 1),
		"enqueue": first.Enqueue(ctx(t), []domain.Delivery{Delivery("c", "t")}, []string{"m"}, &later),
		"done":    first.Done(ctx(t), "a"),
		"fail":    first.Fail(ctx(t), Delivery("b", "t")),
	} {
		if !errors.Is(err, domain.ErrFenced) {
			t.Errorf("%s by the deposed owner: %v, want ErrFenced", name, err)
		}
	}
	if _, err := first.Pending(ctx(t), 10); !errors.Is(err, domain.ErrFenced) {
		t.Errorf("the deposed owner's delivery pool still lists deliveries: %v", err)
	}
	if _, err := first.IsPending(ctx(t), "b"); !errors.Is(err, domain.ErrFenced) {
		t.Errorf("the deposed owner's delivery pool still checks deliveries: %v", err)
	}
	must(t, second.Done(ctx(t), "a"))
	if diff := cmp.Diff([]string{"b"}, pending(t, second)); diff != "" {
		t.Errorf("pending (-want +got):\n%s", diff)
	}
	for i, o := range []domain.Outbox{first, second, h.next()} {
		if c := count(t, o); c != [2]int{1, 0} {
			t.Errorf("handle %d: count %v, want 1 pending", i, c)
		}
		if cp, _, _ := o.Checkpoint(ctx(t)); cp != 5 {
			t.Errorf("handle %d: checkpoint %d, want 5", i, cp)
		}
		if m, _ := o.Marked(ctx(t), "m"); m {
			t.Errorf("handle %d: a fenced mark was stored", i)
		}
	}
	// The deposed one may claim again: then the other is fenced. Its
	// removal may be kept back and dropped when it finds the fence; it
	// never lands.
	must(t, first.Claim(ctx(t), "first again"))
	if err := second.Done(ctx(t), "b"); err != nil && !errors.Is(err, domain.ErrFenced) {
		t.Errorf("done by the second owner after the first claimed again: %v", err)
	}
	if _, err := second.Pending(ctx(t), 10); !errors.Is(err, domain.ErrFenced) {
		t.Errorf("pending through the second owner after the first claimed again: %v", err)
	}
	if diff := cmp.Diff([]string{"b"}, pending(t, first)); diff != "" {
		t.Errorf("a fenced removal landed (-want +got):\n%s", diff)
	}
	must(t, first.Done(ctx(t), "b"))
	if got := pending(t, first); len(got) != 0 {
		t.Errorf("pending after done: %v", got)
	}
}

func testUnclaimed(t *testing.T, h *handles) {
	owner := h.claimed("owner")
	must(t, owner.Enqueue(ctx(t), []domain.Delivery{Delivery("a", "t")}, nil, nil))
	reader := h.next()
	if err := reader.Enqueue(ctx(t), []domain.Delivery{Delivery("b", "t")}, nil, nil); !errors.Is(err, domain.ErrFenced) {
		t.Fatalf("enqueue through a handle that never claimed: %v", err)
	}
	if err := reader.Done(ctx(t), "a"); !errors.Is(err, domain.ErrFenced) {
		t.Fatalf("done through a handle that never claimed: %v", err)
	}
	if _, err := reader.Pending(ctx(t), 10); !errors.Is(err, domain.ErrFenced) {
		t.Fatalf("pending through a handle that never claimed: %v", err)
	}
	if c := count(t, reader); c != [2]int{1, 0} {
		t.Fatalf("count %v through a reader", c)
	}
}

// testRetryAnywhere: an admin retries dead letters through other handles
// while the owner writes; the owner is not fenced by them, and everything
// lands.
func testRetryAnywhere(t *testing.T, h *handles) {
	owner := h.claimed("owner")
	const n = 40
	var ds []domain.Delivery
	for i := range n {
		ds = append(ds, Delivery(fmt.Sprintf("d%02d", i), "t"))
	}
	must(t, owner.Enqueue(ctx(t), ds, nil, nil))
	for _, d := range ds {
		must(t, owner.Fail(ctx(t), d))
	}
	admins := []domain.Outbox{h.next(), h.next()}
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for a, admin := range admins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := a; i < n; i += 2 {
				_, err := admin.Retry(ctx(t), ds[i].Notification.ID)
				errs <- err
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			pos := uint64(i)
			errs <- owner.Enqueue(ctx(t), []domain.Delivery{Delivery(fmt.Sprintf("e%02d", i), "t")}, nil, &pos)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	for i, o := range append(admins, owner) {
		if c := count(t, o); c != [2]int{2 * n, 0} {
			t.Errorf("handle %d: count %v, want %d pending and none dead", i, c, 2*n)
		}
	}
	if cp, _, _ := owner.Checkpoint(ctx(t)); cp != n-1 {
		t.Errorf("checkpoint %d, want %d", cp, n-1)
	}
	must(t, owner.Done(ctx(t), "d00")) // still the owner
}
