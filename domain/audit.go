package domain

import (
	"time"

	"github.com/google/uuid"
)

// AccessRecord is one access to personal data, or a denied attempt, with the
// fields of NEN 7513: who (actor id and role), on behalf of whom, which
// subjects and signals, which view, the action, when, the purpose of use, the
// authorization basis, the outcome, the client address and the request id.
// It holds ids only; a break-glass reason is free text and stays sealed under
// the key of the first subject.
type AccessRecord struct {
	At               time.Time   `json:"at"`
	ActorID          string      `json:"actor_id"`
	ActorRole        string      `json:"actor_role"`
	OnBehalfOf       string      `json:"on_behalf_of,omitempty"`
	Action           string      `json:"action"`
	View             string      `json:"view"`
	Purpose          string      `json:"purpose,omitempty"`
	Basis            Basis       `json:"basis,omitempty"`
	BreakGlassReason Sealed      `json:"break_glass_reason,omitempty"`
	Subjects         []uuid.UUID `json:"subject_ids,omitempty"`
	Signals          []uuid.UUID `json:"signal_ids,omitempty"`
	Outcome          string      `json:"outcome"`
	ClientAddr       string      `json:"client_addr,omitempty"`
	RequestID        string      `json:"request_id,omitempty"`
	Network          string      `json:"network,omitempty"`
}

// Chain links an audit record to its predecessor in its audit stream: Seq is
// its revision and Prev the hex SHA-256 of the previous record's stored bytes
// (for the first record, of the stream name), so any edit, deletion, reorder
// or truncation breaks the chain.
type Chain struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
}

// Audit stream events.
type (
	RecordAccessed struct {
		AccessRecord
		Chain
	}
	AccessDenied struct {
		AccessRecord
		Chain
	}
)

func (RecordAccessed) EventType() string { return "RecordAccessed" }
func (AccessDenied) EventType() string   { return "AccessDenied" }
