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
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/pebbledb"
	"github.com/buurtsignaal/buurtsignaal/domain"
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

func be64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

func logKey(pos uint64) []byte { return append([]byte{'g'}, be64(pos)...) }

func streamKey(stream string, rev uint64) []byte {
	k := make([]byte, 0, 1+len(stream)+1+8)
	k = append(k, 's')
	k = append(k, stream...)
	k = append(k, 0)
	return append(k, be64(rev)...)
}

func headKey(stream string) []byte { return append([]byte{'h'}, stream...) }

var (
	metaKey = []byte("m")
	posKey  = []byte("p")
	castag  = crc32.MakeTable(crc32.Castagnoli)
)

func (s *Store) get(key []byte) ([]byte, bool, error) { return pebbledb.Lookup(s.db, key) }

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

// encodeMeta writes metadata compactly: occurred-at (unix nanos, 0 for
// none), the uvarint-prefixed strings, the schema version, and then, only
// when there is one, the uvarint-prefixed idempotency fingerprint (added
// later: records written before it end after the schema version).
func encodeMeta(dst []byte, m eventlog.Metadata) []byte {
	var at uint64
	if !m.OccurredAt.IsZero() {
		at = uint64(m.OccurredAt.UnixNano())
	}
	dst = binary.BigEndian.AppendUint64(dst, at)
	for _, f := range [...]string{m.ActorID, m.ActorRole, m.OnBehalfOf, m.CorrelationID, m.CausationID, m.RequestID, m.Network} {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	dst = binary.AppendUvarint(dst, uint64(m.SchemaVersion))
	if m.IdempotencyFingerprint != "" {
		dst = binary.AppendUvarint(dst, uint64(len(m.IdempotencyFingerprint)))
		dst = append(dst, m.IdempotencyFingerprint...)
	}
	return dst
}

// decodeMeta decodes metadata as encodeMeta wrote it.
func (d *decoder) decodeMeta(b []byte, m *eventlog.Metadata) bool {
	if len(b) < 8 {
		return false
	}
	if at := binary.BigEndian.Uint64(b); at != 0 {
		m.OccurredAt = time.Unix(0, int64(at)).UTC()
	}
	b = b[8:]
	for i, dst := range [...]*string{&m.ActorID, &m.ActorRole, &m.OnBehalfOf, &m.CorrelationID, &m.CausationID, &m.RequestID, &m.Network} {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return false
		}
		switch f := b[k : k+int(n)]; i {
		case 0, 1, 2, 6: // actors, roles and networks repeat
			*dst = d.shared(f)
		default: // ids rarely do
			*dst = string(f)
		}
		b = b[k+int(n):]
	}
	v, k := binary.Uvarint(b)
	if k <= 0 {
		return false
	}
	m.SchemaVersion = int(v)
	if b = b[k:]; len(b) == 0 {
		return true
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || uint64(len(b)-k) != n {
		return false
	}
	m.IdempotencyFingerprint = string(b[k:])
	return true
}

// record encoding: uvarint-prefixed stream, type, data, metadata; then
// revision, recorded-at (unix nanos), id; then a CRC-32C of all of it.
func encodeRecord(dst []byte, stream string, rev uint64, e eventlog.EventData, meta []byte, at time.Time) []byte {
	start := len(dst)
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Type)))
	dst = append(dst, e.Type...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	dst = append(dst, e.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(meta)))
	dst = append(dst, meta...)
	dst = binary.BigEndian.AppendUint64(dst, rev)
	dst = binary.BigEndian.AppendUint64(dst, uint64(at.UnixNano()))
	dst = append(dst, e.ID[:]...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castag))
}

// decoder turns records into events for one read. It shares what repeats
// (event types, actors, roles, networks, the stream of the previous event)
// instead of allocating it again, and carves small event bodies out of
// shared chunks (each body's capacity capped at its length, so an append to
// one copies rather than overwriting the next), so that a replay allocates
// little per event. The zero value is ready to use.
type decoder struct {
	strs       map[string]string
	prevStream string
	chunk      []byte
}

const (
	maxShared   = 1024     // distinct strings a decoder shares
	chunkBytes  = 64 << 10 // event bodies are carved out of chunks this big
	ownBodySize = 4 << 10  // bodies bigger than this get their own allocation
)

