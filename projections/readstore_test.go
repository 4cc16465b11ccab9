package projections_test

import (
	"sync"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/projections"
	"github.com/buurtsignaal/buurtsignaal/projections/readstoretest"
)

func TestMemoryStoreConformance(t *testing.T) {
	var mu sync.Mutex
	stores := map[string]*projections.MemoryStore{}
	readstoretest.Run(t, func(t testing.TB, dir string) projections.ReadStore {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := stores[dir]; ok {
			return s // a reopen: the memory store keeps its contents
		}
		s := projections.NewMemoryStore()
		stores[dir] = s
		return s
	})
}
