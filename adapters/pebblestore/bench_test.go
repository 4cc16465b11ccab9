package pebblestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// payload is a realistic ~400-byte event body.
var payload = []byte(`{"signal_id":"6f1b8a52-3c1e-4d0a-9a55-8d2f6b1e9c41","subject_id":"1a2b3c4d-3c1e-4d0a-9a55-8d2f6b1e9c41","raised_by":"vol1","source":"buurtsteun","network":"default","neighbourhood":"centrum","categories":["loneliness"],"urgency":"normal","consent":"informed","description":"` + strings.Repeat("A", 120) + `","raised_at":"2026-11-22T10:00:00Z"}`)

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

func benchAppend(b *testing.B, writers int) {
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
			stream := fmt.Sprintf("signal-%d", w)
			for take() {
				e := eventlog.EventData{ID: uuid.New(), Type: "SignalRaised", Data: payload}
				if _, err := s.Append(context.Background(), stream, eventlog.Any(), e); err != nil {
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
func BenchmarkAppend1(b *testing.B) { benchAppend(b, 1) }

// BenchmarkAppend64 is 64 writers: group commit.
func BenchmarkAppend64(b *testing.B) { benchAppend(b, 64) }

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
				err = f.Sync() // fdatasync-equivalent on Linux for an append-only file
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

// replayStore builds, once per run, a store of 1,000,000 events (~400-byte
// payloads) across 100,000 streams, outside the timer.
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
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < replayEvents/10; i += 8 {
					evs := make([]eventlog.EventData, 10)
					for j := range evs {
						evs[j] = eventlog.EventData{ID: uuid.New(), Type: "SignalRaised", Data: payload}
					}
					if _, err := s.Append(context.Background(), fmt.Sprintf("signal-%d", i), eventlog.NoStream(), evs...); err != nil {
						replayDir.err = err
						return
					}
				}
			}(w)
		}
		wg.Wait()
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

func TestMain(m *testing.M) {
	code := m.Run()
	if replayDir.dir != "" {
		os.RemoveAll(replayDir.dir)
	}
	os.Exit(code)
}
