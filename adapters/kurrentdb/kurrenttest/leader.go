package kurrenttest

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Leadership and the errors a cluster node answers with, as KurrentDB
// sends them.

// leader reports whether this node is the leader, and the leader's address
// ("" during an election).
func (s *Server) leader() (bool, string) {
	if s.cluster == nil {
		return true, s.addr
	}
	return s.cluster.leaderOf(s)
}

// notLeaderError is KurrentDB's answer from a node that cannot serve a call
// needing the leader: NotFound with the leader's endpoint in the trailers,
// or, when it knows no leader (an election), noLeaderError.
func (s *Server) notLeaderError(setTrailer func(metadata.MD)) error {
	_, addr := s.leader()
	if addr == "" {
		return s.noLeaderError()
	}
	host, port, _ := net.SplitHostPort(addr)
	s.notLeaders.Add(1)
	setTrailer(metadata.Pairs("exception", "not-leader", "leader-endpoint-host", host, "leader-endpoint-port", port))
	return status.Error(codes.NotFound, "Leader info available")
}

// noLeaderError is KurrentDB's answer to a call needing the leader from a
// node that knows none (RpcExceptions.NoLeaderInfo): status Unknown and no
// trailers, so the client neither reconnects nor names a node.
func (s *Server) noLeaderError() error {
	s.noLeaders.Add(1)
	return status.Error(codes.Unknown, "No leader info available in response")
}

// unknownError is an answer whose outcome the client cannot know.
func unknownError() error {
	return status.Error(codes.Unknown, "Unexpected error")
}

// requiresLeader reports whether the call asks for the leader and this node
// is not it.
func (s *Server) requiresLeader(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("requires-leader"); len(v) == 0 || !strings.EqualFold(v[0], "true") {
		return false
	}
	ok, _ := s.leader()
	return !ok
}

// hold waits out the delay knob.
func (s *Server) hold(ctx context.Context) error {
	d := time.Duration(s.delay.Load())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func streamDeleted(name string, setTrailer func(metadata.MD)) error {
	setTrailer(metadata.Pairs("exception", "stream-deleted", "stream-name", name))
	return status.Errorf(codes.FailedPrecondition, "Event stream '%s' is deleted.", name)
}

func uuidFrom(u *shared.UUID) (uuid.UUID, bool) {
	if st := u.GetStructured(); st != nil {
		var id uuid.UUID
		for i := 0; i < 8; i++ {
			id[i] = byte(uint64(st.MostSignificantBits) >> (56 - 8*i))
			id[8+i] = byte(uint64(st.LeastSignificantBits) >> (56 - 8*i))
		}
		return id, true
	}
	id, err := uuid.Parse(u.GetString_())
	return id, err == nil
}

func uuidTo(id uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	var most, least uint64
	for i := 0; i < 8; i++ {
		most = most<<8 | uint64(id[i])
		least = least<<8 | uint64(id[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: int64(most), LeastSignificantBits: int64(least)}}}
}
