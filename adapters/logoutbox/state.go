package logoutbox

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// state is the outbox as its events build it.
type state struct {
	checkpoint *uint64
	pending    map[string]entry
	dead       map[string]entry
	marks      map[string]struct{}
	claim      uuid.UUID // the event id of the claim in force
	seq        uint64    // orders entries by their arrival
}

// entry is a delivery and its place in the order of arrival.
type entry struct {
	d   domain.Delivery
	seq uint64
}

func newState() state {
	return state{pending: map[string]entry{}, dead: map[string]entry{}, marks: map[string]struct{}{}}
}

// apply is the outbox's evolve: it never fails. id is the event's id.
func (s *state) apply(id uuid.UUID, ev domain.Event) {
	switch e := ev.(type) {
	case domain.OutboxSnapshot:
		if e.Part == 0 {
			*s = newState()
			if e.Checkpoint != nil {
				cp := *e.Checkpoint
				s.checkpoint = &cp
			}
			s.claim, _ = uuid.Parse(e.Claim)
		}
		for _, d := range e.Pending {
			s.seq++
			s.pending[d.Notification.ID] = entry{d: d, seq: s.seq}
		}
		for _, d := range e.Dead {
			s.seq++
			s.dead[d.Notification.ID] = entry{d: d, seq: s.seq}
		}
		for _, m := range e.Marks {
			s.marks[m] = struct{}{}
		}
	case domain.OutboxClaimed:
		s.claim = id
	case domain.OutboxQueued:
		for _, d := range e.Deliveries {
			nid := d.Notification.ID
			if _, dead := s.dead[nid]; dead {
				continue // a dead letter stays one: retrying it is an admin's decision
			}
			if old, ok := s.pending[nid]; ok {
				s.pending[nid] = entry{d: d, seq: old.seq}
				continue
			}
			s.seq++
			s.pending[nid] = entry{d: d, seq: s.seq}
		}
		for _, m := range e.Marks {
			s.marks[m] = struct{}{}
		}
		if e.Checkpoint != nil {
			cp := *e.Checkpoint
			s.checkpoint = &cp
		}
	case domain.OutboxDone:
		for _, nid := range e.IDs {
			delete(s.pending, nid)
		}
	case domain.OutboxFailed:
		nid := e.Delivery.Notification.ID
		delete(s.pending, nid)
		s.seq++
		s.dead[nid] = entry{d: e.Delivery, seq: s.seq}
	case domain.OutboxRetried:
		if old, ok := s.dead[e.ID]; ok {
			delete(s.dead, e.ID)
			d := old.d
			d.FailedAt, d.Error = time.Time{}, ""
			s.seq++
			s.pending[e.ID] = entry{d: d, seq: s.seq}
		}
	case domain.OutboxSealed:
		// the reader moves on to the next segment
	}
}

// list returns up to limit deliveries of m, oldest first, without those
// in skip.
func (s *state) list(m map[string]entry, limit int, skip map[string]bool) []domain.Delivery {
	es := make([]entry, 0, len(m))
	for id, e := range m {
		if !skip[id] {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return compare(a.seq, b.seq) })
	out := []domain.Delivery{}
	for _, e := range es {
		if len(out) == limit {
			break
		}
		out = append(out, e.d)
	}
	return out
}

func compare(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// snapshot returns the state as the parts of a snapshot, each of at most
// maxPartBytes of deliveries and marks.
func (s *state) snapshot() []item {
	var (
		parts []domain.OutboxSnapshot
		cur   domain.OutboxSnapshot
		size  int
	)
	next := func(n int) {
		if size+n > maxPartBytes && size > 0 {
			parts = append(parts, cur)
			cur, size = domain.OutboxSnapshot{}, 0
		}
		size += n
	}
	for _, d := range s.list(s.pending, len(s.pending), nil) {
		next(deliverySize(d))
		cur.Pending = append(cur.Pending, d)
	}
	for _, d := range s.list(s.dead, len(s.dead), nil) {
		next(deliverySize(d))
		cur.Dead = append(cur.Dead, d)
	}
	marks := make([]string, 0, len(s.marks))
	for m := range s.marks {
		marks = append(marks, m)
	}
	slices.Sort(marks)
	for _, m := range marks {
		next(len(m) + 4)
		cur.Marks = append(cur.Marks, m)
	}
	parts = append(parts, cur)
	items := make([]item, len(parts))
	for i, p := range parts {
		p.Part, p.Parts = i, len(parts)
		if i == 0 {
			p.Checkpoint = s.checkpoint
			if s.claim != uuid.Nil {
				p.Claim = s.claim.String()
			}
		}
		items[i] = item{id: uuid.New(), ev: p}
	}
	return items
}
