package projections

import (
	"bytes"
	"slices"
	"sync"
)

// ReadStore is the read-model store port: an ordered map of byte keys, one
// per replica, beside the event store, where the read models keep what is
// not held in memory (history: closed cases, the audit trail, subjects) and
// the checkpoint of each read model. It holds ids, codes, times and
// ciphertext only, never personal data in clear.
//
// A read model writes its state and its checkpoint in one Batch, so after a
// crash it resumes from a position that matches its state exactly. Reads
// see only written batches, each whole or not at all. One goroutine (the
// runner) writes; any number read.
//
// adapters/readstore is the Pebble implementation; NewMemoryStore is the
// one for tests and for runners without a directory. Both pass the one
// conformance suite, projections/readstoretest.
type ReadStore interface {
	// Get returns a copy of the value of key, and whether there is one.
	Get(key []byte) (value []byte, ok bool, err error)
	// GetMany calls fn with each of keys (in ascending order) that has a
	// value, in that order, until fn returns false: many lookups in one
	// pass. value is valid only during the call.
	GetMany(keys [][]byte, fn func(key, value []byte) bool) error
	// Scan calls fn with each key in [lower, upper) in ascending order, or
	// descending with reverse, until fn returns false. An empty upper has no
	// upper bound. key and value are valid only during the call.
	Scan(lower, upper []byte, reverse bool, fn func(key, value []byte) bool) error
	// Write applies the batch atomically: every operation or none.
	Write(b *Batch) error
	// Close releases the store; the memory store keeps its contents.
	Close() error
}

// OpKind is what one operation of a batch does.
type OpKind uint8

const (
	OpSet         OpKind = iota // set Key to Value
	OpDelete                    // delete Key
	OpDeleteRange               // delete every key in [Key, End)
)

// Op is one operation of a batch.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte
	End   []byte
}

// Batch is a list of writes applied atomically by ReadStore.Write, in order.
// It keeps the slices it is given: callers must not change them afterwards.
type Batch struct {
	ops   []Op
	bytes int
}

// Set sets key to value.
func (b *Batch) Set(key, value []byte) {
	b.ops = append(b.ops, Op{Kind: OpSet, Key: key, Value: value})
	b.bytes += len(key) + len(value)
}

// Delete deletes key.
func (b *Batch) Delete(key []byte) {
	b.ops = append(b.ops, Op{Kind: OpDelete, Key: key})
	b.bytes += len(key)
}

// DeleteRange deletes every key in [start, end).
func (b *Batch) DeleteRange(start, end []byte) {
	b.ops = append(b.ops, Op{Kind: OpDeleteRange, Key: start, End: end})
	b.bytes += len(start) + len(end)
}

// Ops returns the operations in order, for store implementations.
func (b *Batch) Ops() []Op { return b.ops }

// Len returns the number of operations.
func (b *Batch) Len() int { return len(b.ops) }

// Size returns the bytes of keys and values in the batch.
func (b *Batch) Size() int { return b.bytes }

// Reset empties the batch for reuse.
func (b *Batch) Reset() {
	clear(b.ops)
	b.ops, b.bytes = b.ops[:0], 0
}

// MemoryStore is a ReadStore in memory: a sorted list of entries. Close
// keeps the contents, so a test can "restart" over the same store.
type MemoryStore struct {
	mu      sync.RWMutex
	entries []memEntry
}

type memEntry struct{ key, value []byte }

// NewMemoryStore returns an empty memory store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

var _ ReadStore = (*MemoryStore)(nil)

func (m *MemoryStore) find(key []byte) (int, bool) {
	return slices.BinarySearchFunc(m.entries, key, func(e memEntry, k []byte) int { return bytes.Compare(e.key, k) })
}

// Get implements ReadStore.
func (m *MemoryStore) Get(key []byte) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, ok := m.find(key)
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(m.entries[i].value), true, nil
}

// GetMany implements ReadStore.
func (m *MemoryStore) GetMany(keys [][]byte, fn func(key, value []byte) bool) error {
	for _, k := range keys {
		v, ok, err := m.Get(k)
		if err != nil {
			return err
		}
		if ok && !fn(k, v) {
			return nil
		}
	}
	return nil
}

// Scan implements ReadStore. It calls fn on a copy of the range taken
// under the lock, so fn may take its time and sees one state.
func (m *MemoryStore) Scan(lower, upper []byte, reverse bool, fn func(key, value []byte) bool) error {
	m.mu.RLock()
	lo, _ := m.find(lower)
	hi := len(m.entries)
	if len(upper) > 0 {
		hi, _ = m.find(upper)
	}
	var view []memEntry
	if lo < hi {
		view = slices.Clone(m.entries[lo:hi])
	}
	m.mu.RUnlock()
	if reverse {
		slices.Reverse(view)
	}
	for _, e := range view {
		if !fn(e.key, e.value) {
			return nil
		}
	}
	return nil
}

// Write implements ReadStore.
func (m *MemoryStore) Write(b *Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range b.ops {
		switch op.Kind {
		case OpSet:
			e := memEntry{key: bytes.Clone(op.Key), value: bytes.Clone(op.Value)}
			if i, ok := m.find(op.Key); ok {
				m.entries[i] = e
			} else {
				m.entries = slices.Insert(m.entries, i, e)
			}
		case OpDelete:
			if i, ok := m.find(op.Key); ok {
				m.entries = slices.Delete(m.entries, i, i+1)
			}
		case OpDeleteRange:
			lo, _ := m.find(op.Key)
			hi, _ := m.find(op.End)
			if lo < hi {
				m.entries = slices.Delete(m.entries, lo, hi)
			}
		}
	}
	return nil
}

// Close implements ReadStore; the contents stay.
func (m *MemoryStore) Close() error { return nil }
