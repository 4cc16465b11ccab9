package notify

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/pebbledb"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Outbox is the durable queue between the log and the channels, in its own
// Pebble database: the notifier's checkpoint (the last log position turned
// into notifications), the pending deliveries, the dead letters, and the
// marks of time-triggered notifications already queued. Enqueue writes
// deliveries and the checkpoint in one synced batch, so a crash either
// keeps both or neither: nothing is lost, and what is redone carries the
// same idempotency key.
//
// Deliveries name their target by id; the target's address is looked up
// when sending, so no address is kept here.
type Outbox struct {
	db *pebble.DB
	mu sync.Mutex // serialises read-modify-write of items
}

var (
	checkpointKey = []byte("c")
	pendingPrefix = []byte("p/")
	deadPrefix    = []byte("d/")
	markPrefix    = []byte("m/")
)

func key(prefix []byte, id string) []byte { return append(append([]byte{}, prefix...), id...) }

var _ domain.Outbox = (*Outbox)(nil)

// OpenOutbox opens (creating if needed) the outbox in dir on fs (nil: the
// operating system's file system).
func OpenOutbox(dir string, fs vfs.FS) (*Outbox, error) {
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: pebbledb.QuietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("notify: open outbox: %w", err)
	}
	return &Outbox{db: db}, nil
}

// Claim does nothing: Pebble lets one process open the directory, so the
// outbox has one writer and nothing to fence.
func (o *Outbox) Claim(context.Context, string) error { return nil }

// Close closes the database.
func (o *Outbox) Close() error { return o.db.Close() }

// Checkpoint returns the last position turned into notifications, and
// whether there is one (a new outbox has none).
func (o *Outbox) Checkpoint(context.Context) (uint64, bool, error) {
	v, ok, err := pebbledb.Lookup(o.db, checkpointKey)
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, errors.New("notify: outbox checkpoint is corrupt")
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// Start records the first checkpoint of a new outbox, synced.
func (o *Outbox) Start(_ context.Context, pos uint64) error {
	return o.db.Set(checkpointKey, binary.BigEndian.AppendUint64(nil, pos), pebble.Sync)
}

// IsPending reports whether a delivery is still pending.
func (o *Outbox) IsPending(_ context.Context, id string) (bool, error) {
	_, ok, err := pebbledb.Lookup(o.db, key(pendingPrefix, id))
	return ok, err
}

// Marked reports whether a time-triggered notification was queued before.
func (o *Outbox) Marked(_ context.Context, id string) (bool, error) {
	_, ok, err := pebbledb.Lookup(o.db, key(markPrefix, id))
	return ok, err
}

// Enqueue stores deliveries (replacing pending ones with the same id, a
// redo after a crash), marks for each id in marks, and with checkpoint the
// new checkpoint, all in one batch. It syncs when it stores deliveries;
// a checkpoint alone may be lost in a crash, which only repeats the work of
// events that produced nothing.
func (o *Outbox) Enqueue(_ context.Context, ds []Delivery, marks []string, checkpoint *uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.db.NewBatch()
	defer b.Close()
	for _, d := range ds {
		// A notification dead-lettered before stays there (retry is an
		// admin's decision).
		if _, dead, err := pebbledb.Lookup(o.db, key(deadPrefix, d.Notification.ID)); err != nil {
			return err
		} else if dead {
			continue
		}
		v, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if err := b.Set(key(pendingPrefix, d.Notification.ID), v, nil); err != nil {
			return err
		}
	}
	for _, m := range marks {
		if err := b.Set(key(markPrefix, m), nil, nil); err != nil {
			return err
		}
	}
	if checkpoint != nil {
		if err := b.Set(checkpointKey, binary.BigEndian.AppendUint64(nil, *checkpoint), nil); err != nil {
			return err
		}
	}
	opt := pebble.NoSync
	if len(ds) > 0 || len(marks) > 0 {
		opt = pebble.Sync
	}
	return b.Commit(opt)
}

// Pending returns up to limit pending deliveries, in key order.
func (o *Outbox) Pending(_ context.Context, limit int) ([]Delivery, error) {
	return o.list(pendingPrefix, limit)
}

// DeadLetters returns up to limit dead letters.
func (o *Outbox) DeadLetters(_ context.Context, limit int) ([]Delivery, error) {
	return o.list(deadPrefix, limit)
}

func (o *Outbox) list(prefix []byte, limit int) ([]Delivery, error) {
	it, err := o.db.NewIter(prefixBounds(prefix))
	if err != nil {
		return nil, err
	}
	var out []Delivery
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		var d Delivery
		if err := json.Unmarshal(it.Value(), &d); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("notify: outbox item: %w", err)
		}
		out = append(out, d)
	}
	return out, it.Close()
}

// Done removes a delivered (or undeliverable, target gone) item.
func (o *Outbox) Done(_ context.Context, id string) error {
	return o.db.Delete(key(pendingPrefix, id), pebble.NoSync)
}

// Fail moves a pending item to the dead letters with its error.
func (o *Outbox) Fail(_ context.Context, d Delivery) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	b := o.db.NewBatch()
	defer b.Close()
	_ = b.Delete(key(pendingPrefix, d.Notification.ID), nil)
	_ = b.Set(key(deadPrefix, d.Notification.ID), v, nil)
	return b.Commit(pebble.Sync)
}

// Retry moves a dead letter back to the pending deliveries.
func (o *Outbox) Retry(_ context.Context, id string) (Delivery, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok, err := pebbledb.Lookup(o.db, key(deadPrefix, id))
	if err != nil {
		return Delivery{}, err
	}
	if !ok {
		return Delivery{}, domain.ErrNoDeadLetter
	}
	var d Delivery
	if err := json.Unmarshal(v, &d); err != nil {
		return Delivery{}, fmt.Errorf("notify: dead letter: %w", err)
	}
	d.FailedAt, d.Error = time.Time{}, ""
	nv, err := json.Marshal(d)
	if err != nil {
		return Delivery{}, err
	}
	b := o.db.NewBatch()
	defer b.Close()
	_ = b.Delete(key(deadPrefix, id), nil)
	_ = b.Set(key(pendingPrefix, id), nv, nil)
	return d, b.Commit(pebble.Sync)
}

// Count returns the number of pending deliveries and dead letters.
func (o *Outbox) Count(context.Context) (pending, dead int, err error) {
	if pending, err = o.count(pendingPrefix); err != nil {
		return 0, 0, err
	}
	dead, err = o.count(deadPrefix)
	return pending, dead, err
}

func (o *Outbox) count(prefix []byte) (int, error) {
	it, err := o.db.NewIter(prefixBounds(prefix))
	if err != nil {
		return 0, err
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Close()
}

func prefixBounds(prefix []byte) *pebble.IterOptions {
	upper := append(append([]byte{}, prefix[:len(prefix)-1]...), prefix[len(prefix)-1]+1)
	return &pebble.IterOptions{LowerBound: prefix, UpperBound: upper}
}
