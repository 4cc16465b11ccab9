// Package kurrenttest is a TEST FIXTURE: an in-process gRPC server that
// speaks enough of the KurrentDB (EventStoreDB) client protocol for the real
// EventStore-Client-Go/v4 client to work against it unchanged over
// esdb://127.0.0.1:PORT?tls=false. No KurrentDB server can run on the
// project's machines (no .NET, no Docker engine), so the adapter's tests and
// the conformance suite run against this. It is not a product feature.
//
// It keeps events in memory and implements: appends with expected revision
// (any, no_stream, stream_exists, exact) and KurrentDB's idempotent retries
// by event id; stream reads both ways; $all reads; catch-up subscriptions to
// a stream or $all, with stream-prefix and event-type-prefix filters; delete
// and tombstone (answers carry a position); every event's system metadata
// carries type, content-type and created (.NET ticks), which the client
// needs. Commit positions grow in steps of 10 from 100, so they are not
// dense, as on a real server. Fault knobs let tests drop subscriptions with
// Unavailable and answer appends with not-leader.
//
// Not implemented: persistent subscriptions, projections, regex filters,
// batch append, ACLs and users, scavenging, gossip (single node only).
package kurrenttest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type event struct {
	stream   string
	rev      uint64
	pos      uint64
	id       uuid.UUID
	typ      string
	content  string
	data     []byte
	custom   []byte
	created  int64 // .NET ticks since the Unix epoch (100 ns)
	isSystem bool
}

// Server is the fixture. Start it with Start or Listen.
type Server struct {
	api.UnimplementedStreamsServer

	mu      sync.Mutex
	log     []*event
	streams map[string][]*event
	deleted map[string]bool
	nextPos uint64
	notify  chan struct{}

	grpc *grpc.Server
	addr string

	subsMu sync.Mutex
	subs   map[int]context.CancelCauseFunc
	subSeq int

	notLeader atomic.Int32 // answer this many appends with not-leader
	appends   atomic.Int64
}

// New returns a server with an empty log; call Serve.
func New() *Server {
	return &Server{streams: map[string][]*event{}, deleted: map[string]bool{}, nextPos: 100, notify: make(chan struct{}), subs: map[int]context.CancelCauseFunc{}}
}

// Start serves on a fresh loopback port until the test ends, and returns the
// address (host:port).
func Start(tb testing.TB) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := New()
	s.Serve(ln)
	tb.Cleanup(s.Stop)
	return s
}