func (d *decoder) shared(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.strs[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if d.strs == nil {
		d.strs = make(map[string]string, 16)
	}
	if len(d.strs) < maxShared {
		d.strs[s] = s
	}
	return s
}

func (d *decoder) body(b []byte) []byte {
	if len(b) > ownBodySize {
		return bytes.Clone(b)
	}
	if cap(d.chunk)-len(d.chunk) < len(b) {
		d.chunk = make([]byte, 0, chunkBytes)
	}
	at := len(d.chunk)
	d.chunk = append(d.chunk, b...)
	return d.chunk[at:len(d.chunk):len(d.chunk)]
}

// decode checks a record's checksum and decodes it, returning an error
// wrapping ErrCorrupt when it does not check out.
func (d *decoder) decode(pos uint64, b []byte) (eventlog.RecordedEvent, error) {
	bad := func(what string) (eventlog.RecordedEvent, error) {
		return eventlog.RecordedEvent{}, fmt.Errorf("%w: event at position %d: %s", ErrCorrupt, pos, what)
	}
	if len(b) < 4 {
		return bad("too short")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castag) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return bad("checksum mismatch")
	}
	var fields [4][]byte
	rest := body
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return bad("bad field length")
		}
		fields[i] = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	if len(rest) != 8+8+16 {
		return bad("bad trailer")
	}
	if string(fields[0]) != d.prevStream { // no allocation for the comparison
		d.prevStream = string(fields[0])
	}
	re := eventlog.RecordedEvent{
		StreamID: d.prevStream, Type: d.shared(fields[1]), Data: d.body(fields[2]), Position: pos,
		Revision:   binary.BigEndian.Uint64(rest[:8]),
		RecordedAt: time.Unix(0, int64(binary.BigEndian.Uint64(rest[8:16]))).UTC(),
	}
	copy(re.ID[:], rest[16:])
	if !d.decodeMeta(fields[3], &re.Metadata) {
		return bad("metadata does not decode")
	}
	return re, nil
}

// Append implements eventlog.Store: it queues the append for the writer and
// returns once its group commit is synced. It returns the port's errors:
// eventlog.ErrWrongExpectedVersion (conflict, also for a retry whose ids
// only partly match the stored ones), ErrEmptyAppend or ErrInvalidEvent
// (invalid), ErrEventTooLarge or ErrAppendTooLarge (too large), ErrClosed
// after Close, and ErrUnavailable once a commit or sync has failed (until
// reopened). A ctx that ends before the writer takes the append returns
// ctx.Err() and writes nothing; once taken, the append's outcome is awaited.
func (s *Store) Append(ctx context.Context, stream string, expected eventlog.ExpectedVersion, events ...eventlog.EventData) (eventlog.AppendResult, error) {
	if err := eventlog.Validate(stream, events); err != nil {
		return eventlog.AppendResult{}, err
	}
	if b := s.broken.Load(); b != nil {
		return eventlog.AppendResult{}, unavailable(*b)
	}
	req := &appendReq{ctx: ctx, stream: stream, expected: expected, events: events, res: make(chan appendRes, 1)}
	select {
	case s.reqs <- req:
	case <-s.quit:
		return eventlog.AppendResult{}, eventlog.ErrClosed
	case <-ctx.Done():
		return eventlog.AppendResult{}, ctx.Err()
	}
	// Once queued, wait for the writer's answer even if ctx ends: the
	// append may commit, and the caller must not believe it failed for sure.
	// A request that slipped in after the writer stopped is never answered:
	// the writer's end (done) says so, after every answer it gave.
	select {
	case r := <-req.res:
		return r.r, r.err
	case <-s.done:
		select {
		case r := <-req.res:
			return r.r, r.err
		default:
			return eventlog.AppendResult{}, eventlog.ErrClosed
		}
	}
}

// recentEvent is where a recently appended event landed.
type recentEvent struct {
	stream string
	entry  indexEntry
	slot   int // in the ring
}

// recentIDs bounds the in-memory index of recent event ids.
const recentIDs = 1 << 17

func (s *Store) remember(stream string, e indexEntry) {
	if re, ok := s.recent[e.id]; ok && re.stream == stream && re.entry == e {
		return // loaded again after the head cache was reset
	}
	if old := s.ring[s.ringAt]; old != uuid.Nil {
		if re := s.recent[old]; re.slot == s.ringAt {
			delete(s.recent, old) // unless a later slot holds it (an id reused in another stream)
		}
	}
	s.ring[s.ringAt] = e.id
	s.recent[e.id] = recentEvent{stream: stream, entry: e, slot: s.ringAt}
	s.ringAt = (s.ringAt + 1) % len(s.ring)
}

