package projections

import (
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// EndedSessions is the projection of signed-out console sessions: each is
// remembered until it would have expired, so memory (and the read-model
// store, where they are kept for restarts) follows the sessions of the last
// hours, not history.
type EndedSessions struct {
	until   map[string]time.Time
	applied int
	b       *Batch
	dirty   map[string]bool
}

// NewEndedSessions returns an empty projection.
func NewEndedSessions() *EndedSessions {
	return &EndedSessions{until: map[string]time.Time{}, b: new(Batch), dirty: map[string]bool{}}
}

const (
	sessionsPrefix  = 'e'
	sessionsVersion = 1
)

func (p *EndedSessions) name() string    { return "ended_sessions" }
func (p *EndedSessions) prefix() byte    { return sessionsPrefix }
func (p *EndedSessions) version() uint64 { return sessionsVersion }

func sessionKey(id string) []byte { return appendStr([]byte{sessionsPrefix, 'r'}, id) }

func (p *EndedSessions) attach(rs ReadStore, b *Batch) error {
	p.b, p.until, p.applied, p.dirty = b, map[string]time.Time{}, 0, map[string]bool{}
	var derr error
	lo := []byte{sessionsPrefix, 'r'}
	err := rs.Scan(lo, prefixEnd(lo), false, func(k, v []byte) bool {
		d := dec{b: k[2:]}
		id := d.str()
		if derr = d.done(); derr != nil {
			return false
		}
		d = dec{b: v}
		p.until[id] = d.time()
		derr = d.done()
		return derr == nil
	})
	return cmpErr(err, derr)
}

func (p *EndedSessions) flush() error {
	for id := range p.dirty {
		if u, ok := p.until[id]; ok {
			var e enc
			e.time(u)
			p.b.Set(sessionKey(id), e.b)
		} else {
			p.b.Delete(sessionKey(id))
		}
	}
	return nil
}

func (p *EndedSessions) committed() { clear(p.dirty) }

// Apply implements Projection.
func (p *EndedSessions) Apply(env Envelope) {
	e, ok := env.Event.(domain.SessionEnded)
	if !ok {
		return
	}
	p.until[e.SessionID] = e.Until
	p.dirty[e.SessionID] = true
	if p.applied++; p.applied%256 == 0 { // now and then, forget sessions past their end
		for id, u := range p.until {
			if u.Before(env.At) {
				delete(p.until, id)
				p.dirty[id] = true
			}
		}
	}
}

// Ended reports whether the session was signed out.
func (p *EndedSessions) Ended(id string) bool {
	_, ok := p.until[id]
	return ok
}
