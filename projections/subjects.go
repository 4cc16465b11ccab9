package projections

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Subject is the read model of one subject: its sealed personal data.
type Subject struct {
	ID      uuid.UUID
	Network string
	Data    domain.Sealed
	Erased  bool
}

// Subjects holds every subject's sealed personal data in the read-model
// store; memory holds only the subjects the batch being applied changed.
// (The blind index that finds a subject by name lives in the key store,
// with the subject's key.)
type Subjects struct {
	rs      ReadStore
	b       *Batch
	pending map[uuid.UUID]*Subject // changed by the batch being applied
	recent  subjectCache           // subjects read lately (a caseload reads the same ones again and again)
}

// subjectCacheSize bounds the subjects kept from reads: about 300 bytes each.
const subjectCacheSize = 8192

// subjectCache keeps subjects read from the store, for readers that read
// the same ones again (a team's caseload page). Readers fill it; the runner
// replaces what a batch changed once it is written, so it never holds an
// older state of a subject than the store.
type subjectCache struct {
	mu sync.Mutex
	m  map[uuid.UUID]*Subject
}

func (c *subjectCache) get(id uuid.UUID) (*Subject, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[id]
	return s, ok
}

// add keeps s; when full it forgets some others (a map's iteration order
// picks them at random).
func (c *subjectCache) add(s *Subject) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[uuid.UUID]*Subject{}
	}
	if len(c.m) >= subjectCacheSize {
		n := 0
		for id := range c.m {
			delete(c.m, id)
			if n++; n == subjectCacheSize/8 {
				break
			}
		}
	}
	c.m[s.ID] = s
}

// replace updates a kept subject (the runner, after a write).
func (c *subjectCache) replace(s *Subject) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[s.ID]; ok {
		c.m[s.ID] = s
	}
}

// NewSubjects returns an empty projection (in memory until a runner
// attaches it to its store).
func NewSubjects() *Subjects {
	return &Subjects{pending: map[uuid.UUID]*Subject{}, rs: NewMemoryStore(), b: new(Batch)}
}

const (
	subjectsPrefix  = 's'
	subjectsVersion = 1
)

func (p *Subjects) name() string    { return "subjects" }
func (p *Subjects) prefix() byte    { return subjectsPrefix }
func (p *Subjects) version() uint64 { return subjectsVersion }

func (p *Subjects) attach(rs ReadStore, b *Batch) error {
	p.rs, p.b, p.pending = rs, b, map[uuid.UUID]*Subject{}
	p.recent = subjectCache{}
	return nil
}

func subjectKey(id uuid.UUID) []byte { return key(subjectsPrefix, []byte{'r'}, id[:]) }

// Apply implements Projection.
func (p *Subjects) Apply(env Envelope) {
	switch e := env.Event.(type) {
	case domain.SubjectRegistered:
		if _, dup := p.get(e.SubjectID); dup {
			return
		}
		p.pending[e.SubjectID] = &Subject{ID: e.SubjectID, Network: e.Network, Data: e.Data}
	case domain.SubjectErased:
		s, ok := p.get(e.SubjectID)
		if !ok {
			return
		}
		s.Erased = true
		s.Data = nil
		p.pending[s.ID] = s
	}
}

// get finds a subject in memory or on disk; a subject from disk is a copy
// the caller may change. A store that fails reads as a missing subject
// here; the write of the batch then fails on the same store.
func (p *Subjects) get(id uuid.UUID) (*Subject, bool) {
	if s, ok := p.pending[id]; ok {
		return s, true
	}
	s, ok, err := p.load(id)
	return s, ok && err == nil
}

func (p *Subjects) load(id uuid.UUID) (*Subject, bool, error) {
	v, ok, err := p.rs.Get(subjectKey(id))
	if err != nil || !ok {
		return nil, false, err
	}
	s, err := decodeSubject(id, v)
	if err != nil {
		return nil, false, fmt.Errorf("subject %s: %w", id, err)
	}
	return s, true, nil
}