// indexWrite is an index entry a group commit writes.
type indexWrite struct {
	stream string
	e      indexEntry
}

// indexEntry is one event of a stream as its index holds it.
type indexEntry struct {
	rev, pos uint64
	id       uuid.UUID
}

// writer is the one goroutine that writes. It assembles a group from the
// appends waiting, checking and encoding each as it comes, and commits the
// group once the previous group's sync is done (or the group is full): so
// every append that arrives during a sync joins the next group, as with a
// plain log file, while the CPU work of a group overlaps the previous sync.
func (s *Store) writer(syncerDone chan struct{}) {
	defer func() {
		close(s.syncq)
		<-syncerDone
		close(s.done)
	}()
	inFlight := 0 // groups handed to the syncer and not yet synced
	for {
		var first *appendReq
		for first == nil {
			select {
			case first = <-s.reqs:
			case <-s.synced:
				inFlight--
			case <-s.quit:
				for {
					select {
					case r := <-s.reqs:
						r.res <- appendRes{err: eventlog.ErrClosed}
					default:
						return
					}
				}
			}
		}
		g := s.newGroup()
		s.add(g, first)
	fill:
		for g.events < s.opts.MaxBatchEvents {
			if inFlight <= 0 {
				select { // take what is queued, then commit
				case r := <-s.reqs:
					s.add(g, r)
					continue
				default:
					break fill
				}
			}
			select {
			case r := <-s.reqs:
				s.add(g, r)
			case <-s.synced:
				inFlight--
			case <-s.quit:
				break fill
			}
		}
		s.commit(g)
		inFlight++
	}
}

// group is a group commit being assembled by the writer.
type group struct {
	p      *pending
	pb     *pebble.Batch
	pos    uint64                  // the last position assigned in the group
	heads  map[string]int64        // stream heads as the group leaves them
	local  map[string][]indexEntry // the group's events per stream
	index  []indexWrite            // the group's stream index entries
	events int                     // events asked for, written or not
	now    time.Time
}

func (s *Store) newGroup() *group {
	return &group{p: &pending{}, pb: s.db.NewBatch(), pos: s.lastPos,
		heads: map[string]int64{}, local: map[string][]indexEntry{}, now: s.opts.Now()}
}

func unavailable(err error) error {
	return domain.Wrap(domain.KindUnavailable, eventlog.ErrUnavailable.Code, eventlog.ErrUnavailable.Message, err)
}

// add checks one append against the stream heads as the group's earlier
// appends leave them and, if it passes, encodes its events into the group's
// batch. A failing append fails alone.
func (s *Store) add(g *group, r *appendReq) {
	p := g.p
	i := len(p.reqs)
	p.reqs = append(p.reqs, r)
	p.results = append(p.results, appendRes{})
	p.written = append(p.written, false)
	g.events += len(r.events)
	if b := s.broken.Load(); b != nil {
		p.results[i].err = unavailable(*b)
		return
	}
	if err := r.ctx.Err(); err != nil {
		p.results[i].err = err
		return
	}
	head, err := s.head(r.stream, g.heads)
	if err != nil {
		p.results[i].err = err
		return
	}
	if res, done, err := s.retry(r, head, g.local); done || err != nil {
		p.results[i] = appendRes{r: res, err: err}
		return
	}
	if err := checkExpected(r.expected, head); err != nil {
		p.results[i].err = err
		return
	}
	rev := uint64(head + 1)
	for _, e := range r.events {
		g.pos++
		s.meta = encodeMeta(s.meta[:0], e.Metadata)
		s.buf = encodeRecord(s.buf[:0], r.stream, rev, e, s.meta, g.now)
		s.key = binary.BigEndian.AppendUint64(append(s.key[:0], 'g'), g.pos)
		_ = g.pb.Set(s.key, s.buf, nil)
		ie := indexEntry{rev: rev, pos: g.pos, id: e.ID}
		g.index = append(g.index, indexWrite{r.stream, ie})
		g.local[r.stream] = append(g.local[r.stream], ie)
		s.remember(r.stream, ie)
		rev++
	}
	g.heads[r.stream] = int64(rev - 1)
	p.results[i].r = eventlog.AppendResult{NextRevision: rev - 1, Position: g.pos}
	p.written[i] = true
}

