// Package pebblestore is the embedded event store: the event log port on
// Pebble v2, for one machine with no setup (the default) and for tests.
//
// Durability: an append is acknowledged only after its batch is committed
// with a synced write-ahead log. One writer goroutine group-commits every
// append waiting at that moment into one synced batch, checking each one's
// expected version and idempotency in order against the stream heads as the
// batch leaves them; a failing append fails alone. While one group's sync is
// under way, the writer checks and encodes the appends arriving into the
// next group, and commits it as soon as that sync is done. Positions are
// dense: 1, 2, 3, ... in commit order. Live subscribers are woken after each
// synced commit, through a channel closed and replaced (no polling).
//
// Keys (one Pebble keyspace):
//
//	"m"                         format version
//	"p"                         last position (8 bytes, big endian)
//	"g" pos                     the event record, with a CRC-32C trailer
//	"s" stream 0x00 rev         position and id of a stream's event
//	"h" stream                  the stream's last revision
//
// Idempotent retries are recognised on the stream itself, as EventStoreDB
// does: with an exact expected version (or no_stream), by the ids at the
// revisions the retry would take, however old; with any or stream_exists,
// by the ids among the stream's recent events, held in memory: the last
// 131,072 ids appended, and the last 64 ids of each stream, read from disk
// when the writer first touches the stream after the store opened. So an
// append to a stream already touched reads nothing from disk: the stream
// heads are cached by the writer.
//
// Opening checks the format version and the log's tail (the last record's
// checksum, its stream index, and that nothing follows it), and every record
// read is checked against its checksum, so damaged data fails with a clear
// error rather than serving a wrong log. After a failed commit the store
// refuses writes (ErrUnavailable) until it is reopened.
package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/pebbledb"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

const formatVersion = 1

// Options tune a store. The zero value is the production default.
type Options struct {
	// FS replaces the file system (fault-injection tests use pebble's errorfs).
	FS vfs.FS
	// Now is the clock for RecordedAt (default time.Now).
	Now func() time.Time
	// CacheBytes is Pebble's block cache size (default 64 MiB).
	CacheBytes int64
	// MaxBatchEvents bounds the events of one group commit (default 4096).
	MaxBatchEvents int
	// NoSync skips fsync: for benchmarks of the code path only, never for data.
	NoSync bool
}

// ErrCorrupt is returned, wrapped with the details, when the stored data
// fails its checks: on Open for the format and the log's tail, on reads for
// each record's checksum and the stream index. It is not a domain error:
// the store is not fit to serve, an operator must restore it.
var ErrCorrupt = errors.New("pebblestore: the stored event log is damaged")

// Store is the embedded event store. It is safe for concurrent use.
type Store struct {
	db   *pebble.DB
	opts Options

	reqs     chan *appendReq
	quit     chan struct{}
	done     chan struct{}
	closeMu  sync.Mutex
	closed   bool
	broken   atomic.Pointer[error]
	position atomic.Uint64 // committed

	notifyMu sync.Mutex
	notify   chan struct{}

	// rmu guards reads against Close: readers hold it shared.
	rmu      sync.RWMutex
	dbClosed bool

	// writer-only state
	heads   map[string]int64 // stream -> last revision, -1 none; a cache of "h"
	lastPos uint64           // the last position assigned, synced or not
	recent  map[uuid.UUID]recentEvent
	ring    []uuid.UUID // recent ids in append order, for eviction
	ringAt  int

	syncq  chan *pending // groups applied, waiting for their WAL sync, in order
	synced chan struct{} // one per group the syncer is done with
	// scratch buffers of the writer
	buf, meta, key []byte
}

// pending is a group commit on its way to durability: the syncer waits for
// its WAL sync, then publishes its position and answers its appends, in order.
type pending struct {
	pb      *pebble.Batch // nil when the group wrote nothing
	reqs    []*appendReq
	results []appendRes
	written []bool
	pos     uint64
}

var _ eventlog.Store = (*Store)(nil)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventlog.ExpectedVersion
	events   []eventlog.EventData
	res      chan appendRes
}

