// Package eventlog is the event log port: the one interface every event store
// adapter implements, with the semantics of EventStoreDB / KurrentDB so that
// the embedded Pebble store and the KurrentDB adapter are interchangeable and
// pass one conformance suite (adapters/storetest).
//
// Streams are named "category-id" (StreamName). Each stream is an ordered
// list of events numbered by revision from 0. Every event also has a global
// position: positions are strictly increasing in commit order across all
// streams and start above 0, so 0 means "before everything". The embedded store's
// positions are dense (1, 2, 3, ...); a KurrentDB log's are its commit positions,
// increasing but with gaps. Readers that resume from a checkpoint use "after
// position p" semantics throughout, which both meet.
//
// Appends carry caller-chosen event ids. Retrying an append with the same ids
// and the same expected version after it succeeded succeeds again and writes
// nothing (idempotent retry); a retry whose ids only partly overlap the stored
// ones is a conflict.
package eventlog

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Limits shared by every adapter.
const (
	// MaxEventBytes bounds one event: its type, data and encoded metadata.
	MaxEventBytes = 256 << 10
	// MaxAppendEvents bounds the number of events in one append.
	MaxAppendEvents = 1000
	// MaxAppendBytes bounds one append, counted by AppendSize as KurrentDB
	// counts it against its MaxAppendSize, whose default is this (1 MiB):
	// an append the port accepts is one a KurrentDB server with the default
	// accepts. Writers that batch (the audit log) split their batches to it.
	MaxAppendBytes = 1 << 20
	// MaxTypeLength bounds an event type name.
	MaxTypeLength = 128
	// MaxStreamLength bounds a stream name.
	MaxStreamLength = 256
)

// Errors every adapter returns, classified by domain kind. Match them with
// errors.Is; adapters may return copies with more detail.
var (
	ErrWrongExpectedVersion = &domain.Error{Kind: domain.KindConflict, Code: "wrong_expected_version", Message: "the stream is not at the expected version"}
	ErrStreamNotFound       = &domain.Error{Kind: domain.KindNotFound, Code: "stream_not_found", Message: "the stream does not exist"}
	ErrStreamDeleted        = &domain.Error{Kind: domain.KindConflict, Code: "stream_deleted", Message: "the stream has been deleted"}
	ErrEmptyAppend          = &domain.Error{Kind: domain.KindInvalid, Code: "empty_append", Message: "an append needs at least one event"}
	ErrEventTooLarge        = &domain.Error{Kind: domain.KindTooLarge, Code: "event_too_large", Message: "an event is larger than the limit"}
	ErrAppendTooLarge       = &domain.Error{Kind: domain.KindTooLarge, Code: "append_too_large", Message: "the append is larger than the limit: split it"}
	ErrInvalidEvent         = &domain.Error{Kind: domain.KindInvalid, Code: "invalid_event", Message: "an event or stream name is invalid"}
	ErrClosed               = &domain.Error{Kind: domain.KindUnavailable, Code: "store_closed", Message: "the event store is closed"}
	ErrUnavailable          = &domain.Error{Kind: domain.KindUnavailable, Code: "store_unavailable", Message: "the event store cannot take writes now"}
	// ErrLogDiverged: the store's log is not the one a position came from
	// (restored from an older backup, another cluster behind the same
	// address, a checkpoint of another log). Readers that resume from
	// positions must stop: what they hold does not match the log.
	ErrLogDiverged = &domain.Error{Kind: domain.KindInternal, Code: "log_diverged", Message: "the event log does not hold the position read from: it was restored, replaced or truncated"}
)

// ExpectedKind says what an append expects of the stream's current state.
type ExpectedKind uint8

const (
	ExpectAny          ExpectedKind = iota // no check
	ExpectNoStream                         // the stream must not exist
	ExpectStreamExists                     // the stream must have at least one event
	ExpectRevision                         // the stream's last event must have this revision
)

// ExpectedVersion is the optimistic concurrency check of an append.
type ExpectedVersion struct {
	Kind     ExpectedKind
	Revision uint64 // only for ExpectRevision
}

