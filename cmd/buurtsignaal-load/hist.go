package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram is an HDR-style log-linear latency histogram: each power of two
// of microseconds is split in 64 linear sub-buckets, so any recorded value is
// known to within 1/64 (about 1.6%) over the whole range, in fixed memory.
type histogram struct {
	counts [64 * 64]uint64
	n      uint64
	max    time.Duration
}

const subBits = 6

func bucketOf(us uint64) int {
	if us < 1<<subBits {
		return int(us)
	}
	exp := bits.Len64(us) - subBits // >= 1
	sub := us >> (exp - 1) & (1<<subBits - 1)
	i := exp*(1<<subBits) + int(sub)
	if i >= len(histogram{}.counts) {
		return len(histogram{}.counts) - 1
	}
	return i
}

// lowerBound is the smallest value (in µs) of bucket i.
func lowerBound(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	exp := i / (1 << subBits)
	sub := uint64(i % (1 << subBits))
	return (1<<subBits | sub) << (exp - 1)
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(us)]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1), as a bucket's lower bound.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank && c > 0 {
			return time.Duration(lowerBound(i)) * time.Microsecond
		}
	}
	return h.max
}
