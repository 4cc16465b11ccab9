package projections

import (
	"bytes"
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
	// NormVersion is the version of the norms the signal was raised under
	// (domain.SignalNorms.Version; "0.0" the defaults); FeedbackWorkDays
	// their feedback norm (0: the projection's default).
	NormVersion      string
	FeedbackWorkDays int
	Description      domain.Sealed
	Team             string
	RoutingRule      string // the routing rule that chose Team, if one did
	Assignee         string
	Outcome          string

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

	indexed caseloadEntry // where the caseload index holds the case, if it does
	expiry  []byte        // the case's key in the retention index, if any
	erased  bool          // its subject was erased: out of the retention index

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

// Feedback is one terugkoppeling to the signaller: a code, and the
// network's text for it as it read when given (TextsVersion 0: the
// default text), never free text of the team.
type Feedback struct {
	Code         string
	Text         domain.FeedbackText
	TextsVersion int
	At           time.Time
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

// Cases is the projection of every signal stream. Open cases live in memory
// with their caseload and subject indexes, as does a compact monitoring row
// per signal; every case, open or not, is in the read-model store (the
// record, and the indexes by raiser, subject, referral, organisation and
// retention term), so a closed case costs no memory and a restart loads
// only the open ones.
type Cases struct {
	norms    domain.Norms
	calendar domain.Calendar

	rs ReadStore
	b  *Batch

	live          map[uuid.UUID]*Case       // open cases, and the cases the batch being applied touched
	caseloads     caseloads                 // open cases by team, in due order
	awaiting      map[uuid.UUID]*Case       // open cases without a first response or without a team
	openBySubject map[uuid.UUID][]uuid.UUID // open cases by subject
	rows          *monitorRows
	count         int
	strs          map[string]string // interned actor ids and roles

	// Of the batch being applied (the runner's goroutine only):
	dirty    map[uuid.UUID]*Case // to write
	rowDirty map[uuid.UUID]bool  // monitoring rows to write
	counted  bool
}

// intern returns one shared copy of a short, often repeated string.
func (p *Cases) intern(s string) string {
	if v, ok := p.strs[s]; ok {
		return v
	}
	if len(p.strs) < 1<<16 {
		p.strs[s] = s
	}
	return s
}

// NewCases returns an empty projection computing deadlines with the norms
// and calendar. Until a runner attaches it to its store it keeps everything
// in memory.
func NewCases(norms domain.Norms, cal domain.Calendar) *Cases {
	p := &Cases{norms: norms, calendar: cal}
	_ = p.attach(NewMemoryStore(), new(Batch))
	return p
}

func (p *Cases) reset() {
	p.live, p.caseloads, p.awaiting = map[uuid.UUID]*Case{}, caseloads{}, map[uuid.UUID]*Case{}
	p.openBySubject, p.rows, p.count, p.strs = map[uuid.UUID][]uuid.UUID{}, newMonitorRows(), 0, map[string]string{}
	p.dirty, p.rowDirty, p.counted = map[uuid.UUID]*Case{}, map[uuid.UUID]bool{}, false
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
		if c := p.get(e.SignalID); c != nil {
			for _, other := range e.Matched {
				c.match(other)
				if o := p.get(other); o != nil {
					o.match(c.ID)
					p.dirty[o.ID] = o
				}
			}
			p.dirty[c.ID] = c
		}
		return
	case domain.SubjectErased:
		p.subjectErased(e.SubjectID)
		return
	}
	id, ok := SignalID(env.Stream)
	if !ok {
		return
	}
	c := p.get(id)
	if c == nil {
		return
	}
	wasOpen := c.Status.Open()
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
		days := c.FeedbackWorkDays
		if days == 0 {
			days = p.norms.FeedbackWorkDays
		}
		c.FeedbackDueAt = p.calendar.AddWorkingDays(at, days)
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
		p.b.Set(referralKey(e.ReferralID), c.ID[:])
		p.b.Set(orgReferralKey(e.OrganisationID, env.Position, e.ReferralID), c.ID[:])
	case domain.ReferralAccepted:
		c.answer(e.ReferralID, domain.RefAccepted, e.Note, env)
	case domain.ReferralDeclined:
		c.answer(e.ReferralID, domain.RefDeclined, e.Note, env)
	case domain.ReferralCompleted:
		c.answer(e.ReferralID, domain.RefCompleted, e.Note, env)
	case domain.FeedbackGiven:
		fb := Feedback{Code: e.Code, TextsVersion: e.TextsVersion, At: at}
		if e.Text != nil {
			fb.Text = *e.Text
		} else {
			fb.Text, fb.TextsVersion = domain.DefaultFeedbackTexts()[e.Code], 0
		}
		c.Feedback = append(c.Feedback, fb)
		if c.FirstFeedbackAt.IsZero() {
			c.FirstFeedbackAt = at
		}
	case domain.SignalsMatched:
		for _, other := range e.SignalIDs {
			c.match(other)
			if o := p.get(other); o != nil {
				o.match(c.ID)
				p.dirty[o.ID] = o
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
	p.touch(c, env, wasOpen)
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
	if p.exists(r.SignalID) {
		return
	}
	// A signal is due by the norms recorded on it; one raised before norms
	// were recorded, by the projection's (the defaults of the time).
	norms, version, fbDays := p.norms, domain.NormVersion(0, 0), 0
	if r.Norms != nil {
		norms, version, fbDays = r.Norms.Norms(r.Urgency), r.Norms.Version(), r.Norms.FeedbackWorkDays
	}
	due, due3x := norms.Due(p.calendar, r.RaisedAt, r.Urgency, r.Categories)
	c := &Case{NormVersion: p.intern(version), FeedbackWorkDays: fbDays,
		ID: r.SignalID, SubjectID: r.SubjectID, Network: r.Network, Status: domain.StatusRaised,
		RaisedBy: r.RaisedBy, Source: r.Source, Organisation: r.Organisation, Neighbourhood: r.Neighbourhood,
		Categories: r.Categories, Urgency: r.Urgency, Consent: r.Consent, Description: r.Description,
		RaisedAt: r.RaisedAt.UTC(), UnroutedDueAt: p.calendar.UnroutedDue(r.RaisedAt), DueAt: due, Due3xAt: due3x,
	}
	p.live[c.ID] = c
	p.count++
	p.counted = true
	p.b.Set(subjectCaseKey(r.SubjectID, env.Position, c.ID), nil)
	p.b.Set(raiserKey(r.RaisedBy, env.Position, c.ID), nil)
	p.touch(c, env, false)
}

// touch records the event in the case's history and keeps the indexes: the
// team's caseload, the awaiting set, the open cases of the subject, the
// monitoring row, the open set and the retention index in the store.
func (p *Cases) touch(c *Case, env Envelope, wasOpen bool) {
	c.Version++
	c.Position = env.Position
	c.LastActivityAt = env.At
	c.History = append(c.History, HistoryEntry{Type: env.Event.EventType(), At: env.At, Position: env.Position,
		ActorID: p.intern(env.Meta.ActorID), ActorRole: p.intern(env.Meta.ActorRole)})
	p.dirty[c.ID] = c
	if p.rows.put(c) {
		p.rowDirty[c.ID] = true
	}
	p.index(c, wasOpen)
	p.indexExpiry(c)
}

// index keeps the in-memory indexes of open cases and the open set in the
// store.
func (p *Cases) index(c *Case, wasOpen bool) {
	open := c.Status.Open()
	team := ""
	if open {
		team = c.Team
	}
	p.caseloads.put(c, team)
	if open && (c.FirstResponseAt.IsZero() || c.Team == "") {
		p.awaiting[c.ID] = c
	} else {
		delete(p.awaiting, c.ID)
	}
	ids := p.openBySubject[c.SubjectID]
	switch i := slices.Index(ids, c.ID); {
	case open && i < 0:
		p.openBySubject[c.SubjectID] = append(ids, c.ID)
	case !open && i >= 0:
		if ids = slices.Delete(ids, i, i+1); len(ids) == 0 {
			delete(p.openBySubject, c.SubjectID)
		} else {
			p.openBySubject[c.SubjectID] = ids
		}
	}
	// An open case's record is kept under the open key, so the open cases
	// are one range to load at start; a case that closes or reopens
	// moves (flush writes the record where its status says).
	if open != wasOpen {
		if open {
			p.b.Delete(caseKey(c.ID))
		} else {
			p.b.Delete(openKey(c.ID))
		}
	}
}

// Retention index kinds: the final state whose moment starts the term.
const (
	expiryWithdrawn = 'w'
	expiryClosed    = 'c'
	expiryDeclined  = 'd'
)

// indexExpiry keeps the case's entry in the retention index: its final
// state and moment, while its subject is not erased.
func (p *Cases) indexExpiry(c *Case) {
	var k []byte
	if !c.erased {
		switch {
		case !c.WithdrawnAt.IsZero() && c.Status == domain.StatusWithdrawn:
			k = expiryKey(expiryWithdrawn, c.WithdrawnAt, c.ID)
		case !c.ClosedAt.IsZero() && c.Status == domain.StatusClosed:
			k = expiryKey(expiryClosed, c.ClosedAt, c.ID)
		case !c.DeclinedAt.IsZero() && c.Status == domain.StatusRaised:
			k = expiryKey(expiryDeclined, c.DeclinedAt, c.ID)
		}
	}
	if bytes.Equal(k, c.expiry) {
		return
	}
	if c.expiry != nil {
		p.b.Delete(c.expiry)
	}
	if k != nil {
		p.b.Set(k, nil)
	}
	c.expiry = k
	p.dirty[c.ID] = c
}

// subjectErased takes the subject's cases out of the retention index.
func (p *Cases) subjectErased(subject uuid.UUID) {
	ids, _ := p.subjectCaseIDs(subject)
	for _, c := range p.dirty { // raised in this batch: not in the store's index yet
		if c.SubjectID == subject && !slices.Contains(ids, c.ID) {
			ids = append(ids, c.ID)
		}
	}
	for _, id := range ids {
		if c := p.get(id); c != nil && !c.erased {
			c.erased = true
			// Written with the batch even when the retention index does not
			// change (an open case has no entry): a restart reads it back.
			p.dirty[c.ID] = c
			p.indexExpiry(c)
		}
	}
}

// get returns the case to apply an event to: from memory, or loaded from
// the store into memory until the batch is written. A store that fails
// reads as a missing case here; the write of the batch fails on it too.
func (p *Cases) get(id uuid.UUID) *Case {
	if c, ok := p.live[id]; ok {
		return c
	}
	c, ok, err := p.load(id)
	if err != nil || !ok {
		return nil
	}
	p.live[id] = c
	p.dirty[id] = c // evicted again once the batch is written
	return c
}

func (p *Cases) exists(id uuid.UUID) bool {
	if _, ok := p.live[id]; ok {
		return true
	}
	_, ok, err := p.rs.Get(caseKey(id))
	return ok || err != nil
}

// Unrouted reports whether the case is raised, still without a team, past
// its UnroutedDueAt (domain.Unrouted).
func (c *Case) Unrouted(now time.Time) bool {
	return domain.Unrouted(c.Status, c.Team, c.UnroutedDueAt, now)
}
