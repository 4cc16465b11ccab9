package domain

import (
	"encoding/json"
	"fmt"
	"sort"
)

// SchemaVersion is the current schema version of every event type; it is
// written into each event's metadata.
const SchemaVersion = 1

// Registry maps event type names to decoders. It is built explicitly at
// start-up (NewRegistry), never from init() globals.
type Registry struct {
	decoders map[string]func([]byte) (Event, error)
}

func decoder[E Event]() func([]byte) (Event, error) {
	return func(data []byte) (Event, error) {
		var e E
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, err
		}
		return e, nil
	}
}

// NewRegistry returns a registry of every event type of the domain.
func NewRegistry() *Registry {
	r := &Registry{decoders: map[string]func([]byte) (Event, error){}}
	for _, d := range []struct {
		e   Event
		dec func([]byte) (Event, error)
	}{
		{SignalRaised{}, decoder[SignalRaised]()},
		{SignalWithdrawn{}, decoder[SignalWithdrawn]()},
		{SignalHandedOver{}, decoder[SignalHandedOver]()},
		{HandoverAccepted{}, decoder[HandoverAccepted]()},
		{HandoverDeclined{}, decoder[HandoverDeclined]()},
		{CaseAssigned{}, decoder[CaseAssigned]()},
		{FollowUpRecorded{}, decoder[FollowUpRecorded]()},
		{ReferralMade{}, decoder[ReferralMade]()},
		{ReferralAccepted{}, decoder[ReferralAccepted]()},
		{ReferralDeclined{}, decoder[ReferralDeclined]()},
		{ReferralCompleted{}, decoder[ReferralCompleted]()},
		{FeedbackGiven{}, decoder[FeedbackGiven]()},
		{SignalsMatched{}, decoder[SignalsMatched]()},
		{CaseClosed{}, decoder[CaseClosed]()},
		{CaseReopened{}, decoder[CaseReopened]()},
		{SubjectRegistered{}, decoder[SubjectRegistered]()},
		{SubjectErased{}, decoder[SubjectErased]()},
		{SubjectExported{}, decoder[SubjectExported]()},
		{OrganisationRegistered{}, decoder[OrganisationRegistered]()},
		{ServiceOffered{}, decoder[ServiceOffered]()},
		{ServiceWithdrawn{}, decoder[ServiceWithdrawn]()},
		{RecordAccessed{}, decoder[RecordAccessed]()},
		{AccessDenied{}, decoder[AccessDenied]()},
	} {
		r.decoders[d.e.EventType()] = d.dec
	}
	return r
}

// Register adds a decoder for an event type defined outside this package
// (audit events, routing rules). It panics on a duplicate name: that is a
// programming error found at start-up.
func (r *Registry) Register(eventType string, dec func([]byte) (Event, error)) {
	if _, dup := r.decoders[eventType]; dup {
		panic("domain: event type registered twice: " + eventType)
	}
	r.decoders[eventType] = dec
}

// Types lists the registered event types, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.decoders))
	for t := range r.decoders {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Known reports whether the event type is registered.
func (r *Registry) Known(eventType string) bool {
	_, ok := r.decoders[eventType]
	return ok
}

// Decode decodes an event body of a registered type. It returns a KindInternal
// error for an unknown type or a body that does not decode: the log holds only
// what this code wrote.
func (r *Registry) Decode(eventType string, data []byte) (Event, error) {
	dec, ok := r.decoders[eventType]
	if !ok {
		return nil, Errorf(KindInternal, "unknown_event_type", "unknown event type %q", eventType)
	}
	e, err := dec(data)
	if err != nil {
		return nil, Wrap(KindInternal, "undecodable_event", fmt.Sprintf("event %s does not decode", eventType), err)
	}
	return e, nil
}

// Encode encodes an event body.
func Encode(e Event) ([]byte, error) { return json.Marshal(e) }
