package projections

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// Get returns the case with this id: an open one from memory, another from
// the store (a copy). A case the store cannot read is reported missing;
// GetErr says why.
func (p *Cases) Get(id uuid.UUID) (*Case, bool) {
	c, ok, _ := p.GetErr(id)
	return c, ok
}

// GetErr is Get with the store's error.
func (p *Cases) GetErr(id uuid.UUID) (*Case, bool, error) {
	if c, ok := p.live[id]; ok {
		return c, true, nil
	}
	return p.load(id)
}

// SignalOfReferral returns the signal a referral belongs to.
func (p *Cases) SignalOfReferral(id uuid.UUID) (uuid.UUID, bool) {
	v, ok, err := p.rs.Get(referralKey(id))
	if err != nil || !ok || len(v) != 16 {
		return uuid.Nil, false
	}
	return uuid.UUID(v), true
}

// ReferralOf is a referral with its case.
type ReferralOf struct {
	Referral
	Case *Case
}

// ReferralsTo returns up to limit referrals to an organisation, newest
// first, after cursor (nil: from the newest), with the case each belongs
// to, and the cursor of the next page (nil at the end).
func (p *Cases) ReferralsTo(org string, cursor []byte, limit int) ([]ReferralOf, []byte, error) {
	page, next, err := p.pageBack(orgReferralsPrefix(org), cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]uuid.UUID, 0, len(page))
	for _, e := range page {
		if len(e.v) != 16 {
			return nil, nil, ErrCorrupt
		}
		ids = append(ids, uuid.UUID(e.v))
	}
	cases, err := p.loadMany(ids)
	if err != nil {
		return nil, nil, err
	}
	out := make([]ReferralOf, 0, len(page))
	for i, e := range page {
		ref, c := uuid.UUID(e.k[len(e.k)-16:]), cases[ids[i]]
		if c == nil {
			return nil, nil, fmt.Errorf("referral %s: %w", ref, ErrCorrupt)
		}
		for _, r := range c.Referrals {
			if r.ID == ref {
				out = append(out, ReferralOf{Referral: r, Case: c})
			}
		}
	}
	return out, next, nil
}

// RaisedBy returns up to limit signals a principal raised, newest first,
// after cursor (nil: from the newest), and the cursor of the next page
// (nil at the end).
func (p *Cases) RaisedBy(principal string, cursor []byte, limit int) ([]*Case, []byte, error) {
	page, next, err := p.pageBack(raiserPrefix(principal), cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]uuid.UUID, len(page))
	for i, e := range page {
		ids[i] = uuid.UUID(e.k[len(e.k)-16:])
	}
	cases, err := p.loadMany(ids)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*Case, 0, len(ids))
	for _, id := range ids {
		c := cases[id]
		if c == nil {
			return nil, nil, fmt.Errorf("case %s: %w", id, ErrCorrupt)
		}
		out = append(out, c)
	}
	return out, next, nil
}

type indexEntry struct{ k, v []byte }

// pageBack reads up to limit entries of an index (keys: prefix, position,
// id) newest first, after cursor, and the cursor of the next page.
func (p *Cases) pageBack(prefix, cursor []byte, limit int) ([]indexEntry, []byte, error) {
	upper := prefixEnd(prefix)
	if len(cursor) > 0 {
		upper = append(bytes.Clone(prefix), cursor...)
	}
	var page []indexEntry
	var next []byte
	err := p.rs.Scan(prefix, upper, true, func(k, v []byte) bool {
		if len(k) != len(prefix)+24 {
			return true
		}
		if limit > 0 && len(page) == limit {
			next = bytes.Clone(page[len(page)-1].k[len(prefix):])
			return false
		}
		page = append(page, indexEntry{bytes.Clone(k), bytes.Clone(v)})
		return true
	})
	return page, next, err
}

// OpenOfSubject returns the open signals about a subject.
func (p *Cases) OpenOfSubject(subject uuid.UUID) []uuid.UUID {
	return slices.Clone(p.openBySubject[subject])
}

// subjectCaseIDs lists a subject's signals in the store, in raise order.
func (p *Cases) subjectCaseIDs(subject uuid.UUID) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	pre := subjectCasesPrefix(subject)
	err := p.rs.Scan(pre, prefixEnd(pre), false, func(k, _ []byte) bool {
		if len(k) == len(pre)+24 {
			ids = append(ids, uuid.UUID(k[len(k)-16:]))
		}
		return true
	})
	return ids, err
}

// OfSubject returns every signal about a subject, oldest first.
func (p *Cases) OfSubject(subject uuid.UUID) []*Case {
	ids, _ := p.subjectCaseIDs(subject)
	cases, _ := p.loadMany(ids)
	var out []*Case
	for _, id := range ids {
		if c := cases[id]; c != nil {
			out = append(out, c)
		}
	}
	return out
}

// All calls fn for every case, in no particular order, until fn returns
// false. It reads every case in the store: for tests and tools, never for
// a request (Open, Awaiting and Monitor cost what they return).
func (p *Cases) All(fn func(*Case) bool) {
	for _, c := range p.live {
		if !fn(c) {
			return
		}
	}
	lo := []byte{casesPrefix, 'r'}
	_ = p.rs.Scan(lo, prefixEnd(lo), false, func(k, v []byte) bool {
		if _, ok := p.live[uuid.UUID(k[2:])]; ok || len(k) != 18 {
			return true
		}
		c, err := decodeCase(v)
		if err != nil {
			return false
		}
		return fn(c)
	})
}

// Open calls fn for every open case (from memory) until fn returns false.
func (p *Cases) Open(fn func(*Case) bool) {
	for _, c := range p.live {
		if c.Status.Open() && !fn(c) {
			return
		}
	}
}

// Awaiting calls fn for every open case still without a first response
// or without a team until fn returns false: what the response norms and
// the routing of signals are still waiting for (the notifier's scan, the
// overdue list). It costs those cases, from memory.
func (p *Cases) Awaiting(fn func(*Case) bool) {
	for _, c := range p.awaiting {
		if !fn(c) {
			return
		}
	}
}

// Len returns the number of cases.
func (p *Cases) Len() int { return p.count }

// OpenLen returns the number of open cases.
func (p *Cases) OpenLen() int {
	n := 0
	for _, c := range p.live {
		if c.Status.Open() {
			n++
		}
	}
	return n
}