// Serve serves on ln in the background.
func (s *Server) Serve(ln net.Listener) {
	s.addr = ln.Addr().String()
	s.grpc = grpc.NewServer(
		// The client pings every 10 s; allow it, with or without streams.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	api.RegisterStreamsServer(s.grpc, s)
	go func() { _ = s.grpc.Serve(ln) }()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is a connection string for the client.
func (s *Server) URL() string { return "esdb://" + s.addr + "?tls=false" }

// Stop stops the server, ending every call.
func (s *Server) Stop() {
	if s.grpc != nil {
		s.grpc.Stop()
	}
}

// DropSubscriptions ends every live subscription with codes.Unavailable, as
// a restarting node does.
func (s *Server) DropSubscriptions() int {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	n := len(s.subs)
	for id, cancel := range s.subs {
		cancel(status.Error(codes.Unavailable, "node is shutting down"))
		delete(s.subs, id)
	}
	return n
}

// AnswerNotLeader makes the next n appends fail with not-leader, naming this
// server as the leader, as a follower does.
func (s *Server) AnswerNotLeader(n int) { s.notLeader.Store(int32(n)) }

// Appends counts the append calls received.
func (s *Server) Appends() int64 { return s.appends.Load() }

func uuidFrom(u *shared.UUID) uuid.UUID {
	if st := u.GetStructured(); st != nil {
		var id uuid.UUID
		for i := 0; i < 8; i++ {
			id[i] = byte(uint64(st.MostSignificantBits) >> (56 - 8*i))
			id[8+i] = byte(uint64(st.LeastSignificantBits) >> (56 - 8*i))
		}
		return id
	}
	id, _ := uuid.Parse(u.GetString_())
	return id
}

func uuidTo(id uuid.UUID) *shared.UUID {
	var most, least uint64
	for i := 0; i < 8; i++ {
		most = most<<8 | uint64(id[i])
		least = least<<8 | uint64(id[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: int64(most), LeastSignificantBits: int64(least)}}}
}

// Append implements the append call: a header with the stream and expected
// revision, then the proposed events.
func (s *Server) Append(stream api.Streams_AppendServer) error {
	s.appends.Add(1)
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "first message must be options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	var proposed []*api.AppendReq_ProposedMessage
	for {
		msg, err := stream.Recv()
		if err != nil {
			break
		}
		if m := msg.GetProposedMessage(); m != nil {
			proposed = append(proposed, m)
		}
	}
	if s.notLeader.Add(-1) >= 0 {
		host, port, _ := net.SplitHostPort(s.addr)
		stream.SetTrailer(metadata.Pairs("exception", "not-leader", "leader-endpoint-host", host, "leader-endpoint-port", port))
		return status.Error(codes.NotFound, "leader info available")
	}
	s.notLeader.Store(max(s.notLeader.Load(), 0))
	resp, err := s.apply(name, opts, proposed)
	if err == errDeleted {
		stream.SetTrailer(metadata.Pairs("exception", "stream-deleted", "stream-name", name))
		return status.Error(codes.FailedPrecondition, "stream deleted")
	}
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}

var errDeleted = status.Error(codes.FailedPrecondition, "stream deleted")

func (s *Server) apply(name string, opts *api.AppendReq_Options, proposed []*api.AppendReq_ProposedMessage) (*api.AppendResp, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted[name] {
		return nil, errDeleted
	}
	evs := s.streams[name]
	head := int64(len(evs)) - 1
	ids := make([]uuid.UUID, len(proposed))
	for i, p := range proposed {
		ids[i] = uuidFrom(p.GetId())
	}
	wrong := func() *api.AppendResp {
		w := &api.AppendResp_WrongExpectedVersion{}
		if head < 0 {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		} else {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(head)}
		}
		switch e := opts.GetExpectedStreamRevision().(type) {
		case *api.AppendReq_Options_Revision:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: e.Revision}
		case *api.AppendReq_Options_NoStream:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		case *api.AppendReq_Options_StreamExists:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		default:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		}
		return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
	}
	success := func(rev, pos uint64) *api.AppendResp {
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
			CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: rev},
			PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: pos, PreparePosition: pos}},
		}}}
	}
	// Idempotency, as KurrentDB: the ids already at the place the expected
	// version points to (or, with any, anywhere in the stream) make a retry;
	// a partial match is a wrong expected version.
	if len(ids) > 0 && head >= 0 {
		start := int64(-1)
		switch e := opts.GetExpectedStreamRevision().(type) {
		case *api.AppendReq_Options_Revision:
			start = int64(e.Revision) + 1
		case *api.AppendReq_Options_NoStream:
			start = 0
		default:
			for i, ev := range evs {
				if ev.id == ids[0] {
					start = int64(i)
					break
				}
			}
		}
		if start >= 0 && start <= head && evs[start].id == ids[0] {
			for i, id := range ids {
				k := start + int64(i)
				if k > head || evs[k].id != id {
					return wrong(), nil
				}
			}
			last := evs[start+int64(len(ids))-1]
			return success(last.rev, last.pos), nil
		}
		for _, ev := range evs {
			for _, id := range ids {
				if ev.id == id {
					return wrong(), nil
				}
			}
		}
	}
	ok := true
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		ok = head == int64(e.Revision)
	case *api.AppendReq_Options_NoStream:
		ok = head < 0
	case *api.AppendReq_Options_StreamExists:
		ok = head >= 0
	}
	if !ok {
		return wrong(), nil
	}
	if len(proposed) == 0 {
		if head < 0 {
			return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
				CurrentRevisionOption: &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}},
				PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
			}}}, nil
		}
		return success(uint64(head), evs[head].pos), nil
	}
	now := time.Now().UnixNano() / 100
	var last *event
	for i, p := range proposed {
		md := p.GetMetadata()
		if md["type"] == "" {
			return nil, status.Error(codes.InvalidArgument, "event type is required")
		}
		e := &event{stream: name, rev: uint64(head + 1 + int64(i)), pos: s.nextPos, id: ids[i], typ: md["type"], content: md["content-type"],
			data: p.GetData(), custom: p.GetCustomMetadata(), created: now, isSystem: strings.HasPrefix(name, "$")}
		s.nextPos += 10
		s.log = append(s.log, e)
		s.streams[name] = append(s.streams[name], e)
		last = e
	}
	close(s.notify)
	s.notify = make(chan struct{})
	return success(last.rev, last.pos), nil
}

