package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// A versioned list: each stream is the list of its event ids.
type linInput struct {
	stream   string
	read     bool
	expected int64 // revision expected; -1: no stream
	id       string
}

type linOutput struct {
	ok   bool   // append: written
	next int64  // append: the new revision
	ids  string // read: the stream's ids, comma-separated
}

var versionedList = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			s := op.Input.(linInput).stream
			by[s] = append(by[s], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(linInput), output.(linOutput)
		n := int64(0)
		if st != "" {
			n = int64(strings.Count(st, ",") + 1)
		}
		if in.read {
			return out.ids == st, st
		}
		if in.expected != n-1 {
			return !out.ok, st
		}
		if !out.ok || out.next != n {
			return false, st
		}
		if st == "" {
			return true, in.id
		}
		return true, st + "," + in.id
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		if in.read {
			return fmt.Sprintf("read(%s) -> [%s]", in.stream, out.ids)
		}
		return fmt.Sprintf("append(%s, expect %d, %.8s) -> %v %d", in.stream, in.expected, in.id, out.ok, out.next)
	},
}

// TestLinearizableAppends records concurrent appends with expected versions
// (and reads) on three hot streams, over phases with the store closed and
// reopened between them, and checks the history with Porcupine against a
// versioned list: every append and read takes effect at one instant between
// its call and its return.
func TestLinearizableAppends(t *testing.T) {
	dir := t.TempDir()
	clients, opsPerPhase, phases := 8, 60, 3
	if os.Getenv("BUURTSIGNAAL_SOAK") != "" { // make soak
		opsPerPhase, phases = 100, 10
	}
	streams := []string{"signal-hot-a", "signal-hot-b", "signal-hot-c"}
	var mu sync.Mutex
	var history []porcupine.Operation
	start := time.Now()
	stamp := func() int64 { return time.Since(start).Nanoseconds() }
	for phase := 0; phase < phases; phase++ {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(phase), uint64(c)))
				known := map[string]int64{}
				for i := 0; i < opsPerPhase; i++ {
					stream := streams[rng.IntN(len(streams))]
					in := linInput{stream: stream}
					var out linOutput
					call := stamp()
					if rng.IntN(4) == 0 {
						in.read = true
						recs, err := s.ReadStream(context.Background(), stream, eventlog.Forwards, 0, 10_000)
						if err != nil && !errors.Is(err, eventlog.ErrStreamNotFound) {
							t.Error(err)
							return
						}
						ids := make([]string, len(recs))
						for j, r := range recs {
							ids[j] = r.ID.String()
						}
						out.ids = strings.Join(ids, ",")
						known[stream] = int64(len(recs)) - 1
					} else {
						exp, ok := known[stream]
						if !ok {
							exp = -1
						}
						in.expected, in.id = exp, uuid.NewString()
						ev := eventlog.EventData{ID: uuid.MustParse(in.id), Type: "Probe", Data: []byte(`{}`), Metadata: eventlog.Metadata{OccurredAt: time.Now().UTC(), SchemaVersion: 1}}
						want := eventlog.NoStream()
						if exp >= 0 {
							want = eventlog.Revision(uint64(exp))
						}
						res, err := s.Append(context.Background(), stream, want, ev)
						switch {
						case err == nil:
							out = linOutput{ok: true, next: int64(res.NextRevision)}
							known[stream] = out.next
						case errors.Is(err, eventlog.ErrWrongExpectedVersion):
							delete(known, stream) // learn the version by reading
							if rng.IntN(2) == 0 {
								known[stream] = exp + 1 // or guess
							}
						default:
							t.Error(err)
							return
						}
					}
					ret := stamp()
					mu.Lock()
					history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
					mu.Unlock()
				}
			}(c)
		}
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	res := porcupine.CheckOperationsTimeout(versionedList, history, 60*time.Second)
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations is %v, want linearizable", len(history), res)
	}
	appended := 0
	for _, op := range history {
		if op.Output.(linOutput).ok {
			appended++
		}
	}
	if appended < 50 {
		t.Fatalf("only %d appends succeeded: the history tests little", appended)
	}
	t.Logf("%d operations, %d appends written, linearizable", len(history), appended)
}
