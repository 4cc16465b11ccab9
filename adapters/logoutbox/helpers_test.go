package logoutbox_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/logoutbox"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func newID() uuid.UUID { return uuid.New() }

// countingStore counts stream reads and the events they return.
type countingStore struct {
	eventlog.Store
	mu            sync.Mutex
	reads, events int
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, dir eventlog.Direction, from uint64, limit int) ([]eventlog.RecordedEvent, error) {
	res, err := s.Store.ReadStream(ctx, stream, dir, from, limit)
	s.mu.Lock()
	s.reads++
	s.events += len(res)
	s.mu.Unlock()
	return res, err
}

// segments returns the number of the last segment of the outbox "notifier"
// and its events.
func (s *countingStore) segments(t *testing.T) (uint64, int) {
	t.Helper()
	for k := uint64(1); ; k++ {
		if _, err := s.Store.ReadStream(ctxT(t), logoutbox.Stream("notifier", k+1), eventlog.Forwards, 0, 1); err != nil {
			res, err := s.Store.ReadStream(ctxT(t), logoutbox.Stream("notifier", k), eventlog.Forwards, 0, 100_000)
			if err != nil {
				t.Fatal(err)
			}
			return k, len(res)
		}
	}
}
