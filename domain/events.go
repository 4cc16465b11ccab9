package domain

import (
	"time"

	"github.com/google/uuid"
)

// Event is a fact of the domain. Events are plain structs, encoded as JSON by
// the Registry; their personal data is Sealed.
type Event interface {
	EventType() string
}

// Stream categories.
const (
	SignalCategory       = "signal"
	SubjectCategory      = "subject"
	OrganisationCategory = "org"
	AuditCategory        = "audit"
)

// Signal stream events.
type (
	// SignalRaised opens a signal about a subject. Source is the role of the
	// signaller (buurtsteun, partner, professional), kept in clear for monitoring.
	SignalRaised struct {
		SignalID      uuid.UUID `json:"signal_id"`
		SubjectID     uuid.UUID `json:"subject_id"`
		RaisedBy      string    `json:"raised_by"`
		Source        Role      `json:"source"`
		Organisation  string    `json:"organisation,omitempty"`
		Network       string    `json:"network"`
		Neighbourhood string    `json:"neighbourhood"`
		Categories    []string  `json:"categories"`
		Urgency       string    `json:"urgency"`
		Consent       string    `json:"consent"`
		Description   Sealed    `json:"description"`
		RaisedAt      time.Time `json:"raised_at"`
		// Norms are the network's norms in force when the signal was raised
		// (since schema version 2); without them (version 1) the signal is
		// due by the default norms, norm version 0.0.
		Norms *SignalNorms `json:"norms,omitempty"`
	}
	SignalWithdrawn struct {
		Reason Sealed `json:"reason"`
	}
	SignalHandedOver struct {
		TeamID string `json:"team_id"`
		Note   Sealed `json:"note,omitempty"`
		RuleID string `json:"rule_id,omitempty"` // the routing rule that chose the team, if any
	}
	HandoverAccepted struct {
		TeamID string `json:"team_id"`
	}
	HandoverDeclined struct {
		TeamID string `json:"team_id"`
		Reason Sealed `json:"reason"`
	}
	CaseAssigned struct {
		ProfessionalID string `json:"professional_id"`
	}
	FollowUpRecorded struct {
		FollowUpID uuid.UUID `json:"follow_up_id"`
		Kind       string    `json:"kind"`
		Outcome    string    `json:"outcome"`
		Note       Sealed    `json:"note,omitempty"`
		NextDue    string    `json:"next_due,omitempty"` // YYYY-MM-DD
	}
	ReferralMade struct {
		ReferralID     uuid.UUID `json:"referral_id"`
		OrganisationID string    `json:"organisation_id"`
		Service        string    `json:"service,omitempty"`
		Reason         Sealed    `json:"reason"`
	}
	ReferralAccepted struct {
		ReferralID uuid.UUID `json:"referral_id"`
		Note       Sealed    `json:"note,omitempty"`
	}
	ReferralDeclined struct {
		ReferralID uuid.UUID `json:"referral_id"`
		Note       Sealed    `json:"note,omitempty"`
	}
	ReferralCompleted struct {
		ReferralID uuid.UUID `json:"referral_id"`
		Note       Sealed    `json:"note,omitempty"`
	}
	// FeedbackGiven records a code for the signaller and (since schema
	// version 2) the network's text for it as it read when the feedback was
	// given, with the texts' version: a later change of the texts never
	// changes what was told. Without a text (version 1) the signaller reads
	// the default text of the code.
	FeedbackGiven struct {
		Code         string        `json:"code"`
		Text         *FeedbackText `json:"text,omitempty"`
		TextsVersion int           `json:"texts_version,omitempty"`
	}
	// SignalsMatched recorded, on the newer signal, the open signals about
	// the same subject. Raises no longer write it (SubjectSignalled does,
	// off the signal's stream); it stays for the events already in logs.
	SignalsMatched struct {
		SubjectID uuid.UUID   `json:"subject_id"`
		SignalIDs []uuid.UUID `json:"signal_ids"`
	}
	// SubjectSignalled records, on the subject's own stream, that a signal
	// was raised about a subject already known, with the open signals about
	// the subject it matched (none, possibly). Keeping the match off the new
	// signal's stream keeps what its signaller sees the same whether or not
	// the resident was known.
	SubjectSignalled struct {
		SubjectID uuid.UUID   `json:"subject_id"`
		SignalID  uuid.UUID   `json:"signal_id"`
		Matched   []uuid.UUID `json:"matched,omitempty"`
	}
	CaseClosed struct {
		Outcome string `json:"outcome"`
		Note    Sealed `json:"note,omitempty"`
	}
	CaseReopened struct {
		Reason Sealed `json:"reason"`
	}
)

