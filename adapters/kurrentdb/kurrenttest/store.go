package kurrenttest

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// event is one record of the log, as the server keeps it.
type event struct {
	stream  string
	rev     uint64 // its number in its stream (math.MaxInt64 for a tombstone)
	pos     uint64 // its (prepare) position in the log
	commit  uint64 // its commit position: pos, but for a legacy transaction's events the transaction's commit record
	id      uuid.UUID
	typ     string
	json    bool
	data    []byte
	meta    []byte // the user's ("custom") metadata
	created int64  // .NET ticks (100 ns) since the Unix epoch, as the server sends it
}

// streamState is a stream's events and deletion state.
type streamState struct {
	events         []*event // by revision
	truncateBefore uint64   // a soft delete hides the revisions below this
	softDeleted    bool     // deleted and not written to since
	tombstoned     bool     // deleted for good
}

// at is the event's position in $all, which orders $all.
func (e *event) at() tfpos { return tfpos{e.commit, e.pos} }

// tfpos is a position in $all: a commit and a prepare position, ordered by
// commit, then prepare.
type tfpos struct{ commit, prepare uint64 }

func (p tfpos) less(q tfpos) bool {
	return p.commit < q.commit || p.commit == q.commit && p.prepare < q.prepare
}

// last is the stream's last revision, -1 when it has none.
func (st *streamState) last() int64 { return int64(len(st.events)) - 1 }

// Expected revisions as the server encodes them.
const (
	expectAny          int64 = -2
	expectNoStream     int64 = -1
	expectStreamExists int64 = -4
)

// decision is the outcome of the server's commit check.
type decision int

const (
	commitOK decision = iota
	commitIdempotent
	commitWrongVersion
	commitDeleted
)

// store is the log: one per single node, shared by the nodes of a cluster
// (replication is instant and perfect here).
type store struct {
	mu      sync.Mutex
	log     []*event
	streams map[string]*streamState
	// ids is the server's cache of committed event ids that its weak
	// idempotency check (expected any / stream_exists) consults. KurrentDB
	// bounds it (recent events only); here it holds every id.
	ids    map[uuid.UUID]*event
	next   uint64        // the position of the next record
	notify chan struct{} // closed and replaced on every write
	gen    int           // bumped when the log is replaced: subscriptions end
}

// firstPosition leaves room for the records a fresh node writes before any
// event (epoch and chunk headers): no event is ever at position 0.
const firstPosition = 1 << 12

func newStore() *store {
	s := &store{streams: map[string]*streamState{}, ids: map[uuid.UUID]*event{}, next: firstPosition, notify: make(chan struct{})}
	// A fresh KurrentDB node writes a few system events before any user
	// event: $all never starts with the application's events.
	s.write("$settings", "$settings", []byte(`{"$userStreamAcl":{},"$systemStreamAcl":{}}`))
	s.write("$$$scavenges", "$metadata", []byte(`{"$maxAge":2592000}`))
	return s
}

// write appends one system event; s.mu must be held or s unshared.
func (s *store) write(stream, typ string, data []byte) *event {
	st := s.stream(stream)
	e := s.record(stream, uint64(len(st.events)), uuid.New(), typ, true, data, nil)
	st.events = append(st.events, e)
	s.wake()
	return e
}

func (s *store) stream(name string) *streamState {
	st := s.streams[name]
	if st == nil {
		st = &streamState{}
		s.streams[name] = st
	}
	return st
}

// record adds an event at the next position. Positions advance by the
// record's size, as byte offsets in a transaction log do: increasing, with
// gaps.
func (s *store) record(stream string, rev uint64, id uuid.UUID, typ string, json bool, data, meta []byte) *event {
	e := &event{stream: stream, rev: rev, pos: s.next, commit: s.next, id: id, typ: typ, json: json, data: data, meta: meta,
		created: time.Now().UnixNano() / 100}
	s.next += uint64(72 + len(stream) + len(typ) + len(data) + len(meta))
	s.log = append(s.log, e)
	s.ids[id] = e
	return e
}

func (s *store) wake() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// proposed is an event of an append request.
type proposed struct {
	id   uuid.UUID
	typ  string
	json bool
	data []byte
	meta []byte
}

// appendResult is the answer to an append.
type appendResult struct {
	dec  decision
	cur  int64  // the stream's last revision (-1: none) for a wrong expected version
	rev  uint64 // the last written (or already written) event's revision
	pos  tfpos  // its position
	none bool   // nothing written to a stream that does not exist (empty append)
}

// append checks the expected revision and idempotency as KurrentDB's
// commit check does, then writes the events as one transaction.
func (s *store) append(name string, expected int64, events []proposed) appendResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.id
	}
	dec, cur, done := s.check(name, expected, ids)
	switch dec {
	case commitIdempotent:
		return appendResult{dec: dec, rev: done.rev, pos: done.at()}
	case commitWrongVersion, commitDeleted:
		return appendResult{dec: dec, cur: cur}
	}
	st := s.stream(name)
	if len(events) == 0 {
		if st.last() < 0 {
			return appendResult{none: true}
		}
		last := st.events[st.last()]
		return appendResult{rev: last.rev, pos: last.at()}
	}
	var last *event
	for _, p := range events {
		last = s.record(name, uint64(len(st.events)), p.id, p.typ, p.json, p.data, p.meta)
		st.events = append(st.events, last)
	}
	st.softDeleted = false
	s.wake()
	return appendResult{rev: last.rev, pos: last.at()}
}

