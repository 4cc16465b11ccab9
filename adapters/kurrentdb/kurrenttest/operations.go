package kurrenttest

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
)

// ScavengeRequest is one StartScavenge call a node received.
type ScavengeRequest struct {
	ID             string // the id the node answered with
	Threads        int32
	StartFromChunk int32
	At             time.Time
}

// operations records the node's operations calls. Only StartScavenge of
// KurrentDB's operations API is served, and it scavenges nothing: it
// records the request and answers Started, so tests can check that a
// scavenge was asked for. (A real node rewrites its completed chunks
// without the events of deleted streams; this in-memory log keeps them.)
type operations struct {
	mu        sync.Mutex
	scavenges []ScavengeRequest
}

// Scavenges returns the StartScavenge calls the node received, in order.
func (s *Server) Scavenges() []ScavengeRequest {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	return append([]ScavengeRequest(nil), s.ops.scavenges...)
}

// registerOperations serves the operations API on the node's gRPC server.
func (s *Server) registerOperations(g *grpc.Server) {
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: kurrentconn.OperationsService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "StartScavenge",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := kurrentconn.EmptyStartScavengeReq()
				if err := dec(req); err != nil {
					return nil, err
				}
				threads, from := kurrentconn.StartScavengeOptions(req)
				r := ScavengeRequest{ID: uuid.NewString(), Threads: threads, StartFromChunk: from, At: time.Now()}
				s.ops.mu.Lock()
				s.ops.scavenges = append(s.ops.scavenges, r)
				s.ops.mu.Unlock()
				return kurrentconn.NewScavengeResp(r.ID, "Started"), nil
			},
		}},
	}, s)
}
