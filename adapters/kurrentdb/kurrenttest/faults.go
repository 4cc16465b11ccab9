package kurrenttest

import (
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Faults a test injects, and what the server counted.

// DropSubscriptions ends every live subscription on this node with
// codes.Unavailable, as a node shutting down does. It returns how many.
func (s *Server) DropSubscriptions() int {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	n := len(s.subs)
	for id, cancel := range s.subs {
		cancel(status.Error(codes.Unavailable, "Server Is Not Ready"))
		delete(s.subs, id)
	}
	return n
}

// FailSubscriptions makes the next n subscription requests fail at once
// with the code (Unavailable: a node not ready; PermissionDenied: access
// denied).
func (s *Server) FailSubscriptions(n int, code codes.Code) {
	s.failCode.Store(int32(code))
	s.failSubs.Store(int64(n))
}

// CutNextSubscription makes the next subscription request end with
// Unavailable after it has sent n events, as a node that goes away in the
// middle of a read.
func (s *Server) CutNextSubscription(n int) { s.cutSubs.Store(int64(n)) }

// AnswerNotLeader makes the next n appends fail with the not-leader error
// naming the current leader (this node, if single), as a node that has just
// lost the leadership does.
func (s *Server) AnswerNotLeader(n int) { s.notLeader.Store(int64(n)) }

// AnswerNoLeader makes the next n appends and reads (subscriptions
// included) fail with KurrentDB's answer from a node that knows no leader,
// as during an election: status Unknown, "No leader info available in
// response", with no trailers. Nothing is written.
func (s *Server) AnswerNoLeader(n int) { s.noLeader.Store(int64(n)) }

// AnswerUnknown makes the next n appends and reads fail with status
// Unknown after the fact: an append is written first (the client cannot
// know it was), a read answers nothing.
func (s *Server) AnswerUnknown(n int) { s.unknown.Store(int64(n)) }

// RefuseConnections makes the node close the next n connections as soon as
// it accepts them.
func (s *Server) RefuseConnections(n int) { s.refuse.Store(int64(n)) }

// SetDelay holds every append and every read (not subscriptions) for d
// before answering, or until the call is cancelled.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// WriteTransaction writes n events (type T, empty JSON objects, with ids
// it returns) to a stream as a legacy explicit transaction, as TCP clients
// of old servers could, and as a log migrated from one holds: the events
// have positions of their own (prepare positions) and share the commit
// position of the transaction's commit record, which follows them.
func (s *Server) WriteTransaction(stream string, n int) []uuid.UUID {
	var evs []proposed
	var ids []uuid.UUID
	for range n {
		id := uuid.New()
		ids = append(ids, id)
		evs = append(evs, proposed{id: id, typ: "T", json: true, data: []byte(`{}`)})
	}
	s.store.writeTransaction(stream, evs)
	return ids
}

// Snapshot is a copy of a log, to restore later.
type Snapshot struct{ st *store }

// Snapshot copies the node's log as it is now (a backup).
func (s *Server) Snapshot() *Snapshot { return &Snapshot{st: s.store.clone()} }

// Restore puts the log back as it was at the snapshot, as a cluster
// restored from a backup: what was written since is gone, and positions
// past the snapshot's end are not in the log (yet). Live subscriptions
// end with Unavailable, as when the node restarts.
func (s *Server) Restore(snap *Snapshot) { s.store.reset(snap.st) }

// ReplaceLog gives the node another log, as another cluster behind the
// same address: it has a history of its own, so its positions are other
// than the ones the first log had. Live subscriptions end with Unavailable.
func (s *Server) ReplaceLog() {
	other := newStore()
	other.write("$another-cluster", "$metadata", []byte(`{"$maxCount":1000,"$acl":{}}`))
	s.store.reset(other)
}

// Appends counts the append calls received.
func (s *Server) Appends() int64 { return s.appends.Load() }

// NotLeaderAnswers counts the calls answered with not-leader.
func (s *Server) NotLeaderAnswers() int64 { return s.notLeaders.Load() }

// NoLeaderAnswers counts the calls answered with no leader info.
func (s *Server) NoLeaderAnswers() int64 { return s.noLeaders.Load() }

// Connections counts the connections accepted (and not refused).
func (s *Server) Connections() int64 { return s.conns.Load() }

// Refused counts the connections refused.
func (s *Server) Refused() int64 { return s.refused.Load() }

// Subscribes counts the subscription requests received.
func (s *Server) Subscribes() int64 { return s.subscribes.Load() }

// take decrements n if it is positive and reports whether it did.
func take(n *atomic.Int64) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}
