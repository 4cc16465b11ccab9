package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func expectedRevision(e eventlog.ExpectedVersion) esdb.ExpectedRevision {
	switch e.Kind {
	case eventlog.ExpectNoStream:
		return esdb.NoStream{}
	case eventlog.ExpectStreamExists:
		return esdb.StreamExists{}
	case eventlog.ExpectRevision:
		return esdb.Revision(e.Revision)
	}
	return esdb.Any{}
}

// Append implements eventlog.Store. Before any I/O it validates the events
// with eventlog.Validate (ErrEmptyAppend, ErrInvalidEvent: invalid;
// ErrEventTooLarge, ErrAppendTooLarge: too large). It returns
// ErrWrongExpectedVersion (conflict) when the stream is not at the expected
// version or the ids partly overlap stored ones, ErrStreamDeleted
// (conflict) for a tombstoned stream, ErrAppendTooLarge when the server's
// maximum append size refuses it, ErrClosed after Close, and ErrUnavailable
// (unavailable) when no leader answers in time. A retry with the same ids
// and expected version after a success answers the same result and writes
// nothing.
func (s *Store) Append(ctx context.Context, stream string, expected eventlog.ExpectedVersion, events ...eventlog.EventData) (eventlog.AppendResult, error) {
	if err := eventlog.Validate(stream, events); err != nil {
		return eventlog.AppendResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout) // one deadline for the whole append
	defer cancel()
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		m := e.Metadata
		m.OccurredAt = m.OccurredAt.UTC()
		meta, err := json.Marshal(m)
		if err != nil {
			return eventlog.AppendResult{}, domain.Wrap(domain.KindInvalid, eventlog.ErrInvalidEvent.Code, eventlog.ErrInvalidEvent.Message, err)
		}
		data[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeJson, Data: e.Data, Metadata: meta}
	}
	// KurrentDB recognises a retry itself with an exact revision or
	// no_stream; with any or stream_exists the adapter checks the stream's
	// last events first, also before retrying an append whose outcome is
	// unknown.
	weak := expected.Kind == eventlog.ExpectAny || expected.Kind == eventlog.ExpectStreamExists
	unsent := 0 // tries the server ended before the append was sent
	wait := kurrentconn.Backoff{First: 20 * time.Millisecond, Max: time.Second}
	var wr *esdb.WriteResult
	for {
		if weak {
			res, done, err := s.recentRetry(ctx, stream, events)
			if err != nil {
				return eventlog.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: %w", stream, err)
			}
			if done {
				return res, nil
			}
		}
		var err error
		wr, err = s.appendOnce(ctx, stream, expected, data, !weak, &unsent)
		if err == nil {
			break
		}
		if !weak || !unknownOutcome(err) || !kurrentconn.Sleep(ctx, wait.Next()) {
			return eventlog.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: %w", stream, err)
		}
	}
	res := eventlog.AppendResult{NextRevision: wr.NextExpectedVersion, Position: wr.CommitPosition}
	if res.Position == 0 || res.Position == math.MaxUint64 {
		// An idempotent answer may come without a position: read it.
		got, err := s.read(ctx, stream, esdb.Forwards, esdb.Revision(res.NextRevision), 1)
		if err != nil || len(got) == 0 {
			return eventlog.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: the position of the event written: %w", stream, errors.Join(err, eventlog.ErrUnavailable))
		}
		res.Position = got[0].Position.Commit
	}
	return res, nil
}

// appendOnce sends one append, with the retries call makes; unsent counts
// the tries the server ended before the append was sent.
func (s *Store) appendOnce(ctx context.Context, stream string, expected eventlog.ExpectedVersion, data []esdb.EventData, idempotent bool, unsent *int) (*esdb.WriteResult, error) {
	return call(ctx, s, idempotent, func(ctx context.Context, c *esdb.Client) (*esdb.WriteResult, error) {
		wr, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}, data...)
		if classify(err).unsent {
			// Once may be a dropped connection; twice in a row, the server
			// refuses what it reads of the append: with the port's bound
			// below KurrentDB's default, a server whose maximum append
			// size is set lower (or that denies the write: the caller then
			// learns so from a smaller append).
			if *unsent++; *unsent == 2 {
				return nil, domain.Wrap(domain.KindTooLarge, eventlog.ErrAppendTooLarge.Code,
					"the event store ended the append twice before it was sent: over its maximum append size", err)
			}
		}
		return wr, err
	})
}

