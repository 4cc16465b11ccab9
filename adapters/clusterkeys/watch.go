package clusterkeys

import (
	"context"
	"encoding/json"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
)

// startSubscriptions starts the two subscriptions of the store: the erasure
// watch and the key count.
func (s *Store) startSubscriptions() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.follow(ctx, &watch{s: s})
	}()
	go func() {
		defer s.wg.Done()
		s.follow(ctx, &counter{s: s})
	}()
}

// follower is what one subscription does with what it receives.
type follower interface {
	// options returns the subscription's options, from where to resume.
	options() esdb.SubscribeToAllOptions
	// subscribed: the server confirmed the subscription.
	subscribed()
	// dropped: the subscription ended; another follows after a wait.
	dropped()
	// event handles one event; checkpoint a position the server reached.
	event(r *esdb.RecordedEvent)
	checkpoint(p esdb.Position)
	caughtUp()
}

// follow keeps one subscription to $all up until ctx ends: it subscribes,
// hands what arrives to f, and after a drop subscribes again with capped,
// jittered exponential backoff (from 50 ms to 5 s). A subscription the
// server refuses for good (credentials, an invalid request) is retried at
// the longest wait, with a warning: the cache stays off meanwhile.
func (s *Store) follow(ctx context.Context, f follower) {
	wait := kurrentconn.Backoff{First: 50 * time.Millisecond, Max: 5 * time.Second}
	for ctx.Err() == nil {
		progressed, err := s.receive(ctx, f)
		f.dropped()
		if ctx.Err() != nil {
			return
		}
		if progressed {
			wait.Reset()
		}
		d := wait.Next()
		if kurrentconn.Terminal(err) {
			s.log.Warn("clusterkeys: the cluster refuses a subscription", "err", err)
			d = 5 * time.Second
		}
		if !kurrentconn.Sleep(ctx, d) {
			return
		}
	}
}

// receive runs one subscription until it drops; it reports whether it got
// anything, and why it ended.
func (s *Store) receive(ctx context.Context, f follower) (progressed bool, err error) {
	sub, err := s.c.Subscribe(ctx, f.options())
	if err != nil {
		return false, err
	}
	defer func() { sub.Close(err) }()
	f.subscribed()
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return progressed, ev.SubscriptionDropped.Error
		case ev.EventAppeared != nil:
			progressed = true
			if r := ev.EventAppeared.OriginalEvent(); r != nil {
				f.event(r)
			}
		case ev.CheckPointReached != nil:
			progressed = true
			f.checkpoint(*ev.CheckPointReached)
		case ev.CaughtUp != nil:
			progressed = true
			f.caughtUp()
		}
	}
}

// watch is the erasure watch: a subscription to $all from its end, for
// SubjectKeyErased only (filtered on the server). While it is subscribed,
// keys are cached, and each erasure drops its subject's key at once;
// whenever it drops, the cache is emptied and stays off until it is back.
// It always resubscribes from the end of the log: what was erased while it
// was down cannot be in the cache, which was emptied, and every key loaded
// after it is back is read after the resubscription.
type watch struct{ s *Store }

func (w *watch) options() esdb.SubscribeToAllOptions {
	return esdb.SubscribeToAllOptions{From: esdb.End{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^" + typeKeyErased + "$"}}
}

func (w *watch) subscribed() {
	s := w.s
	s.mu.Lock()
	s.watching = true
	s.mu.Unlock()
	select {
	case <-s.watched:
	default:
		close(s.watched)
	}
}

func (w *watch) dropped() {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watching {
		s.watching = false
		s.gen++
		s.cache.Clear()
	}
}

func (w *watch) event(r *esdb.RecordedEvent) {
	if r.EventType != typeKeyErased {
		return
	}
	if id, ok := subjectOfKeyStream(r.StreamID); ok {
		w.s.forget(id)
		w.s.erasures.Add(1)
	}
}

func (*watch) checkpoint(esdb.Position) {}
func (*watch) caughtUp()                {}

// counter counts the live keys of the cluster for Count: a subscription to
// $all from its start, for the key streams only (filtered on the server),
// adding SubjectKeyCreated and subtracting SubjectKeyErased of a subject
// that had a key. It resumes after a drop from the last position it
// handled, so it counts each event once; it is ready once the server says
// it has caught up with the history.
type counter struct {
	s     *Store
	after *esdb.Position // the last position handled
}

func (c *counter) options() esdb.SubscribeToAllOptions {
	o := esdb.SubscribeToAllOptions{From: esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{keyCategory + "-"}}}
	if c.after != nil {
		o.From = *c.after
	}
	return o
}

func (*counter) subscribed() {}
func (*counter) dropped()    {}

func (c *counter) event(r *esdb.RecordedEvent) {
	if c.after != nil && r.Position.Commit <= c.after.Commit {
		return // delivered again after a resubscription
	}
	p := r.Position
	c.after = &p
	switch r.EventType {
	case typeKeyCreated:
		c.s.counted.Add(1)
	case typeKeyErased:
		var b keyErased
		if json.Unmarshal(r.Data, &b) == nil && b.HadKey {
			c.s.counted.Add(-1)
		}
	}
}

func (c *counter) checkpoint(p esdb.Position) {
	if c.after == nil || p.Commit > c.after.Commit {
		c.after = &p
	}
}

func (c *counter) caughtUp() { c.s.caughtUp.Store(true) }
