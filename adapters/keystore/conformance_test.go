package keystore

import (
	"testing"

	"github.com/buurtsignaal/buurtsignaal/adapters/keystoretest"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// The local store passes the key store port's conformance suite: one
// directory per backing store, opened again for a second instance.
func TestConformance(t *testing.T) {
	keystoretest.Run(t, keystoretest.Config{New: func(t *testing.T) func() (domain.KeyStore, error) {
		dir, m := t.TempDir(), newMaster(t)
		return func() (domain.KeyStore, error) {
			s, err := Open(dir, m, Options{})
			if err != nil {
				return nil, err
			}
			return s, nil
		}
	}})
}
