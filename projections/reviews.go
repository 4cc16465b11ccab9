package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Reviews is access monitoring for privacy officers: the items to review
// of each network, kept in the read-model store. Every break-glass read
// opens one, and so does every flag the rules (domain.FlagRules) raise on
// an access record; a privacy officer's judgement (AccessReviewed) closes
// it. The flags are computed incrementally, one access record at a time,
// from what the model keeps of each actor (domain.ActorHistory) and of the
// cases closed: the log is never scanned again. Per day and network it
// counts reads, break-glass reads, denials, flags per rule and judgements,
// for the periodic report. It holds ids, codes, times and the sealed
// notes only.
type Reviews struct {
	rules domain.FlagRules
	cal   domain.Calendar
	term  int

	rs ReadStore
	b  *Batch
	// What this batch changed, until it is written: Apply reads its own
	// writes from here before the store.
	items  map[string]*ReviewItem // by item key
	actors map[string]*domain.ActorHistory
	closed map[uuid.UUID]time.Time // zero: reopened
	days   map[string]*DayCounts
}

// NewReviews returns the model with the rules, the calendar the rules and
// the review term count in, and the term in working days (0: the default
// domain.ReviewTermWorkingDays).
func NewReviews(rules domain.FlagRules, cal domain.Calendar, termDays int) *Reviews {
	if termDays <= 0 {
		termDays = domain.ReviewTermWorkingDays
	}
	p := &Reviews{rules: rules, cal: cal, term: termDays}
	_ = p.attach(NewMemoryStore(), new(Batch))
	return p
}

// RuleBreakGlass is the rule name of a break-glass read's review item.
const RuleBreakGlass = "break_glass"

// ReviewItem is one item to review: a break-glass read or a flag.
type ReviewItem struct {
	ID       string // break_glass:<position> or flag:<position>:<rule>
	Network  string
	Rule     string // RuleBreakGlass or a flag rule
	ActorID  string
	At       time.Time
	Subjects []uuid.UUID
	Signals  []uuid.UUID
	Records  []uint64 // positions of the access records
	DueAt    time.Time
	// The judgement, once recorded (empty: open).
	Judgement   string
	ReviewedBy  string
	ReviewedAt  time.Time
	Note        domain.Sealed
	NoteSubject uuid.UUID
}

// Overdue reports whether the item is open past its term at now.
func (it *ReviewItem) Overdue(now time.Time) bool { return it.Judgement == "" && now.After(it.DueAt) }

// DayCounts are a network's counts of one day (in the calendar's zone).
type DayCounts struct {
	Reads      int            `json:"reads"`
	BreakGlass int            `json:"break_glass"`
	Denied     int            `json:"denied"`
	Flags      map[string]int `json:"flags,omitempty"`
	Reviewed   map[string]int `json:"reviewed,omitempty"` // by judgement, on the day of the judgement
}

const (
	reviewsPrefix  = 'f'
	reviewsVersion = 1
)

// Keys, after 'f': i <network> <id> the item; t <network> <time> <id>
// every item by the access time; l <network> <time> <id> the flags (not
// the break-glass reads); g <network> <rule> <time> <id> per rule; o
// <network> <due> <id> the open ones by due time (value: the access time);
// h <network> <actor> an actor's history; c <signal> when a case closed;
// d <network> <day> a day's counts.
func itemKey(network, id string) []byte {
	return appendStr(appendStr([]byte{reviewsPrefix, 'i'}, network), id)
}

// ReviewList names a list of a network's review items.
type ReviewList struct {
	Network string
	Rule    string // one rule's items (RuleBreakGlass too)
	Flags   bool   // the flags only
	Open    bool   // the open items, by due time
}

func (l ReviewList) prefix() []byte {
	switch {
	case l.Open:
		return appendStr([]byte{reviewsPrefix, 'o'}, l.Network)
	case l.Rule != "":
		return appendStr(appendStr([]byte{reviewsPrefix, 'g'}, l.Network), l.Rule)
	case l.Flags:
		return appendStr([]byte{reviewsPrefix, 'l'}, l.Network)
	default:
		return appendStr([]byte{reviewsPrefix, 't'}, l.Network)
	}
}

func historyKey(network, actor string) []byte {
	return appendStr(appendStr([]byte{reviewsPrefix, 'h'}, network), actor)
}
func closedKey(id uuid.UUID) []byte { return append([]byte{reviewsPrefix, 'c'}, id[:]...) }
func dayKey(network, day string) []byte {
	return appendStr(appendStr([]byte{reviewsPrefix, 'd'}, network), day)
}

func (p *Reviews) name() string    { return "reviews" }
func (p *Reviews) prefix() byte    { return reviewsPrefix }
func (p *Reviews) version() uint64 { return reviewsVersion }

