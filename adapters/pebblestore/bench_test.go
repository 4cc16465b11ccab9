package pebblestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// payload is a realistic ~400-byte event body.
var payload = []byte(`{"signal_id":"6f1b8a52-3c1e-4d0a-9a55-8d2f6b1e9c41","subject_id":"1a2b3c4d-3c1e-4d0a-9a55-8d2f6b1e9c41","raised_by":"vol1","source":"buurtsteun","network":"default","neighbourhood":"centrum","categories":["loneliness"],"urgency":"normal","consent":"informed","description":"` + strings.Repeat("A", 120) + `","raised_at":"2026-11-22T10:00:00Z"}`)

// benchEvent is an event as the API writes it: the payload and metadata
// with ids and roles (actor i of 50).
func benchEvent(i int) eventlog.EventData {
	return eventlog.EventData{ID: uuid.New(), Type: "SignalRaised", Data: payload, Metadata: eventlog.Metadata{
		OccurredAt: time.Now().UTC(), ActorID: fmt.Sprintf("actor-%d", i%50), ActorRole: "volunteer",
		CorrelationID: "3f0c1a52-3c1e-4d0a-9a55-8d2f6b1e9c41", RequestID: "req-000042", Network: "default", SchemaVersion: 1,
	}}
}

// counter hands out n tickets to concurrent writers.
func counter(n int) func() bool {
	var mu sync.Mutex
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if n == 0 {
			return false
		}
		n--
		return true
	}
}

// benchAppend runs writers goroutines appending one event each time: to a
// stream of their own (Any), or, with newStreams, each to a stream of its
// own that must not exist yet (NoStream), as raising a signal does.
func benchAppend(b *testing.B, writers int, newStreams bool) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	take := counter(b.N)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			stream, expected := fmt.Sprintf("signal-%d", w), eventlog.Any()
			for take() {
				if newStreams {
					stream, expected = "signal-"+uuid.NewString(), eventlog.NoStream()
				}
				if _, err := s.Append(context.Background(), stream, expected, benchEvent(w)); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend1 is one writer: a synced write per append.
func BenchmarkAppend1(b *testing.B) { benchAppend(b, 1, false) }

// BenchmarkAppend64 is 64 writers: group commit.
func BenchmarkAppend64(b *testing.B) { benchAppend(b, 64, false) }

// BenchmarkAppendNew64 is 64 writers each starting a new stream with every
// append (expected version: no stream), the store's side of the comparison
// with PostgreSQL in `make bench`: there, 64 pgbench clients insert one event
// per transaction under UNIQUE(stream, version).
func BenchmarkAppendNew64(b *testing.B) { benchAppend(b, 64, true) }

// BenchmarkRawFile64 is the disk's limit for the same work: an append-only
// file, one writer goroutine that writes whatever is queued and fdatasyncs
// per batch, fed by 64 writers waiting for their acknowledgement.
func BenchmarkRawFile64(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	type req struct{ done chan error }
	reqs := make(chan req, 1024)
	go func() {
		buf := make([]byte, 0, 1<<20)
		for r := range reqs {
			batch := []req{r}
		fill:
			for {
				select {
				case r2, ok := <-reqs:
					if !ok {
						break fill
					}
					batch = append(batch, r2)
				default:
					break fill
				}
			}
			buf = buf[:0]
			for range batch {
				buf = append(buf, payload...)
				buf = append(buf, '\n')
			}
			_, err := f.Write(buf)
			if err == nil {
				err = fdatasync(f)
			}
			for _, r := range batch {
				r.done <- err
			}
		}
	}()
	take := counter(b.N)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			for take() {
				reqs <- req{done: done}
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(reqs)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

var replayDir struct {
	once sync.Once
	dir  string
	err  error
}

const replayEvents = 1_000_000

// replayStore builds, once per run, a store of 1,000,000 events (~430-byte
// payloads and metadata) across 100,000 streams, outside the timer.
func replayStore(b *testing.B) string {
	replayDir.once.Do(func() {
		dir, err := os.MkdirTemp("", "buurtsignaal-replay-")
		if err != nil {
			replayDir.err = err
			return
		}
		s, err := Open(dir, Options{NoSync: true})
		if err != nil {
			replayDir.err = err
			return
		}
		defer s.Close()
		// Each stream takes one event per round, as signals gain events
		// over time: a stream's events are spread over the whole log.
		const streams, writers = replayEvents / 10, 8
		var wg sync.WaitGroup
		var failed atomic.Pointer[error]
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for round := 0; round < replayEvents/streams; round++ {
					for i := w; i < streams; i += writers {
						if _, err := s.Append(context.Background(), fmt.Sprintf("signal-%d", i), eventlog.Any(), benchEvent(i)); err != nil {
							failed.CompareAndSwap(nil, &err)
							return
						}
					}
				}
			}(w)
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			replayDir.err = *err
			return
		}
		// Settle the LSM as a store that grew over time would be, so that
		// compactions of the fresh data do not run during the timed replay.
		if err := s.DB().Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
			replayDir.err = err
			return
		}
		replayDir.dir = dir
	})
	if replayDir.err != nil {
		b.Fatal(replayDir.err)
	}
	return replayDir.dir
}

// BenchmarkReplay1M reads the 1,000,000 events through ReadAll.
func BenchmarkReplay1M(b *testing.B) {
	dir := replayStore(b)
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	total := 0
	for i := 0; i < b.N; i++ {
		var after uint64
		for {
			page, err := s.ReadAll(context.Background(), after, 4096)
			if err != nil {
				b.Fatal(err)
			}
			total += len(page)
			if len(page) == 0 {
				break
			}
			after = page[len(page)-1].Position
		}
	}
	if total != b.N*replayEvents {
		b.Fatalf("replayed %d events, want %d", total, b.N*replayEvents)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
}

// TestMain removes the benchmark fixture and fails the run when a test
// leaves goroutines behind (writers, syncers, subscriptions, runners).
func TestMain(m *testing.M) {
	code := m.Run()
	if replayDir.dir != "" {
		os.RemoveAll(replayDir.dir)
	}
	if err := goleak.Find(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "goleak:", err)
		code = 1
	}
	os.Exit(code)
}

// BenchmarkReadStream reads whole streams of 10 events picked at random
// from the replay store's 100,000, most of them not in the block cache;
// each op reads 1,000 streams.
func BenchmarkReadStream(b *testing.B) {
	dir := replayStore(b)
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		for range 1000 {
			n++
			st := fmt.Sprintf("signal-%d", (n*7919)%(replayEvents/10))
			evs, err := s.ReadStream(context.Background(), st, eventlog.Forwards, 0, 100)
			if err != nil || len(evs) != 10 {
				b.Fatalf("%s: %d events, %v", st, len(evs), err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/stream")
}
