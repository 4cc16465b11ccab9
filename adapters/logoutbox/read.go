package logoutbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// readPage is the number of events of one stream read.
const readPage = 1000

// catchUp brings the state up to the store: it reads what the head segment
// gained since rev, or reloads when the state is not the store's or the
// segment was sealed meanwhile.
func (o *Outbox) catchUp(ctx context.Context) error {
	if !o.loaded {
		return o.reload(ctx)
	}
	from := uint64(0)
	if o.exists {
		from = o.rev + 1
	}
	sealed, err := o.readSegment(ctx, from)
	if err != nil {
		o.loaded = false
		return err
	}
	if sealed {
		return o.reload(ctx)
	}
	return nil
}

// reload finds the head segment and rebuilds the state from it.
func (o *Outbox) reload(ctx context.Context) error {
	o.loaded = false
	k, err := o.locate(ctx)
	if err != nil {
		return err
	}
	o.st = newState()
	o.segNo, o.exists, o.segLen = max(k, 1), false, 0
	if k == 0 { // a new outbox
		o.loaded = true
		return nil
	}
	sealed, err := o.readSegment(ctx, 0)
	if err != nil {
		return err
	}
	if !o.exists {
		return fmt.Errorf("outbox: segment %s vanished", Stream(o.name, k))
	}
	if sealed { // its successor is not written yet: the next write starts it
		o.segNo, o.exists, o.segLen = k+1, false, 0
	}
	o.loaded = true
	return nil
}

// readSegment applies the head segment's events from revision from on, and
// reports whether it ends sealed. A segment must start with a snapshot.
func (o *Outbox) readSegment(ctx context.Context, from uint64) (sealed bool, err error) {
	stream := Stream(o.name, o.segNo)
	for {
		res, err := o.store.ReadStream(ctx, stream, eventlog.Forwards, from, readPage)
		if errors.Is(err, eventlog.ErrStreamNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("outbox: read %s: %w", stream, err)
		}
		for _, re := range res {
			ev, err := decode(re)
			if err != nil {
				return false, err
			}
			if snap, ok := ev.(domain.OutboxSnapshot); re.Revision == 0 && (!ok || snap.Part != 0) {
				return false, fmt.Errorf("outbox: %s does not start with a snapshot", stream)
			}
			o.st.apply(re.ID, ev)
			o.exists, o.rev = true, re.Revision
			o.segLen = int(re.Revision) + 1
			if _, ok := ev.(domain.OutboxSealed); ok {
				sealed = true
			}
		}
		if len(res) < readPage {
			return sealed, nil
		}
		from = res[len(res)-1].Revision + 1
	}
}

// locate returns the last segment that exists (0: none). Segments 1..K
// exist and no other, so it probes from the handle's segment forwards in
// growing steps, then halves the gap.
func (o *Outbox) locate(ctx context.Context) (uint64, error) {
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
	if err := probe(o.segNo); err != nil {
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
