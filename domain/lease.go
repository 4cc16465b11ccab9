package domain

import (
	"context"
	"time"
)

// Leases: one replica at a time runs a job that must not run twice (the
// notifier's deliveries), chosen through the shared event log. A lease is a
// stream (LeaseStream) that only its holder appends to, every append fenced
// with the revision it last wrote: renewals keep it, and another replica
// takes it over by appending with the revision it read once the lease has
// expired or was released, so exactly one of several contenders wins.
//
// Expiry compares no clocks across machines: a contender measures, on its
// own monotonic clock, how long it has seen the lease's stream unchanged,
// and the holder stops counting on the lease well before a contender may
// take it (see adapters/loglease). A lease only says who should run the
// job; what the job writes is fenced by its own stream's expected versions
// (Outbox.Claim), so a deposed holder that has not noticed yet cannot
// overwrite its successor's state.

// LeaseCategory is the stream category of leases.
const LeaseCategory = "lease"

// LeaseStream is the stream of the lease called name.
func LeaseStream(name string) string { return LeaseCategory + "-" + name }

// Lease is the right of one holder at a time to run a job.
type Lease interface {
	// Acquire blocks until this process holds the lease, then keeps it
	// renewed in the background until the term is released or lost. It
	// returns an error only when ctx ends (ctx.Err()) or the store is
	// closed. Ending ctx also stops the renewals, as a crash would: another
	// process takes over once the lease expires, or at once after Release.
	Acquire(ctx context.Context) (LeaseTerm, error)
}

// LeaseTerm is one holding of a lease.
type LeaseTerm interface {
	// Term numbers the holdings of a lease: each acquisition's is higher
	// than every earlier one's.
	Term() uint64
	// Holder names the holding process: its replica name and a random id
	// of the process.
	Holder() string
	// Lost is closed when the holder may no longer count on the lease:
	// another took it over, renewing it failed for too long, or the
	// context of Acquire ended. The holder stops the job when it is.
	Lost() <-chan struct{}
	// Err says why Lost was closed (ErrLeaseLost, or the context's error),
	// nil while the term lasts.
	Err() error
	// Release stops renewing the lease and gives it up, so that another
	// process takes it over at once instead of after it expires. It is
	// fenced like a renewal: when another process took the lease over
	// meanwhile, it changes nothing. It may be called after the context of
	// Acquire ended (a clean shutdown).
	Release(ctx context.Context) error
}

// ErrLeaseLost says a term ended: the lease was taken over, or could not be
// renewed in time.
var ErrLeaseLost = &Error{Kind: KindConflict, Code: "lease_lost", Message: "the lease was lost"}

// LeaseAcquired starts a term: Holder holds the lease from now on, and a
// contender may take it over when it has seen no renewal for TTL.
type LeaseAcquired struct {
	Holder  string `json:"holder"`
	Replica string `json:"replica"`
	Term    uint64 `json:"term"`
	TTLms   int64  `json:"ttl_ms"`
}

// TTL is the lease's time to live as a duration.
func (e LeaseAcquired) TTL() time.Duration { return time.Duration(e.TTLms) * time.Millisecond }

// LeaseRenewed keeps a term alive, for TTL more.
type LeaseRenewed struct {
	Holder string `json:"holder"`
	Term   uint64 `json:"term"`
	TTLms  int64  `json:"ttl_ms"`
}

// LeaseReleased ends a term: the lease is free at once.
type LeaseReleased struct {
	Holder string `json:"holder"`
	Term   uint64 `json:"term"`
}

func (LeaseAcquired) EventType() string { return "LeaseAcquired" }
func (LeaseRenewed) EventType() string  { return "LeaseRenewed" }
func (LeaseReleased) EventType() string { return "LeaseReleased" }
