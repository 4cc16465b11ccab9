package httpapi

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	l := newLimiter(2, 3, func() time.Time { return now }) // 2/s, burst 3
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("anna"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow("anna")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v wait=%v, want refused for 500ms", ok, wait)
	}
	if ok, _ := l.allow("bram"); !ok {
		t.Fatal("another principal is limited by anna's requests")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.allow("anna"); !ok {
		t.Fatal("after the wait: refused")
	}
	if ok, _ := l.allow("anna"); ok {
		t.Fatal("one token came back, two were taken")
	}
	// Idle buckets go at the next sweep; memory follows active principals.
	for i := 0; i < 100; i++ {
		l.allow(fmt.Sprint("p", i))
	}
	now = now.Add(2 * time.Minute)
	l.allow("anna")
	if n := len(l.limiters); n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", n)
	}
}
