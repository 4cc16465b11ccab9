// Package readstore is the read-model store: the Pebble database, one per
// replica in <data-dir>/readmodels, where the projections keep history (closed
// cases, the audit trail, subjects) and their checkpoints. It implements
// projections.ReadStore.
//
// It holds derived state only: ids, codes, times and ciphertext, rebuilt
// from the log whenever it is missing, damaged or from another version of
// the code. So it is not in backups, and its writes are not synced: a
// crash loses at most the last batches, each whole, and the read models
// resume from the checkpoint written with the last batch that survived.
package readstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/pebbledb"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// ErrCorrupt is what a fatal Pebble error in the read-model store panics
// with, wrapped: its files are damaged (delete the directory; the read
// models are rebuilt from the log).
var ErrCorrupt = errors.New("readstore: the read-model store is damaged")

// Options tune the store.
type Options struct {
	// CacheBytes is Pebble's block cache (default 16 MiB: the hot records,
	// open cases and monitoring rows, are in memory above it).
	CacheBytes int64
	// MemTableBytes is the size of one memtable (default 8 MiB).
	MemTableBytes uint64
	// FS is the file system (default the operating system's; the
	// power-loss test gives a crashable one in memory).
	FS vfs.FS
}

// Store is the Pebble read-model store.
type Store struct {
	db *pebble.DB
}

var _ projections.ReadStore = (*Store)(nil)

// Open opens or creates the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 16 << 20
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = 8 << 20
	}
	// Pebble reserves the memtables in the block cache (see pebblestore):
	// the cache is sized for both.
	cache := pebble.NewCache(opts.CacheBytes + 2*int64(opts.MemTableBytes))
	defer cache.Unref()
	po := &pebble.Options{FS: opts.FS, Cache: cache, Logger: pebbledb.QuietLogger{Fatal: ErrCorrupt},
		MemTableSize: opts.MemTableBytes, MemTableStopWritesThreshold: 4,
		// A rebuild writes a lot at once: compact level 0 early, on both
		// cores, and stall writes late.
		L0CompactionThreshold: 2, L0StopWritesThreshold: 32,
		CompactionConcurrencyRange: func() (int, int) { return 1, 2 }}
	for i := range po.Levels {
		// Point lookups of keys that often do not exist (a closed case, a
		// subject registered in this batch) use the filters.
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		// Values are ciphertext, ids and times: compression gains little
		// and costs CPU on every flush and compaction.
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("readstore: open: %w", err)
	}
	return &Store{db: db}, nil
}

// Get implements projections.ReadStore.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	return pebbledb.Lookup(s.db, key)
}

// GetMany implements projections.ReadStore: one iterator (one consistent
// view) seeks each key in turn, so the blocks it loaded serve the next
// keys, instead of a new iterator for each.
func (s *Store) GetMany(keys [][]byte, fn func(key, value []byte) bool) error {
	if len(keys) == 0 {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{UseL6Filters: true})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !it.SeekGE(k) || !bytes.Equal(it.Key(), k) {
			if err = it.Error(); err != nil {
				break
			}
			continue
		}
		v, verr := it.ValueAndErr()
		if verr != nil {
			err = verr
			break
		}
		if !fn(k, v) {
			break
		}
	}
	return errors.Join(err, it.Close())
}

// Scan implements projections.ReadStore. One iterator: one consistent view.
func (s *Store) Scan(lower, upper []byte, reverse bool, fn func(key, value []byte) bool) error {
	// Empty bounds are none (Pebble's invariant checks, on under the race
	// detector, index a non-nil empty bound); a range that is empty or
	// reversed is empty.
	if len(lower) == 0 {
		lower = nil
	}
	if len(upper) == 0 {
		upper = nil
	} else if bytes.Compare(lower, upper) >= 0 {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	valid := it.First
	step := it.Next
	if reverse {
		valid, step = it.Last, it.Prev
	}
	for ok := valid(); ok; ok = step() {
		v, verr := it.ValueAndErr()
		if verr != nil {
			err = verr
			break
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	if err == nil {
		err = it.Error()
	}
	return errors.Join(err, it.Close())
}

// Write implements projections.ReadStore: one Pebble batch, not synced.
func (s *Store) Write(b *projections.Batch) error {
	pb := s.db.NewBatch()
	defer pb.Close()
	for _, op := range b.Ops() {
		var err error
		switch op.Kind {
		case projections.OpSet:
			err = pb.Set(op.Key, op.Value, nil)
		case projections.OpDelete:
			err = pb.Delete(op.Key, nil)
		case projections.OpDeleteRange:
			err = pb.DeleteRange(op.Key, op.End, nil)
		}
		if err != nil {
			return fmt.Errorf("readstore: batch: %w", err)
		}
	}
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("readstore: write: %w", err)
	}
	return nil
}

// Compact compacts the whole store, so that no compaction debt from a
// rebuild is left for the server to pay while it serves.
func (s *Store) Compact(ctx context.Context) error {
	if err := s.db.Flush(); err != nil {
		return err
	}
	return s.db.Compact(ctx, []byte{0}, []byte{0xff, 0xff}, true)
}

// Close flushes the memtables, so the next open has no write-ahead log to
// replay (a restart stays quick), and closes the database.
func (s *Store) Close() error {
	return errors.Join(s.db.Flush(), s.db.Close())
}

// Metrics returns Pebble's metrics, for diagnostics.
func (s *Store) Metrics() *pebble.Metrics { return s.db.Metrics() }
