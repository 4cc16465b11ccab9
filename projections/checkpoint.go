package projections

import (
	"context"
	"fmt"
	"slices"

	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// The read models in the read-model store: each writes its keys under its
// prefix byte and its checkpoint (code version, position) under '!' and its
// name, in the runner's batch, so both are written together or not at all.

// model is a projection that keeps its state in the read-model store, with
// a checkpoint of its own.
type model interface {
	Projection
	// name names the read model's checkpoint; prefix is the first byte of
	// every key it writes.
	name() string
	prefix() byte
	// version is the read model's code version: a stored read model of
	// another version is rebuilt.
	version() uint64
	// attach empties the model's memory and loads what it keeps in memory
	// from rs; from then on it writes its changes into b.
	attach(rs ReadStore, b *Batch) error
	// flush adds to the batch what the events applied since the last flush
	// changed. It runs outside the lock and must not change what readers read.
	flush() error
	// committed runs under the write lock once the batch is written: the
	// model drops from memory what now lives only on disk.
	committed()
}

// Checkpoint keys: '!' and the read model's name; "!\x00log" holds the
// position and id of the last event applied, and the position of the event
// before it, to recognise the log on a restart.
const metaPrefix = '!'

func checkpointKey(name string) []byte { return append([]byte{metaPrefix}, name...) }

var logMarkKey = checkpointKey("\x00log")

// Open attaches the read-model store rs and resumes from its checkpoints.
// A read model whose stored version is not its code's, or every read model
// when rebuild is set or the store's last event is not the log's event at
// that position (the store was built from another log), is cleared and
// rebuilt from position 0. Call it before Run.
func (r *Runner) Open(ctx context.Context, rs ReadStore, rebuild bool) (cleared []string, err error) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if !rebuild {
		same, err := r.sameLog(ctx, rs)
		if err != nil {
			return nil, err
		}
		rebuild = !same
	}
	var b Batch
	for i, m := range r.models {
		ver, pos, ok, err := readCheckpoint(rs, m.name())
		if err != nil {
			return nil, err
		}
		// A model writes its keys with its checkpoint, and is cleared with
		// it: one without a checkpoint has nothing in the store.
		if ok && (rebuild || ver != m.version()) {
			cleared = append(cleared, m.name())
			b.DeleteRange([]byte{m.prefix()}, []byte{m.prefix() + 1})
			b.Delete(checkpointKey(m.name()))
		}
		if !ok || rebuild || ver != m.version() {
			pos = 0
		}
		r.modelPos[i] = pos
	}
	if b.Len() > 0 {
		if err := rs.Write(&b); err != nil {
			return nil, err
		}
	}
	if err := r.attach(rs); err != nil {
		return nil, err
	}
	r.pos.Store(r.start())
	r.broken = nil
	r.failed.Store(nil)
	return cleared, nil
}

// sameLog reports whether the store's last applied event is the log's event
// at that position (true for an empty store, or without a log).
func (r *Runner) sameLog(ctx context.Context, rs ReadStore) (bool, error) {
	v, ok, err := rs.Get(logMarkKey)
	if err != nil || !ok {
		if err == nil {
			// No mark: an empty store, or one a crash left between clearing
			// and the first batch; only checkpoints without a mark are suspect.
			for _, m := range r.models {
				if _, pos, ok, err := readCheckpoint(rs, m.name()); err != nil || (ok && pos > 0) {
					return false, err
				}
			}
		}
		return true, err
	}
	d := dec{b: v}
	prev, pos, id := d.uvarint(), d.uvarint(), d.uuid()
	if err := d.done(); err != nil {
		return false, nil // a damaged mark: rebuild
	}
	if r.store == nil || pos == 0 {
		return true, nil
	}
	// The event after prev (a position of the log: KurrentDB's positions
	// have gaps) must be the one the store last applied.
	recs, err := r.store.ReadAll(ctx, prev, 1)
	if err != nil {
		return false, fmt.Errorf("projections: read the log at the checkpoint: %w", err)
	}
	return len(recs) == 1 && recs[0].Position == pos && recs[0].ID == id, nil
}

func readCheckpoint(rs ReadStore, name string) (version, pos uint64, ok bool, err error) {
	v, ok, err := rs.Get(checkpointKey(name))
	if err != nil || !ok {
		return 0, 0, false, err
	}
	d := dec{b: v}
	version, pos = d.uvarint(), d.uvarint()
	if d.done() != nil {
		return 0, 0, false, nil // damaged: rebuilt as if missing
	}
	return version, pos, true, nil
}

// attach gives every model the store and loads their memory.
func (r *Runner) attach(rs ReadStore) error {
	r.rs = rs
	r.batch.Reset()
	for _, m := range r.models {
		if err := m.attach(rs, &r.batch); err != nil {
			return fmt.Errorf("projections: load %s: %w", m.name(), err)
		}
	}
	return nil
}

// start is the position the runner resumes after: the lowest checkpoint
// (0 when a projection keeps no checkpoint).
func (r *Runner) start() uint64 {
	if len(r.models) < len(r.projs) || len(r.models) == 0 {
		return 0
	}
	return slices.Min(r.modelPos)
}

// ReadStore returns the store the read models live in.
func (r *Runner) ReadStore() ReadStore { return r.rs }

// write writes the batch of recs, applied in memory after position from:
// every read model's changes and checkpoint, and the log mark.
func (r *Runner) write(recs []eventlog.RecordedEvent, from uint64) error {
	last := recs[len(recs)-1]
	for _, m := range r.models {
		if err := m.flush(); err != nil {
			return fmt.Errorf("projections: %s: %w", m.name(), err)
		}
	}
	for i, m := range r.models {
		r.modelPos[i] = max(r.modelPos[i], last.Position)
		var e enc
		e.uvarint(m.version())
		e.uvarint(r.modelPos[i])
		r.batch.Set(checkpointKey(m.name()), e.b)
	}
	// The event before the last: the batch's, or the one the runner had
	// applied before it (the batch follows it in the log).
	prev := from
	if len(recs) > 1 {
		prev = recs[len(recs)-2].Position
	}
	var mark enc
	mark.uvarint(prev)
	mark.uvarint(last.Position)
	mark.uuid(last.ID)
	r.batch.Set(logMarkKey, mark.b)
	if err := r.rs.Write(&r.batch); err != nil {
		return fmt.Errorf("projections: write the read models: %w", err)
	}
	r.batch.Reset()
	r.writes.Add(1)
	return nil
}