func (p *Reviews) attach(rs ReadStore, b *Batch) error {
	p.rs, p.b = rs, b
	p.committed()
	return nil
}

func (p *Reviews) committed() {
	p.items, p.actors = map[string]*ReviewItem{}, map[string]*domain.ActorHistory{}
	p.closed, p.days = map[uuid.UUID]time.Time{}, map[string]*DayCounts{}
}

// flush adds what this batch changed to the batch.
func (p *Reviews) flush() error {
	for k, it := range p.items {
		p.b.Set([]byte(k), encodeReviewItem(it))
	}
	for k, h := range p.actors {
		v, err := json.Marshal(h)
		if err != nil {
			return err
		}
		p.b.Set([]byte(k), v)
	}
	for id, at := range p.closed {
		if at.IsZero() {
			p.b.Delete(closedKey(id))
			continue
		}
		p.b.Set(closedKey(id), appendTime(nil, at))
	}
	for k, d := range p.days {
		v, err := json.Marshal(d)
		if err != nil {
			return err
		}
		p.b.Set([]byte(k), v)
	}
	return nil
}

// Apply implements Projection. A store that fails to read here leaves the
// state as it was (Apply cannot fail); the runner's write fails on it too.
func (p *Reviews) Apply(env Envelope) {
	switch ev := env.Event.(type) {
	case domain.RecordAccessed:
		p.access(env, ev.AccessRecord, false)
	case domain.AccessDenied:
		p.access(env, ev.AccessRecord, true)
	case domain.CaseClosed:
		if id, ok := signalOf(env.Stream); ok {
			p.closed[id] = env.At
		}
	case domain.CaseReopened:
		if id, ok := signalOf(env.Stream); ok {
			p.closed[id] = time.Time{}
		}
	case domain.AccessReviewed:
		p.review(env, ev)
	}
}

func signalOf(stream string) (uuid.UUID, bool) {
	id, ok := strings.CutPrefix(stream, domain.SignalCategory+"-")
	if !ok {
		return uuid.Nil, false
	}
	u, err := uuid.Parse(id)
	return u, err == nil
}

func (p *Reviews) day(network string, at time.Time) *DayCounts {
	k := string(dayKey(network, at.In(p.loc()).Format(time.DateOnly)))
	if d := p.days[k]; d != nil {
		return d
	}
	d := new(DayCounts)
	if v, ok, err := p.rs.Get([]byte(k)); err == nil && ok {
		_ = json.Unmarshal(v, d)
	}
	p.days[k] = d
	return d
}

func (p *Reviews) loc() *time.Location {
	if p.cal.Location == nil {
		return time.UTC
	}
	return p.cal.Location
}

func (p *Reviews) access(env Envelope, rec domain.AccessRecord, denied bool) {
	d := p.day(rec.Network, rec.At)
	switch {
	case denied:
		d.Denied++
	case len(rec.Subjects) > 0 || len(rec.Signals) > 0:
		d.Reads++
	}
	if !denied && rec.Basis == domain.BasisBreakGlass {
		d.BreakGlass++
		p.open(&ReviewItem{ID: RuleBreakGlass + ":" + strconv.FormatUint(env.Position, 10), Network: rec.Network, Rule: RuleBreakGlass,
			ActorID: rec.ActorID, At: rec.At, Subjects: slices.Clone(rec.Subjects), Signals: slices.Clone(rec.Signals), Records: []uint64{env.Position}})
	}
	if rec.ActorID == "" {
		return
	}
	facts := domain.AccessFacts{OwnCase: map[uuid.UUID]bool{}, ClosedAt: map[uuid.UUID]time.Time{}}
	own := rec.Basis == domain.BasisTeam || rec.Basis == domain.BasisReferral || rec.Basis == domain.BasisSignaller
	for _, s := range rec.Signals {
		facts.OwnCase[s] = own
		if at := p.closedAt(s); !at.IsZero() {
			facts.ClosedAt[s] = at
		}
	}
	hk := string(historyKey(rec.Network, rec.ActorID))
	h := p.actors[hk]
	if h == nil {
		h = new(domain.ActorHistory)
		if v, ok, err := p.rs.Get([]byte(hk)); err == nil && ok {
			_ = json.Unmarshal(v, h)
		}
	}
	flags, next := p.rules.Flags(p.cal, rec, denied, env.Position, facts, *h)
	p.actors[hk] = &next
	for _, f := range flags {
		if d.Flags == nil {
			d.Flags = map[string]int{}
		}
		d.Flags[f.Rule]++
		p.open(&ReviewItem{ID: "flag:" + strconv.FormatUint(env.Position, 10) + ":" + f.Rule, Network: f.Network, Rule: f.Rule,
			ActorID: f.ActorID, At: f.At, Subjects: f.Subjects, Signals: f.Signals, Records: f.Records})
	}
}

