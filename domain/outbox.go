package domain

// The events of an outbox kept in the event log (adapters/logoutbox), shared
// by the replicas of a cluster. The outbox is a chain of segment streams
// (OutboxStream): each segment starts with a snapshot of the whole state
// (OutboxSnapshot, in parts) and the claim of its writer, holds the changes
// since, and ends with OutboxSealed naming the next segment, so a replica
// that takes over reads one segment, never the whole history. Every append
// carries the revision its writer last read: a writer whose claim was taken
// over fails (fencing). Like every notification, they hold ids, codes and
// links, never personal data.

// OutboxCategory is the stream category of outboxes kept in the log.
const OutboxCategory = "outbox"

// OutboxSnapshot is one part of the whole state at the start of a segment.
// The parts of a snapshot are written in one append; part 0 resets the
// state and carries the checkpoint and the claim in force (the event id of
// the last OutboxClaimed).
type OutboxSnapshot struct {
	Part       int        `json:"part"`
	Parts      int        `json:"parts"`
	Checkpoint *uint64    `json:"checkpoint,omitempty"`
	Claim      string     `json:"claim,omitempty"`
	Pending    []Delivery `json:"pending,omitempty"`
	Dead       []Delivery `json:"dead,omitempty"`
	Marks      []string   `json:"marks,omitempty"`
}

// OutboxClaimed makes Owner the outbox's writer: the writes of an earlier
// owner, fenced with a revision before this event, fail.
type OutboxClaimed struct {
	Owner string `json:"owner"`
}

// OutboxQueued stores deliveries (a dead letter among them stays one),
// marks of time-triggered notifications and, when set, the checkpoint.
type OutboxQueued struct {
	Deliveries []Delivery `json:"deliveries,omitempty"`
	Marks      []string   `json:"marks,omitempty"`
	Checkpoint *uint64    `json:"checkpoint,omitempty"`
}

// OutboxDone removes delivered (or undeliverable) deliveries.
type OutboxDone struct {
	IDs []string `json:"ids"`
}

// OutboxFailed moves a delivery to the dead letters with its error.
type OutboxFailed struct {
	Delivery Delivery `json:"delivery"`
}

// OutboxRetried moves a dead letter back to the pending deliveries (an
// admin's retry, through any replica).
type OutboxRetried struct {
	ID string `json:"id"`
}

// OutboxSealed ends a segment: the outbox continues in the stream Next.
type OutboxSealed struct {
	Next string `json:"next"`
}

func (OutboxSnapshot) EventType() string { return "OutboxSnapshot" }
func (OutboxClaimed) EventType() string  { return "OutboxClaimed" }
func (OutboxQueued) EventType() string   { return "OutboxQueued" }
func (OutboxDone) EventType() string     { return "OutboxDone" }
func (OutboxFailed) EventType() string   { return "OutboxFailed" }
func (OutboxRetried) EventType() string  { return "OutboxRetried" }
func (OutboxSealed) EventType() string   { return "OutboxSealed" }
