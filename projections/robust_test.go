package projections_test

// An external test package: it drives the runner through a real store.

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// twice delivers every event twice, from reads and subscriptions alike.
type twice struct{ eventlog.Store }

func (s twice) ReadAll(ctx context.Context, after uint64, limit int) ([]eventlog.RecordedEvent, error) {
	recs, err := s.Store.ReadAll(ctx, after, limit)
	var out []eventlog.RecordedEvent
	for _, r := range recs {
		out = append(out, r, r)
	}
	return out, err
}

func (s twice) Subscribe(ctx context.Context, after uint64, f eventlog.Filter) (eventlog.Subscription, error) {
	sub, err := s.Store.Subscribe(ctx, after, f)
	return &twiceSub{Subscription: sub}, err
}

type twiceSub struct {
	eventlog.Subscription
	again *eventlog.RecordedEvent
}

func (s *twiceSub) Next(ctx context.Context) (eventlog.RecordedEvent, error) {
	if s.again != nil {
		r := *s.again
		s.again = nil
		return r, nil
	}
	r, err := s.Subscription.Next(ctx)
	if err == nil {
		s.again = &r
	}
	return r, err
}

type set struct {
	runner *projections.Runner
	cases  *projections.Cases
	subs   *projections.Subjects
}

func newSet(store eventlog.Store) set {
	s := set{cases: projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, domain.DutchHolidays(2026))), subs: projections.NewSubjects()}
	s.runner = projections.NewRunner(store, domain.NewRegistry(), s.cases, s.subs)
	return s
}

// all lists every case the projection holds, by signal id.
func (s set) all() []projections.Case {
	var out []projections.Case
	s.runner.Read(func() {
		s.cases.All(func(c *projections.Case) bool { out = append(out, *c); return true })
	})
	slices.SortFunc(out, func(a, b projections.Case) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return out
}

// TestKilledProjectorWithDuplicatesEqualsRebuild: the projection runner is
// stopped at random moments and started again, while events arrive live and
// every event is delivered twice; at the end its projections equal a fresh
// rebuild from the log.
func TestKilledProjectorWithDuplicatesEqualsRebuild(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		store, err := pebblestore.Open(filepath.Join(t.TempDir(), rapid.StringMatching(`[a-z]{12}`).Draw(rt, "dir")), pebblestore.Options{})
		if err != nil {
			rt.Fatal(err)
		}
		defer store.Close()
		ctx := context.Background()
		n := rapid.IntRange(1, 12).Draw(rt, "signals")
		raise := func(i int) {
			if _, err := store.Append(ctx, "signal-"+uuidOf(i), eventlog.NoStream(), raisedEvent(i)...); err != nil {
				rt.Fatal(err)
			}
		}
		before := rapid.IntRange(0, n).Draw(rt, "before")
		for i := 0; i < before; i++ {
			raise(i)
		}
		live := newSet(twice{store})
		next := before
		for round := rapid.IntRange(1, 6).Draw(rt, "kills"); round > 0; round-- {
			runCtx, kill := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- live.runner.Run(runCtx) }()
			for k := rapid.IntRange(0, 3).Draw(rt, "live"); k > 0 && next < n; k-- {
				raise(next)
				next++
			}
			time.Sleep(time.Duration(rapid.IntRange(0, 3).Draw(rt, "ms")) * time.Millisecond)
			kill() // at a random moment: catching up, subscribed, or idle
			<-done
		}
		for ; next < n; next++ {
			raise(next)
		}
		runCtx, kill := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- live.runner.Run(runCtx) }()
		head, _ := store.Head(ctx)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := live.runner.WaitFor(wctx, head); err != nil {
			rt.Fatal(err)
		}
		kill()
		<-done

		fresh := newSet(store)
		fctx, stopFresh := context.WithCancel(ctx)
		freshDone := make(chan error, 1)
		go func() { freshDone <- fresh.runner.Run(fctx) }()
		if err := fresh.runner.WaitFor(wctx, head); err != nil {
			rt.Fatal(err)
		}
		stopFresh()
		<-freshDone
		if diff := cmp.Diff(fresh.all(), live.all(), cmp.AllowUnexported(projections.Case{})); diff != "" {
			rt.Fatalf("after kills and duplicates (-rebuild +live):\n%s", diff)
		}
		if len(live.all()) != n {
			rt.Fatalf("%d cases, want %d", len(live.all()), n)
		}
	})
}

func uuidOf(i int) string { return uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i)}).String() }

// raisedEvent is signal i raised and, for even i, handed over.
func raisedEvent(i int) []eventlog.EventData {
	at := time.Date(2026, 3, 2, 9, i, 0, 0, time.UTC)
	id := uuid.MustParse(uuidOf(i))
	events := []domain.Event{domain.SignalRaised{SignalID: id, SubjectID: uuid.NewSHA1(id, []byte("s")), RaisedBy: "carla",
		Source: domain.RoleBuurtsteun, Network: "net", Neighbourhood: "centrum", Categories: []string{"loneliness"},
		Urgency: "high", Consent: "informed", Description: domain.Sealed("x"), RaisedAt: at}}
	if i%2 == 0 {
		events = append(events, domain.SignalHandedOver{TeamID: "team-a"})
	}
	var out []eventlog.EventData
	for j, e := range events {
		data, _ := domain.Encode(e)
		out = append(out, eventlog.EventData{ID: uuid.NewSHA1(id, []byte{byte(j)}), Type: e.EventType(), Data: data,
			Metadata: eventlog.Metadata{OccurredAt: at, ActorID: "carla", Network: "net", SchemaVersion: 1}})
	}
	return out
}
