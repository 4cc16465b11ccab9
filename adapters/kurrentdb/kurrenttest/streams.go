package kurrenttest

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// streamsService is the Streams service of one node.
type streamsService struct {
	api.UnimplementedStreamsServer
	s *Server
}

func empty() *shared.Empty { return &shared.Empty{} }

// Append reads the options, then the proposed events, and answers once
// with success or wrong expected version, or fails with the server's
// errors.
func (x *streamsService) Append(stream api.Streams_AppendServer) error {
	s := x.s
	s.appends.Add(1)
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the first message of an append must be its options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	var expected int64
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		expected = int64(e.Revision)
	case *api.AppendReq_Options_NoStream:
		expected = expectNoStream
	case *api.AppendReq_Options_StreamExists:
		expected = expectStreamExists
	case *api.AppendReq_Options_Any:
		expected = expectAny
	default:
		return status.Error(codes.InvalidArgument, "an expected stream revision is required")
	}
	var events []proposed
	size := 0
	for {
		msg, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.Canceled || stream.Context().Err() != nil {
				return err
			}
			break // io.EOF: the client closed its side
		}
		m := msg.GetProposedMessage()
		if m == nil {
			return status.Error(codes.InvalidArgument, "an append sends its options once, then events")
		}
		md := m.GetMetadata()
		typ, okType := md["type"]
		ct, okContent := md["content-type"]
		if !okType || !okContent {
			stream.SetTrailer(metadata.Pairs("exception", "missing-required-metadata-property", "required-metadata-properties", "type,content-type"))
			missing := "type"
			if okType {
				missing = "content-type"
			}
			return status.Errorf(codes.InvalidArgument, "Required Metadata Property '%s' is missing", missing)
		}
		id, ok := uuidFrom(m.GetId())
		if !ok {
			return status.Error(codes.InvalidArgument, "an event id does not parse")
		}
		size += 2*len(typ) + len(m.GetData()) + len(m.GetCustomMetadata())
		if size > s.opts.MaxAppendSize {
			stream.SetTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(s.opts.MaxAppendSize)))
			return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", s.opts.MaxAppendSize)
		}
		events = append(events, proposed{id: id, typ: typ, json: ct == "application/json", data: m.GetData(), meta: m.GetCustomMetadata()})
	}
	if err := s.hold(stream.Context()); err != nil {
		return err
	}
	if take(&s.noLeader) {
		return s.noLeaderError()
	}
	if take(&s.notLeader) || s.requiresLeader(stream.Context()) {
		return s.notLeaderError(stream.SetTrailer)
	}
	res := s.store.append(name, expected, events)
	if take(&s.unknown) {
		return unknownError() // written, but the client does not learn it
	}
	switch res.dec {
	case commitDeleted:
		return streamDeleted(name, stream.SetTrailer)
	case commitWrongVersion:
		return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrongVersion(opts, expected, res.cur)}})
	}
	ok := &api.AppendResp_Success{}
	if res.none {
		ok.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: empty()}
		ok.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: empty()}
	} else {
		ok.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: res.rev}
		ok.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: res.pos.commit, PreparePosition: res.pos.prepare}}
	}
	return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: ok}})
}

// wrongVersion fills both the current and the 20.6.0 fields, as the server does.
func wrongVersion(opts *api.AppendReq_Options, expected, cur int64) *api.AppendResp_WrongExpectedVersion {
	w := &api.AppendResp_WrongExpectedVersion{}
	switch opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Any:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: empty()}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: empty()}
	case *api.AppendReq_Options_StreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: empty()}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: empty()}
	case *api.AppendReq_Options_NoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: empty()}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: ^uint64(0)}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(expected)}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: uint64(expected)}
	}
	if cur < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: empty()}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: empty()}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(cur)}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(cur)}
	}
	return w
}

// toRead is an event as a read answers it.
func toRead(e *event, stringIDs bool) *api.ReadResp {
	content := "application/octet-stream"
	if e.json {
		content = "application/json"
	}
	rec := &api.ReadResp_ReadEvent_RecordedEvent{
		Id: uuidTo(e.id, stringIDs), StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.stream)}, StreamRevision: e.rev,
		PreparePosition: e.pos, CommitPosition: e.commit,
		Metadata:       map[string]string{"type": e.typ, "content-type": content, "created": strconv.FormatInt(e.created, 10)},
		CustomMetadata: e.meta, Data: e.data,
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{Event: rec,
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: e.commit}}}}
}

func filterOf(o *api.ReadReq_Options) (*filter, uint64, error) {
	fo := o.GetFilter()
	if fo == nil {
		return nil, 0, nil
	}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	f := &filter{}
	if x := fo.GetStreamIdentifier(); x != nil {
		expr, f.onStream = x, true
	} else if x := fo.GetEventType(); x != nil {
		expr = x
	} else {
		return nil, 0, status.Error(codes.InvalidArgument, "a filter needs a stream identifier or an event type expression")
	}
	if expr.GetRegex() != "" {
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, 0, status.Errorf(codes.InvalidArgument, "the filter's regular expression does not compile: %v", err)
		}
		f.re = re
	} else {
		f.prefixes = expr.GetPrefix()
	}
	window := uint64(32)
	if m := fo.GetMax(); m > 0 {
		window = uint64(m)
	}
	mult := uint64(fo.GetCheckpointIntervalMultiplier())
	if mult == 0 {
		return nil, 0, status.Error(codes.InvalidArgument, "the checkpoint interval multiplier must not be zero")
	}
	return f, window * mult, nil
}