func toRead(e *event) *api.ReadResp {
	rec := &api.ReadResp_ReadEvent_RecordedEvent{
		Id: uuidTo(e.id), StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.stream)}, StreamRevision: e.rev,
		PreparePosition: e.pos, CommitPosition: e.pos,
		Metadata:       map[string]string{"type": e.typ, "content-type": e.content, "created": strconv.FormatInt(e.created, 10)},
		CustomMetadata: e.custom, Data: e.data,
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{Event: rec,
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: e.pos}}}}
}

type filter struct {
	streamPrefixes, typePrefixes []string
}

func (f filter) match(e *event) bool {
	if e.isSystem {
		return false
	}
	has := func(s string, ps []string) bool {
		for _, p := range ps {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
		return false
	}
	if len(f.streamPrefixes) > 0 && !has(e.stream, f.streamPrefixes) {
		return false
	}
	if len(f.typePrefixes) > 0 && !has(e.typ, f.typePrefixes) {
		return false
	}
	return true
}

// Read implements stream and $all reads and catch-up subscriptions.
func (s *Server) Read(req *api.ReadReq, out api.Streams_ReadServer) error {
	o := req.GetOptions()
	var f filter
	if fo := o.GetFilter(); fo != nil {
		if x := fo.GetStreamIdentifier(); x != nil {
			if x.GetRegex() != "" {
				return status.Error(codes.Unimplemented, "regex filters are not implemented by the test server")
			}
			f.streamPrefixes = x.GetPrefix()
		}
		if x := fo.GetEventType(); x != nil {
			if x.GetRegex() != "" {
				return status.Error(codes.Unimplemented, "regex filters are not implemented by the test server")
			}
			f.typePrefixes = x.GetPrefix()
		}
	}
	backwards := o.GetReadDirection() == api.ReadReq_Options_Backwards
	if o.GetSubscription() != nil {
		return s.subscribe(o, f, out)
	}
	count := o.GetCount()
	s.mu.Lock()
	var list []*event
	if st := o.GetStream(); st != nil {
		name := string(st.GetStreamIdentifier().GetStreamName())
		evs, ok := s.streams[name]
		if !ok || s.deleted[name] {
			s.mu.Unlock()
			if s.deleted[name] {
				out.SetTrailer(metadata.Pairs("exception", "stream-deleted", "stream-name", name))
				return status.Error(codes.FailedPrecondition, "stream deleted")
			}
			return out.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: st.GetStreamIdentifier()}}})
		}
		from := int64(0)
		switch {
		case st.GetEnd() != nil:
			from = int64(len(evs)) - 1
			if !backwards {
				from = int64(len(evs))
			}
		case st.GetStart() != nil:
			if backwards {
				from = -1
			}
		default:
			from = int64(st.GetRevision())
			if backwards && from > int64(len(evs))-1 {
				from = int64(len(evs)) - 1
			}
		}
		for i := from; i >= 0 && i < int64(len(evs)) && uint64(len(list)) < count; {
			list = append(list, evs[i])
			if backwards {
				i--
			} else {
				i++
			}
		}
	} else {
		all := o.GetAll()
		var from int
		switch {
		case all.GetEnd() != nil:
			from = len(s.log)
			if backwards {
				from = len(s.log) - 1
			}
		case all.GetStart() != nil:
			from = 0
			if backwards {
				from = -1
			}
		default:
			p := all.GetPosition().GetCommitPosition()
			from = s.indexAtOrAfter(p)
			if backwards {
				from-- // events before the position
			}
		}
		for i := from; i >= 0 && i < len(s.log) && uint64(len(list)) < count; {
			if f.match(s.log[i]) || len(f.streamPrefixes)+len(f.typePrefixes) == 0 {
				list = append(list, s.log[i])
			}
			if backwards {
				i--
			} else {
				i++
			}
		}
	}
	s.mu.Unlock()
	for _, e := range list {
		if err := out.Send(toRead(e)); err != nil {
			return err
		}
	}
	return nil
}

