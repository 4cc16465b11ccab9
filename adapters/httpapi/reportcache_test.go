package httpapi

import (
	"testing"
	"time"
)

// TestReportCacheServesASecondAtMostAndNeverAnOlderPosition: a report is
// computed again after a second, for a position past the one it reflects,
// or when the clock went back; otherwise it is served from the cache.
func TestReportCacheServesASecondAtMostAndNeverAnOlderPosition(t *testing.T) {
	var c reportCache
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	computed, pos := 0, uint64(10)
	get := func(key string, now time.Time, minPos uint64) int {
		rep := c.get(key, now, minPos, func() (responseReport, uint64) {
			computed++
			v := computed
			return responseReport{responseFigures: responseFigures{Total: &v}}, pos
		})
		return *rep.Total
	}
	for _, tc := range []struct {
		what   string
		key    string
		now    time.Time
		minPos uint64
		want   int // the computation that answers
	}{
		{"first", "a", t0, 0, 1},
		{"again within the second", "a", t0.Add(999 * time.Millisecond), 0, 1},
		{"at its position", "a", t0.Add(time.Millisecond), 10, 1},
		{"past its position", "a", t0.Add(time.Millisecond), 11, 2},
		{"a second on", "a", t0.Add(1001 * time.Millisecond), 0, 3},
		{"the clock went back", "a", t0, 0, 4},
		{"another query", "b", t0, 0, 5},
	} {
		if got := get(tc.key, tc.now, tc.minPos); got != tc.want {
			t.Fatalf("%s: answered by computation %d, want %d", tc.what, got, tc.want)
		}
	}
}
