package pebblestore

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/pebbledb"
)

// The key layout of the store (see the package doc): record, stream index
// and stream head keys.

func be64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

func logKey(pos uint64) []byte { return append([]byte{'g'}, be64(pos)...) }

func streamKey(stream string, rev uint64) []byte {
	k := make([]byte, 0, 1+len(stream)+1+8)
	k = append(k, 's')
	k = append(k, stream...)
	k = append(k, 0)
	return append(k, be64(rev)...)
}

func headKey(stream string) []byte { return append([]byte{'h'}, stream...) }

var (
	metaKey = []byte("m")
	posKey  = []byte("p")
	castag  = crc32.MakeTable(crc32.Castagnoli)
)

func (s *Store) get(key []byte) ([]byte, bool, error) { return pebbledb.Lookup(s.db, key) }