func invalidPosition() error {
	return status.Error(codes.InvalidArgument, "Trying to read from an invalid position.")
}

// Read serves reads and catch-up subscriptions.
func (x *streamsService) Read(req *api.ReadReq, out api.Streams_ReadServer) error {
	s := x.s
	o := req.GetOptions()
	if o.GetUuidOption() == nil {
		return status.Error(codes.InvalidArgument, "the uuid option is required")
	}
	stringIDs := o.GetUuidOption().GetString_() != nil
	f, interval, err := filterOf(o)
	if err != nil {
		return err
	}
	if take(&s.noLeader) {
		return s.noLeaderError()
	}
	if s.requiresLeader(out.Context()) {
		return s.notLeaderError(out.SetTrailer)
	}
	if take(&s.unknown) {
		return unknownError()
	}
	if o.GetSubscription() != nil {
		return s.subscribe(o, f, interval, stringIDs, out)
	}
	if err := s.hold(out.Context()); err != nil {
		return err
	}
	list, err := s.read(o, f, out)
	if err != nil || list == nil {
		return err
	}
	for _, e := range list {
		if err := out.Send(toRead(e, stringIDs)); err != nil {
			return err
		}
	}
	return nil
}

// read collects a read's events; a nil list with no error means the
// answer has been sent (stream not found).
func (s *Server) read(o *api.ReadReq_Options, f *filter, out api.Streams_ReadServer) ([]*event, error) {
	backwards := o.GetReadDirection() == api.ReadReq_Options_Backwards
	count := o.GetCount()
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	list := []*event{}
	if so := o.GetStream(); so != nil {
		name := string(so.GetStreamIdentifier().GetStreamName())
		ss := st.streams[name]
		if ss != nil && ss.tombstoned {
			return nil, streamDeleted(name, out.SetTrailer)
		}
		if ss == nil || ss.softDeleted || uint64(len(ss.events)) <= ss.truncateBefore {
			return nil, out.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: so.GetStreamIdentifier()}}})
		}
		first, last := int64(ss.truncateBefore), ss.last()
		var from int64
		switch {
		case so.GetEnd() != nil:
			from = last + 1
			if backwards {
				from = last
			}
		case so.GetStart() != nil:
			from = first
			if backwards {
				from = first - 1
			}
		default:
			from = int64(min(so.GetRevision(), uint64(last)+1))
			if backwards {
				from = min(from, last) // a backwards read from beyond the end starts at the end
			} else {
				from = max(from, first)
			}
		}
		for i := from; i >= first && i <= last && uint64(len(list)) < count; {
			list = append(list, ss.events[i])
			if backwards {
				i--
			} else {
				i++
			}
		}
		return list, nil
	}
	all := o.GetAll()
	var from int
	switch {
	case all.GetEnd() != nil:
		from = len(st.log)
		if backwards {
			from = len(st.log) - 1
		}
	case all.GetStart() != nil:
		from = 0
		if backwards {
			from = -1
		}
	default:
		p := tfpos{all.GetPosition().GetCommitPosition(), all.GetPosition().GetPreparePosition()}
		i, ok := st.indexAfter(p)
		if !ok {
			return nil, invalidPosition()
		}
		from = i
		if backwards {
			from = i - 1 // events before the position
			if from >= 0 && st.log[from].at() == p {
				from--
			}
		} else if i > 0 && st.log[i-1].at() == p {
			from = i - 1 // a forwards read includes the event at the position
		}
	}
	for i := from; i >= 0 && i < len(st.log) && uint64(len(list)) < count; {
		if f.match(st.log[i]) {
			list = append(list, st.log[i])
		}
		if backwards {
			i--
		} else {
			i++
		}
	}
	return list, nil
}

