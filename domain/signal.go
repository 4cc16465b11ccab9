package domain

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

// ReferralStatus is where a referral stands.
type ReferralStatus string

const (
	RefOpen      ReferralStatus = "open"
	RefAccepted  ReferralStatus = "accepted"
	RefDeclined  ReferralStatus = "declined"
	RefCompleted ReferralStatus = "completed"
)

// Referral is the state of one referral of a signal.
type Referral struct {
	ID             uuid.UUID
	OrganisationID string
	Status         ReferralStatus
}

// Signal is the state of one signal stream, built by Evolve. The zero Signal
// is a signal that does not exist yet.
type Signal struct {
	ID            uuid.UUID
	SubjectID     uuid.UUID
	Status        Status
	RaisedBy      string
	Source        Role
	Organisation  string
	Network       string
	Neighbourhood string
	Categories    []string
	Urgency       string
	Team          string // the team it is handed to or in care of
	Assignee      string
	Referrals     []Referral
	Matched       []uuid.UUID
	Version       int // number of events applied
}

// Target is what policy needs to know of the signal.
func (s Signal) Target() Target {
	return Target{Network: s.Network, Team: s.Team, RaisedBy: s.RaisedBy}
}

// Referral returns the referral with this id, if any.
func (s Signal) Referral(id uuid.UUID) (Referral, bool) {
	for _, r := range s.Referrals {
		if r.ID == id {
			return r, true
		}
	}
	return Referral{}, false
}

// Evolve applies one event to the state. It never fails: events are facts.
// Events of other aggregates leave the state unchanged.
func Evolve(s Signal, e Event) Signal {
	switch e := e.(type) {
	case SignalRaised:
		s = Signal{
			ID: e.SignalID, SubjectID: e.SubjectID, Status: StatusRaised,
			RaisedBy: e.RaisedBy, Source: e.Source, Organisation: e.Organisation, Network: e.Network,
			Neighbourhood: e.Neighbourhood, Categories: slices.Clone(e.Categories), Urgency: e.Urgency,
		}
	case SignalWithdrawn:
		s.Status = StatusWithdrawn
	case SignalHandedOver:
		s.Status = StatusHandedOver
		s.Team = e.TeamID
	case HandoverAccepted:
		s.Status = StatusInCare
	case HandoverDeclined:
		s.Status = StatusRaised
		s.Team = ""
		s.Assignee = ""
	case CaseAssigned:
		s.Assignee = e.ProfessionalID
	case ReferralMade:
		s.Referrals = append(slices.Clone(s.Referrals), Referral{ID: e.ReferralID, OrganisationID: e.OrganisationID, Status: RefOpen})
	case ReferralAccepted:
		s.Referrals = setReferral(s.Referrals, e.ReferralID, RefAccepted)
	case ReferralDeclined:
		s.Referrals = setReferral(s.Referrals, e.ReferralID, RefDeclined)
	case ReferralCompleted:
		s.Referrals = setReferral(s.Referrals, e.ReferralID, RefCompleted)
	case SignalsMatched:
		for _, id := range e.SignalIDs {
			if !slices.Contains(s.Matched, id) {
				s.Matched = append(slices.Clone(s.Matched), id)
			}
		}
	case CaseClosed:
		s.Status = StatusClosed
	case CaseReopened:
		s.Status = StatusInCare
	case FollowUpRecorded, FeedbackGiven:
	default:
		return s
	}
	s.Version++
	return s
}

func setReferral(rs []Referral, id uuid.UUID, st ReferralStatus) []Referral {
	out := slices.Clone(rs)
	for i := range out {
		if out[i].ID == id {
			out[i].Status = st
		}
	}
	return out
}

// Command is a request to change a signal. Each command names the action
// policy checks.
type Command interface {
	Action() Action
}

