package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// firstBackoff is the first wait before resubscribing after a drop.
const firstBackoff = 50 * time.Millisecond

// Subscribe implements eventlog.Store: a catch-up subscription to $all
// after the position, filtered on the server (see the package doc), that
// resubscribes after drops and refused credentials. It returns ErrClosed
// after Close; it does not wait for the server: the subscription connects
// in the background and Next reports what ends it (ctx's error or
// context.Canceled after Close, ErrClosed when the store closes,
// eventlog.ErrLogDiverged when the log is not the one the position, or the
// events delivered, came from, a KindInvalid error for a request the
// server refuses as invalid, a KindInternal error for an event whose
// metadata does not decode).
//
// Before every (re)subscription it checks that the log still holds where
// the subscription is: the last event it received, by position and id, or
// at first the position it was given. A log that ends before it (restored
// from an older backup), an invalid position or another event at it
// (another cluster behind the same address, a checkpoint of another log)
// ends the subscription with eventlog.ErrLogDiverged, logged as an error.
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventlog.Filter) (eventlog.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventlog.ErrClosed
	}
	subCtx, cancel := context.WithCancelCause(ctx)
	sub := &subscription{s: s, filter: filter, opts: subscribeOptions(filter), resume: allPosition(after), start: after,
		ctx: subCtx, cancel: cancel, events: make(chan eventlog.RecordedEvent, 256), done: make(chan struct{})}
	if after > 0 {
		sub.last = at(after)
	}
	s.subs[sub] = struct{}{}
	s.subsWG.Add(1)
	go sub.pump()
	return sub, nil
}

// subscribeOptions puts one part of the filter on the server: the stream
// prefixes, else the event types (exactly, as a regular expression), else
// the exclusion of system events. The rest is checked on each event.
func subscribeOptions(f eventlog.Filter) esdb.SubscribeToAllOptions {
	var o esdb.SubscribeToAllOptions
	switch {
	case len(f.StreamPrefixes) > 0:
		o.Filter = &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: f.StreamPrefixes}
	case len(f.EventTypes) > 0:
		quoted := make([]string, len(f.EventTypes))
		for i, t := range f.EventTypes {
			quoted[i] = regexp.QuoteMeta(t)
		}
		o.Filter = &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^(?:" + strings.Join(quoted, "|") + ")$"}
	default:
		o.Filter = esdb.ExcludeSystemEventsFilter()
	}
	return o
}

type subscription struct {
	s      *Store
	filter eventlog.Filter
	opts   esdb.SubscribeToAllOptions
	ctx    context.Context
	cancel context.CancelCauseFunc
	events chan eventlog.RecordedEvent
	done   chan struct{} // closed when pump returns
	err    error         // what ended it, if not ctx; set before done closes

	// Owned by pump: where to resubscribe from.
	resume esdb.AllPosition
	last   esdb.Position // events up to it (commit, then prepare) are handled
	start  uint64        // the position Subscribe was given
	// anchor is the last event received, by which the log is recognised
	// on resubscribing.
	anchor   esdb.Position
	anchorID uuid.UUID
}

// pump subscribes, receives, and resubscribes after drops with capped,
// jittered exponential backoff, until the subscription ends.
func (sub *subscription) pump() {
	s := sub.s
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
		close(sub.done)
		s.subsWG.Done()
	}()
	wait := kurrentconn.Backoff{First: firstBackoff, Max: s.opts.MaxBackoff}
	for sub.ctx.Err() == nil {
		err := sub.verify()
		if errors.Is(err, eventlog.ErrLogDiverged) {
			sub.err = err
			s.log.Error("kurrentdb: subscription ended: the event log is not the one it was reading", "err", err)
			return
		}
		if err != nil { // the check could not be made now: try again
			if refused(err) {
				s.log.Warn("kurrentdb: the event store refused the subscription's credentials; retrying", "err", err)
			} else {
				s.log.Debug("kurrentdb: subscription: the log could not be checked; retrying", "err", err)
			}
			if errors.Is(err, eventlog.ErrClosed) {
				sub.err = err
				return
			}
			if !kurrentconn.Sleep(sub.ctx, wait.Next()) {
				return
			}
			continue
		}
		progressed, err := sub.receive()
		if sub.ctx.Err() != nil {
			return
		}
		f := classify(err)
		if errors.Is(f.err, eventlog.ErrClosed) {
			sub.err = f.err
			return
		}
		if isInvalidPosition(f.err) {
			sub.err = diverged("the event store refused the subscription's position as not one of its log's", err)
			s.log.Error("kurrentdb: subscription ended: the event log is not the one it was reading", "err", sub.err)
			return
		}
		if terminal(err) {
			sub.err = f.err
			s.log.Error("kurrentdb: subscription ended", "err", f.err)
			return
		}
		if progressed {
			wait.Reset()
		}
		if refused(err) {
			s.log.Warn("kurrentdb: the event store refused the subscription's credentials; retrying", "err", f.err)
		} else {
			s.log.Debug("kurrentdb: subscription dropped; resubscribing", "after", sub.last.Commit, "err", err)
		}
		if !kurrentconn.Sleep(sub.ctx, wait.Next()) {
			return
		}
	}
}

// isInvalidPosition reports the server's refusal of a position that is not
// one of its log's.
func isInvalidPosition(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) && de.Code == "invalid_position"
}

