package projections

import (
	"strings"

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

// Subjects holds every subject's sealed personal data. (The blind index that
// finds a subject by name lives in the key store, with the subject's key.)
type Subjects struct {
	byID map[uuid.UUID]*Subject
}

// NewSubjects returns an empty projection.
func NewSubjects() *Subjects {
	return &Subjects{byID: map[uuid.UUID]*Subject{}}
}

// Apply implements Projection.
func (p *Subjects) Apply(env Envelope) {
	switch e := env.Event.(type) {
	case domain.SubjectRegistered:
		if _, dup := p.byID[e.SubjectID]; dup {
			return
		}
		p.byID[e.SubjectID] = &Subject{ID: e.SubjectID, Network: e.Network, Data: e.Data}
	case domain.SubjectErased:
		s := p.byID[e.SubjectID]
		if s == nil {
			return
		}
		s.Erased = true
		s.Data = nil
	}
}

// Get returns a subject.
func (p *Subjects) Get(id uuid.UUID) (*Subject, bool) {
	s, ok := p.byID[id]
	return s, ok
}

// All calls fn for every subject until it returns false.
func (p *Subjects) All(fn func(*Subject) bool) {
	for _, s := range p.byID {
		if !fn(s) {
			return
		}
	}
}

// Organisation is one entry of the sociale kaart plus.
type Organisation struct {
	ID       string
	Network  string
	Name     string
	Kind     string
	Services []domain.Service
}

// Organisations is the projection of organisation streams.
type Organisations struct {
	byID  map[string]*Organisation
	order []string
}

// NewOrganisations returns an empty projection.
func NewOrganisations() *Organisations {
	return &Organisations{byID: map[string]*Organisation{}}
}

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
	}
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
