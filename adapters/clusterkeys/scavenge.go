package clusterkeys

import (
	"context"
)

// NodeScavenge is one node's answer to a request to scavenge.
type NodeScavenge struct {
	Node   string // host:port
	Leader bool
	ID     string // the scavenge's id on the node (its $scavenges-<id> stream)
	Result string // Started, or InProgress when one was running already
}

// Scavenge asks every live node of the cluster (followers and read-only
// replicas first, the leader last) to start a scavenge through KurrentDB's
// operations API, so the events of erased subjects' tombstoned key streams
// and soft-deleted index streams leave the nodes' chunk files (see the
// package documentation for what stays). It returns when every node has
// accepted, not when the scavenges are done: each runs on its node in the
// background. The cluster must let the connection string's user start
// scavenges (an admin or ops user, over TLS), unless it runs insecure.
// Errors: ErrClosed, ErrUnavailable and "canceled" (KindUnavailable),
// KindInternal (a node refused).
func (s *Store) Scavenge(ctx context.Context) ([]NodeScavenge, error) {
	if err := s.life.Enter(); err != nil {
		return nil, err
	}
	defer s.life.Exit()
	got, err := s.c.StartScavenge(ctx)
	out := make([]NodeScavenge, len(got))
	for i, g := range got {
		out[i] = NodeScavenge{Node: g.Node, Leader: g.Leader, ID: g.ID, Result: g.Result}
	}
	return out, classify(ctx, err)
}
