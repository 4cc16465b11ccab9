package subjectkeys

import (
	"sync"

	"github.com/google/uuid"
)

// Cache holds values per subject (unwrapped keys), least recently used out
// first, within a bound. It is sharded by the id's last byte (random in UUID
// versions 4 and 7) so hot readers on two cores rarely meet on one lock. It
// is safe for concurrent use.
type Cache[V any] struct {
	shards []lruShard[V]
	mask   int
}

type lruShard[V any] struct {
	mu   sync.Mutex
	max  int
	m    map[uuid.UUID]*lruEntry[V]
	root lruEntry[V] // sentinel: root.next is the most recent, root.prev the least
	_    [64]byte    // keep shards on their own cache lines
}

type lruEntry[V any] struct {
	id         uuid.UUID
	v          V
	prev, next *lruEntry[V]
}

// NewCache returns a cache of about size entries (at least one per shard;
// 16 shards from 1,024 entries on, one below).
func NewCache[V any](size int) *Cache[V] {
	n := 1
	if size >= 1024 {
		n = 16
	}
	c := &Cache[V]{shards: make([]lruShard[V], n), mask: n - 1}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.max = max(1, (size+n-1)/n)
		sh.m = make(map[uuid.UUID]*lruEntry[V])
		sh.root.next, sh.root.prev = &sh.root, &sh.root
	}
	return c
}

func (c *Cache[V]) shard(id uuid.UUID) *lruShard[V] { return &c.shards[int(id[15])&c.mask] }

func (sh *lruShard[V]) unlink(e *lruEntry[V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (sh *lruShard[V]) pushFront(e *lruEntry[V]) {
	e.prev, e.next = &sh.root, sh.root.next
	e.prev.next, e.next.prev = e, e
}

// Get returns the subject's value, refreshing it, and whether there is one.
func (c *Cache[V]) Get(id uuid.UUID) (V, bool) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id]
	if e == nil {
		var zero V
		return zero, false
	}
	if sh.root.next != e {
		sh.unlink(e)
		sh.pushFront(e)
	}
	return e.v, true
}

// Put sets the subject's value, evicting the least recently used beyond
// the bound.
func (c *Cache[V]) Put(id uuid.UUID, v V) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[id]; e != nil {
		e.v = v
		sh.unlink(e)
		sh.pushFront(e)
		return
	}
	e := &lruEntry[V]{id: id, v: v}
	sh.m[id] = e
	sh.pushFront(e)
	for len(sh.m) > sh.max {
		old := sh.root.prev
		sh.unlink(old)
		delete(sh.m, old.id)
	}
}

// Replace sets the subject's value only if it has one already, and reports
// whether it did: it never brings back a value that was removed.
func (c *Cache[V]) Replace(id uuid.UUID, v V) bool {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id]
	if e == nil {
		return false
	}
	e.v = v
	return true
}

// Remove drops the subject's value.
func (c *Cache[V]) Remove(id uuid.UUID) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[id]; e != nil {
		sh.unlink(e)
		delete(sh.m, id)
	}
}

// Len returns the number of cached values.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Clear drops every value.
func (c *Cache[V]) Clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.root.next, sh.root.prev = &sh.root, &sh.root
		sh.mu.Unlock()
	}
}
