package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func testSubscriptionLive(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("sub")
	head := mustHead(t, s)
	history := events(5, "T")
	mustAppend(t, s, prefix+"_a", eventlog.NoStream(), history...)
	sub := mustSubscribe(t, s, ctxT(t), head, eventlog.Filter{StreamPrefixes: []string{prefix}})
	got := mustCollect(t, sub, 5)
	live := events(5, "T")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, e := range live {
			// Events the filter does not select, in between.
			if _, err := s.Append(context.Background(), stream("unrelated"), eventlog.Any(), event("T", "noise")); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Append(context.Background(), prefix+"_b", eventlog.Any(), e); err != nil {
				t.Error(err)
				return
			}
			if i == 2 {
				time.Sleep(20 * time.Millisecond) // the subscriber waits for live events
			}
		}
	}()
	got = append(got, mustCollect(t, sub, 5)...)
	<-done
	want := append(dataIDs(history), dataIDs(live)...)
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Fatalf("history then live (-want +got):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Fatalf("out of order at %d: %d after %d", i, got[i].Position, got[i-1].Position)
		}
	}
	mustBeQuiet(t, sub, 50*time.Millisecond)
}

// testSubscriptionCatchUpRace subscribes while writers append, so the
// subscription moves from history to live events under load: every event
// arrives once, in order.
func testSubscriptionCatchUpRace(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("catchup")
	head := mustHead(t, s)
	const writers, each = 4, 40
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Append(context.Background(), fmt.Sprintf("%s_%d", prefix, w), eventlog.Any(), event("T", "x")); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	time.Sleep(5 * time.Millisecond) // some history first
	sub := mustSubscribe(t, s, ctxT(t), head, eventlog.Filter{StreamPrefixes: []string{prefix}})
	got := mustCollect(t, sub, writers*each)
	wg.Wait()
	seen := map[uuid.UUID]bool{}
	for i, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s delivered twice", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.Position <= got[i-1].Position {
			t.Fatalf("out of order at %d: %d after %d", i, e.Position, got[i-1].Position)
		}
	}
	if diff := cmp.Diff(ids(inStream(mustReadAll(t, s, head), prefix)), ids(got)); diff != "" {
		t.Fatalf("subscription against read all (-want +got):\n%s", diff)
	}
	mustBeQuiet(t, sub, 50*time.Millisecond)
}

