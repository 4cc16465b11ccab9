package main

import (
	"math"
	"testing"
	"time"
)

// TestHistogramQuantiles: the load generator's quantiles are those of the
// recorded values within HdrHistogram's three significant digits, also
// after merging per-client histograms.
func TestHistogramQuantiles(t *testing.T) {
	var a, b, all histogram
	for us := 1; us <= 100_000; us++ {
		if us%2 == 0 {
			a.record(time.Duration(us) * time.Microsecond)
		} else {
			b.record(time.Duration(us) * time.Microsecond)
		}
	}
	all.merge(&a)
	all.merge(&b)
	if all.count() != 100_000 {
		t.Fatalf("%d values after the merge, want 100000", all.count())
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 100_000
		got := float64(all.quantile(q).Microseconds())
		if math.Abs(got-want) > want/1000+1 {
			t.Errorf("q%.3f = %.0fµs, want %.0fµs within 0.1%%", q, got, want)
		}
	}
	if all.quantile(1) > all.max+all.max/1000 {
		t.Errorf("q1 %v above max %v", all.quantile(1), all.max)
	}
	var empty histogram
	if empty.quantile(0.99) != 0 {
		t.Error("an empty histogram has a quantile")
	}
	empty.record(2 * time.Hour) // beyond the range: at its edge, not lost
	if empty.count() != 1 || empty.quantile(0.5) < 59*time.Minute {
		t.Errorf("a value beyond the range: count %d, median %v", empty.count(), empty.quantile(0.5))
	}
}
