package pebblestore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// check verifies the format and the tail of the log on open.
func (s *Store) check() error {
	meta, ok, err := s.get(metaKey)
	if err != nil {
		return fmt.Errorf("pebblestore: read format: %w", err)
	}
	pos, hasPos, err := s.get(posKey)
	if err != nil {
		return fmt.Errorf("pebblestore: read position: %w", err)
	}
	if !ok {
		// A new store: nothing else may be there.
		it, err := s.db.NewIter(nil)
		if err != nil {
			return err
		}
		empty := !it.First()
		it.Close()
		if !empty || hasPos {
			return fmt.Errorf("%w: data without a format marker", ErrCorrupt)
		}
		b := s.db.NewBatch()
		_ = b.Set(metaKey, be64(formatVersion), nil)
		_ = b.Set(posKey, be64(0), nil)
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("pebblestore: initialise: %w", err)
		}
		return nil
	}
	if len(meta) != 8 || binary.BigEndian.Uint64(meta) != formatVersion {
		return fmt.Errorf("%w: unknown format version", ErrCorrupt)
	}
	if !hasPos || len(pos) != 8 {
		return fmt.Errorf("%w: no head position", ErrCorrupt)
	}
	head := binary.BigEndian.Uint64(pos)
	// The last log key must be the head, and its record must check out.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'g'}, UpperBound: []byte{'h'}})
	if err != nil {
		return err
	}
	defer it.Close()
	if !it.Last() {
		if head != 0 {
			return fmt.Errorf("%w: head position %d but no events", ErrCorrupt, head)
		}
		s.position.Store(0)
		return nil
	}
	if got := binary.BigEndian.Uint64(it.Key()[1:]); got != head {
		return fmt.Errorf("%w: last event at position %d, head says %d", ErrCorrupt, got, head)
	}
	var d decoder
	re, err := d.decode(head, it.Value())
	if err != nil {
		return err
	}
	at, ok, err := s.get(streamKey(re.StreamID, re.Revision))
	if err != nil {
		return fmt.Errorf("pebblestore: read stream index: %w", err)
	}
	if !ok || len(at) != 24 || binary.BigEndian.Uint64(at) != head || !bytes.Equal(at[8:], re.ID[:]) {
		return fmt.Errorf("%w: the stream index does not match the last event", ErrCorrupt)
	}
	last, ok, err := s.get(headKey(re.StreamID))
	if err != nil {
		return fmt.Errorf("pebblestore: read stream head: %w", err)
	}
	if !ok || len(last) != 8 || binary.BigEndian.Uint64(last) != re.Revision {
		return fmt.Errorf("%w: the head of stream %s does not match the last event", ErrCorrupt, re.StreamID)
	}
	// Walk back a little: positions must be dense and records intact.
	for n, want := 0, head; n < 64 && it.Valid(); n, want = n+1, want-1 {
		if got := binary.BigEndian.Uint64(it.Key()[1:]); got != want {
			return fmt.Errorf("%w: position %d missing", ErrCorrupt, want)
		}
		if _, err := d.decode(want, it.Value()); err != nil {
			return err
		}
		it.Prev()
	}
	s.position.Store(head)
	return nil
}
