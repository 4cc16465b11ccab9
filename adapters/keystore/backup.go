package keystore

import (
	"context"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/subjectkeys"
)

// Checkpoint writes a consistent copy of the key store into dir, which must
// not exist, while the store serves (copies of its tables, never hard links,
// which a purge would zero: see shredFS.Link, and of its flushed write-ahead
// log). A restored copy brings back the keys of
// subjects erased since: the erased-subjects file (Options.ErasedFile)
// keeps the list that ShredErased applies to it.
//
// It flushes the memtable first: a database opened without a write-ahead
// log to replay (after a crash in its very first open) has no manifest
// writer until its first flush, and a checkpoint before then would hold an
// empty manifest (see pebblestore's Checkpoint).
func (s *Store) Checkpoint(dir string) error {
	if err := s.life.Enter(); err != nil {
		return err
	}
	defer s.life.Exit()
	if err := s.db.Flush(); err != nil {
		return classify(err)
	}
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return classify(err)
	}
	return nil
}

// RecordErased appends a subject id to the erased-subjects file at path on
// fs (nil: the operating system's) and makes it durable
// (subjectkeys.RecordErased; Shred does this itself when Options.ErasedFile
// is set).
func RecordErased(fs vfs.FS, path string, subject uuid.UUID) error {
	return subjectkeys.RecordErased(fs, path, subject)
}

// ReadErased reads the erased-subjects file at path on fs (nil: the
// operating system's); a missing file is an empty list
// (subjectkeys.ReadErased).
func ReadErased(fs vfs.FS, path string) ([]uuid.UUID, error) { return subjectkeys.ReadErased(fs, path) }

// ShredErased shreds every subject the erased-subjects file at path (on
// Options.FS) lists that still has a key here (after a restore, or an
// erasure cut short by a crash between recording and shredding). It returns
// how many it shredded.
func (s *Store) ShredErased(ctx context.Context, path string) (int, error) {
	ids, err := subjectkeys.ReadErased(s.opts.FS, path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		erased, err := s.Erased(ctx, id)
		if err != nil {
			return n, err
		}
		if erased {
			continue
		}
		if err := s.Shred(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