// diverged is eventlog.ErrLogDiverged with what was found.
func diverged(msg string, cause error) error {
	return domain.Wrap(domain.KindInternal, eventlog.ErrLogDiverged.Code, "the event log diverged: "+msg, cause)
}

// verify checks that the log holds where the subscription is, before it
// (re)subscribes: the last event received, at its position with its id, or
// at first an event at the position Subscribe was given. It returns
// eventlog.ErrLogDiverged when the log does not, another error when it
// could not check. An event missing at a position where a later one is
// (scavenged, or a legacy transaction's commit record) is no divergence.
func (sub *subscription) verify() error {
	var pos esdb.Position
	switch {
	case sub.anchorID != uuid.Nil:
		pos = sub.anchor
	case sub.start > 0:
		pos = at(sub.start)
	default:
		return nil // from the start: any log will do
	}
	ctx, cancel := context.WithTimeout(sub.ctx, sub.s.opts.Timeout)
	defer cancel()
	page, err := sub.s.readAll(ctx, esdb.Forwards, pos, 1)
	switch {
	case isInvalidPosition(classify(err).err):
		return diverged(fmt.Sprintf("position %d/%d is not one of the event log's", pos.Commit, pos.Prepare), err)
	case err != nil:
		return classify(err).err
	case len(page) == 0:
		return diverged(fmt.Sprintf("the event log ends before position %d/%d", pos.Commit, pos.Prepare), nil)
	case page[0].Position == pos && sub.anchorID != uuid.Nil && page[0].EventID != sub.anchorID:
		return diverged(fmt.Sprintf("another event is at position %d/%d", pos.Commit, pos.Prepare), nil)
	}
	return nil
}

// terminal reports a subscription error that resubscribing cannot cure.
// Refused credentials are not: a password being rotated, or an ACL being
// changed, is put right on the server while the subscription keeps trying
// (and the server is not ready meanwhile: its store probe is refused too).
func terminal(err error) bool {
	var de *domain.Error
	if errors.As(err, &de) {
		return !errors.Is(err, eventlog.ErrUnavailable)
	}
	return kurrentconn.Terminal(err) && !refused(err)
}

// refused reports an error of refused credentials.
func refused(err error) bool { return kurrentconn.Classify(err).Code == kurrentconn.Denied }

// receive opens one subscription and forwards its events until it drops;
// it reports whether it succeeded (the server sent an event or a
// checkpoint, or the subscription stayed up longer than the longest wait
// between resubscriptions: a server that confirms a subscription at the
// end of a quiet log may send nothing at all), and why it ended.
func (sub *subscription) receive() (succeeded bool, err error) {
	s := sub.s
	opts := sub.opts
	opts.From = sub.resume
	// Establishing is bounded by the timeout; the stream is not.
	es, err := s.c.Subscribe(sub.ctx, opts)
	if err != nil {
		if sub.ctx.Err() == nil && kurrentconn.Classify(err).Code == kurrentconn.Timeout {
			return false, unavailable("the event store did not confirm the subscription in time", err)
		}
		return false, err
	}
	defer func() { es.Close(err) }()
	up := time.Now()
	progressed := false
	defer func() { succeeded = progressed || time.Since(up) >= s.opts.MaxBackoff }()
	for {
		ev := es.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			if sub.ctx.Err() != nil {
				return progressed, sub.ctx.Err()
			}
			return progressed, ev.SubscriptionDropped.Error
		case ev.EventAppeared != nil:
			progressed = true
			r := ev.EventAppeared.OriginalEvent()
			if r == nil || !before(sub.last, r.Position) {
				continue
			}
			sub.anchor, sub.anchorID = r.Position, r.EventID
			if system(r) || !sub.filter.Match(r.StreamID, r.EventType) {
				sub.resume, sub.last = r.Position, r.Position
				continue
			}
			re, err := fromRecorded(r)
			if err != nil {
				return progressed, err
			}
			select {
			case sub.events <- re:
				sub.resume, sub.last = r.Position, r.Position
			case <-sub.ctx.Done():
				return progressed, sub.ctx.Err()
			}
		case ev.CheckPointReached != nil:
			// Everything up to the checkpoint has been sent, and handled.
			progressed = true
			if p := *ev.CheckPointReached; before(sub.last, p) {
				sub.resume, sub.last = p, p
			}
		}
	}
}

// Next implements eventlog.Subscription: the next event, in global order.
// It returns ctx's error when ctx ends first; once the subscription has
// ended, context.Canceled after Close, the Subscribe context's error when
// that ended, ErrClosed when the store closed, or the error that ended it.
func (sub *subscription) Next(ctx context.Context) (eventlog.RecordedEvent, error) {
	select {
	case e := <-sub.events:
		return e, nil
	default:
	}
	select {
	case e := <-sub.events:
		return e, nil
	case <-ctx.Done():
		return eventlog.RecordedEvent{}, ctx.Err()
	case <-sub.done:
		if sub.err != nil {
			select {
			case e := <-sub.events: // events handed over before the failure
				return e, nil
			default:
			}
			return eventlog.RecordedEvent{}, sub.err
		}
		return eventlog.RecordedEvent{}, context.Cause(sub.ctx)
	}
}

// Close implements eventlog.Subscription: it ends the subscription and
// waits until its goroutine has stopped. It is safe to call more than once
// and concurrently with Next.
func (sub *subscription) Close() error {
	sub.cancel(context.Canceled)
	<-sub.done
	return nil
}
