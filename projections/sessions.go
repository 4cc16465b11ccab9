package projections

import (
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// EndedSessions is the projection of signed-out console sessions: each is
// remembered until it would have expired, so memory follows the sessions of
// the last hours, not history.
type EndedSessions struct {
	until   map[string]time.Time
	applied int
}

// NewEndedSessions returns an empty projection.
func NewEndedSessions() *EndedSessions {
	return &EndedSessions{until: map[string]time.Time{}}
}

// Apply implements Projection.
func (p *EndedSessions) Apply(env Envelope) {
	e, ok := env.Event.(domain.SessionEnded)
	if !ok {
		return
	}
	p.until[e.SessionID] = e.Until
	if p.applied++; p.applied%256 == 0 { // now and then, forget sessions past their end
		for id, u := range p.until {
			if u.Before(env.At) {
				delete(p.until, id)
			}
		}
	}
}

// Ended reports whether the session was signed out.
func (p *EndedSessions) Ended(id string) bool {
	_, ok := p.until[id]
	return ok
}
