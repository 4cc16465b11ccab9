package projections

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// AuditEntry is one access record as privacy officers query it.
type AuditEntry struct {
	domain.AccessRecord
	Denied   bool
	Stream   string
	Position uint64
}

// AuditTrail indexes the access log by subject and by actor, and lists
// break-glass reads for review. It lives in the read-model store (nothing of
// it in memory but a count): each record once, by position, and an index
// key per subject, per actor and per break-glass read, ordered by the
// record's time, so a page of a list costs a seek and the page. It holds ids
// and sealed reasons only.
type AuditTrail struct {
	rs      ReadStore
	b       *Batch
	records int
	counted bool // records changed since the last flush
}

// NewAuditTrail returns an empty audit trail projection (in a memory store
// until a runner attaches it to its own).
func NewAuditTrail() *AuditTrail { return &AuditTrail{rs: NewMemoryStore(), b: new(Batch)} }

const (
	auditPrefix  = 'a'
	auditVersion = 1
)

// Keys: a e <position> the record; a s <network> <subject> <time>
// <position>, a a <network> <actor> <time> <position> and a g <network>
// <time> <position> the lists; a n the count. The lists are kept per
// network (actor ids may repeat across networks): a privacy officer reads
// those of their own.
var auditCountKey = []byte{auditPrefix, 'n'}

func auditEntryKey(pos uint64) []byte { return appendU64([]byte{auditPrefix, 'e'}, pos) }

func (p *AuditTrail) name() string    { return "audit" }
func (p *AuditTrail) prefix() byte    { return auditPrefix }
func (p *AuditTrail) version() uint64 { return auditVersion }

func (p *AuditTrail) attach(rs ReadStore, b *Batch) error {
	p.rs, p.b, p.records, p.counted = rs, b, 0, false
	v, ok, err := rs.Get(auditCountKey)
	if err != nil || !ok {
		return err
	}
	d := dec{b: v}
	p.records = int(d.uvarint())
	return d.done()
}

// AuditList names one list of a network's audit trail: a subject's
// records, an actor's, or the break-glass reads.
type AuditList struct {
	Network    string
	Subject    uuid.UUID
	Actor      string
	BreakGlass bool
}

func (l AuditList) prefix() []byte {
	switch {
	case l.BreakGlass:
		return appendStr([]byte{auditPrefix, 'g'}, l.Network)
	case l.Actor != "":
		return appendStr(appendStr([]byte{auditPrefix, 'a'}, l.Network), l.Actor)
	default:
		return append(appendStr([]byte{auditPrefix, 's'}, l.Network), l.Subject[:]...)
	}
}

// Apply implements Projection.
func (p *AuditTrail) Apply(env Envelope) {
	var e *AuditEntry
	switch ev := env.Event.(type) {
	case domain.RecordAccessed:
		e = &AuditEntry{AccessRecord: ev.AccessRecord}
	case domain.AccessDenied:
		e = &AuditEntry{AccessRecord: ev.AccessRecord, Denied: true}
	default:
		return
	}
	e.Stream, e.Position = env.Stream, env.Position
	p.records++
	p.counted = true
	p.b.Set(auditEntryKey(e.Position), encodeAuditEntry(e))
	suffix := appendU64(appendTime(nil, e.At), e.Position)
	for _, s := range e.Subjects {
		p.b.Set(append(AuditList{Network: e.Network, Subject: s}.prefix(), suffix...), nil)
	}
	if e.ActorID != "" {
		p.b.Set(append(AuditList{Network: e.Network, Actor: e.ActorID}.prefix(), suffix...), nil)
	}
	if e.Basis == domain.BasisBreakGlass {
		p.b.Set(append(AuditList{Network: e.Network, BreakGlass: true}.prefix(), suffix...), nil)
	}
}

func (p *AuditTrail) flush() error {
	if p.counted {
		var e enc
		e.uvarint(uint64(p.records))
		p.b.Set(auditCountKey, e.b)
	}
	return nil
}

func (p *AuditTrail) committed() { p.counted = false }

// Records returns the number of access records seen.
func (p *AuditTrail) Records() int { return p.records }