// Signal commands. Personal data arrives Sealed; validation of its plaintext
// (presence, length) happens before sealing, at the edge.
type (
	RaiseSignal struct {
		SignalID      uuid.UUID
		SubjectID     uuid.UUID
		Neighbourhood string
		Categories    []string
		Urgency       string
		Consent       string
		Description   Sealed
		// Norms are the network's norms for this signal now
		// (NetworkConfig.SignalNorms); nil: none recorded.
		Norms *SignalNorms
	}
	WithdrawSignal struct{ Reason Sealed }
	HandOver       struct {
		TeamID string
		Note   Sealed
		RuleID string
	}
	AcceptHandover  struct{}
	DeclineHandover struct{ Reason Sealed }
	AssignCase      struct{ ProfessionalID string }
	RecordFollowUp  struct {
		FollowUpID uuid.UUID
		Kind       string
		Outcome    string
		Note       Sealed
		NextDue    string
	}
	MakeReferral struct {
		ReferralID     uuid.UUID
		OrganisationID string
		Service        string
		Reason         Sealed
	}
	// AnswerReferral is a partner's answer: accept, decline or complete.
	AnswerReferral struct {
		ReferralID uuid.UUID
		Answer     ReferralStatus // accepted, declined or completed
		Note       Sealed
	}
	// GiveFeedback gives a feedback code; Text is the network's text for
	// it now, and TextsVersion that of the texts (NetworkConfig.FeedbackText).
	GiveFeedback struct {
		Code         string
		Text         FeedbackText
		TextsVersion int
	}
	CloseCase struct {
		Outcome string
		Note    Sealed
	}
	ReopenCase struct{ Reason Sealed }
)

func (RaiseSignal) Action() Action     { return ActRaise }
func (WithdrawSignal) Action() Action  { return ActWithdraw }
func (HandOver) Action() Action        { return ActHandover }
func (AcceptHandover) Action() Action  { return ActAccept }
func (DeclineHandover) Action() Action { return ActDecline }
func (AssignCase) Action() Action      { return ActAssign }
func (RecordFollowUp) Action() Action  { return ActFollowUp }
func (MakeReferral) Action() Action    { return ActRefer }
func (AnswerReferral) Action() Action  { return ActAnswerReferral }
func (GiveFeedback) Action() Action    { return ActFeedback }
func (CloseCase) Action() Action       { return ActClose }
func (ReopenCase) Action() Action      { return ActReopen }

func conflict(code, msg string) error { return &Error{Kind: KindConflict, Code: code, Message: msg} }

func invalidField(field, msg string) error { return Invalid(FieldError{Field: field, Message: msg}) }

var (
	errNotFound       = &Error{Kind: KindNotFound, Code: "signal_not_found", Message: "the signal does not exist"}
	errAlreadyExists  = conflict("signal_exists", "the signal already exists")
	errNotRaised      = conflict("invalid_transition", "only a raised signal that has not been handed over can do this")
	errNotHandedOver  = conflict("invalid_transition", "the signal is not waiting for a team to accept it")
	errNotInCare      = conflict("invalid_transition", "the signal is not in care")
	errNotClosed      = conflict("invalid_transition", "only a closed case can be reopened")
	errNoOpenReferral = conflict("referral_not_open", "the referral is not open")
)