func (p *Reviews) closedAt(id uuid.UUID) time.Time {
	if at, ok := p.closed[id]; ok {
		return at
	}
	v, ok, err := p.rs.Get(closedKey(id))
	if err != nil || !ok || len(v) != 8 {
		return time.Time{}
	}
	return fromNanos(int64(binary.BigEndian.Uint64(v) ^ (1 << 63)))
}

// open adds a new item and its index keys.
func (p *Reviews) open(it *ReviewItem) {
	it.DueAt = p.cal.AddWorkingDays(it.At, p.term).UTC()
	p.items[string(itemKey(it.Network, it.ID))] = it
	suffix := appendStr(appendTime(nil, it.At), it.ID)
	p.b.Set(append(ReviewList{Network: it.Network}.prefix(), suffix...), nil)
	p.b.Set(append(ReviewList{Network: it.Network, Rule: it.Rule}.prefix(), suffix...), nil)
	if it.Rule != RuleBreakGlass {
		p.b.Set(append(ReviewList{Network: it.Network, Flags: true}.prefix(), suffix...), nil)
	}
	p.b.Set(p.openKey(it), appendTime(nil, it.At))
}

func (p *Reviews) openKey(it *ReviewItem) []byte {
	return append(ReviewList{Network: it.Network, Open: true}.prefix(), appendStr(appendTime(nil, it.DueAt), it.ID)...)
}

func (p *Reviews) review(env Envelope, ev domain.AccessReviewed) {
	it, err := p.item(ev.Network, ev.Item)
	if err != nil || it == nil {
		return // the API checks the item before it records a judgement
	}
	if it.Judgement == "" {
		p.b.Delete(p.openKey(it))
	}
	c := *it
	c.Judgement, c.ReviewedBy, c.ReviewedAt, c.Note, c.NoteSubject = ev.Judgement, env.Meta.ActorID, env.At, ev.Note, ev.Subject
	p.items[string(itemKey(c.Network, c.ID))] = &c
	d := p.day(ev.Network, env.At)
	if d.Reviewed == nil {
		d.Reviewed = map[string]int{}
	}
	d.Reviewed[ev.Judgement]++
}

// item returns an item of this batch, or of the store (nil: none).
func (p *Reviews) item(network, id string) (*ReviewItem, error) {
	k := itemKey(network, id)
	if it := p.items[string(k)]; it != nil {
		return it, nil
	}
	v, ok, err := p.rs.Get(k)
	if err != nil || !ok {
		return nil, err
	}
	return decodeReviewItem(v)
}

// Item returns a network's item by id (nil: none), as written.
func (p *Reviews) Item(network, id string) (*ReviewItem, error) {
	v, ok, err := p.rs.Get(itemKey(network, id))
	if err != nil || !ok {
		return nil, err
	}
	return decodeReviewItem(v)
}

// Page returns up to limit items of a list whose access time lies within
// [from, to) (zero: open) and that match (nil: all), in the list's order
// (access time; the open ones by due time), starting after cursor, and the
// cursor of the next page (nil: none). It reads the index keys in order
// and the items they name; a filter that matches few items reads more.
func (p *Reviews) Page(l ReviewList, from, to time.Time, match func(*ReviewItem) bool, cursor []byte, limit int) ([]*ReviewItem, []byte, error) {
	pre := l.prefix()
	lower, upper := bytes.Clone(pre), prefixEnd(pre)
	if !l.Open {
		lower = appendTime(lower, from)
		if !to.IsZero() {
			upper = appendTime(bytes.Clone(pre), to)
		}
	}
	if len(cursor) > 0 {
		if c := append(append(bytes.Clone(pre), cursor...), 0); bytes.Compare(c, lower) > 0 {
			lower = c
		}
	}
	var out []*ReviewItem
	var last, next []byte
	var ierr error
	err := p.rs.Scan(lower, upper, false, func(k, v []byte) bool {
		if l.Open && len(v) == 8 {
			at := fromNanos(int64(binary.BigEndian.Uint64(v) ^ (1 << 63)))
			if at.Before(from) || (!to.IsZero() && !at.Before(to)) {
				return true
			}
		}
		id, ok := keyID(k[len(pre):])
		if !ok {
			return true
		}
		it, err := p.Item(l.Network, id)
		if err == nil && it == nil {
			err = fmt.Errorf("review item %q: %w", id, ErrCorrupt)
		}
		if err != nil {
			ierr = err
			return false
		}
		if match != nil && !match(it) {
			return true
		}
		if limit > 0 && len(out) == limit {
			next = last
			return false
		}
		out = append(out, it)
		last = bytes.Clone(k[len(pre):])
		return true
	})
	if err := cmpErr(err, ierr); err != nil {
		return nil, nil, err
	}
	return out, next, nil
}

