package projections

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// The cases read model in the store (prefix 'c'):
//
//	c r <signal>                       the record of a case that is not open
//	c p <signal>                       the record of an open case (loaded at start)
//	c s <subject> <position> <signal>  the signals of a subject, in raise order
//	c b <raiser> <position> <signal>   the signals a principal raised
//	c f <referral>                     -> the referral's signal
//	c o <org> <position> <referral>    -> signal: referrals to an organisation
//	c e <kind> <time> <signal>         the retention index: final state and moment
//	c m <network> <raised> <signal>    the monitoring row (loaded at start)
//	c n                                the number of cases
const (
	casesPrefix = 'c'
	// casesVersion is the code version of the cases read model: change it
	// when what Apply makes of events, or the record format, changes; a
	// store of another version is rebuilt from the log at start.
	casesVersion = 2
)

func caseKey(id uuid.UUID) []byte { return key(casesPrefix, []byte{'r'}, id[:]) }
func openKey(id uuid.UUID) []byte { return key(casesPrefix, []byte{'p'}, id[:]) }
func subjectCasesPrefix(subject uuid.UUID) []byte {
	return key(casesPrefix, []byte{'s'}, subject[:])
}
func subjectCaseKey(subject uuid.UUID, pos uint64, id uuid.UUID) []byte {
	return append(appendU64(subjectCasesPrefix(subject), pos), id[:]...)
}
func raiserPrefix(raiser string) []byte { return appendStr([]byte{casesPrefix, 'b'}, raiser) }
func raiserKey(raiser string, pos uint64, id uuid.UUID) []byte {
	return append(appendU64(raiserPrefix(raiser), pos), id[:]...)
}
func referralKey(ref uuid.UUID) []byte     { return key(casesPrefix, []byte{'f'}, ref[:]) }
func orgReferralsPrefix(org string) []byte { return appendStr([]byte{casesPrefix, 'o'}, org) }
func orgReferralKey(org string, pos uint64, ref uuid.UUID) []byte {
	return append(appendU64(orgReferralsPrefix(org), pos), ref[:]...)
}
func expiryPrefix(kind byte) []byte { return []byte{casesPrefix, 'e', kind} }
func expiryKey(kind byte, at time.Time, id uuid.UUID) []byte {
	return append(appendTime(expiryPrefix(kind), at), id[:]...)
}
func rowKey(network string, raised time.Time, id uuid.UUID) []byte {
	return append(appendTime(appendStr([]byte{casesPrefix, 'm'}, network), raised), id[:]...)
}

var caseCountKey = []byte{casesPrefix, 'n'}

func (p *Cases) name() string    { return "cases" }
func (p *Cases) prefix() byte    { return casesPrefix }
func (p *Cases) version() uint64 { return casesVersion }

// attach loads the open cases, the monitoring rows and the count.
func (p *Cases) attach(rs ReadStore, b *Batch) error {
	p.reset()
	p.rs, p.b = rs, b
	if v, ok, err := rs.Get(caseCountKey); err != nil {
		return err
	} else if ok {
		d := dec{b: v}
		p.count = int(d.uvarint())
		if err := d.done(); err != nil {
			return err
		}
	}
	// The monitoring rows load beside the open cases (separate structures).
	rowsDone := make(chan error, 1)
	go func() {
		var derr error
		lo := []byte{casesPrefix, 'm'}
		err := rs.Scan(lo, prefixEnd(lo), false, func(k, v []byte) bool {
			derr = p.rows.load(k, v)
			return derr == nil
		})
		rowsDone <- cmpErr(err, derr)
	}()
	var derr error
	lo := []byte{casesPrefix, 'p'}
	if err := rs.Scan(lo, prefixEnd(lo), false, func(_, v []byte) bool {
		c, err := decodeCase(v)
		if err != nil {
			derr = err
			return false
		}
		for i := range c.History {
			h := &c.History[i]
			h.ActorID, h.ActorRole = p.intern(h.ActorID), p.intern(h.ActorRole)
		}
		p.live[c.ID] = c
		p.index(c, true)
		return true
	}); err != nil || derr != nil {
		<-rowsDone
		return cmpErr(err, derr)
	}
	return <-rowsDone
}