// Decide turns a command on the signal's current state into events, or an
// error: KindForbidden when policy denies actor the action, KindNotFound for a
// signal that does not exist, KindConflict for a transition the lifecycle does
// not allow, KindInvalid for a command missing what it needs. It is pure: now
// is the injected clock's time.
func Decide(s Signal, actor Principal, cmd Command, now time.Time) ([]Event, error) {
	raise, isRaise := cmd.(RaiseSignal)
	target := s.Target()
	if isRaise {
		target = Target{}
	} else if s.Status == StatusNone {
		return nil, errNotFound
	}
	if ar, ok := cmd.(AnswerReferral); ok {
		if r, found := s.Referral(ar.ReferralID); found {
			target.Organisation = r.OrganisationID
		} else {
			return nil, &Error{Kind: KindNotFound, Code: "referral_not_found", Message: "the referral does not exist"}
		}
		target.Team = ""
	}
	if _, err := Authorize(actor, cmd.Action(), target); err != nil {
		return nil, err
	}

	switch c := cmd.(type) {
	case RaiseSignal:
		if s.Status != StatusNone {
			return nil, errAlreadyExists
		}
		return decideRaise(actor, raise, now)
	case WithdrawSignal:
		if s.Status != StatusRaised {
			return nil, errNotRaised
		}
		if c.Reason.Empty() {
			return nil, invalidField("reason", "a reason is required")
		}
		return []Event{SignalWithdrawn{Reason: c.Reason}}, nil
	case HandOver:
		if s.Status != StatusRaised {
			return nil, errNotRaised
		}
		if c.TeamID == "" {
			return nil, invalidField("team_id", "a team is required")
		}
		return []Event{SignalHandedOver{TeamID: c.TeamID, Note: c.Note, RuleID: c.RuleID}}, nil
	case AcceptHandover:
		if s.Status != StatusHandedOver {
			return nil, errNotHandedOver
		}
		return []Event{HandoverAccepted{TeamID: s.Team}}, nil
	case DeclineHandover:
		if s.Status != StatusHandedOver {
			return nil, errNotHandedOver
		}
		if c.Reason.Empty() {
			return nil, invalidField("reason", "a reason is required")
		}
		return []Event{HandoverDeclined{TeamID: s.Team, Reason: c.Reason}}, nil
	case AssignCase:
		if s.Status != StatusHandedOver && s.Status != StatusInCare {
			return nil, conflict("invalid_transition", "only a signal with a team can be assigned")
		}
		if c.ProfessionalID == "" {
			return nil, invalidField("professional_id", "a professional is required")
		}
		if c.ProfessionalID == s.Assignee {
			return nil, conflict("already_assigned", "the case is already assigned to this professional")
		}
		return []Event{CaseAssigned{ProfessionalID: c.ProfessionalID}}, nil
	case RecordFollowUp:
		if s.Status != StatusInCare {
			return nil, errNotInCare
		}
		var errs []FieldError
		if !FollowUpKinds.has(c.Kind) {
			errs = append(errs, FieldError{"kind", "must be one of the follow-up kinds"})
		}
		if !FollowUpOutcomes.has(c.Outcome) {
			errs = append(errs, FieldError{"outcome", "must be one of the follow-up outcomes"})
		}
		if c.NextDue != "" && !ValidDate(c.NextDue) {
			errs = append(errs, FieldError{"next_due", "must be a date YYYY-MM-DD"})
		}
		if c.FollowUpID == uuid.Nil {
			errs = append(errs, FieldError{"id", "a follow-up id is required"})
		}
		if len(errs) > 0 {
			return nil, Invalid(errs...)
		}
		return []Event{FollowUpRecorded{FollowUpID: c.FollowUpID, Kind: c.Kind, Outcome: c.Outcome, Note: c.Note, NextDue: c.NextDue}}, nil
	case MakeReferral:
		if s.Status != StatusInCare {
			return nil, errNotInCare
		}
		if c.OrganisationID == "" || c.Reason.Empty() || c.ReferralID == uuid.Nil {
			var errs []FieldError
			if c.OrganisationID == "" {
				errs = append(errs, FieldError{"organisation_id", "an organisation is required"})
			}
			if c.Reason.Empty() {
				errs = append(errs, FieldError{"reason", "a reason is required"})
			}
			if c.ReferralID == uuid.Nil {
				errs = append(errs, FieldError{"id", "a referral id is required"})
			}
			return nil, Invalid(errs...)
		}
		if _, dup := s.Referral(c.ReferralID); dup {
			return nil, conflict("referral_exists", "the referral already exists")
		}
		return []Event{ReferralMade{ReferralID: c.ReferralID, OrganisationID: c.OrganisationID, Service: c.Service, Reason: c.Reason}}, nil
	case AnswerReferral:
		// A partner may still answer after the case was closed: closing with
		// outcome "referred" hands the resident over to the referrals.
		r, _ := s.Referral(c.ReferralID)
		if s.Status != StatusInCare && s.Status != StatusClosed {
			return nil, errNotInCare
		}
		switch c.Answer {
		case RefAccepted:
			if r.Status != RefOpen {
				return nil, errNoOpenReferral
			}
			return []Event{ReferralAccepted{ReferralID: r.ID, Note: c.Note}}, nil
		case RefDeclined:
			if r.Status != RefOpen {
				return nil, errNoOpenReferral
			}
			return []Event{ReferralDeclined{ReferralID: r.ID, Note: c.Note}}, nil
		case RefCompleted:
			if r.Status != RefAccepted {
				return nil, conflict("referral_not_accepted", "only an accepted referral can be completed")
			}
			return []Event{ReferralCompleted{ReferralID: r.ID, Note: c.Note}}, nil
		}
		return nil, invalidField("answer", "must be accepted, declined or completed")
	case GiveFeedback:
		if s.Status != StatusInCare && s.Status != StatusClosed {
			return nil, errNotInCare
		}
		if !FeedbackCodes.has(c.Code) {
			return nil, invalidField("code", "must be one of the feedback codes")
		}
		e := FeedbackGiven{Code: c.Code, TextsVersion: c.TextsVersion}
		if c.Text != (FeedbackText{}) {
			text := c.Text
			e.Text = &text
		}
		return []Event{e}, nil
	case CloseCase:
		if s.Status != StatusInCare {
			return nil, errNotInCare
		}
		if !CloseOutcomes.has(c.Outcome) {
			return nil, invalidField("outcome", "must be one of the close outcomes")
		}
		return []Event{CaseClosed{Outcome: c.Outcome, Note: c.Note}}, nil
	case ReopenCase:
		if s.Status != StatusClosed {
			return nil, errNotClosed
		}
		if c.Reason.Empty() {
			return nil, invalidField("reason", "a reason is required")
		}
		return []Event{CaseReopened{Reason: c.Reason}}, nil
	}
	return nil, Errorf(KindInternal, "unknown_command", "unknown command %T", cmd)
}