// subscribe serves a catch-up subscription until the client leaves, the
// node stops, or DropSubscriptions.
func (s *Server) subscribe(o *api.ReadReq_Options, f *filter, interval uint64, stringIDs bool, out api.Streams_ReadServer) error {
	s.subscribes.Add(1)
	if take(&s.failSubs) {
		code := codes.Code(s.failCode.Load())
		if code == codes.PermissionDenied {
			out.SetTrailer(metadata.Pairs("exception", "access-denied"))
			return status.Error(code, "Access Denied")
		}
		return status.Error(code, "Server Is Not Ready")
	}
	st := s.store
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

	// next is the index (in the log, or the stream) of the next event to consider.
	st.mu.Lock()
	var next int
	name := ""
	if so := o.GetStream(); so != nil {
		name = string(so.GetStreamIdentifier().GetStreamName())
		var n int
		if ss := st.streams[name]; ss != nil {
			n = len(ss.events)
		}
		switch {
		case so.GetEnd() != nil:
			next = n
		case so.GetStart() != nil:
			next = 0
		default:
			next = int(so.GetRevision()) + 1 // after the revision
		}
	} else {
		all := o.GetAll()
		switch {
		case all.GetEnd() != nil:
			next = len(st.log)
		case all.GetStart() != nil:
			next = 0
		default:
			i, ok := st.indexAfter(tfpos{all.GetPosition().GetCommitPosition(), all.GetPosition().GetPreparePosition()})
			if !ok {
				st.mu.Unlock()
				return invalidPosition()
			}
			next = i // subscriptions start after the position
		}
	}
	gen := st.gen
	st.mu.Unlock()
	cut := s.cutSubs.Swap(0) // events to send before ending, 0: no end

	if err := out.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: fmt.Sprint("sub-", id)}}}); err != nil {
		return err
	}
	caughtUp := false
	var considered uint64
	var lastConsidered tfpos
	checkpoint := func(pos tfpos) *api.ReadResp {
		return &api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{CommitPosition: pos.commit, PreparePosition: pos.prepare}}}
	}
	for {
		st.mu.Lock()
		if st.gen != gen { // the log was replaced: the node restarted
			st.mu.Unlock()
			return status.Error(codes.Unavailable, "Server Is Not Ready")
		}
		var batch []*api.ReadResp
		var src []*event
		if name != "" {
			if ss := st.streams[name]; ss != nil && !ss.tombstoned {
				src = ss.events
			}
		} else {
			src = st.log
		}
		for ; next < len(src) && len(batch) < 256; next++ {
			e := src[next]
			if name != "" || f.match(e) {
				batch = append(batch, toRead(e, stringIDs))
			}
			if f != nil {
				considered++
				lastConsidered = e.at()
				if considered >= interval {
					considered = 0
					batch = append(batch, checkpoint(e.at()))
				}
			}
		}
		atEnd := next >= len(src)
		wait := st.notify
		st.mu.Unlock()
		for _, r := range batch {
			if err := out.Send(r); err != nil {
				return err
			}
			if r.GetEvent() != nil && cut > 0 {
				if cut--; cut == 0 {
					return status.Error(codes.Unavailable, "Server Is Not Ready")
				}
			}
		}
		if !atEnd {
			continue
		}
		if !caughtUp {
			caughtUp = true
			if f != nil && lastConsidered != (tfpos{}) {
				if err := out.Send(checkpoint(lastConsidered)); err != nil {
					return err
				}
			}
			if !s.opts.NoCaughtUp {
				if err := out.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
					return err
				}
			}
		}
		select {
		case <-wait:
		case <-ctx.Done():
			if cause := context.Cause(ctx); status.Code(cause) == codes.Unavailable {
				return cause
			}
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func expectedOf(isRev bool, rev uint64, noStream, exists *shared.Empty) int64 {
	switch {
	case isRev:
		return int64(rev)
	case noStream != nil:
		return expectNoStream
	case exists != nil:
		return expectStreamExists
	default:
		return expectAny
	}
}

func (s *Server) remove(ctx context.Context, name string, expected int64, tombstone bool) (uint64, error) {
	setTrailer := func(md metadata.MD) { _ = grpc.SetTrailer(ctx, md) }
	if s.requiresLeader(ctx) {
		return 0, s.notLeaderError(setTrailer)
	}
	dec, cur, pos := s.store.remove(name, expected, tombstone)
	switch dec {
	case commitDeleted:
		return 0, streamDeleted(name, setTrailer)
	case commitWrongVersion:
		setTrailer(metadata.Pairs("exception", "wrong-expected-version", "stream-name", name,
			"expected-version", strconv.FormatInt(expected, 10), "actual-version", strconv.FormatInt(cur, 10)))
		return 0, status.Errorf(codes.FailedPrecondition, "Delete failed due to WrongExpectedVersion. Stream: %s, Expected version: %d, Actual version: %d", name, expected, cur)
	}
	return pos, nil
}

// Delete soft-deletes a stream: it reads as not found until written again.
func (x *streamsService) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	o := req.GetOptions()
	_, isRev := o.GetExpectedStreamRevision().(*api.DeleteReq_Options_Revision)
	pos, err := x.s.remove(ctx, string(o.GetStreamIdentifier().GetStreamName()),
		expectedOf(isRev, o.GetRevision(), o.GetNoStream(), o.GetStreamExists()), false)
	if err != nil {
		return nil, err
	}
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{CommitPosition: pos, PreparePosition: pos}}}, nil
}

// Tombstone deletes a stream for good: it can never be written again.
func (x *streamsService) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	o := req.GetOptions()
	_, isRev := o.GetExpectedStreamRevision().(*api.TombstoneReq_Options_Revision)
	pos, err := x.s.remove(ctx, string(o.GetStreamIdentifier().GetStreamName()),
		expectedOf(isRev, o.GetRevision(), o.GetNoStream(), o.GetStreamExists()), true)
	if err != nil {
		return nil, err
	}
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{CommitPosition: pos, PreparePosition: pos}}}, nil
}