// loadMany returns the cases with these ids: from memory, or from the
// store in one pass.
func (p *Cases) loadMany(ids []uuid.UUID) (map[uuid.UUID]*Case, error) {
	out := make(map[uuid.UUID]*Case, len(ids))
	var keys [][]byte
	for _, id := range ids {
		if c, ok := p.live[id]; ok {
			out[id] = c
		} else {
			keys = append(keys, caseKey(id))
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	var derr error
	err := p.rs.GetMany(keys, func(_, v []byte) bool {
		c, err := decodeCase(v)
		if err != nil {
			derr = err
			return false
		}
		out[c.ID] = c
		return true
	})
	return out, cmpErr(err, derr)
}

// load reads a case from the store.
func (p *Cases) load(id uuid.UUID) (*Case, bool, error) {
	v, ok, err := p.rs.Get(caseKey(id))
	if err != nil || !ok {
		return nil, false, err
	}
	c, err := decodeCase(v)
	if err != nil {
		return nil, false, fmt.Errorf("case %s: %w", id, err)
	}
	if c.ID != id {
		return nil, false, fmt.Errorf("case %s: %w", id, ErrCorrupt)
	}
	return c, true, nil
}

// flush writes the changed cases and monitoring rows, and the count.
func (p *Cases) flush() error {
	for id, c := range p.dirty {
		if c.Status.Open() {
			p.b.Set(openKey(id), encodeCase(c))
		} else {
			p.b.Set(caseKey(id), encodeCase(c))
		}
		if p.rowDirty[id] {
			p.b.Set(rowKey(c.Network, c.RaisedAt, c.ID), encodeRow(c))
		}
	}
	if p.counted {
		var e enc
		e.uvarint(uint64(p.count))
		p.b.Set(caseCountKey, e.b)
	}
	return nil
}

// committed drops from memory the cases that are no longer open.
func (p *Cases) committed() {
	for id, c := range p.dirty {
		if !c.Status.Open() {
			delete(p.live, id)
		}
	}
	clear(p.dirty)
	clear(p.rowDirty)
	p.counted = false
}

const caseFormat = 2

func encodeCase(c *Case) []byte {
	e := enc{b: make([]byte, 0, 512+len(c.Description)+64*len(c.History))}
	e.byte(caseFormat)
	e.uuid(c.ID)
	e.uuid(c.SubjectID)
	for _, s := range []string{c.Network, string(c.Status), c.RaisedBy, string(c.Source), c.Organisation, c.Neighbourhood} {
		e.str(s)
	}
	e.uvarint(uint64(c.Version))
	e.uvarint(c.Position)
	e.strs(c.Categories)
	for _, s := range []string{c.Urgency, c.Consent, c.NormVersion} {
		e.str(s)
	}
	e.uvarint(uint64(c.FeedbackWorkDays))
	e.bytes(c.Description)
	for _, s := range []string{c.Team, c.RoutingRule, c.Assignee, c.Outcome, c.NextDue} {
		e.str(s)
	}
	for _, t := range []time.Time{c.RaisedAt, c.UnroutedDueAt, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.AcceptedAt, c.FeedbackDueAt,
		c.FirstFeedbackAt, c.StoppedAt, c.ClosedAt, c.DeclinedAt, c.WithdrawnAt, c.LastActivityAt, c.NextDueAt} {
		e.time(t)
	}
	e.bytes(c.expiry)
	e.bool(c.erased)
	e.uvarint(uint64(len(c.FollowUps)))
	for _, f := range c.FollowUps {
		e.uuid(f.ID)
		e.str(f.Kind)
		e.str(f.Outcome)
		e.bytes(f.Note)
		e.str(f.NextDue)
		e.time(f.At)
		e.str(f.By)
	}
	e.uvarint(uint64(len(c.Referrals)))
	for _, r := range c.Referrals {
		e.uuid(r.ID)
		e.str(r.OrganisationID)
		e.str(r.Service)
		e.bytes(r.Reason)
		e.str(string(r.Status))
		e.time(r.MadeAt)
		e.time(r.AnsweredAt)
		encodeNotes(&e, r.Notes)
	}
	e.uvarint(uint64(len(c.Feedback)))
	for _, f := range c.Feedback {
		e.str(f.Code)
		e.str(f.Text.NL)
		e.str(f.Text.EN)
		e.uvarint(uint64(f.TextsVersion))
		e.time(f.At)
	}
	encodeNotes(&e, c.Notes)
	e.uuids(c.Matched)
	e.uvarint(uint64(len(c.History)))
	for _, h := range c.History {
		e.str(h.Type)
		e.time(h.At)
		e.uvarint(h.Position)
		e.str(h.ActorID)
		e.str(h.ActorRole)
	}
	return e.b
}

func encodeNotes(e *enc, notes []Note) {
	e.uvarint(uint64(len(notes)))
	for _, n := range notes {
		e.str(n.Kind)
		e.bytes(n.Text)
		e.time(n.At)
		e.str(n.By)
	}
}

func decodeNotes(d *dec) []Note {
	n := d.n(4)
	if n == 0 {
		return nil
	}
	out := make([]Note, n)
	for i := range out {
		out[i] = Note{Kind: d.str(), Text: d.bytes(), At: d.time(), By: d.str()}
	}
	return out
}

func decodeCase(v []byte) (*Case, error) {
	d := dec{b: v}
	if d.byte() != caseFormat {
		return nil, ErrCorrupt
	}
	c := &Case{ID: d.uuid(), SubjectID: d.uuid()}
	c.Network, c.Status, c.RaisedBy, c.Source, c.Organisation, c.Neighbourhood = d.str(), domain.Status(d.str()), d.str(), domain.Role(d.str()), d.str(), d.str()
	c.Version, c.Position = int(d.uvarint()), d.uvarint()
	c.Categories = d.strs()
	c.Urgency, c.Consent, c.NormVersion = d.str(), d.str(), d.str()
	c.FeedbackWorkDays = int(d.uvarint())
	c.Description = d.bytes()
	c.Team, c.RoutingRule, c.Assignee, c.Outcome, c.NextDue = d.str(), d.str(), d.str(), d.str(), d.str()
	for _, t := range []*time.Time{&c.RaisedAt, &c.UnroutedDueAt, &c.DueAt, &c.Due3xAt, &c.FirstResponseAt, &c.AcceptedAt, &c.FeedbackDueAt,
		&c.FirstFeedbackAt, &c.StoppedAt, &c.ClosedAt, &c.DeclinedAt, &c.WithdrawnAt, &c.LastActivityAt, &c.NextDueAt} {
		*t = d.time()
	}
	c.expiry = d.bytes()
	c.erased = d.bool()
	if n := d.n(22); n > 0 {
		c.FollowUps = make([]FollowUp, n)
		for i := range c.FollowUps {
			c.FollowUps[i] = FollowUp{ID: d.uuid(), Kind: d.str(), Outcome: d.str(), Note: d.bytes(), NextDue: d.str(), At: d.time(), By: d.str()}
		}
	}
	if n := d.n(24); n > 0 {
		c.Referrals = make([]Referral, n)
		for i := range c.Referrals {
			c.Referrals[i] = Referral{ID: d.uuid(), OrganisationID: d.str(), Service: d.str(), Reason: d.bytes(),
				Status: domain.ReferralStatus(d.str()), MadeAt: d.time(), AnsweredAt: d.time(), Notes: decodeNotes(&d)}
		}
	}
	if n := d.n(2); n > 0 {
		c.Feedback = make([]Feedback, n)
		for i := range c.Feedback {
			c.Feedback[i] = Feedback{Code: d.str(), Text: domain.FeedbackText{NL: d.str(), EN: d.str()}, TextsVersion: int(d.uvarint()), At: d.time()}
		}
	}
	c.Notes = decodeNotes(&d)
	c.Matched = d.uuids()
	if n := d.n(5); n > 0 {
		c.History = make([]HistoryEntry, n)
		for i := range c.History {
			c.History[i] = HistoryEntry{Type: d.str(), At: d.time(), Position: d.uvarint(), ActorID: d.str(), ActorRole: d.str()}
		}
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return c, nil
}
