package domain

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
)

// Status is where a signal is in its lifecycle:
//
//	raised --handover--> handed_over --accept--> in_care --close--> closed --reopen--> in_care
//	   |                      |--decline--> raised (back to buurtsteun, with reason)
//	   |--withdraw--> withdrawn
type Status string

const (
	StatusNone       Status = ""
	StatusRaised     Status = "raised"
	StatusHandedOver Status = "handed_over"
	StatusInCare     Status = "in_care"
	StatusClosed     Status = "closed"
	StatusWithdrawn  Status = "withdrawn"
)

// Open reports whether a signal in this status still needs work.
func (s Status) Open() bool {
	return s == StatusRaised || s == StatusHandedOver || s == StatusInCare
}

// enum is a closed set of codes, validated on input.
type enum []string

func (e enum) has(v string) bool { return slices.Contains(e, v) }

// The code sets of API.md. Each is a closed list: anything else is invalid.
var (
	Categories       = enum{"loneliness", "malnutrition", "bullying", "debt", "safety", "health", "housing", "other"}
	Urgencies        = enum{"normal", "high", "acute"}
	Consents         = enum{"informed", "not_informed", "vital_interest"}
	FollowUpKinds    = enum{"contact_attempt", "phone_call", "home_visit", "meeting", "other"}
	FollowUpOutcomes = enum{"reached", "not_reached", "declined_help", "other"}
	FeedbackCodes    = enum{"received", "in_progress", "referred", "closed"}
	CloseOutcomes    = enum{"resolved", "referred", "no_care_needed", "unreachable", "declined_help"}
	OrganisationKind = enum{"professional", "volunteer", "school", "sports", "elderly", "housing", "health", "other"}
)

// Values returns a copy of the codes, for documentation and OpenAPI.
func (e enum) Values() []string { return slices.Clone(e) }

// Has reports whether v is one of the codes.
func (e enum) Has(v string) bool { return e.has(v) }

// Sealed is personal data encrypted under its subject's key (see Cipher). The
// domain never sees the plaintext of a Sealed value; it only checks presence.
// It prints and logs as a fixed placeholder.
type Sealed []byte

// Empty reports whether nothing was sealed.
func (s Sealed) Empty() bool { return len(s) == 0 }

// String keeps ciphertext out of fmt output.
func (s Sealed) String() string { return "[sealed]" }

// LogValue keeps ciphertext out of structured logs.
func (s Sealed) LogValue() slog.Value { return slog.StringValue("[sealed]") }

// GoString keeps ciphertext out of %#v.
func (s Sealed) GoString() string { return "[sealed]" }

// MarshalJSON encodes the ciphertext as base64, like []byte.
func (s Sealed) MarshalJSON() ([]byte, error) { return json.Marshal([]byte(s)) }

// UnmarshalJSON decodes base64 ciphertext (standard encoding, as
// encoding/json writes []byte), or null.
func (s *Sealed) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return errors.New("sealed value: not a base64 string")
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(b)-2))
	n, err := base64.StdEncoding.Decode(raw, b[1:len(b)-1])
	if err != nil {
		return errors.New("sealed value: not a base64 string")
	}
	*s = raw[:n]
	return nil
}
