package main

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// histogram is a latency histogram on HdrHistogram (hdrhistogram-go): values
// in microseconds from 1 µs to an hour, to three significant digits (within
// 0.1%) over the whole range, in fixed memory. Its zero value is ready.
type histogram struct {
	h   *hdrhistogram.Histogram
	max time.Duration
}

// Its range: 1 µs to an hour, three significant digits.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 3
)

func (h *histogram) init() {
	if h.h == nil {
		h.h = hdrhistogram.New(histLowest, histHighest, histDigits)
	}
}

func (h *histogram) record(d time.Duration) {
	h.init()
	us := min(max(d.Microseconds(), histLowest), histHighest) // out of range: counted at its edge
	_ = h.h.RecordValue(us)
	if d > h.max {
		h.max = d
	}
}

func (h *histogram) merge(o *histogram) {
	h.init()
	if o.h != nil {
		h.h.Merge(o.h)
	}
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1).
func (h *histogram) quantile(q float64) time.Duration {
	if h.h == nil || h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// count is the number of values recorded.
func (h *histogram) count() int64 {
	if h.h == nil {
		return 0
	}
	return h.h.TotalCount()
}
