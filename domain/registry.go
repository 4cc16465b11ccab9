package domain

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Event schema evolution. Every event type has a schema version, written
// into each event's metadata (eventlog.Metadata.SchemaVersion): 1 as first
// written, or what the type's SchemaVersion method returns. History is never
// rewritten: when a type's shape changes, its version goes up and the
// registry upcasts older bodies, one version at a time, when they are read,
// so deciders and projections only ever see the current shape.
//
// To add a version of an event type:
//  1. change the struct, and give it (or raise) a method
//     `func (T) SchemaVersion() int { return N }`;
//  2. write an upcaster from N-1 to N that turns the old JSON body into the
//     new one (defaults for new fields, renames, splits), and add it to
//     upcasters below;
//  3. run `go test ./domain -run TestGoldenEvents -update`: it writes the
//     golden file testdata/events/T.vN.json of the new shape and never
//     touches older ones, which keep decoding (through the upcasters) in
//     TestGoldenEvents forever.
//
// Removing or retyping a field without an upcaster makes the old golden
// files fail to decode, so CI catches a change that would break old events.

// SchemaVersion is the first schema version of every event type.
const SchemaVersion = 1

// versioned is implemented by event types past their first version.
type versioned interface{ SchemaVersion() int }

// VersionOf returns the current schema version of e's type.
func VersionOf(e Event) int {
	if v, ok := e.(versioned); ok {
		return v.SchemaVersion()
	}
	return SchemaVersion
}

// Upcaster turns an event body of one schema version into the next one.
type Upcaster func(old json.RawMessage) (json.RawMessage, error)

// upcasters of the domain's event types, by type and the version they read.
//
// SignalRaised and FeedbackGiven went to version 2 by adding optional
// fields (the norms at raise; the text given): a version 1 body is a
// version 2 body without them, and readers take their absence as the
// defaults of the time (norm version 0.0, the default text of the code).
func upcasters() map[string]map[int]Upcaster {
	return map[string]map[int]Upcaster{
		"SignalRaised":  {1: addedOptionalFields},
		"FeedbackGiven": {1: addedOptionalFields},
	}
}

// addedOptionalFields upcasts a body to a version that only added optional
// fields: the body is unchanged.
func addedOptionalFields(old json.RawMessage) (json.RawMessage, error) { return old, nil }

// Registry maps event type names to decoders and upcasters. It is built
// explicitly at start-up (NewRegistry), never from init() globals.
type Registry struct {
	decoders  map[string]func([]byte) (Event, error)
	versions  map[string]int
	upcasters map[string]map[int]Upcaster
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
	r := &Registry{decoders: map[string]func([]byte) (Event, error){}, versions: map[string]int{}, upcasters: upcasters()}
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
		{SubjectSignalled{}, decoder[SubjectSignalled]()},
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
		{RoutingRulesSet{}, decoder[RoutingRulesSet]()},
		{NotificationTargetsSet{}, decoder[NotificationTargetsSet]()},
		{AccessReviewed{}, decoder[AccessReviewed]()},
		{CategoriesSet{}, decoder[CategoriesSet]()},
		{NormsSet{}, decoder[NormsSet]()},
		{FeedbackTextsSet{}, decoder[FeedbackTextsSet]()},
		{NeighbourhoodsSet{}, decoder[NeighbourhoodsSet]()},
		{SessionKeyCreated{}, decoder[SessionKeyCreated]()},
		{SessionEnded{}, decoder[SessionEnded]()},
		{LeaseAcquired{}, decoder[LeaseAcquired]()},
		{LeaseRenewed{}, decoder[LeaseRenewed]()},
		{LeaseReleased{}, decoder[LeaseReleased]()},
		{OutboxSnapshot{}, decoder[OutboxSnapshot]()},
		{OutboxClaimed{}, decoder[OutboxClaimed]()},
		{OutboxQueued{}, decoder[OutboxQueued]()},
		{OutboxDone{}, decoder[OutboxDone]()},
		{OutboxFailed{}, decoder[OutboxFailed]()},
		{OutboxRetried{}, decoder[OutboxRetried]()},
		{OutboxSealed{}, decoder[OutboxSealed]()},
	} {
		r.decoders[d.e.EventType()] = d.dec
		r.versions[d.e.EventType()] = VersionOf(d.e)
	}
	return r
}

// Register adds an event type defined outside this package (audit events,
// routing rules): its decoder, its current version (that of its zero value)
// and the upcasters to it, keyed by the version each reads. It panics on a
// duplicate name or a missing upcaster: programming errors found at start-up.
func (r *Registry) Register(zero Event, dec func([]byte) (Event, error), up map[int]Upcaster) {
	t := zero.EventType()
	if _, dup := r.decoders[t]; dup {
		panic("domain: event type registered twice: " + t)
	}
	for v := SchemaVersion; v < VersionOf(zero); v++ {
		if up[v] == nil {
			panic(fmt.Sprintf("domain: %s has no upcaster from version %d", t, v))
		}
	}
	r.decoders[t], r.versions[t], r.upcasters[t] = dec, VersionOf(zero), up
}

// Version returns the current schema version of a registered event type.
func (r *Registry) Version(eventType string) int { return r.versions[eventType] }

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

// Decode decodes an event body of a registered type in its current version.
func (r *Registry) Decode(eventType string, data []byte) (Event, error) {
	return r.DecodeVersion(eventType, r.versions[eventType], data)
}

// DecodeVersion decodes an event body written at schema version (0, from
// before versions were recorded, counts as 1): older bodies are upcast to
// the current version first. It returns a KindInternal error for an unknown
// type, a version newer than this code knows, or a body that does not decode:
// the log holds only what this code, or an older version of it, wrote.
func (r *Registry) DecodeVersion(eventType string, version int, data []byte) (Event, error) {
	dec, ok := r.decoders[eventType]
	if !ok {
		return nil, Errorf(KindInternal, "unknown_event_type", "unknown event type %q", eventType)
	}
	current := r.versions[eventType]
	if version == 0 {
		version = SchemaVersion
	}
	if version > current {
		return nil, Errorf(KindInternal, "newer_event_version", "event %s has schema version %d; this code knows up to %d", eventType, version, current)
	}
	for ; version < current; version++ {
		up := r.upcasters[eventType][version]
		if up == nil {
			return nil, Errorf(KindInternal, "missing_upcaster", "event %s: no upcaster from schema version %d", eventType, version)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, Wrap(KindInternal, "undecodable_event", fmt.Sprintf("event %s does not upcast from version %d", eventType, version), err)
		}
	}
	e, err := dec(data)
	if err != nil {
		return nil, Wrap(KindInternal, "undecodable_event", fmt.Sprintf("event %s does not decode", eventType), err)
	}
	return e, nil
}

// Encode encodes an event body.
func Encode(e Event) ([]byte, error) { return json.Marshal(e) }
