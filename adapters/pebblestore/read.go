package pebblestore

// The read path: stream reads through the stream index, and reads of the
// whole log in position order.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// ReadStream implements eventlog.Store: up to limit acknowledged events of
// the stream from revision from, forwards or backwards (from eventlog.End
// for the last). It returns eventlog.ErrStreamNotFound (not found) for a
// stream with no events, ErrClosed after Close, and an error wrapping
// ErrCorrupt when a record or the stream index is damaged.
func (s *Store) ReadStream(ctx context.Context, stream string, dir eventlog.Direction, from uint64, limit int) ([]eventlog.RecordedEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return nil, eventlog.ErrClosed
	}
	lower, upper := streamKey(stream, 0), streamKey(stream, 0)
	upper[len(stream)+1] = 1 // "s" stream 0x01: just past every revision
	upper = upper[:len(stream)+2]
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: read stream: %w", err)
	}
	defer it.Close()
	committed := s.position.Load()
	// One iterator over the log for all the stream's events: cheaper than a
	// Get each. Created after committed was read, it sees every event up to it.
	logIt, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{'g'}, UpperBound: []byte{'h'}})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: read stream: %w", err)
	}
	defer logIt.Close()
	key := make([]byte, 9)
	key[0] = 'g'
	var out []eventlog.RecordedEvent
	var d decoder
	var valid bool
	if dir == eventlog.Forwards {
		valid = it.SeekGE(streamKey(stream, from))
	} else if from == eventlog.End {
		valid = it.Last()
	} else {
		valid = it.SeekLT(streamKey(stream, from+1))
	}
	for ; valid && len(out) < limit; valid = advance(it, dir) {
		if len(it.Value()) != 24 {
			return nil, fmt.Errorf("%w: bad stream index entry in %s", ErrCorrupt, stream)
		}
		pos := binary.BigEndian.Uint64(it.Value())
		if pos > committed {
			if dir == eventlog.Forwards {
				break
			}
			continue
		}
		binary.BigEndian.PutUint64(key[1:], pos)
		if !logIt.SeekGE(key) || !bytes.Equal(logIt.Key(), key) {
			if err := logIt.Error(); err != nil {
				return nil, fmt.Errorf("pebblestore: read event: %w", err)
			}
			return nil, fmt.Errorf("%w: stream index points at missing position %d", ErrCorrupt, pos)
		}
		re, err := d.decode(pos, logIt.Value())
		if err != nil {
			return nil, err
		}
		if re.StreamID != stream || re.Revision != binary.BigEndian.Uint64(it.Key()[len(it.Key())-8:]) || !bytes.Equal(it.Value()[8:], re.ID[:]) {
			return nil, fmt.Errorf("%w: the stream index of %s points at another event (position %d)", ErrCorrupt, stream, pos)
		}
		out = append(out, re)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebblestore: read stream: %w", err)
	}
	if len(out) == 0 {
		// Distinguish "no such stream" from "nothing past from": a stream
		// exists once its first event is acknowledged.
		first, ok, err := s.get(streamKey(stream, 0))
		if err != nil {
			return nil, fmt.Errorf("pebblestore: read stream: %w", err)
		}
		if !ok || len(first) < 8 || binary.BigEndian.Uint64(first) > committed {
			return nil, eventlog.ErrStreamNotFound
		}
	}
	return out, nil
}

func advance(it *pebble.Iterator, dir eventlog.Direction) bool {
	if dir == eventlog.Forwards {
		return it.Next()
	}
	return it.Prev()
}

// ReadAll implements eventlog.Store: up to limit acknowledged events with a
// position after after, in order. It returns ErrClosed after Close and an
// error wrapping ErrCorrupt when a record is damaged or a position missing.
// The events' Data of one read may share memory in chunks of 64 KiB, each
// slice capped at its length: keeping one event's Data keeps its chunk.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventlog.RecordedEvent, error) {
	committed := s.position.Load()
	if limit <= 0 || after >= committed {
		return nil, nil
	}
	limit = int(min(uint64(limit), committed-after))
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return nil, eventlog.ErrClosed
	}
	out := make([]eventlog.RecordedEvent, 0, limit)
	err := s.scan(ctx, after, committed, func(re eventlog.RecordedEvent) bool {
		out = append(out, re)
		return len(out) < limit
	})
	return out, err
}

// scan calls fn for the events in (after, upTo] until it returns false.
func (s *Store) scan(ctx context.Context, after, upTo uint64, fn func(eventlog.RecordedEvent) bool) error {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: logKey(after + 1), UpperBound: logKey(upTo + 1)})
	if err != nil {
		return fmt.Errorf("pebblestore: read all: %w", err)
	}
	defer it.Close()
	want := after + 1
	var d decoder
	for valid := it.First(); valid; valid = it.Next() {
		pos := binary.BigEndian.Uint64(it.Key()[1:])
		if pos != want {
			return fmt.Errorf("%w: position %d missing", ErrCorrupt, want)
		}
		want++
		re, err := d.decode(pos, it.Value())
		if err != nil {
			return err
		}
		if !fn(re) {
			return nil
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebblestore: read all: %w", err)
	}
	return nil
}