// check is KurrentDB's commit check (IndexWriter.CheckCommit) over this
// log. With expected any or stream_exists ("weak" idempotency) the ids are
// looked up in the cache of committed ids: a write whose first id is there
// (in this stream) is a retry if all its ids are, else a wrong expected
// version; a write whose first id is not there is written, even if a later
// id is. With an exact revision or no_stream behind the stream's end
// ("strong" idempotency) the ids must be the events right after the
// expected revision.
func (s *store) check(name string, expected int64, ids []uuid.UUID) (decision, int64, *event) {
	st := s.streams[name]
	if st == nil || (st.last() < 0 && !st.tombstoned) {
		if expected == expectAny || expected == expectNoStream {
			return commitOK, -1, nil
		}
		return commitWrongVersion, -1, nil
	}
	cur := st.last()
	if st.tombstoned {
		return commitDeleted, cur, nil
	}
	if expected == expectStreamExists && st.softDeleted {
		return commitDeleted, cur, nil
	}
	if expected == expectAny || expected == expectStreamExists {
		var last *event
		for i, id := range ids {
			if e := s.ids[id]; e != nil && e.stream == name {
				last = e
				continue
			}
			if i > 0 {
				return commitWrongVersion, cur, nil // corrupted idempotency
			}
			return commitOK, cur, nil
		}
		if last == nil {
			return commitOK, cur, nil
		}
		return commitIdempotent, cur, last
	}
	if expected < cur {
		n := expected
		for i, id := range ids {
			n++
			if n <= cur && st.events[n].id == id {
				continue
			}
			if i == 0 && expected == expectNoStream && st.softDeleted {
				return commitOK, cur, nil
			}
			return commitWrongVersion, cur, nil
		}
		if len(ids) == 0 {
			if expected == expectNoStream && st.softDeleted {
				return commitOK, cur, nil
			}
			return commitWrongVersion, cur, nil
		}
		return commitIdempotent, cur, st.events[n]
	}
	if expected > cur {
		return commitWrongVersion, cur, nil
	}
	return commitOK, cur, nil
}

// commitRecordSize is the room a legacy transaction's commit record takes.
const commitRecordSize = 48

// writeTransaction writes events to a stream as a legacy explicit
// transaction (as TCP clients of old servers could): each event is
// prepared at its own position, then one commit record commits them all,
// so they share its commit position. Expected version any.
func (s *store) writeTransaction(name string, events []proposed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stream(name)
	var written []*event
	for _, p := range events {
		e := s.record(name, uint64(len(st.events)), p.id, p.typ, p.json, p.data, p.meta)
		st.events = append(st.events, e)
		written = append(written, e)
	}
	commit := s.next
	s.next += commitRecordSize
	for _, e := range written {
		e.commit = commit
	}
	st.softDeleted = false
	s.wake()
}

// clone copies the log (events are not changed once written).
func (s *store) clone() *store {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &store{log: append([]*event(nil), s.log...), streams: make(map[string]*streamState, len(s.streams)),
		ids: make(map[uuid.UUID]*event, len(s.ids)), next: s.next, notify: make(chan struct{})}
	for name, st := range s.streams {
		cp := *st
		cp.events = append([]*event(nil), st.events...)
		c.streams[name] = &cp
	}
	for id, e := range s.ids {
		c.ids[id] = e
	}
	return c
}

// reset makes the log a copy of another's, and wakes its subscriptions.
func (s *store) reset(from *store) {
	from = from.clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log, s.streams, s.ids, s.next = from.log, from.streams, from.ids, from.next
	s.gen++
	s.wake()
}

// remove soft-deletes (a $metadata event truncating the stream) or
// tombstones (a $streamDeleted event in the stream) a stream; it returns
// the position of the event that says so.
func (s *store) remove(name string, expected int64, tombstone bool) (decision, int64, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	cur := int64(-1)
	if st != nil {
		cur = st.last()
		if st.tombstoned {
			return commitDeleted, cur, 0
		}
	}
	switch {
	case expected == expectNoStream && cur >= 0, expected == expectStreamExists && cur < 0, expected >= 0 && expected != cur:
		return commitWrongVersion, cur, 0
	}
	st = s.stream(name)
	var e *event
	if tombstone {
		st.tombstoned = true
		e = s.record(name, math.MaxInt64, uuid.New(), "$streamDeleted", true, nil, nil)
	} else {
		st.softDeleted = true
		st.truncateBefore = uint64(len(st.events))
		meta := s.stream("$$" + name)
		e = s.record("$$"+name, uint64(len(meta.events)), uuid.New(), "$metadata", true,
			[]byte(`{"$tb":`+strconv.FormatUint(st.truncateBefore, 10)+`}`), nil)
		meta.events = append(meta.events, e)
	}
	s.wake()
	return commitOK, cur, e.pos
}

// filter is a read's or subscription's server-side filter.
type filter struct {
	onStream bool // on the stream name, else on the event type
	prefixes []string
	re       *regexp.Regexp
}

func (f *filter) match(e *event) bool {
	if f == nil {
		return true
	}
	s := e.typ
	if f.onStream {
		s = e.stream
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// indexAfter returns the log index of the first event after position p,
// and whether p is a position a read may start from: the start, an
// event's position, a legacy transaction's commit record (commit and
// prepare both its position), or at or past the end of the log.
func (s *store) indexAfter(p tfpos) (int, bool) {
	lo, hi := 0, len(s.log)
	for lo < hi {
		mid := (lo + hi) / 2
		if !p.less(s.log[mid].at()) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	valid := p == tfpos{} || p.commit >= s.next ||
		(lo > 0 && (s.log[lo-1].at() == p || s.log[lo-1].commit == p.commit && p.prepare == p.commit))
	return lo, valid
}
