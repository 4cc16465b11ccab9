// Package kurrenttest is a TEST FIXTURE, not a product feature: an
// in-process gRPC server that speaks enough of the KurrentDB (EventStoreDB)
// client protocol for the real EventStore-Client-Go/v4 client to work
// against it unchanged over esdb://127.0.0.1:PORT?tls=false. No KurrentDB
// can run on the project's machines (no .NET runtime, no Docker engine), so
// the adapter's tests, the conformance suite and the end-to-end tests on the
// KurrentDB adapter run against this. It keeps everything in memory.
//
// It is built on the server interfaces generated in the client module and
// answers as KurrentDB does (read from its source, not copied):
//
//   - Streams.Append: expected revision any, no_stream, stream_exists or
//     exact; idempotency as the server's commit check (strong with an exact
//     revision or no_stream: the ids right after it; weak with any or
//     stream_exists: the first id decides, in a cache of committed ids that
//     here holds every id); wrong expected version with both current and
//     expected revisions; stream deleted; the required type and content-type
//     metadata; the maximum append size (1 MiB by default, counted as the
//     server counts it). The answer's position is the last
//     event's (commit and prepare positions alike, as for every event
//     written through gRPC).
//   - Streams.Read: streams forwards and backwards (a missing or deleted
//     stream answers StreamNotFound, a tombstoned one the stream-deleted
//     error), $all forwards (from a position, inclusive) and backwards (from
//     a position, exclusive), with prefix or regular expression filters;
//     only event messages, as the v4 client panics on any other in a read.
//     Catch-up subscriptions to a stream or $all (after the position given),
//     filtered, with checkpoints every window x multiplier considered events
//     and when catching up, and a caught-up message (the v4 client handles
//     it). A position that is not one of the log's is an invalid-position
//     error, as on a real server.
//   - Streams.Delete (soft: a $metadata event truncates the stream) and
//     Streams.Tombstone (a $streamDeleted event): minimal, their answers
//     carry a position (the client needs it).
//   - ServerFeatures and Gossip: one leader node, or a Cluster of nodes
//     sharing one log, one of them leader. A follower answers a call that
//     carries requires-leader with the not-leader error naming the leader,
//     and forwards other writes (here: writes the shared log).
//   - Every event carries the system metadata the client needs (type,
//     content-type, and created in .NET ticks since the Unix epoch, without
//     which the client exits the process); the log holds a few system events
//     before any user event, as a fresh node's does; positions grow by each
//     record's size, so they are increasing but not dense.
//   - Keepalive: the server accepts pings every 5 s or more, with or without
//     streams; the client pings every 10 s.
//
// Log knobs let tests write a legacy explicit transaction (events sharing a
// commit position), and restore the log from a snapshot or replace it with
// another cluster's (a log that went backwards).
//
// Fault knobs let tests drop or refuse subscriptions, refuse connections,
// answer not-leader, no leader info (an election; Cluster.Elect(-1) holds
// one) or Unknown, and delay calls; counters report appends, not-leader and
// no-leader answers, connections, subscription requests and the client's
// HTTP/2 pings.
//
// TLS and users: with Options.TLS the node serves over TLS with a
// self-signed certificate for the loopback address (CAFile); with
// Options.Users every Streams call must carry a user's basic credentials:
// none is access denied (PermissionDenied), a wrong user or password
// unauthenticated, as KurrentDB answers them; SetPassword rotates one.
//
// Not implemented: batch append, persistent subscriptions, projections,
// ACLs beyond "a known user may do everything", link resolution,
// stream metadata semantics beyond soft delete (max age, max count, ACLs),
// scavenging (the operations API's StartScavenge is answered and recorded,
// see Scavenges, but nothing is removed), read-only replicas, FellBehind (the server does not send it
// either), and the compatibility read messages (first/last stream position)
// a client may ask for.
package kurrenttest

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossipapi "github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	featuresapi "github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// Options configure a server. The zero value is a single leader node as
// KurrentDB's defaults make it.
type Options struct {
	// KeepaliveMinTime is the shortest interval between client pings the
	// server tolerates (default 5 s). Pings more frequent than this count as
	// strikes, and a client with too many strikes is sent away (GOAWAY), as
	// by any grpc server enforcing a ping policy.
	KeepaliveMinTime time.Duration
	// MaxAppendSize bounds the bytes of one append's events, counted as
	// KurrentDB counts them: data, user metadata and the type twice (UTF-16)
	// of each (default 1 MiB, KurrentDB's default MaxAppendSize).
	MaxAppendSize int
	// NoCaughtUp leaves out the caught-up message of subscriptions, as
	// servers before it was added do: a subscription confirmed at the end
	// of a quiet log then hears nothing until the next event.
	NoCaughtUp bool
	// TLS serves over TLS with a self-signed certificate for the loopback
	// address, which CAFile names (the URL carries it as tlsCAFile); single
	// nodes only (StartWith).
	TLS bool
	// Users, when not nil, are the users and passwords the node knows:
	// every Streams call must then carry one's credentials (which the
	// client sends only over TLS). SetPassword changes them.
	Users map[string]string
}