func (p *Subjects) flush() error {
	for id, s := range p.pending {
		p.b.Set(subjectKey(id), encodeSubject(s))
	}
	return nil
}

func (p *Subjects) committed() {
	for _, s := range p.pending {
		c := *s
		p.recent.replace(&c)
	}
	clear(p.pending)
}

func encodeSubject(s *Subject) []byte {
	e := enc{b: make([]byte, 0, 24+len(s.Network)+len(s.Data))}
	e.byte(1)
	e.str(s.Network)
	e.bool(s.Erased)
	e.bytes(s.Data)
	return e.b
}

func decodeSubject(id uuid.UUID, v []byte) (*Subject, error) {
	d := dec{b: v}
	if d.byte() != 1 {
		return nil, ErrCorrupt
	}
	s := &Subject{ID: id, Network: d.str(), Erased: d.bool(), Data: d.bytes()}
	return s, d.done()
}

// Get returns a subject. A subject the store cannot read is reported
// missing; GetErr says why.
func (p *Subjects) Get(id uuid.UUID) (*Subject, bool) {
	s, ok, _ := p.GetErr(id)
	return s, ok
}

// GetErr returns a subject, or the store's error. Call it, and Get and
// GetMany, under the runner's read lock: the subjects read lately are
// kept, and the runner replaces them only under its write lock.
func (p *Subjects) GetErr(id uuid.UUID) (*Subject, bool, error) {
	if s, ok := p.pending[id]; ok {
		c := *s
		return &c, true, nil
	}
	if s, ok := p.recent.get(id); ok {
		c := *s
		return &c, true, nil
	}
	s, ok, err := p.load(id)
	if ok {
		c := *s
		p.recent.add(&c)
	}
	return s, ok, err
}