// retryWindow is how many of a stream's last events an append with any or
// stream_exists is compared with, as the embedded store does for a stream
// it has not touched since it opened.
const retryWindow = 64

// recentRetry recognises a retry of an append with any or stream_exists
// among the stream's last events, which KurrentDB's own check (a cache of
// recent ids, the first id deciding) does not always: done reports a retry
// of an append already stored, with its result; ids that only partly match
// stored ones are ErrWrongExpectedVersion.
func (s *Store) recentRetry(ctx context.Context, stream string, events []eventlog.EventData) (eventlog.AppendResult, bool, error) {
	recent, err := s.read(ctx, stream, esdb.Backwards, esdb.End{}, retryWindow)
	if errors.Is(err, eventlog.ErrStreamNotFound) {
		return eventlog.AppendResult{}, false, nil
	}
	if err != nil {
		return eventlog.AppendResult{}, false, err
	}
	byID := make(map[uuid.UUID]*esdb.RecordedEvent, len(recent))
	for _, r := range recent {
		byID[r.EventID] = r
	}
	partial := domain.Wrap(domain.KindConflict, eventlog.ErrWrongExpectedVersion.Code,
		"the events' ids partly overlap the stream's: not a retry of one append", nil)
	first, ok := byID[events[0].ID]
	if !ok {
		for _, e := range events[1:] {
			if _, dup := byID[e.ID]; dup {
				return eventlog.AppendResult{}, false, partial
			}
		}
		return eventlog.AppendResult{}, false, nil
	}
	var last *esdb.RecordedEvent
	for i, e := range events {
		r, ok := byID[e.ID]
		if !ok || r.EventNumber != first.EventNumber+uint64(i) {
			return eventlog.AppendResult{}, false, partial
		}
		last = r
	}
	return eventlog.AppendResult{NextRevision: last.EventNumber, Position: last.Position.Commit}, true, nil
}

// read reads a stream with retries; a missing stream is ErrStreamNotFound.
func (s *Store) read(ctx context.Context, stream string, dir esdb.Direction, from esdb.StreamPosition, count uint64) ([]*esdb.RecordedEvent, error) {
	return call(ctx, s, true, func(ctx context.Context, c *esdb.Client) ([]*esdb.RecordedEvent, error) {
		return kurrentconn.Drain(c.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: dir, From: from}, count))
	})
}

// system reports a KurrentDB system event: in a system stream ($...) or of
// a system type ($metadata, $streamDeleted, $> links, ...).
func system(r *esdb.RecordedEvent) bool {
	return strings.HasPrefix(r.StreamID, "$") || strings.HasPrefix(r.EventType, "$")
}

// fromRecorded converts a recorded event; metadata that is there but does
// not decode is an internal error (it is not an event this adapter wrote).
func fromRecorded(r *esdb.RecordedEvent) (eventlog.RecordedEvent, error) {
	re := eventlog.RecordedEvent{StreamID: r.StreamID, Revision: r.EventNumber, Position: r.Position.Commit, ID: r.EventID,
		Type: r.EventType, Data: r.Data, RecordedAt: r.CreatedDate}
	if len(r.UserMetadata) > 0 {
		if err := json.Unmarshal(r.UserMetadata, &re.Metadata); err != nil {
			return re, domain.Wrap(domain.KindInternal, "bad_metadata", "an event's metadata does not decode", err)
		}
		re.Metadata.OccurredAt = re.Metadata.OccurredAt.UTC()
	}
	return re, nil
}

func convert(rs []*esdb.RecordedEvent) ([]eventlog.RecordedEvent, error) {
	out := make([]eventlog.RecordedEvent, 0, len(rs))
	for _, r := range rs {
		re, err := fromRecorded(r)
		if err != nil {
			return nil, err
		}
		out = append(out, re)
	}
	return out, nil
}

