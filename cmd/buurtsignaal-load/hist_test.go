package main

import (
	"testing"
	"time"
)

func TestHistogramQuantilesWithinOnePointSixPercent(t *testing.T) {
	var h histogram
	for us := 1; us <= 100_000; us++ {
		h.record(time.Duration(us) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 100_000
		got := float64(h.quantile(q).Microseconds())
		if got > want || got < want*(1-1.0/64)-1 {
			t.Errorf("q%.3f = %.0fµs, want within 1/64 below %.0fµs", q, got, want)
		}
	}
	if h.quantile(1) > h.max {
		t.Errorf("q1 above max")
	}
}

func TestBucketBoundsAreMonotonic(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<20; us += 7 {
		b := bucketOf(us)
		if b < prev || lowerBound(b) > us {
			t.Fatalf("bucket %d for %dµs (lower bound %d), previous %d", b, us, lowerBound(b), prev)
		}
		prev = b
	}
}
