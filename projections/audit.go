package projections

import (
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
// break-glass reads for review. It holds ids and sealed reasons only.
type AuditTrail struct {
	bySubject  map[uuid.UUID][]*AuditEntry
	byActor    map[string][]*AuditEntry
	breakGlass []*AuditEntry
	records    int
}

// NewAuditTrail returns an empty audit trail projection.
func NewAuditTrail() *AuditTrail {
	return &AuditTrail{bySubject: map[uuid.UUID][]*AuditEntry{}, byActor: map[string][]*AuditEntry{}}
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
	for _, s := range e.Subjects {
		p.bySubject[s] = append(p.bySubject[s], e)
	}
	if e.ActorID != "" {
		p.byActor[e.ActorID] = append(p.byActor[e.ActorID], e)
	}
	if e.Basis == domain.BasisBreakGlass {
		p.breakGlass = append(p.breakGlass, e)
	}
}

// Records returns the number of access records seen.
func (p *AuditTrail) Records() int { return p.records }

func inPeriod(entries []*AuditEntry, from, to time.Time) []*AuditEntry {
	out := make([]*AuditEntry, 0, len(entries))
	for _, e := range entries {
		if (from.IsZero() || !e.At.Before(from)) && (to.IsZero() || e.At.Before(to)) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b *AuditEntry) int { return a.At.Compare(b.At) })
	return out
}

// OfSubject returns the records naming a subject, oldest first, within [from, to).
func (p *AuditTrail) OfSubject(id uuid.UUID, from, to time.Time) []*AuditEntry {
	return inPeriod(p.bySubject[id], from, to)
}

// OfActor returns the records of an actor, oldest first, within [from, to).
func (p *AuditTrail) OfActor(id string, from, to time.Time) []*AuditEntry {
	return inPeriod(p.byActor[id], from, to)
}

// BreakGlass returns the break-glass reads within [from, to), for review.
func (p *AuditTrail) BreakGlass(from, to time.Time) []*AuditEntry {
	return inPeriod(p.breakGlass, from, to)
}