// Page returns up to limit records of a list within [from, to) (a zero
// bound is open), oldest first (by time, then log position), starting after
// cursor (nil: from the start), and the cursor of the next page (nil when
// there is none). A cursor is opaque bytes this method gave.
func (p *AuditTrail) Page(l AuditList, from, to time.Time, cursor []byte, limit int) ([]*AuditEntry, []byte, error) {
	pre := l.prefix()
	lower := appendTime(bytes.Clone(pre), from)
	if len(cursor) > 0 {
		if c := append(append(bytes.Clone(pre), cursor...), 0); bytes.Compare(c, lower) > 0 {
			lower = c
		}
	}
	upper := prefixEnd(pre)
	if !to.IsZero() {
		upper = appendTime(bytes.Clone(pre), to)
	}
	var positions []uint64
	var last, next []byte
	err := p.rs.Scan(lower, upper, false, func(k, _ []byte) bool {
		if len(k) != len(pre)+16 {
			return true // not a record key
		}
		if limit > 0 && len(positions) == limit {
			next = bytes.Clone(last)
			return false
		}
		last = append(last[:0], k[len(pre):]...)
		positions = append(positions, binary.BigEndian.Uint64(k[len(k)-8:]))
		return true
	})
	if err != nil {
		return nil, nil, err
	}
	out, err := p.entries(positions)
	return out, next, err
}

func (p *AuditTrail) entries(positions []uint64) ([]*AuditEntry, error) {
	keys := make([][]byte, len(positions))
	for i, pos := range positions {
		keys[i] = auditEntryKey(pos)
	}
	// GetMany wants the keys in order: positions are, within equal times.
	order := slices.Clone(keys)
	slices.SortFunc(order, bytes.Compare)
	byPos := make(map[uint64]*AuditEntry, len(positions))
	var derr error
	err := p.rs.GetMany(order, func(k, v []byte) bool {
		e, err := decodeAuditEntry(v)
		if err != nil {
			derr = err
			return false
		}
		e.Position = binary.BigEndian.Uint64(k[2:])
		byPos[e.Position] = e
		return true
	})
	if err := cmpErr(err, derr); err != nil {
		return nil, err
	}
	out := make([]*AuditEntry, 0, len(positions))
	for _, pos := range positions {
		e := byPos[pos]
		if e == nil {
			return nil, fmt.Errorf("audit record %d: %w", pos, ErrCorrupt)
		}
		out = append(out, e)
	}
	return out, nil
}

// all returns every record of a list within [from, to), oldest first.
func (p *AuditTrail) all(l AuditList, from, to time.Time) []*AuditEntry {
	out, _, err := p.Page(l, from, to, nil, 0)
	if err != nil {
		return nil
	}
	return out
}

// OfSubject returns a network's records naming a subject, oldest first,
// within [from, to): all of them (the export); lists page with Page.
func (p *AuditTrail) OfSubject(network string, id uuid.UUID, from, to time.Time) []*AuditEntry {
	return p.all(AuditList{Network: network, Subject: id}, from, to)
}

// OfActor returns a network's records of an actor, oldest first, within
// [from, to): all of them; lists page with Page.
func (p *AuditTrail) OfActor(network, id string, from, to time.Time) []*AuditEntry {
	return p.all(AuditList{Network: network, Actor: id}, from, to)
}

// BreakGlass returns a network's break-glass reads within [from, to): all
// of them; lists page with Page.
func (p *AuditTrail) BreakGlass(network string, from, to time.Time) []*AuditEntry {
	return p.all(AuditList{Network: network, BreakGlass: true}, from, to)
}

func encodeAuditEntry(a *AuditEntry) []byte {
	e := enc{b: make([]byte, 0, 160+32*(len(a.Subjects)+len(a.Signals))+len(a.BreakGlassReason))}
	e.byte(1)
	e.str(a.Stream)
	e.bool(a.Denied)
	r := &a.AccessRecord
	e.time(r.At)
	for _, s := range []string{r.ActorID, r.ActorRole, r.OnBehalfOf, r.Action, r.View, r.Purpose, string(r.Basis)} {
		e.str(s)
	}
	e.bytes(r.BreakGlassReason)
	e.bytes(r.OnBehalfOfSealed)
	e.uuids(r.Subjects)
	e.uuids(r.Signals)
	for _, s := range []string{r.Outcome, r.ClientAddr, r.RequestID, r.ClientRequestID, r.Network} {
		e.str(s)
	}
	return e.b
}

func decodeAuditEntry(v []byte) (*AuditEntry, error) {
	d := dec{b: v}
	if d.byte() != 1 {
		return nil, ErrCorrupt
	}
	a := &AuditEntry{Stream: d.str(), Denied: d.bool()}
	r := &a.AccessRecord
	r.At = d.time()
	r.ActorID, r.ActorRole, r.OnBehalfOf, r.Action, r.View, r.Purpose, r.Basis = d.str(), d.str(), d.str(), d.str(), d.str(), d.str(), domain.Basis(d.str())
	r.BreakGlassReason, r.OnBehalfOfSealed = d.bytes(), d.bytes()
	r.Subjects, r.Signals = d.uuids(), d.uuids()
	r.Outcome, r.ClientAddr, r.RequestID, r.ClientRequestID, r.Network = d.str(), d.str(), d.str(), d.str(), d.str()
	return a, d.done()
}
