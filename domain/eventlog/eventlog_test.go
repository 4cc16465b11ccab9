package eventlog

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestSizeBoundsTheEncodedMetadata: Size counts metadata at a bound of its
// JSON encoding, whatever its strings hold, so that AppendSize bounds what
// a KurrentDB server counts against its maximum append size.
func TestSizeBoundsTheEncodedMetadata(t *testing.T) {
	alphabet := []string{"a", "Z", "0", "-", "<", ">", "&", "\"", "\\", "\n", "\x00", "é", "\u2028", "\xff", "€"}
	str := func(r *rand.Rand) string {
		n := r.IntN(40) + 1
		s := ""
		for range n {
			s += alphabet[r.IntN(len(alphabet))]
		}
		return s
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		m := Metadata{OccurredAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", 3600)),
			ActorID: str(r), ActorRole: str(r), OnBehalfOf: str(r), CorrelationID: str(r), CausationID: str(r),
			RequestID: str(r), Network: str(r), SchemaVersion: math.MinInt64, IdempotencyFingerprint: str(r)}
		if i%2 == 0 {
			m.SchemaVersion = math.MaxInt64
		}
		m.OccurredAt = m.OccurredAt.UTC() // as the adapters store it
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		e := EventData{ID: uuid.New(), Type: "T", Data: []byte(`{}`), Metadata: m}
		if bound := e.Size() - len(e.Type) - len(e.Data); len(raw) > bound {
			t.Fatalf("metadata encodes to %d bytes, over its bound %d: %s", len(raw), bound, raw)
		}
	}
}

func TestValidateBoundsAppendsByBytes(t *testing.T) {
	ev := func(data int) EventData {
		return EventData{ID: uuid.New(), Type: "SomethingHappened", Data: make([]byte, data), Metadata: Metadata{ActorID: "a"}}
	}
	one := ev(0)
	per := one.Size() + len(one.Type) // AppendSize of an event with no data
	// Five events of equal size filling MaxAppendBytes exactly.
	each := MaxAppendBytes / 5
	fill := func(extra int) []EventData {
		evs := make([]EventData, 5)
		for i := range evs {
			evs[i] = ev(each - per)
		}
		evs[4].Data = make([]byte, len(evs[4].Data)+MaxAppendBytes-5*each+extra)
		return evs
	}
	if got := AppendSize(fill(0)); got != MaxAppendBytes {
		t.Fatalf("AppendSize = %d, want %d", got, MaxAppendBytes)
	}
	if err := Validate("s-1", fill(0)); err != nil {
		t.Fatalf("an append of exactly MaxAppendBytes: %v", err)
	}
	if err := Validate("s-1", fill(1)); err != ErrAppendTooLarge {
		t.Fatalf("one byte more: %v, want ErrAppendTooLarge", err)
	}
}

// BenchmarkValidate is the cost of the checks every append makes before
// any I/O, for a signal-sized event with full metadata.
func BenchmarkValidate(b *testing.B) {
	e := EventData{ID: uuid.New(), Type: "SignalRaised", Data: make([]byte, 600), Metadata: Metadata{
		OccurredAt: time.Now(), ActorID: "carla", ActorRole: "buurtsteun", CorrelationID: uuid.NewString(), CausationID: uuid.NewString(),
		RequestID: uuid.NewString(), Network: "default", SchemaVersion: 1, IdempotencyFingerprint: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}
	evs := []EventData{e, e}
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate("signal-0a2b", evs); err != nil {
			b.Fatal(err)
		}
	}
}
