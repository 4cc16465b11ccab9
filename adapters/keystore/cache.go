package keystore

import (
	"sync"

	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// lruCache holds unwrapped subject keys, least recently used out first. It
// is sharded by the id's last byte (random in UUID versions 4 and 7) so hot
// readers on two cores rarely meet on one lock.
type lruCache struct {
	shards []lruShard
	mask   int
}

type lruShard struct {
	mu   sync.Mutex
	max  int
	m    map[uuid.UUID]*lruEntry
	root lruEntry // sentinel: root.next is the most recent, root.prev the least
	_    [64]byte // keep shards on their own cache lines
}

type lruEntry struct {
	id         uuid.UUID
	aead       tink.AEAD
	prev, next *lruEntry
}

// newLRUCache returns a cache of about size entries (at least one per
// shard; 16 shards from 1,024 entries on, one below).
func newLRUCache(size int) *lruCache {
	n := 1
	if size >= 1024 {
		n = 16
	}
	c := &lruCache{shards: make([]lruShard, n), mask: n - 1}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.max = max(1, (size+n-1)/n)
		sh.m = make(map[uuid.UUID]*lruEntry)
		sh.root.next, sh.root.prev = &sh.root, &sh.root
	}
	return c
}

func (c *lruCache) shard(id uuid.UUID) *lruShard { return &c.shards[int(id[15])&c.mask] }

func (sh *lruShard) unlink(e *lruEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (sh *lruShard) pushFront(e *lruEntry) {
	e.prev, e.next = &sh.root, sh.root.next
	e.prev.next, e.next.prev = e, e
}

// get returns the subject's AEAD, or nil.
func (c *lruCache) get(id uuid.UUID) tink.AEAD {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id]
	if e == nil {
		return nil
	}
	if sh.root.next != e {
		sh.unlink(e)
		sh.pushFront(e)
	}
	return e.aead
}

// put adds the subject's AEAD, evicting the least recently used beyond the bound.
func (c *lruCache) put(id uuid.UUID, a tink.AEAD) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[id]; e != nil {
		e.aead = a
		sh.unlink(e)
		sh.pushFront(e)
		return
	}
	e := &lruEntry{id: id, aead: a}
	sh.m[id] = e
	sh.pushFront(e)
	for len(sh.m) > sh.max {
		old := sh.root.prev
		sh.unlink(old)
		delete(sh.m, old.id)
	}
}

// remove drops the subject's AEAD.
func (c *lruCache) remove(id uuid.UUID) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[id]; e != nil {
		sh.unlink(e)
		delete(sh.m, id)
	}
}

// len returns the number of cached keys.
func (c *lruCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (c *lruCache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.root.next, sh.root.prev = &sh.root, &sh.root
		sh.mu.Unlock()
	}
}