// keyID returns the item id at the end of an index key's suffix (a time,
// then the id with its length).
func keyID(suffix []byte) (string, bool) {
	if len(suffix) < 9 {
		return "", false
	}
	rest := suffix[8:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || uint64(len(rest)-w) != n {
		return "", false
	}
	return string(rest[w:]), true
}

// Overdue calls fn with each of a network's open items past their term at
// now, by due time, until fn returns false.
func (p *Reviews) Overdue(network string, now time.Time, fn func(*ReviewItem) bool) error {
	pre := ReviewList{Network: network, Open: true}.prefix()
	var ierr error
	err := p.rs.Scan(pre, appendTime(bytes.Clone(pre), now), false, func(k, _ []byte) bool {
		id, ok := keyID(k[len(pre):])
		if !ok {
			return true
		}
		it, err := p.Item(network, id)
		if err != nil || it == nil {
			ierr = cmpErr(err, ErrCorrupt)
			return false
		}
		return fn(it)
	})
	return cmpErr(err, ierr)
}

// AllOverdue calls fn with the open items of every network past their term
// at now, until fn returns false: for the notifier's scan. It reads the
// open items of every network (by due time), so it costs what is open.
func (p *Reviews) AllOverdue(now time.Time, fn func(*ReviewItem) bool) error {
	pre := []byte{reviewsPrefix, 'o'}
	var ierr error
	err := p.rs.Scan(pre, prefixEnd(pre), false, func(k, _ []byte) bool {
		rest := k[len(pre):]
		n, w := binary.Uvarint(rest)
		if w <= 0 || uint64(len(rest)-w) < n+8 {
			return true
		}
		network, suffix := string(rest[w:w+int(n)]), rest[w+int(n):]
		due := fromNanos(int64(binary.BigEndian.Uint64(suffix[:8]) ^ (1 << 63)))
		if !now.After(due) {
			return true // this network's later ones are not due either; the scan goes on to the next network
		}
		id, ok := keyID(suffix)
		if !ok {
			return true
		}
		it, err := p.Item(network, id)
		if err != nil || it == nil {
			ierr = cmpErr(err, ErrCorrupt)
			return false
		}
		return fn(it)
	})
	return cmpErr(err, ierr)
}

// Days returns a network's counts per day (YYYY-MM-DD in the calendar's
// zone) from the day of from to the day before to's, and sums them.
func (p *Reviews) Days(network string, from, to time.Time) (DayCounts, error) {
	sum := DayCounts{Flags: map[string]int{}, Reviewed: map[string]int{}}
	lo := dayKey(network, from.In(p.loc()).Format(time.DateOnly))
	hi := dayKey(network, to.In(p.loc()).Format(time.DateOnly))
	var derr error
	err := p.rs.Scan(lo, hi, false, func(_, v []byte) bool {
		var d DayCounts
		if derr = json.Unmarshal(v, &d); derr != nil {
			return false
		}
		sum.Reads += d.Reads
		sum.BreakGlass += d.BreakGlass
		sum.Denied += d.Denied
		for k, n := range d.Flags {
			sum.Flags[k] += n
		}
		for k, n := range d.Reviewed {
			sum.Reviewed[k] += n
		}
		return true
	})
	return sum, cmpErr(err, derr)
}

// Location is the zone of the days the counts are kept in.
func (p *Reviews) Location() *time.Location { return p.loc() }

func encodeReviewItem(it *ReviewItem) []byte {
	e := enc{b: make([]byte, 0, 128+16*(len(it.Subjects)+len(it.Signals))+len(it.Note))}
	e.byte(1)
	for _, s := range []string{it.ID, it.Network, it.Rule, it.ActorID} {
		e.str(s)
	}
	e.time(it.At)
	e.uuids(it.Subjects)
	e.uuids(it.Signals)
	e.uvarint(uint64(len(it.Records)))
	for _, r := range it.Records {
		e.uvarint(r)
	}
	e.time(it.DueAt)
	e.str(it.Judgement)
	e.str(it.ReviewedBy)
	e.time(it.ReviewedAt)
	e.bytes(it.Note)
	e.uuid(it.NoteSubject)
	return e.b
}

func decodeReviewItem(v []byte) (*ReviewItem, error) {
	d := dec{b: v}
	if d.byte() != 1 {
		return nil, ErrCorrupt
	}
	it := &ReviewItem{ID: d.str(), Network: d.str(), Rule: d.str(), ActorID: d.str(), At: d.time()}
	it.Subjects, it.Signals = d.uuids(), d.uuids()
	n := d.n(1)
	for range n {
		it.Records = append(it.Records, d.uvarint())
	}
	it.DueAt, it.Judgement, it.ReviewedBy, it.ReviewedAt = d.time(), d.str(), d.str(), d.time()
	it.Note, it.NoteSubject = d.bytes(), d.uuid()
	return it, d.done()
}
