package notify_test

import (
	"path/filepath"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/adapters/notify"
	"github.com/buurtsignaal/buurtsignaal/adapters/outboxtest"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestOutbox runs the outbox conformance suite on the local Pebble outbox:
// one process at a time, each handle reopening the same directory.
func TestOutbox(t *testing.T) {
	outboxtest.Run(t, outboxtest.Config{New: func(t *testing.T) func(t *testing.T) domain.Outbox {
		dir := filepath.Join(t.TempDir(), "outbox")
		return func(t *testing.T) domain.Outbox {
			o, err := notify.OpenOutbox(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
	}})
}
