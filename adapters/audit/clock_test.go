package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestAClockSteppingBackNeverReordersAChain: the server's clock steps back
// (NTP) within a day, across midnight, and after a restart; a record may
// also reach the writer after one stamped later. Each record goes to the
// latest day's stream the writer has seen, and carries a time no earlier
// than the record before it in its chain; every chain verifies.
func TestAClockSteppingBackNeverReordersAChain(t *testing.T) {
	ctx := context.Background()
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	day := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC) // a fixed day: no test depends on today
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	clock := &fixedClock{}
	type step struct {
		clock, stamped time.Time // the writer's clock; the request's stamp (zero: the clock's)
		restart        bool      // a new writer (a restarted server) before this record
	}
	steps := []step{
		{clock: at(23, 50)},
		{clock: at(22, 50)},                      // one hour back, the same day
		{clock: at(24, 10)},                      // past midnight: the next day's stream
		{clock: at(23, 55)},                      // back before midnight: still the next day's
		{clock: at(24, 20), stamped: at(24, 5)},  // stamped before the last record, reaching the writer after it
		{clock: at(23, 58), restart: true},       // restarted with the clock behind: the day it says
		{clock: at(23, 59), stamped: at(23, 40)}, // before that chain's last record
	}
	log := New(store, plainCipher{}, "r", clock.now)
	for i, s := range steps {
		if s.restart {
			log.Close()
			log = New(store, plainCipher{}, "r", clock.now)
		}
		clock.t.Store(s.clock.UnixNano())
		stamp := s.stamped
		if stamp.IsZero() {
			stamp = s.clock
		}
		a := domain.Access{AccessRecord: domain.AccessRecord{At: stamp, ActorID: "anna", ActorRole: "professional", Action: "read", Outcome: "allowed", RequestID: "req-" + string(rune('a'+i))}}
		if err := log.RecordAccess(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	log.Close()

	type written struct {
		Stream string
		At     time.Time
	}
	var got []written
	all, err := store.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		got = append(got, written{strings.TrimPrefix(e.StreamID, "audit-r-"), e.Metadata.OccurredAt})
	}
	want := []written{
		{"20260309", at(23, 50)},
		{"20260309", at(23, 50)}, // not 22:50
		{"20260310", at(24, 10)},
		{"20260310", at(24, 10)}, // not 23:55, and not the day before's chain
		{"20260310", at(24, 10)}, // not 00:05
		{"20260309", at(23, 58)},
		{"20260309", at(23, 58)}, // not 23:40
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	rep, err := Verify(ctx, store)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}