// commit writes the group's index and heads into its batch, applies it
// without waiting for the sync and hands it to the syncer, which waits.
func (s *Store) commit(g *group) {
	p, pb := g.p, g.pb
	if g.pos == s.lastPos || s.broken.Load() != nil {
		pb.Close() // nothing to write
		s.syncq <- p
		return
	}
	// The log's keys went in ascending order; the index and the heads
	// follow, so that the memtable takes the log's keys in one run.
	var val [24]byte
	for _, w := range g.index {
		s.key = binary.BigEndian.AppendUint64(append(append(append(s.key[:0], 's'), w.stream...), 0), w.e.rev)
		binary.BigEndian.PutUint64(val[:8], w.e.pos)
		copy(val[8:], w.e.id[:])
		_ = pb.Set(s.key, val[:], nil)
	}
	for st, h := range g.heads {
		s.key = append(append(s.key[:0], 'h'), st...)
		_ = pb.Set(s.key, be64(uint64(h)), nil)
	}
	_ = pb.Set(posKey, be64(g.pos), nil)
	var err error
	if s.opts.NoSync {
		err = s.db.Apply(pb, pebble.NoSync)
	} else {
		err = s.db.ApplyNoSyncWait(pb, pebble.Sync)
	}
	if err != nil {
		s.fail(fmt.Errorf("pebblestore: commit: %w", err))
		pb.Close()
		s.syncq <- p
		return
	}
	p.pb, p.pos = pb, g.pos
	s.lastPos = g.pos
	for st, h := range g.heads {
		s.heads[st] = h
	}
	s.syncq <- p
}

// fail marks the store broken: it takes no more writes until reopened.
func (s *Store) fail(err error) {
	s.broken.CompareAndSwap(nil, &err)
	s.heads = map[string]int64{}
}

// syncer waits for each group's WAL sync in order, then publishes its
// position, wakes subscribers and answers the appends.
func (s *Store) syncer(done chan struct{}) {
	defer close(done)
	for p := range s.syncq {
		var err error
		if p.pb != nil {
			if !s.opts.NoSync {
				err = p.pb.SyncWait()
			}
			p.pb.Close()
		}
		if err == nil && s.broken.Load() != nil && p.pb != nil {
			err = *s.broken.Load() // an earlier group failed: this one may depend on it
		}
		if err != nil {
			err = fmt.Errorf("pebblestore: sync: %w", err)
			s.broken.CompareAndSwap(nil, &err)
		}
		if b := s.broken.Load(); b != nil {
			for i := range p.results {
				if p.written[i] || p.results[i].err == nil {
					p.results[i] = appendRes{err: unavailable(*b)}
				}
			}
		} else if p.pb != nil {
			s.position.Store(p.pos)
			s.notifyMu.Lock()
			close(s.notify)
			s.notify = make(chan struct{})
			s.notifyMu.Unlock()
		}
		for i, r := range p.reqs {
			r.res <- p.results[i]
		}
		s.synced <- struct{}{}
	}
}

// head returns a stream's last revision (-1: no stream), batch-local first.
func (s *Store) head(stream string, local map[string]int64) (int64, error) {
	if h, ok := local[stream]; ok {
		return h, nil
	}
	if h, ok := s.heads[stream]; ok {
		return h, nil
	}
	v, ok, err := s.get(headKey(stream))
	if err != nil {
		return 0, fmt.Errorf("pebblestore: read head: %w", err)
	}
	h := int64(-1)
	if ok {
		h = int64(binary.BigEndian.Uint64(v))
		// The stream's last ids go into the recent index, so that a retry
		// with any or stream_exists of an append from before the store
		// opened is recognised even after the stream took other appends.
		tail, err := s.entries(stream, uint64(max(0, h-retryWindow+1)), uint64(h), nil)
		if err != nil {
			return 0, err
		}
		for _, e := range tail {
			s.remember(stream, e)
		}
	}
	if len(s.heads) > 1<<20 {
		s.heads = map[string]int64{} // bound the cache
	}
	s.heads[stream] = h
	return h, nil
}

func checkExpected(e eventlog.ExpectedVersion, head int64) error {
	ok := true
	switch e.Kind {
	case eventlog.ExpectNoStream:
		ok = head < 0
	case eventlog.ExpectStreamExists:
		ok = head >= 0
	case eventlog.ExpectRevision:
		ok = head == int64(e.Revision)
	}
	if !ok {
		return eventlog.ErrWrongExpectedVersion
	}
	return nil
}