// GetMany returns the subjects with these ids that exist, each a copy: a
// page's subjects in one pass over the store.
func (p *Subjects) GetMany(ids []uuid.UUID) (map[uuid.UUID]*Subject, error) {
	out := make(map[uuid.UUID]*Subject, len(ids))
	var keys [][]byte
	for _, id := range ids {
		if s, ok := p.pending[id]; ok {
			c := *s
			out[id] = &c
		} else if s, ok := p.recent.get(id); ok {
			c := *s
			out[id] = &c
		} else if _, dup := out[id]; !dup {
			keys = append(keys, subjectKey(id))
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal)
	var derr error
	err := p.rs.GetMany(keys, func(k, v []byte) bool {
		id := uuid.UUID(k[2:])
		s, err := decodeSubject(id, v)
		if err != nil {
			derr = err
			return false
		}
		out[id] = s
		c := *s
		p.recent.add(&c)
		return true
	})
	return out, cmpErr(err, derr)
}

// All calls fn for every subject until it returns false: a scan of the
// whole store, for tests and tools.
func (p *Subjects) All(fn func(*Subject) bool) {
	seen := map[uuid.UUID]bool{}
	for id, s := range p.pending {
		seen[id] = true
		if c := *s; !fn(&c) {
			return
		}
	}
	lo := []byte{subjectsPrefix, 'r'}
	_ = p.rs.Scan(lo, prefixEnd(lo), false, func(k, v []byte) bool {
		id, err := uuid.FromBytes(k[2:])
		if err != nil || seen[id] {
			return err == nil
		}
		s, err := decodeSubject(id, v)
		if err != nil {
			return false
		}
		return fn(s)
	})
}

// Organisation is one entry of the sociale kaart plus.
type Organisation struct {
	ID       string
	Network  string
	Name     string
	Kind     string
	Services []domain.Service
}

// Organisations is the projection of organisation streams: few, all in
// memory, and in the store for restarts.
type Organisations struct {
	byID  map[string]*Organisation
	order []string
	rs    ReadStore
	b     *Batch
	dirty map[string]bool
}

// NewOrganisations returns an empty projection.
func NewOrganisations() *Organisations {
	return &Organisations{byID: map[string]*Organisation{}, dirty: map[string]bool{}, rs: NewMemoryStore(), b: new(Batch)}
}

const (
	orgsPrefix  = 'o'
	orgsVersion = 1
)

func (p *Organisations) name() string    { return "organisations" }
func (p *Organisations) prefix() byte    { return orgsPrefix }
func (p *Organisations) version() uint64 { return orgsVersion }

func orgKey(id string) []byte { return appendStr([]byte{orgsPrefix, 'r'}, id) }

func (p *Organisations) attach(rs ReadStore, b *Batch) error {
	p.rs, p.b = rs, b
	p.byID, p.order, p.dirty = map[string]*Organisation{}, nil, map[string]bool{}
	type loaded struct {
		seq uint64
		id  string // of the stream
		o   *Organisation
	}
	var all []loaded
	var derr error
	lo := []byte{orgsPrefix, 'r'}
	err := rs.Scan(lo, prefixEnd(lo), false, func(k, v []byte) bool {
		d := dec{b: v}
		if d.byte() != 1 {
			derr = ErrCorrupt
			return false
		}
		l := loaded{seq: d.uvarint(), id: d.str(), o: &Organisation{ID: d.str(), Network: d.str(), Name: d.str(), Kind: d.str()}}
		for n := d.n(3); n > 0; n-- {
			l.o.Services = append(l.o.Services, domain.Service{Name: d.str(), Description: d.str(), Volunteer: d.bool()})
		}
		if derr = d.done(); derr != nil {
			return false
		}
		all = append(all, l)
		return true
	})
	if err = cmpErr(err, derr); err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b loaded) int { return cmp.Compare(a.seq, b.seq) })
	for _, l := range all {
		p.byID[l.id] = l.o
		p.order = append(p.order, l.id)
	}
	return nil
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *Organisations) flush() error {
	for id := range p.dirty {
		o := p.byID[id]
		var e enc
		e.byte(1)
		e.uvarint(uint64(slices.Index(p.order, id)))
		e.str(id)
		e.str(o.ID)
		e.str(o.Network)
		e.str(o.Name)
		e.str(o.Kind)
		e.uvarint(uint64(len(o.Services)))
		for _, s := range o.Services {
			e.str(s.Name)
			e.str(s.Description)
			e.bool(s.Volunteer)
		}
		p.b.Set(orgKey(id), e.b)
	}
	return nil
}

func (p *Organisations) committed() { clear(p.dirty) }

// Apply implements Projection.
func (p *Organisations) Apply(env Envelope) {
	id, ok := strings.CutPrefix(env.Stream, domain.OrganisationCategory+"-")
	if !ok {
		return
	}
	switch e := env.Event.(type) {
	case domain.OrganisationRegistered:
		if _, dup := p.byID[id]; dup {
			return
		}
		p.byID[id] = &Organisation{ID: e.OrganisationID, Network: e.Network, Name: e.Name, Kind: e.Kind}
		p.order = append(p.order, id)
	case domain.ServiceOffered:
		if o := p.byID[id]; o != nil {
			o.Services = append(o.Services, domain.Service{Name: e.Name, Description: e.Description, Volunteer: e.Volunteer})
		}
	case domain.ServiceWithdrawn:
		if o := p.byID[id]; o != nil {
			for i, s := range o.Services {
				if s.Name == e.Name {
					o.Services = append(o.Services[:i:i], o.Services[i+1:]...)
					break
				}
			}
		}
	default:
		return
	}
	p.dirty[id] = true
}

// Get returns an organisation.
func (p *Organisations) Get(id string) (*Organisation, bool) {
	o, ok := p.byID[id]
	return o, ok
}

// List returns the organisations of a network in registration order.
func (p *Organisations) List(network string) []*Organisation {
	var out []*Organisation
	for _, id := range p.order {
		if o := p.byID[id]; o.Network == network {
			out = append(out, o)
		}
	}
	return out
}