// Server is one node. Start one with Start, StartWith or StartCluster.
type Server struct {
	opts    Options
	store   *store
	cluster *Cluster // nil: a single node, always leader
	index   int      // in the cluster
	id      uuid.UUID

	grpc *grpc.Server
	addr string

	tls     *tls.Config // nil: plain HTTP/2
	caFile  string
	usersMu sync.Mutex
	users   map[string]string // nil: no authentication

	refusedCreds atomic.Int64

	subsMu sync.Mutex
	subs   map[int]context.CancelCauseFunc
	subSeq int

	notLeader atomic.Int64 // answer this many appends with not-leader
	noLeader  atomic.Int64 // answer this many appends and reads with no leader info
	unknown   atomic.Int64 // answer this many appends and reads with Unknown
	refuse    atomic.Int64 // close this many new connections at once
	failSubs  atomic.Int64 // fail this many subscription requests
	cutSubs   atomic.Int64 // end the next subscription after this many events
	failCode  atomic.Int32
	delay     atomic.Int64 // hold appends and reads this long (ns)

	appends, notLeaders, noLeaders, conns, refused, subscribes atomic.Int64

	pingMu sync.Mutex
	pings  []time.Time

	ops operations // operations API calls (operations.go)
}

// New returns a single node with an empty log; Serve it.
func New(opts Options) *Server {
	return newServer(opts, newStore(), nil, 0)
}

func newServer(opts Options, st *store, c *Cluster, index int) *Server {
	if opts.KeepaliveMinTime == 0 {
		opts.KeepaliveMinTime = 5 * time.Second
	}
	if opts.MaxAppendSize == 0 {
		opts.MaxAppendSize = 1 << 20
	}
	s := &Server{opts: opts, store: st, cluster: c, index: index, id: uuid.New(), subs: map[int]context.CancelCauseFunc{}}
	if opts.Users != nil {
		s.users = map[string]string{}
		for u, p := range opts.Users {
			s.users[u] = p
		}
	}
	return s
}

// Start serves a single node on a fresh loopback port until the test ends.
func Start(tb testing.TB) *Server { return StartWith(tb, Options{}) }

// StartWith is Start with options.
func StartWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := New(opts)
	if opts.TLS {
		if err := s.useTLS(tb.TempDir()); err != nil {
			tb.Fatal(err)
		}
	}
	s.Serve(listen(tb))
	tb.Cleanup(s.Stop)
	return s
}

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// Serve serves on ln in the background until Stop.
func (s *Server) Serve(ln net.Listener) {
	s.addr = ln.Addr().String()
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: s.opts.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(32 << 20),
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
	}
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	s.grpc = grpc.NewServer(opts...)
	api.RegisterStreamsServer(s.grpc, &streamsService{s: s})
	gossipapi.RegisterGossipServer(s.grpc, &gossipService{s: s})
	featuresapi.RegisterServerFeaturesServer(s.grpc, &featuresService{})
	s.registerOperations(s.grpc)
	go func() { _ = s.grpc.Serve(&listener{Listener: ln, s: s}) }()
}

