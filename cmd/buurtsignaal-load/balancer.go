package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// balancer spreads requests over the replicas of one deployment round
// robin and, as a load balancer with health checks does, takes a replica
// out for a while when a connection to it is refused, sending the request
// to the next one. A request whose connection broke after it was sent is
// not sent again (it may have been acknowledged): it fails, and the run
// counts it.
type balancer struct {
	bases    []string
	next     atomic.Uint64
	switched atomic.Uint64 // requests refused by a replica and sent to another

	mu   sync.Mutex
	down map[string]time.Time // replica -> out until
}

func newBalancer(bases []string) *balancer {
	return &balancer{bases: bases, down: map[string]time.Time{}}
}

// pick returns the next replica that is not out, or the next one at all.
func (b *balancer) pick() string {
	n := uint64(len(b.bases))
	start := b.next.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	for i := uint64(0); i < n; i++ {
		base := b.bases[(start+i)%n]
		if until, out := b.down[base]; !out || now.After(until) {
			return base
		}
	}
	return b.bases[start%n]
}

func (b *balancer) markDown(base string) {
	b.mu.Lock()
	b.down[base] = time.Now().Add(2 * time.Second)
	b.mu.Unlock()
}

// do sends a request to a replica, and to the next ones while connections
// are refused.
func (b *balancer) do(ctx context.Context, send func(base string) (*http.Response, error)) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		base := b.pick()
		resp, err := send(base)
		if err == nil || ctx.Err() != nil || attempt+1 >= len(b.bases) || !errors.Is(err, syscall.ECONNREFUSED) {
			return resp, err
		}
		b.markDown(base)
		b.switched.Add(1)
	}
}