// ReadStream implements eventlog.Store. It returns ErrStreamNotFound (not
// found) for a stream with no events (or soft-deleted), ErrStreamDeleted
// (conflict) for a tombstoned one, ErrClosed after Close, and
// ErrUnavailable when the server does not answer in time.
func (s *Store) ReadStream(ctx context.Context, stream string, dir eventlog.Direction, from uint64, limit int) ([]eventlog.RecordedEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	d := esdb.Forwards
	var pos esdb.StreamPosition = esdb.Revision(from)
	if dir == eventlog.Backwards {
		d = esdb.Backwards
	}
	if from > math.MaxInt64 { // End, or beyond any revision
		pos = esdb.End{}
		if d == esdb.Forwards {
			// Nothing follows the end; the server refuses a forwards read
			// from it, so only check that the stream is there.
			d, limit = esdb.Backwards, 0
		}
	}
	rs, err := s.read(ctx, stream, d, pos, uint64(max(limit, 1)))
	if limit == 0 && err == nil {
		return []eventlog.RecordedEvent{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: read %s: %w", stream, err)
	}
	return convert(rs)
}

// maxPage bounds one read of $all.
const maxPage = 4096

// readAll reads up to count raw events of $all from a position: forwards
// from it (inclusive), or backwards before it.
func (s *Store) readAll(ctx context.Context, dir esdb.Direction, from esdb.AllPosition, count uint64) ([]*esdb.RecordedEvent, error) {
	return call(ctx, s, true, func(ctx context.Context, c *esdb.Client) ([]*esdb.RecordedEvent, error) {
		return kurrentconn.Drain(c.ReadAll(ctx, esdb.ReadAllOptions{Direction: dir, From: from}, count))
	})
}

// at is the position in $all of the port's position p: commit and
// prepare p, after every event whose commit position is p (an event
// written through gRPC commits itself, prepare = commit; the events of a
// legacy explicit transaction share the commit position of their commit
// record, after their own prepare positions).
func at(p uint64) esdb.Position { return esdb.Position{Commit: p, Prepare: p} }

func allPosition(p uint64) esdb.AllPosition {
	if p == 0 {
		return esdb.Start{}
	}
	return at(p)
}

// before reports whether a comes before b in $all, ordered by commit, then
// prepare position.
func before(a, b esdb.Position) bool {
	return a.Commit < b.Commit || a.Commit == b.Commit && a.Prepare < b.Prepare
}

// fromPosition is where a read of $all starts: the start, or a position.
func fromPosition(p esdb.Position) esdb.AllPosition {
	if p == (esdb.Position{}) {
		return esdb.Start{}
	}
	return p
}

// ReadAll implements eventlog.Store: up to limit events after the position,
// in commit order, without system events. It pages through $all until it
// has limit events or reaches the end. It returns ErrClosed after Close,
// ErrUnavailable when the server does not answer in time, and a KindInvalid
// error for a position that is not one of the log's.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventlog.RecordedEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout) // one deadline for every page
	defer cancel()
	var out []eventlog.RecordedEvent
	var cursor esdb.Position // the last position read, system events included
	if after > 0 {
		cursor = at(after)
	}
	for len(out) < limit {
		count := uint64(min(max(limit-len(out)+1, 64), maxPage)) // +1: a read includes the event at its position
		page, err := s.readAll(ctx, esdb.Forwards, fromPosition(cursor), count)
		if err != nil {
			return nil, fmt.Errorf("kurrentdb: read all: %w", err)
		}
		for _, r := range page {
			if !before(cursor, r.Position) {
				continue
			}
			cursor = r.Position
			if system(r) {
				continue
			}
			re, err := fromRecorded(r)
			if err != nil {
				return nil, fmt.Errorf("kurrentdb: read all: %w", err)
			}
			if out = append(out, re); len(out) == limit {
				break
			}
		}
		if uint64(len(page)) < count {
			break // the end of the log
		}
	}
	return out, nil
}

// Head implements eventlog.Store: the position of the last event that is
// not a system event (a subscription never delivers those), 0 when there is
// none. It reads $all backwards, one event first, then in growing pages
// past system events. It returns ErrClosed after Close and ErrUnavailable
// when the server does not answer in time.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var from esdb.AllPosition = esdb.End{}
	last := esdb.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}
	for count := uint64(1); ; count = min(count*16, maxPage) {
		page, err := s.readAll(ctx, esdb.Backwards, from, count)
		if err != nil {
			return 0, fmt.Errorf("kurrentdb: head: %w", err)
		}
		for _, r := range page {
			if !before(r.Position, last) {
				continue
			}
			last = r.Position
			if !system(r) {
				return last.Commit, nil
			}
		}
		if uint64(len(page)) < count {
			return 0, nil
		}
		from = last
	}
}
