package logoutbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// readPage is the number of events of one stream read.
const readPage = 1000

// catchUp brings the state up to the store: it reads what the head segment
// gained since at.rev, or reloads when the state is not the store's or the
// segment was sealed meanwhile. o.io is held.
func (o *Outbox) catchUp(ctx context.Context) error {
	o.mu.Lock()
	at, loaded := o.at, o.loaded
	o.mu.Unlock()
	if !loaded {
		return o.reload(ctx)
	}
	from := uint64(0)
	if at.exists {
		from = at.rev + 1
	}
	recs, sealed, err := o.readSegment(ctx, at.segNo, from)
	if err != nil {
		return err
	}
	o.mu.Lock()
	for _, r := range recs {
		o.st.apply(r.id, r.ev)
		o.at.exists, o.at.rev, o.at.segLen = true, r.rev, int(r.rev)+1
	}
	o.mu.Unlock()
	if sealed {
		return o.reload(ctx)
	}
	return nil
}

// reload finds the head segment and rebuilds the state from it, then puts
// it in place at once. o.io is held.
func (o *Outbox) reload(ctx context.Context) error {
	o.mu.Lock()
	o.loaded = false
	hint := o.at.segNo
	o.mu.Unlock()
	k, err := o.locate(ctx, hint)
	if err != nil {
		return err
	}
	st, at := newState(), head{segNo: max(k, 1)}
	if k > 0 {
		recs, sealed, err := o.readSegment(ctx, k, 0)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return fmt.Errorf("outbox: segment %s vanished", Stream(o.name, k))
		}
		for _, r := range recs {
			st.apply(r.id, r.ev)
		}
		last := recs[len(recs)-1].rev
		at = head{segNo: k, exists: true, rev: last, segLen: int(last) + 1}
		if sealed { // its successor is not written yet: the next write starts it
			at = head{segNo: k + 1}
		}
	}
	o.mu.Lock()
	o.st, o.at, o.loaded = st, at, true
	o.mu.Unlock()
	return nil
}

// rec is an outbox event read from a segment.
type rec struct {
	id  uuid.UUID
	rev uint64
	ev  domain.Event
}

// readSegment reads segment k's events from revision from on, and reports
// whether it ends sealed. A segment must start with a snapshot.
func (o *Outbox) readSegment(ctx context.Context, k, from uint64) (out []rec, sealed bool, err error) {
	stream := Stream(o.name, k)
	for {
		res, err := o.store.ReadStream(ctx, stream, eventlog.Forwards, from, readPage)
		if errors.Is(err, eventlog.ErrStreamNotFound) {
			return out, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("outbox: read %s: %w", stream, err)
		}
		for _, re := range res {
			ev, err := decode(re)
			if err != nil {
				return nil, false, err
			}
			if snap, ok := ev.(domain.OutboxSnapshot); re.Revision == 0 && (!ok || snap.Part != 0) {
				return nil, false, fmt.Errorf("outbox: %s does not start with a snapshot", stream)
			}
			out = append(out, rec{id: re.ID, rev: re.Revision, ev: ev})
			if _, ok := ev.(domain.OutboxSealed); ok {
				sealed = true
			}
		}
		if len(res) < readPage {
			return out, sealed, nil
		}
		from = res[len(res)-1].Revision + 1
	}
}

// locate returns the last segment that exists (0: none). Segments 1..K
// exist and no other, so it probes from hint forwards in growing steps,
// then halves the gap.
func (o *Outbox) locate(ctx context.Context, hint uint64) (uint64, error) {
	lo, hi := uint64(0), uint64(0) // lo exists (0 by convention); hi, when > 0, does not
	probe := func(k uint64) error {
		ok, err := o.segmentExists(ctx, k)
		if err != nil {
			return err
		}
		if ok {
			lo = k
		} else {
			hi = k
		}
		return nil
	}
	if err := probe(hint); err != nil {
		return 0, err
	}
	for step := uint64(1); hi == 0; step *= 2 {
		if err := probe(lo + step); err != nil {
			return 0, err
		}
	}
	for hi-lo > 1 {
		if err := probe(lo + (hi-lo)/2); err != nil {
			return 0, err
		}
	}
	return lo, nil
}

func (o *Outbox) segmentExists(ctx context.Context, k uint64) (bool, error) {
	_, err := o.store.ReadStream(ctx, Stream(o.name, k), eventlog.Backwards, eventlog.End, 1)
	switch {
	case errors.Is(err, eventlog.ErrStreamNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("outbox: read %s: %w", Stream(o.name, k), err)
	}
	return true, nil
}

// decode reads an outbox event.
func decode(re eventlog.RecordedEvent) (domain.Event, error) {
	var (
		ev  domain.Event
		err error
	)
	switch re.Type {
	case "OutboxSnapshot":
		ev, err = unmarshal[domain.OutboxSnapshot](re.Data)
	case "OutboxClaimed":
		ev, err = unmarshal[domain.OutboxClaimed](re.Data)
	case "OutboxQueued":
		ev, err = unmarshal[domain.OutboxQueued](re.Data)
	case "OutboxDone":
		ev, err = unmarshal[domain.OutboxDone](re.Data)
	case "OutboxFailed":
		ev, err = unmarshal[domain.OutboxFailed](re.Data)
	case "OutboxRetried":
		ev, err = unmarshal[domain.OutboxRetried](re.Data)
	case "OutboxSealed":
		ev, err = unmarshal[domain.OutboxSealed](re.Data)
	default:
		return nil, fmt.Errorf("outbox: unexpected event %s in %s", re.Type, re.StreamID)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: %s at %s@%d: %w", re.Type, re.StreamID, re.Revision, err)
	}
	return ev, nil
}

func unmarshal[E domain.Event](data []byte) (domain.Event, error) {
	var e E
	err := json.Unmarshal(data, &e)
	return e, err
}