func decideRaise(actor Principal, c RaiseSignal, now time.Time) ([]Event, error) {
	var errs []FieldError
	if c.SignalID == uuid.Nil {
		errs = append(errs, FieldError{"id", "a signal id is required"})
	}
	if c.SubjectID == uuid.Nil {
		errs = append(errs, FieldError{"subject", "a subject is required"})
	}
	if c.Neighbourhood == "" {
		errs = append(errs, FieldError{"neighbourhood", "a neighbourhood is required"})
	}
	if len(c.Categories) == 0 {
		errs = append(errs, FieldError{"categories", "at least one category is required"})
	}
	// Which categories a network has is its configuration, checked by the
	// caller (NetworkConfig.CheckRaise); here only their form.
	for _, cat := range c.Categories {
		if !ValidConfigID(cat) {
			errs = append(errs, FieldError{"categories", "must each be a category id"})
			break
		}
	}
	if !Urgencies.has(c.Urgency) {
		errs = append(errs, FieldError{"urgency", "must be normal, high or acute"})
	}
	if !Consents.has(c.Consent) {
		errs = append(errs, FieldError{"consent", "must be informed, not_informed or vital_interest"})
	}
	if c.Description.Empty() {
		errs = append(errs, FieldError{"description", "a description is required"})
	}
	if len(errs) > 0 {
		return nil, Invalid(errs...)
	}
	source := RoleBuurtsteun
	for _, r := range []Role{RoleProfessional, RolePartner, RoleBuurtsteun} {
		if actor.HasRole(r) {
			source = r
		}
	}
	cats := slices.Clone(c.Categories)
	slices.Sort(cats)
	cats = slices.Compact(cats)
	events := []Event{SignalRaised{
		SignalID: c.SignalID, SubjectID: c.SubjectID, RaisedBy: actor.ID, Source: source,
		Organisation: actor.Organisation, Network: actor.Network, Neighbourhood: c.Neighbourhood,
		Categories: cats, Urgency: c.Urgency, Consent: c.Consent, Description: c.Description,
		RaisedAt: now.UTC(), Norms: c.Norms,
	}}
	return events, nil
}

// Signalled is what a raise about a subject already known records on the
// subject's stream (SubjectSignalled): the new signal and the open signals
// about the subject it matched, without itself.
func Signalled(subject, signal uuid.UUID, open []uuid.UUID) SubjectSignalled {
	matched := slices.DeleteFunc(slices.Clone(open), func(id uuid.UUID) bool { return id == signal })
	return SubjectSignalled{SubjectID: subject, SignalID: signal, Matched: matched}
}

// ValidDate reports whether s is a date in YYYY-MM-DD form.
func ValidDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}