// Any, NoStream, StreamExists and Revision build the four kinds of check.
func Any() ExpectedVersion          { return ExpectedVersion{Kind: ExpectAny} }
func NoStream() ExpectedVersion     { return ExpectedVersion{Kind: ExpectNoStream} }
func StreamExists() ExpectedVersion { return ExpectedVersion{Kind: ExpectStreamExists} }
func Revision(rev uint64) ExpectedVersion {
	return ExpectedVersion{Kind: ExpectRevision, Revision: rev}
}
func (e ExpectedVersion) String() string {
	switch e.Kind {
	case ExpectNoStream:
		return "no_stream"
	case ExpectStreamExists:
		return "stream_exists"
	case ExpectRevision:
		return "revision"
	default:
		return "any"
	}
}

// Metadata travels with every event. It holds ids and roles, never personal data.
type Metadata struct {
	OccurredAt    time.Time `json:"occurred_at"`
	ActorID       string    `json:"actor_id,omitempty"`
	ActorRole     string    `json:"actor_role,omitempty"`
	OnBehalfOf    string    `json:"on_behalf_of,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	RequestID     string    `json:"request_id,omitempty"`
	Network       string    `json:"network,omitempty"`
	SchemaVersion int       `json:"schema_version,omitempty"`
	// IdempotencyFingerprint is the keyed digest of the request that wrote
	// the event with an Idempotency-Key (empty without one): a later request
	// with the key and another fingerprint is refused, not replayed.
	IdempotencyFingerprint string `json:"idempotency_fingerprint,omitempty"`
}

// EventData is an event to append. ID is chosen by the caller and makes
// retries idempotent; Data is the encoded event body (JSON by convention).
type EventData struct {
	ID       uuid.UUID
	Type     string
	Data     []byte
	Metadata Metadata
}

// Size is what counts against MaxEventBytes: the type, the data and an
// upper bound of the metadata's JSON encoding (its fixed part, and each
// string as if every byte that JSON may escape were escaped).
func (e EventData) Size() int {
	m := e.Metadata
	n := len(e.Type) + len(e.Data) + metadataOverhead
	for _, s := range []string{m.ActorID, m.ActorRole, m.OnBehalfOf, m.CorrelationID, m.CausationID, m.RequestID, m.Network, m.IdempotencyFingerprint} {
		n += jsonStringBound(s)
	}
	return n
}

// metadataOverhead bounds the JSON of Metadata without its strings' contents:
// braces, every key with its quotes, colon and comma, the occurred-at time
// (RFC 3339 with nanoseconds, quoted) and the schema version (an int).
const metadataOverhead = 256

// jsonStringBound bounds the bytes of s inside a JSON string: control
// characters, <, > and & become \u00XX, a byte of an invalid or a line
// separator sequence becomes part of a \uXXXX escape, quotes and
// backslashes are doubled.
func jsonStringBound(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		n += int(jsonExtra[s[i]])
	}
	return n
}

// jsonExtra is what a byte may add to its one in a JSON string.
var jsonExtra = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c < 0x20, c == '<', c == '>', c == '&', c >= 0x80:
			t[c] = 5
		case c == '"', c == '\\':
			t[c] = 1
		}
	}
	return t
}()

// AppendSize is what an append counts against MaxAppendBytes: every
// event's Size plus its type once more, as KurrentDB counts an append
// (data, metadata, and the type in UTF-16: two bytes a character).
func AppendSize(events []EventData) int {
	n := 0
	for _, e := range events {
		n += e.Size() + len(e.Type)
	}
	return n
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	StreamID   string
	Revision   uint64 // its number in the stream, from 0
	Position   uint64 // its global position, > 0
	ID         uuid.UUID
	Type       string
	Data       []byte
	Metadata   Metadata
	RecordedAt time.Time // when the store committed it
}

// AppendResult reports where an append's last event landed.
type AppendResult struct {
	NextRevision uint64 // the revision of the stream's last event after the append
	Position     uint64 // the global position of the append's last event
}

// Direction of a stream read.
type Direction uint8

const (
	Forwards Direction = iota
	Backwards
)

// End as the start revision of a backwards read starts at the stream's last event.
const End uint64 = math.MaxUint64

// Filter selects events for a subscription. An empty filter selects all
// events. StreamPrefixes and EventTypes each, when non-empty, must match:
// the stream name starts with one of the prefixes, and the type is one of the
// event types.
type Filter struct {
	StreamPrefixes []string
	EventTypes     []string
}

// Match reports whether the filter selects an event of this stream and type.
func (f Filter) Match(stream, eventType string) bool {
	if len(f.StreamPrefixes) > 0 {
		ok := false
		for _, p := range f.StreamPrefixes {
			if strings.HasPrefix(stream, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.EventTypes) > 0 {
		for _, t := range f.EventTypes {
			if t == eventType {
				return true
			}
		}
		return false
	}
	return true
}

// Store is the event log port.
type Store interface {
	// Append appends events to the stream if it is at the expected version, as
	// one atomic write, acknowledged only once durable. It returns
	// ErrWrongExpectedVersion (conflict), ErrEmptyAppend and ErrInvalidEvent
	// (invalid), ErrEventTooLarge and ErrAppendTooLarge (too large; the
	// second for more than MaxAppendEvents events or MaxAppendBytes, or a
	// server that takes less: split the append), ErrStreamDeleted, ErrClosed
	// or ErrUnavailable (unavailable).
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// ReadStream returns up to limit events of one stream starting at revision
	// from (inclusive), in the given direction; a backwards read from End starts
	// at the last event. It returns ErrStreamNotFound for a stream with no events.
	ReadStream(ctx context.Context, stream string, dir Direction, from uint64, limit int) ([]RecordedEvent, error)

	// ReadAll returns up to limit events with a position greater than after, in
	// global order.
	ReadAll(ctx context.Context, after uint64, limit int) ([]RecordedEvent, error)

	// Subscribe starts a catch-up subscription to all events with a position
	// greater than after that match the filter: it delivers history, then live
	// events, in global order. It ends when ctx is cancelled or Close is called.
	Subscribe(ctx context.Context, after uint64, filter Filter) (Subscription, error)

	// Head returns the position of the last committed event, 0 when empty.
	Head(ctx context.Context) (uint64, error)

	// Close releases the store. Appends after Close return ErrClosed.
	Close() error
}

// Subscription delivers events one at a time.
type Subscription interface {
	// Next blocks until the next matching event, and returns an error once the
	// subscription ends: ctx.Err() or context.Canceled after Close, ErrClosed
	// when the store closed, or the adapter's failure.
	Next(ctx context.Context) (RecordedEvent, error)
	// Close ends the subscription and releases its resources. It is safe to
	// call more than once and concurrently with Next.
	Close() error
}

// StreamName joins a category and an id into a stream name.
func StreamName(category, id string) string { return category + "-" + id }

// Category returns the part of a stream name before the first '-'.
func Category(stream string) string {
	if i := strings.IndexByte(stream, '-'); i >= 0 {
		return stream[:i]
	}
	return stream
}

// Validate checks a stream name and events against the port's rules, so every
// adapter rejects the same inputs with the same errors.
func Validate(stream string, events []EventData) error {
	if len(events) == 0 {
		return ErrEmptyAppend
	}
	if len(events) > MaxAppendEvents {
		return &domain.Error{Kind: domain.KindTooLarge, Code: ErrAppendTooLarge.Code, Message: "too many events in one append: split it"}
	}
	if stream == "" || len(stream) > MaxStreamLength || strings.HasPrefix(stream, "$") || !isPrintable(stream) {
		return ErrInvalidEvent
	}
	total := 0
	for _, e := range events {
		if e.ID == uuid.Nil || e.Type == "" || len(e.Type) > MaxTypeLength || !isPrintable(e.Type) {
			return ErrInvalidEvent
		}
		size := e.Size()
		if size > MaxEventBytes {
			return ErrEventTooLarge
		}
		total += size + len(e.Type) // as AppendSize counts
	}
	if total > MaxAppendBytes {
		return ErrAppendTooLarge
	}
	return nil
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