// indexAtOrAfter is the index of the first event with position >= p.
func (s *Server) indexAtOrAfter(p uint64) int {
	lo, hi := 0, len(s.log)
	for lo < hi {
		mid := (lo + hi) / 2
		if s.log[mid].pos < p {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func (s *Server) subscribe(o *api.ReadReq_Options, f filter, out api.Streams_ReadServer) error {
	ctx, cancel := context.WithCancelCause(out.Context())
	defer cancel(nil)
	s.subsMu.Lock()
	s.subSeq++
	id := s.subSeq
	s.subs[id] = cancel
	s.subsMu.Unlock()
	defer func() {
		s.subsMu.Lock()
		delete(s.subs, id)
		s.subsMu.Unlock()
	}()
	if err := out.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: fmt.Sprint("sub-", id)}}}); err != nil {
		return err
	}
	// next is the index in the log (or the stream) of the next event to send.
	s.mu.Lock()
	var next int
	streamName := ""
	if st := o.GetStream(); st != nil {
		streamName = string(st.GetStreamIdentifier().GetStreamName())
		switch {
		case st.GetEnd() != nil:
			next = len(s.streams[streamName])
		case st.GetStart() != nil:
			next = 0
		default:
			next = int(st.GetRevision()) + 1 // after the revision
		}
	} else {
		all := o.GetAll()
		switch {
		case all.GetEnd() != nil:
			next = len(s.log)
		case all.GetStart() != nil:
			next = 0
		default:
			p := all.GetPosition().GetCommitPosition()
			next = s.indexAtOrAfter(p)
			if next < len(s.log) && s.log[next].pos == p {
				next++ // subscriptions start after the position
			}
		}
	}
	s.mu.Unlock()
	for {
		s.mu.Lock()
		var batch []*event
		src := s.log
		if streamName != "" {
			src = s.streams[streamName]
		}
		for ; next < len(src) && len(batch) < 256; next++ {
			if streamName != "" || f.match(src[next]) {
				batch = append(batch, src[next])
			}
		}
		wait := s.notify
		caughtUp := next >= len(src)
		s.mu.Unlock()
		for _, e := range batch {
			if err := out.Send(toRead(e)); err != nil {
				return err
			}
		}
		if !caughtUp {
			continue
		}
		select {
		case <-wait:
		case <-ctx.Done():
			if cause := context.Cause(ctx); cause != nil && status.Code(cause) == codes.Unavailable {
				return cause
			}
			return ctx.Err()
		}
	}
}

func (s *Server) remove(name string, tombstone bool) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := s.nextPos
	s.nextPos += 10
	if tombstone {
		s.deleted[name] = true
	}
	delete(s.streams, name)
	return pos, nil
}

// Delete implements a soft delete (the stream reads as not found).
func (s *Server) Delete(_ context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	pos, err := s.remove(string(req.GetOptions().GetStreamIdentifier().GetStreamName()), false)
	if err != nil {
		return nil, err
	}
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{CommitPosition: pos, PreparePosition: pos}}}, nil
}

// Tombstone implements a hard delete: the stream can never be written again.
func (s *Server) Tombstone(_ context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	pos, err := s.remove(string(req.GetOptions().GetStreamIdentifier().GetStreamName()), true)
	if err != nil {
		return nil, err
	}
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{CommitPosition: pos, PreparePosition: pos}}}, nil
}