type appendRes struct {
	r   eventlog.AppendResult
	err error
}

// Open opens or creates the store in dir and starts its writer. It checks
// the format version and the log's tail first, and returns an error wrapping
// ErrCorrupt when they fail their checks, or Pebble's error, wrapped, when
// the files cannot be opened.
func Open(dir string, opts Options) (*Store, error) {
	s, err := open(dir, opts)
	if err != nil {
		return nil, err
	}
	syncerDone := make(chan struct{})
	go s.syncer(syncerDone)
	go s.writer(syncerDone)
	return s, nil
}

// open opens Pebble and checks the data, without starting the writer.
func open(dir string, opts Options) (s *Store, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok && errors.Is(e, ErrCorrupt) {
				s, err = nil, e
				return
			}
			panic(r)
		}
	}()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 64 << 20
	}
	if opts.MaxBatchEvents == 0 {
		opts.MaxBatchEvents = 4096
	}
	// Pebble reserves its memtables' memory in the block cache, up to
	// MemTableStopWritesThreshold (2) memtables: a cache of only CacheBytes
	// next to two 32 MiB memtables held no blocks at all under write load,
	// and every lookup read and decompressed its blocks from disk.
	const memTableSize = 32 << 20
	cache := pebble.NewCache(opts.CacheBytes + 2*memTableSize)
	defer cache.Unref()
	po := &pebble.Options{FS: opts.FS, Cache: cache, Logger: pebbledb.QuietLogger{Fatal: ErrCorrupt}, MemTableSize: memTableSize, MemTableStopWritesThreshold: 2}
	for i := range po.Levels {
		// Bloom filters: the writer looks up the heads of new streams, which
		// do not exist yet.
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		// 16 KiB blocks: a replay reads a quarter of the blocks it would with
		// the default 4 KiB (each block read allocates and decompresses), 1.5x
		// faster; a cold read of a scattered stream gets about 20% slower.
		po.Levels[i].BlockSize = 16 << 10
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open: %w", err)
	}
	s = &Store{db: db, opts: opts, reqs: make(chan *appendReq, 1024),
		quit: make(chan struct{}), done: make(chan struct{}), notify: make(chan struct{}), heads: map[string]int64{},
		syncq: make(chan *pending, 64), synced: make(chan struct{}, 128), recent: map[uuid.UUID]recentEvent{}, ring: make([]uuid.UUID, recentIDs)}
	if err := s.check(); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.lastPos = s.position.Load()
	return s, nil
}

// Head implements eventlog.Store: the last acknowledged position, 0 when
// empty. It never fails.
func (s *Store) Head(context.Context) (uint64, error) { return s.position.Load(), nil }

// Close stops the writer (appends still queued get eventlog.ErrClosed),
// ends subscriptions (their Next returns ErrClosed) and closes Pebble,
// returning its error wrapped. Calling it again returns nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.closeMu.Unlock()
	<-s.done
	s.rmu.Lock()
	s.dbClosed = true
	s.rmu.Unlock()
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("pebblestore: close: %w", err)
	}
	return nil
}

// DB exposes Pebble for operator metrics. Writing through it bypasses every
// check of the store.
func (s *Store) DB() *pebble.DB { return s.db }

// Checkpoint writes a consistent copy of the store into dir, which must not
// exist, while the store serves: hard links to its immutable tables and a
// copy of its flushed write-ahead log. The copy opens as a store of its own
// with every event that was in a group applied before the checkpoint (each
// group's log records, index and position are one batch).
//
// It flushes the memtable first: Pebble copies the manifest as far as its
// writer has written it, and a database opened without a write-ahead log to
// replay (after a crash in its very first open) has no manifest writer
// until its first flush, so its checkpoint would hold an empty manifest and
// not open.
func (s *Store) Checkpoint(dir string) error {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return eventlog.ErrClosed
	}
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("pebblestore: checkpoint: %w", err)
	}
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("pebblestore: checkpoint: %w", err)
	}
	return nil
}
