package pebblestore

import (
	"testing"

	"github.com/buurtsignaal/buurtsignaal/adapters/storetest"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Config{
		New: func(t *testing.T) eventlog.Store {
			s, err := Open(t.TempDir(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		DensePositions: true,
	})
}