// retryWindow is how many of a stream's last ids on disk are loaded into the
// recent index when the writer first touches it, for retries with any or
// stream_exists.
const retryWindow = 64

// retry recognises an idempotent retry (see the package doc). done reports
// that the append is a retry of one already stored, with its result; a
// partial overlap with stored ids is ErrWrongExpectedVersion.
func (s *Store) retry(r *appendReq, head int64, local map[string][]indexEntry) (eventlog.AppendResult, bool, error) {
	n := int64(len(r.events))
	if head < 0 {
		return eventlog.AppendResult{}, false, nil
	}
	if r.expected.Kind == eventlog.ExpectAny || r.expected.Kind == eventlog.ExpectStreamExists {
		// The stream's recent ids are in memory: those appended since the
		// store opened, and its tail on disk, loaded when it was first touched.
		return s.retryRecent(r)
	}
	exp := int64(-1) // no_stream
	if r.expected.Kind == eventlog.ExpectRevision {
		exp = int64(r.expected.Revision)
	}
	if head <= exp {
		return eventlog.AppendResult{}, false, nil // not a retry; the version check decides
	}
	// A retry takes the revisions after the expected one: read those.
	es, err := s.entries(r.stream, uint64(exp+1), uint64(min(exp+n, head)), local[r.stream])
	if err != nil {
		return eventlog.AppendResult{}, false, err
	}
	k := -1
	for i, e := range es {
		if e.id == r.events[0].ID {
			k = i
			break
		}
	}
	if k < 0 {
		for _, e := range es {
			for _, ev := range r.events[1:] {
				if e.id == ev.ID {
					return eventlog.AppendResult{}, false, eventlog.ErrWrongExpectedVersion
				}
			}
		}
		return eventlog.AppendResult{}, false, nil
	}
	if int64(len(es)-k) < n {
		return eventlog.AppendResult{}, false, eventlog.ErrWrongExpectedVersion
	}
	for i, ev := range r.events {
		if es[k+i].id != ev.ID {
			return eventlog.AppendResult{}, false, eventlog.ErrWrongExpectedVersion
		}
	}
	last := es[k+int(n)-1]
	return eventlog.AppendResult{NextRevision: last.rev, Position: last.pos}, true, nil
}

// retryRecent is retry for any / stream_exists on a warm stream: it looks
// the ids up in the in-memory index of recent events instead of on disk.
func (s *Store) retryRecent(r *appendReq) (eventlog.AppendResult, bool, error) {
	first, ok := s.recent[r.events[0].ID]
	if !ok || first.stream != r.stream {
		for _, ev := range r.events {
			if re, dup := s.recent[ev.ID]; dup && re.stream == r.stream {
				return eventlog.AppendResult{}, false, eventlog.ErrWrongExpectedVersion
			}
		}
		return eventlog.AppendResult{}, false, nil
	}
	last := first.entry
	for i, ev := range r.events {
		re, ok := s.recent[ev.ID]
		if !ok || re.stream != r.stream || re.entry.rev != first.entry.rev+uint64(i) {
			return eventlog.AppendResult{}, false, eventlog.ErrWrongExpectedVersion
		}
		last = re.entry
	}
	return eventlog.AppendResult{NextRevision: last.rev, Position: last.pos}, true, nil
}

// entries returns a stream's index entries with revisions in [from, to]:
// from Pebble (which holds every applied group, synced or not) and this group.
func (s *Store) entries(stream string, from, to uint64, local []indexEntry) ([]indexEntry, error) {
	var out []indexEntry
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: streamKey(stream, from), UpperBound: streamKey(stream, to+1)})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: read index: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(v) != 24 {
			it.Close()
			return nil, fmt.Errorf("%w: bad stream index entry", ErrCorrupt)
		}
		e := indexEntry{rev: binary.BigEndian.Uint64(k[len(k)-8:]), pos: binary.BigEndian.Uint64(v[:8])}
		copy(e.id[:], v[8:])
		out = append(out, e)
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	for _, e := range local {
		if e.rev >= from && e.rev <= to {
			out = append(out, e)
		}
	}
	return out, nil
}

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
func (s *Store) Checkpoint(dir string) error {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	if s.dbClosed {
		return eventlog.ErrClosed
	}
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("pebblestore: checkpoint: %w", err)
	}
	return nil
}
