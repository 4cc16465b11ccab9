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
//
// On behalf of whom is client text (X-On-Behalf-Of): the auditor seals it
// under the first subject's key into OnBehalfOfSealed, like a break-glass
// reason, and keeps OnBehalfOf empty (records written before hold it in
// clear); a record without a subject does not keep it. The request id is the
// server's own; a client's X-Request-ID is kept apart as ClientRequestID.
type AccessRecord struct {
	At               time.Time   `json:"at"`
	ActorID          string      `json:"actor_id"`
	ActorRole        string      `json:"actor_role"`
	OnBehalfOf       string      `json:"on_behalf_of,omitempty"`
	OnBehalfOfSealed Sealed      `json:"on_behalf_of_sealed,omitempty"`
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
	ClientRequestID  string      `json:"client_request_id,omitempty"`
	Network          string      `json:"network,omitempty"`
}

// Purposes of use a client may name in X-Purpose (NEN 7513): care (the
// default), consultation of a colleague, and quality review. The server
// sets the others itself: break_glass, privacy_audit, privacy_request.
var ClientPurposes = enum{"care", "consultation", "quality"}

// Purposes the server sets.
const (
	PurposeCare           = "care"
	PurposeBreakGlass     = "break_glass"
	PurposePrivacyAudit   = "privacy_audit"
	PurposePrivacyRequest = "privacy_request"
)

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