func testSubscriptionFilters(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("filt")
	head := mustHead(t, s)
	type in struct{ stream, typ string }
	input := []in{{prefix + "x-1", "A"}, {prefix + "y-1", "A"}, {prefix + "x-2", "B"}, {prefix + "y-2", "B"}, {prefix + "x-3", "A"}, {prefix + "z-1", "C"}}
	var all []eventlog.EventData
	for _, i := range input {
		e := event(i.typ, "f")
		all = append(all, e)
		mustAppend(t, s, i.stream, eventlog.Any(), e)
	}
	tests := []struct {
		name   string
		filter eventlog.Filter
		mine   bool // keep only the suite's events (the filter selects others' too)
		want   []int
	}{
		{"no filter", eventlog.Filter{}, true, []int{0, 1, 2, 3, 4, 5}},
		{"stream prefix", eventlog.Filter{StreamPrefixes: []string{prefix + "x"}}, false, []int{0, 2, 4}},
		{"two stream prefixes", eventlog.Filter{StreamPrefixes: []string{prefix + "x-1", prefix + "y-2"}}, false, []int{0, 3}},
		{"event type", eventlog.Filter{EventTypes: []string{"B"}}, true, []int{2, 3}},
		{"two event types", eventlog.Filter{StreamPrefixes: []string{prefix}, EventTypes: []string{"B", "C"}}, false, []int{2, 3, 5}},
		{"prefix and type", eventlog.Filter{StreamPrefixes: []string{prefix + "y"}, EventTypes: []string{"A"}}, false, []int{1}},
		{"prefix and type, last", eventlog.Filter{StreamPrefixes: []string{prefix + "x"}, EventTypes: []string{"B"}}, false, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := mustSubscribe(t, s, ctxT(t), head, tt.filter)
			var got []eventlog.RecordedEvent
			if tt.mine {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for len(got) < len(tt.want) {
					e, err := sub.Next(ctx)
					if err != nil {
						t.Fatalf("after %d events: %v", len(got), err)
					}
					if !tt.filter.Match(e.StreamID, e.Type) {
						t.Fatalf("the filter does not select %s in %s", e.Type, e.StreamID)
					}
					if strings.HasPrefix(e.StreamID, prefix) {
						got = append(got, e)
					}
				}
			} else {
				got = mustCollect(t, sub, len(tt.want))
				mustBeQuiet(t, sub, 50*time.Millisecond)
			}
			want := make([]uuid.UUID, len(tt.want))
			for i, j := range tt.want {
				want[i] = all[j].ID
			}
			if diff := cmp.Diff(want, ids(got)); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("live events filtered", func(t *testing.T) {
		sub := mustSubscribe(t, s, ctxT(t), mustHead(t, s), eventlog.Filter{StreamPrefixes: []string{prefix + "x"}, EventTypes: []string{"A"}})
		wanted := event("A", "live")
		mustAppend(t, s, prefix+"y-1", eventlog.Any(), event("A", "other stream"))
		mustAppend(t, s, prefix+"x-1", eventlog.Any(), event("B", "other type"))
		mustAppend(t, s, prefix+"x-9", eventlog.Any(), wanted)
		if got := mustCollect(t, sub, 1); got[0].ID != wanted.ID {
			t.Fatalf("got %s in %s, want the live A in x-9", got[0].Type, got[0].StreamID)
		}
		mustBeQuiet(t, sub, 50*time.Millisecond)
	})
}

func testSubscriptionResume(t *testing.T, _ Config, s eventlog.Store) {
	prefix := stream("resume")
	head := mustHead(t, s)
	evs := events(30, "T")
	for i, e := range evs[:20] {
		// Interleave unselected events so that positions have holes for the filter.
		mustAppend(t, s, fmt.Sprintf("%s_%d", prefix, i%3), eventlog.Any(), e)
		mustAppend(t, s, stream("unrelated"), eventlog.Any(), event("T", "noise"))
	}
	filter := eventlog.Filter{StreamPrefixes: []string{prefix}}
	var got []eventlog.RecordedEvent
	checkpoint := head
	for _, n := range []int{8, 7, 5} { // stop and resume twice in history, then go live
		ctx, cancel := context.WithCancel(context.Background())
		sub := mustSubscribe(t, s, ctx, checkpoint, filter)
		page := mustCollect(t, sub, n)
		_ = sub.Close()
		cancel()
		got = append(got, page...)
		checkpoint = page[len(page)-1].Position
	}
	sub := mustSubscribe(t, s, ctxT(t), checkpoint, filter)
	go func() {
		for i, e := range evs[20:] {
			if _, err := s.Append(context.Background(), fmt.Sprintf("%s_%d", prefix, i%3), eventlog.Any(), e); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	got = append(got, mustCollect(t, sub, 10)...)
	if diff := cmp.Diff(dataIDs(evs), ids(got)); diff != "" {
		t.Fatalf("resumed from checkpoints (-want +got):\n%s", diff)
	}
	mustBeQuiet(t, sub, 50*time.Millisecond)
}

// testSubscriptionCancellation ends subscriptions every way the port allows,
// while Next is blocked, and checks that Next returns and nothing leaks.
func testSubscriptionCancel(t *testing.T, _ Config, s eventlog.Store) {
	// Warm up first: an adapter may connect lazily or run background
	// goroutines of its own, which are not a subscription's leak.
	head := mustHead(t, s)
	warm := mustSubscribe(t, s, context.Background(), head, eventlog.Filter{StreamPrefixes: []string{stream("warm")}})
	mustBeQuiet(t, warm, 10*time.Millisecond)
	_ = warm.Close()
	leaks := goleak.IgnoreCurrent()

	tests := []struct {
		name string
		want error
		// end ends the subscription while Next(nextCtx) is blocked.
		end func(sub eventlog.Subscription, cancelSubscribe, cancelNext context.CancelFunc)
	}{
		{"subscribe context cancelled", context.Canceled, func(_ eventlog.Subscription, cs, _ context.CancelFunc) { cs() }},
		{"next context cancelled", context.Canceled, func(_ eventlog.Subscription, _, cn context.CancelFunc) { cn() }},
		{"subscription closed", context.Canceled, func(sub eventlog.Subscription, _, _ context.CancelFunc) { _ = sub.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 5
			var wg sync.WaitGroup
			errs := make(chan error, n)
			var subs []eventlog.Subscription
			for i := 0; i < n; i++ {
				subCtx, cancelSub := context.WithCancel(context.Background())
				nextCtx, cancelNext := context.WithCancel(context.Background())
				defer cancelSub()
				defer cancelNext()
				sub, err := s.Subscribe(subCtx, head, eventlog.Filter{StreamPrefixes: []string{stream("never")}})
				if err != nil {
					t.Fatal(err)
				}
				subs = append(subs, sub)
				blocked := make(chan struct{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					close(blocked)
					_, err := sub.Next(nextCtx)
					errs <- err
				}()
				<-blocked
				time.Sleep(2 * time.Millisecond) // let Next block
				tt.end(sub, cancelSub, cancelNext)
			}
			for i := 0; i < n; i++ {
				select {
				case err := <-errs:
					if !errors.Is(err, tt.want) {
						t.Fatalf("Next returned %v, want %v", err, tt.want)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Next did not return after the subscription ended")
				}
			}
			wg.Wait()
			for _, sub := range subs {
				if err := sub.Close(); err != nil {
					t.Fatalf("close: %v", err)
				}
				if err := sub.Close(); err != nil {
					t.Fatalf("second close: %v", err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := sub.Next(ctx)
				cancel()
				if err == nil || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Next after Close: %v, want an immediate error", err)
				}
			}
		})
	}
	t.Run("close concurrent with next", func(t *testing.T) {
		sub := mustSubscribe(t, s, context.Background(), head, eventlog.Filter{StreamPrefixes: []string{stream("never")}})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = sub.Next(context.Background()) }()
		go func() { defer wg.Done(); _ = sub.Close() }()
		wg.Wait()
	})
	goleak.VerifyNone(t, leaks)
}

func testStoreClose(t *testing.T, _ Config, s eventlog.Store) {
	head := mustHead(t, s)
	sub := mustSubscribe(t, s, context.Background(), head, eventlog.Filter{StreamPrefixes: []string{stream("never")}})
	errs := make(chan error, 1)
	go func() {
		_, err := sub.Next(context.Background())
		errs <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, eventlog.ErrClosed) {
			t.Fatalf("Next after the store closed: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after the store closed")
	}
	if _, err := s.Append(ctxT(t), stream("closed"), eventlog.Any(), event("T", "x")); !errors.Is(err, eventlog.ErrClosed) || domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("append after close: %v, want ErrClosed (unavailable)", err)
	}
}