// Addr is the node's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is a connection string for this node alone, without credentials:
// with TLS it names the node's certificate as tlsCAFile.
func (s *Server) URL() string {
	if s.tls != nil {
		return "esdb://" + s.addr + "?tlsCAFile=" + s.caFile
	}
	return "esdb://" + s.addr + "?tls=false"
}

// URLAs is URL with a user's credentials.
func (s *Server) URLAs(user, password string) string {
	return strings.Replace(s.URL(), "esdb://", "esdb://"+user+":"+password+"@", 1)
}

// Stop stops the node at once, ending every call and connection.
func (s *Server) Stop() {
	if s.grpc != nil {
		s.grpc.Stop()
	}
}

// featuresService answers which methods the node supports, as KurrentDB
// lists them (lower case service and method names).
type featuresService struct {
	featuresapi.UnimplementedServerFeaturesServer
}

func (*featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*featuresapi.SupportedMethods, error) {
	const streams = "event_store.client.streams.streams"
	return &featuresapi.SupportedMethods{
		EventStoreServerVersion: "25.0.0",
		Methods: []*featuresapi.SupportedMethod{
			{ServiceName: streams, MethodName: "read", Features: []string{"position", "events"}},
			{ServiceName: streams, MethodName: "append"},
			{ServiceName: streams, MethodName: "delete"},
			{ServiceName: streams, MethodName: "tombstone"},
			{ServiceName: "event_store.client.gossip.gossip", MethodName: "read"},
			{ServiceName: "event_store.client.server_features.serverfeatures", MethodName: "getsupportedmethods"},
		},
	}, nil
}

// gossipService answers the cluster's membership.
type gossipService struct {
	gossipapi.UnimplementedGossipServer
	s *Server
}

func (g *gossipService) Read(context.Context, *shared.Empty) (*gossipapi.ClusterInfo, error) {
	nodes := []*Server{g.s}
	if g.s.cluster != nil {
		nodes = g.s.cluster.Nodes
	}
	info := &gossipapi.ClusterInfo{}
	for _, n := range nodes {
		host, port, _ := net.SplitHostPort(n.addr)
		p, _ := strconv.Atoi(port)
		state := gossipapi.MemberInfo_Follower
		if ok, _ := n.leader(); ok {
			state = gossipapi.MemberInfo_Leader
		}
		info.Members = append(info.Members, &gossipapi.MemberInfo{
			InstanceId: uuidTo(n.id, false), TimeStamp: time.Now().UnixNano() / 100, State: state, IsAlive: true,
			HttpEndPoint: &gossipapi.EndPoint{Address: host, Port: uint32(p)},
		})
	}
	return info, nil
}

// Cluster is several nodes sharing one log, one of them the leader.
type Cluster struct {
	Nodes []*Server

	mu     sync.Mutex
	leader int
}

// StartCluster serves n nodes on fresh loopback ports until the test ends;
// the first is the leader.
func StartCluster(tb testing.TB, n int, opts Options) *Cluster {
	tb.Helper()
	c := &Cluster{}
	st := newStore()
	for i := 0; i < n; i++ {
		s := newServer(opts, st, c, i)
		c.Nodes = append(c.Nodes, s)
	}
	for _, s := range c.Nodes {
		s.Serve(listen(tb))
		tb.Cleanup(s.Stop)
	}
	return c
}

// URL is a connection string with every node as a gossip seed.
func (c *Cluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.addr
	}
	return "esdb://" + strings.Join(addrs, ",") + "?tls=false"
}

// Elect makes node i the leader; the others become followers. Elect(-1)
// starts an election: no node is the leader, every node reports itself a
// follower in gossip, and each answers calls needing the leader with no
// leader info until the next Elect.
func (c *Cluster) Elect(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = i
}

// Leader returns the leader node, nil during an election.
func (c *Cluster) Leader() *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader < 0 {
		return nil
	}
	return c.Nodes[c.leader]
}

func (c *Cluster) leaderOf(s *Server) (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader < 0 {
		return false, ""
	}
	return c.leader == s.index, c.Nodes[c.leader].addr
}
