package pebblestore

// The write path: appends queue for one writer goroutine, which checks
// expected versions and idempotent retries, commits groups in one batch and
// hands them to the syncer; an append is acknowledged once its group is
// synced.

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

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
