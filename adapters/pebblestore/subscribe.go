package pebblestore

import (
	"context"
	"sync"

	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// subscription is a catch-up subscription: it reads history in pages, then
// waits for the writer's commit notification for live events. It runs no
// goroutine of its own.
type subscription struct {
	s      *Store
	ctx    context.Context // Subscribe's: the subscription ends with it
	after  uint64
	filter eventlog.Filter
	buf    []eventlog.RecordedEvent
	closed chan struct{}
	once   sync.Once
}

const pageSize = 512

// Subscribe implements eventlog.Store: a catch-up subscription to the
// events after the position after that match filter. It ends when ctx ends
// (Next returns ctx.Err()), when it is closed (context.Canceled) or when the
// store closes (eventlog.ErrClosed). Subscribe itself returns ctx.Err() or
// eventlog.ErrClosed.
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventlog.Filter) (eventlog.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.rmu.RLock()
	closed := s.dbClosed
	s.rmu.RUnlock()
	if closed {
		return nil, eventlog.ErrClosed
	}
	return &subscription{s: s, ctx: ctx, after: after, filter: filter, closed: make(chan struct{})}, nil
}

// Next implements eventlog.Subscription: it returns the next matching
// event, waiting for one as long as needed. It returns ctx.Err() or the
// subscription context's error when either ends, context.Canceled after
// Close, eventlog.ErrClosed once the store is closed, and an error wrapping
// ErrCorrupt for a damaged record.
func (sub *subscription) Next(ctx context.Context) (eventlog.RecordedEvent, error) {
	for {
		if len(sub.buf) > 0 {
			e := sub.buf[0]
			sub.buf = sub.buf[1:]
			return e, nil
		}
		select {
		case <-sub.closed:
			return eventlog.RecordedEvent{}, context.Canceled
		default:
		}
		if err := ctx.Err(); err != nil {
			return eventlog.RecordedEvent{}, err
		}
		if err := sub.ctx.Err(); err != nil {
			return eventlog.RecordedEvent{}, err
		}
		s := sub.s
		s.notifyMu.Lock()
		ch := s.notify
		s.notifyMu.Unlock()
		if err := sub.fill(ctx); err != nil {
			return eventlog.RecordedEvent{}, err
		}
		if len(sub.buf) > 0 {
			continue
		}
		if sub.after < s.position.Load() {
			continue // a page held only filtered-out events
		}
		select {
		case <-ch:
		case <-sub.closed:
			return eventlog.RecordedEvent{}, context.Canceled
		case <-ctx.Done():
			return eventlog.RecordedEvent{}, ctx.Err()
		case <-sub.ctx.Done():
			return eventlog.RecordedEvent{}, sub.ctx.Err()
		}
	}
}

// fill reads the next page after sub.after, keeping matching events.
func (sub *subscription) fill(ctx context.Context) error {
	s := sub.s
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return eventlog.ErrClosed
	}
	committed := s.position.Load()
	if sub.after >= committed {
		return nil
	}
	upTo := min(committed, sub.after+pageSize)
	all := len(sub.filter.StreamPrefixes) == 0 && len(sub.filter.EventTypes) == 0
	err := s.scan(ctx, sub.after, upTo, func(re eventlog.RecordedEvent) bool {
		if all || sub.filter.Match(re.StreamID, re.Type) {
			sub.buf = append(sub.buf, re)
		}
		return true
	})
	if err != nil {
		return err
	}
	sub.after = upTo
	return nil
}

// Close implements eventlog.Subscription: it ends the subscription, making
// a blocked Next return context.Canceled. It always returns nil.
func (sub *subscription) Close() error {
	sub.once.Do(func() { close(sub.closed) })
	return nil
}