// Subject stream events.
type (
	// SubjectRegistered holds the subject's personal data, sealed under the
	// subject's own key. Its blind-index token lives in the key store, next
	// to the key, and goes with it on erasure (SubjectIndex).
	SubjectRegistered struct {
		SubjectID uuid.UUID `json:"subject_id"`
		Network   string    `json:"network"`
		Data      Sealed    `json:"data"`
	}
	// SubjectErased records a crypto-shredding: the subject's key is gone.
	SubjectErased struct {
		SubjectID  uuid.UUID `json:"subject_id"`
		RequestRef string    `json:"request_ref"`
		Basis      string    `json:"basis"` // request, retention
	}
	SubjectExported struct {
		SubjectID  uuid.UUID `json:"subject_id"`
		RequestRef string    `json:"request_ref,omitempty"`
	}
)

// Organisation stream events (the sociale kaart plus).
type (
	OrganisationRegistered struct {
		OrganisationID string `json:"organisation_id"`
		Network        string `json:"network"`
		Name           string `json:"name"`
		Kind           string `json:"kind"`
	}
	ServiceOffered struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
		Volunteer   bool   `json:"volunteer"`
	}
	ServiceWithdrawn struct {
		Name string `json:"name"`
	}
)

func (SignalRaised) EventType() string { return "SignalRaised" }

// SchemaVersion 2 of SignalRaised added the norms in force at raise.
func (SignalRaised) SchemaVersion() int { return 2 }

// SchemaVersion 2 of FeedbackGiven added the text and its version.
func (FeedbackGiven) SchemaVersion() int { return 2 }

func (SignalWithdrawn) EventType() string        { return "SignalWithdrawn" }
func (SignalHandedOver) EventType() string       { return "SignalHandedOver" }
func (HandoverAccepted) EventType() string       { return "HandoverAccepted" }
func (HandoverDeclined) EventType() string       { return "HandoverDeclined" }
func (CaseAssigned) EventType() string           { return "CaseAssigned" }
func (FollowUpRecorded) EventType() string       { return "FollowUpRecorded" }
func (ReferralMade) EventType() string           { return "ReferralMade" }
func (ReferralAccepted) EventType() string       { return "ReferralAccepted" }
func (ReferralDeclined) EventType() string       { return "ReferralDeclined" }
func (ReferralCompleted) EventType() string      { return "ReferralCompleted" }
func (FeedbackGiven) EventType() string          { return "FeedbackGiven" }
func (SignalsMatched) EventType() string         { return "SignalsMatched" }
func (SubjectSignalled) EventType() string       { return "SubjectSignalled" }
func (CaseClosed) EventType() string             { return "CaseClosed" }
func (CaseReopened) EventType() string           { return "CaseReopened" }
func (SubjectRegistered) EventType() string      { return "SubjectRegistered" }
func (SubjectErased) EventType() string          { return "SubjectErased" }
func (SubjectExported) EventType() string        { return "SubjectExported" }
func (OrganisationRegistered) EventType() string { return "OrganisationRegistered" }
func (ServiceOffered) EventType() string         { return "ServiceOffered" }
func (ServiceWithdrawn) EventType() string       { return "ServiceWithdrawn" }
