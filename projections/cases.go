package projections

import (
	"bytes"
	"container/heap"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Case is the read model of one signal: everything the case page, the
// caseload, monitoring and the signaller's view need. Personal data stays
// sealed.
type Case struct {
	ID            uuid.UUID
	SubjectID     uuid.UUID
	Network       string
	Status        domain.Status
	Version       int
	Position      uint64 // of the last event
	RaisedBy      string
	Source        domain.Role
	Organisation  string
	Neighbourhood string
	Categories    []string
	Urgency       string
	Consent       string
	Description   domain.Sealed
	Team          string
	RoutingRule   string // the routing rule that chose Team, if one did
	Assignee      string
	Outcome       string

	RaisedAt        time.Time
	UnroutedDueAt   time.Time // still without a team by then: the coordinators are told
	DueAt           time.Time // first response due
	Due3xAt         time.Time // three times the norm
	FirstResponseAt time.Time
	AcceptedAt      time.Time
	FeedbackDueAt   time.Time
	FirstFeedbackAt time.Time
	StoppedAt       time.Time // withdrawn before any response
	ClosedAt        time.Time
	DeclinedAt      time.Time // the last handover decline, while the signal waits again
	WithdrawnAt     time.Time
	LastActivityAt  time.Time
	NextDue         string    // YYYY-MM-DD of the latest follow-up's next_due
	NextDueAt       time.Time // NextDue as a time, for sorting

	indexed string // the team whose caseload index holds the case

	FollowUps []FollowUp
	Referrals []Referral
	Feedback  []Feedback
	Notes     []Note
	Matched   []uuid.UUID
	History   []HistoryEntry
}

// FollowUp is one recorded follow-up.
type FollowUp struct {
	ID      uuid.UUID
	Kind    string
	Outcome string
	Note    domain.Sealed
	NextDue string
	At      time.Time
	By      string
}

// Referral is one referral and its answers.
type Referral struct {
	ID             uuid.UUID
	OrganisationID string
	Service        string
	Reason         domain.Sealed
	Status         domain.ReferralStatus
	MadeAt         time.Time
	AnsweredAt     time.Time
	Notes          []Note
}

// Feedback is one terugkoppeling to the signaller: a code, never free text.
type Feedback struct {
	Code string
	At   time.Time
}

// Note is a sealed free text attached to a step (handover note, reasons, close note).
type Note struct {
	Kind string // the event type it came with
	Text domain.Sealed
	At   time.Time
	By   string
}

// HistoryEntry is one event of the case, without content.
type HistoryEntry struct {
	Type      string
	At        time.Time
	Position  uint64
	ActorID   string
	ActorRole string
}

// Cases is the projection of every signal stream.
type Cases struct {
	norms    domain.Norms
	calendar domain.Calendar

	byID       map[uuid.UUID]*Case
	byTeam     map[string]map[uuid.UUID]*Case // open cases by team
	byRaiser   map[string][]uuid.UUID
	bySubject  map[uuid.UUID][]uuid.UUID
	byReferral map[uuid.UUID]uuid.UUID
	byOrg      map[string][]uuid.UUID // referral ids per organisation, oldest first
	strs       map[string]string      // interned actor ids and roles
}

// intern returns one shared copy of a short, often repeated string.
func (p *Cases) intern(s string) string {
	if v, ok := p.strs[s]; ok {
		return v
	}
	if len(p.strs) < 1<<20 {
		p.strs[s] = s
	}
	return s
}

// NewCases returns an empty projection computing deadlines with the norms and calendar.
func NewCases(norms domain.Norms, cal domain.Calendar) *Cases {
	return &Cases{
		norms: norms, calendar: cal,
		byID: map[uuid.UUID]*Case{}, byTeam: map[string]map[uuid.UUID]*Case{},
		byRaiser: map[string][]uuid.UUID{}, bySubject: map[uuid.UUID][]uuid.UUID{},
		byReferral: map[uuid.UUID]uuid.UUID{}, byOrg: map[string][]uuid.UUID{}, strs: map[string]string{},
	}
}

// SignalID is the signal id of a signal stream's name.
func SignalID(stream string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(stream, domain.SignalCategory+"-")
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}

// Apply implements Projection.
func (p *Cases) Apply(env Envelope) {
	switch e := env.Event.(type) {
	case domain.SignalRaised:
		p.raise(env, e)
		return
	case domain.SubjectSignalled: // on the subject's stream: the match, if any
		if c := p.byID[e.SignalID]; c != nil {
			for _, other := range e.Matched {
				c.match(other)
				if o := p.byID[other]; o != nil {
					o.match(c.ID)
				}
			}
		}
		return
	}
	id, ok := SignalID(env.Stream)
	if !ok {
		return
	}
	c := p.byID[id]
	if c == nil {
		return
	}
	at, by := env.At, p.intern(env.Meta.ActorID)
	note := func(text domain.Sealed) {
		if !text.Empty() {
			c.Notes = append(c.Notes, Note{Kind: env.Event.EventType(), Text: text, At: at, By: by})
		}
	}
	respond := func() {
		if c.FirstResponseAt.IsZero() {
			c.FirstResponseAt = at
		}
	}
	switch e := env.Event.(type) {
	case domain.SignalWithdrawn:
		c.Status = domain.StatusWithdrawn
		c.WithdrawnAt = at
		if c.FirstResponseAt.IsZero() {
			c.StoppedAt = at
		}
		note(e.Reason)
	case domain.SignalHandedOver:
		c.Status = domain.StatusHandedOver
		c.Team, c.RoutingRule = e.TeamID, e.RuleID
		c.DeclinedAt = time.Time{}
		note(e.Note)
	case domain.HandoverAccepted:
		c.Status = domain.StatusInCare
		c.AcceptedAt = at
		c.FeedbackDueAt = p.calendar.AddWorkingDays(at, p.norms.FeedbackWorkDays)
		respond()
	case domain.HandoverDeclined:
		c.Status = domain.StatusRaised
		c.Team, c.Assignee = "", ""
		c.DeclinedAt = at
		if !e.Reason.Empty() {
			respond()
		}
		note(e.Reason)
	case domain.CaseAssigned:
		c.Assignee = e.ProfessionalID
	case domain.FollowUpRecorded:
		c.FollowUps = append(c.FollowUps, FollowUp{ID: e.FollowUpID, Kind: e.Kind, Outcome: e.Outcome, Note: e.Note, NextDue: e.NextDue, At: at, By: by})
		c.NextDue = e.NextDue
		c.NextDueAt = time.Time{}
		if d, err := time.Parse(time.DateOnly, e.NextDue); err == nil {
			c.NextDueAt = d
		}
		respond()
	case domain.ReferralMade:
		c.Referrals = append(c.Referrals, Referral{ID: e.ReferralID, OrganisationID: e.OrganisationID, Service: e.Service, Reason: e.Reason, Status: domain.RefOpen, MadeAt: at})
		p.byReferral[e.ReferralID] = c.ID
		p.byOrg[e.OrganisationID] = append(p.byOrg[e.OrganisationID], e.ReferralID)
	case domain.ReferralAccepted:
		c.answer(e.ReferralID, domain.RefAccepted, e.Note, env)
	case domain.ReferralDeclined:
		c.answer(e.ReferralID, domain.RefDeclined, e.Note, env)
	case domain.ReferralCompleted:
		c.answer(e.ReferralID, domain.RefCompleted, e.Note, env)
	case domain.FeedbackGiven:
		c.Feedback = append(c.Feedback, Feedback{Code: e.Code, At: at})
		if c.FirstFeedbackAt.IsZero() {
			c.FirstFeedbackAt = at
		}
	case domain.SignalsMatched:
		for _, other := range e.SignalIDs {
			c.match(other)
			if o := p.byID[other]; o != nil {
				o.match(c.ID)
			}
		}
	case domain.CaseClosed:
		c.Status = domain.StatusClosed
		c.Outcome = e.Outcome
		c.ClosedAt = at
		note(e.Note)
	case domain.CaseReopened:
		c.Status = domain.StatusInCare
		c.Outcome = ""
		c.ClosedAt = time.Time{}
		note(e.Reason)
	default:
		return
	}
	p.touch(c, env)
}

func (c *Case) match(other uuid.UUID) {
	if other != c.ID && !slices.Contains(c.Matched, other) {
		c.Matched = append(c.Matched, other)
	}
}

func (c *Case) answer(id uuid.UUID, st domain.ReferralStatus, text domain.Sealed, env Envelope) {
	for i := range c.Referrals {
		r := &c.Referrals[i]
		if r.ID == id {
			r.Status = st
			r.AnsweredAt = env.At
			if !text.Empty() {
				r.Notes = append(r.Notes, Note{Kind: env.Event.EventType(), Text: text, At: env.At, By: env.Meta.ActorID})
			}
		}
	}
}

func (p *Cases) raise(env Envelope, r domain.SignalRaised) {
	if _, dup := p.byID[r.SignalID]; dup {
		return
	}
	due, due3x := p.norms.Due(p.calendar, r.RaisedAt, r.Urgency, r.Categories)
	c := &Case{
		ID: r.SignalID, SubjectID: r.SubjectID, Network: r.Network, Status: domain.StatusRaised,
		RaisedBy: r.RaisedBy, Source: r.Source, Organisation: r.Organisation, Neighbourhood: r.Neighbourhood,
		Categories: r.Categories, Urgency: r.Urgency, Consent: r.Consent, Description: r.Description,
		RaisedAt: r.RaisedAt, UnroutedDueAt: p.calendar.UnroutedDue(r.RaisedAt), DueAt: due, Due3xAt: due3x,
	}
	p.byID[c.ID] = c
	p.byRaiser[r.RaisedBy] = append(p.byRaiser[r.RaisedBy], c.ID)
	p.bySubject[r.SubjectID] = append(p.bySubject[r.SubjectID], c.ID)
	p.touch(c, env)
}

// touch records the event in the case's history and keeps the team index.
func (p *Cases) touch(c *Case, env Envelope) {
	c.Version++
	c.Position = env.Position
	c.LastActivityAt = env.At
	c.History = append(c.History, HistoryEntry{Type: env.Event.EventType(), At: env.At, Position: env.Position,
		ActorID: p.intern(env.Meta.ActorID), ActorRole: p.intern(env.Meta.ActorRole)})
	team := ""
	if c.Status.Open() {
		team = c.Team
	}
	if team == c.indexed {
		return
	}
	if c.indexed != "" {
		delete(p.byTeam[c.indexed], c.ID)
	}
	if team != "" {
		set := p.byTeam[team]
		if set == nil {
			set = map[uuid.UUID]*Case{}
			p.byTeam[team] = set
		}
		set[c.ID] = c
	}
	c.indexed = team
}

// Unrouted reports whether the case is raised, still without a team, past
// its UnroutedDueAt (domain.Unrouted).
func (c *Case) Unrouted(now time.Time) bool {
	return domain.Unrouted(c.Status, c.Team, c.UnroutedDueAt, now)
}

// Get returns the case with this id.
func (p *Cases) Get(id uuid.UUID) (*Case, bool) {
	c, ok := p.byID[id]
	return c, ok
}

// SignalOfReferral returns the signal a referral belongs to.
func (p *Cases) SignalOfReferral(id uuid.UUID) (uuid.UUID, bool) {
	s, ok := p.byReferral[id]
	return s, ok
}

// ReferralsTo returns the referrals to an organisation, newest first, with
// the case each belongs to.
func (p *Cases) ReferralsTo(org string) []ReferralOf {
	ids := p.byOrg[org]
	out := make([]ReferralOf, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		c := p.byID[p.byReferral[ids[i]]]
		for _, r := range c.Referrals {
			if r.ID == ids[i] {
				out = append(out, ReferralOf{Referral: r, Case: c})
			}
		}
	}
	return out
}

// ReferralOf is a referral with its case.
type ReferralOf struct {
	Referral
	Case *Case
}

// OpenOfSubject returns the open signals about a subject.
func (p *Cases) OpenOfSubject(subject uuid.UUID) []uuid.UUID {
	var out []uuid.UUID
	for _, id := range p.bySubject[subject] {
		if c := p.byID[id]; c != nil && c.Status.Open() {
			out = append(out, id)
		}
	}
	return out
}

// OfSubject returns every signal about a subject, oldest first.
func (p *Cases) OfSubject(subject uuid.UUID) []*Case {
	var out []*Case
	for _, id := range p.bySubject[subject] {
		out = append(out, p.byID[id])
	}
	return out
}

// RaisedBy returns the signals a principal raised, newest first.
func (p *Cases) RaisedBy(principal string) []*Case {
	ids := p.byRaiser[principal]
	out := make([]*Case, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		out = append(out, p.byID[ids[i]])
	}
	return out
}

// All calls fn for every case, in no particular order, until fn returns false.
func (p *Cases) All(fn func(*Case) bool) {
	for _, c := range p.byID {
		if !fn(c) {
			return
		}
	}
}

// Len returns the number of cases.
func (p *Cases) Len() int { return len(p.byID) }

// DueKey is what "due first" sorts on: the earliest of the open first-response
// deadline and the next follow-up date.
func (c *Case) DueKey() time.Time {
	var key time.Time
	if c.FirstResponseAt.IsZero() {
		key = c.DueAt
	}
	if d := c.NextDueAt; !d.IsZero() && (key.IsZero() || d.Before(key)) {
		key = d
	}
	return key
}

// CaseloadFilter selects a caseload.
type CaseloadFilter struct {
	Teams    []string // the teams to include (the caller's teams, or one of them)
	Assignee string   // only cases assigned to this professional, if set
	Network  string
	// Keep, if set, keeps only the cases it returns true for (the API's
	// caseload filters: unassigned, overdue).
	Keep func(*Case) bool
}

// Caseload returns the first n open cases of the teams in "due first"
// order (cases without a deadline last, then by id), and how many there are
// in all. It selects with a bounded heap, so a page costs O(cases log n)
// rather than a full sort.
func (p *Cases) Caseload(f CaseloadFilter, n int) ([]*Case, int) {
	h := &dueHeap{}
	total := 0
	for _, team := range f.Teams {
		for _, c := range p.byTeam[team] {
			if (f.Network != "" && c.Network != f.Network) || (f.Assignee != "" && c.Assignee != f.Assignee) || (f.Keep != nil && !f.Keep(c)) {
				continue
			}
			total++
			if h.Len() < n {
				heap.Push(h, c)
			} else if n > 0 && CompareDue(c, (*h)[0]) < 0 {
				(*h)[0] = c
				heap.Fix(h, 0)
			}
		}
	}
	out := make([]*Case, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(h).(*Case)
	}
	return out, total
}

// dueHeap is a max-heap by CompareDue: its root is the latest of the kept cases.
type dueHeap []*Case

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return CompareDue(h[i], h[j]) > 0 }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(*Case)) }
func (h *dueHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// CompareDue orders cases by due key (zero last), then id.
func CompareDue(a, b *Case) int {
	ka, kb := a.DueKey(), b.DueKey()
	switch {
	case ka.IsZero() && !kb.IsZero():
		return 1
	case !ka.IsZero() && kb.IsZero():
		return -1
	}
	if c := ka.Compare(kb); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}
