package readstore_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/buurtsignaal/buurtsignaal/adapters/readstore"
	"github.com/buurtsignaal/buurtsignaal/projections"
	"github.com/buurtsignaal/buurtsignaal/projections/readstoretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	readstoretest.Run(t, func(t testing.TB, dir string) projections.ReadStore {
		s, err := readstore.Open(dir, readstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
