// Package pebbledb holds the small helpers every Pebble database of the
// server shares (the event store, the key store, the notification outbox):
// a point lookup that uses every level's bloom filters, and a logger that
// keeps Pebble's chatter out of the server's logs. It is a library, not an
// adapter: it implements no port and knows none.
package pebbledb

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ErrFatal is what a Pebble database's fatal error panics with: the files
// are damaged or the disk failed under it.
var ErrFatal = errors.New("pebble: fatal error")

// QuietLogger keeps Pebble's informational logging out of the server's
// logs; a fatal error panics with Fatal (ErrFatal when nil) wrapped.
type QuietLogger struct {
	Fatal error
}

func (QuietLogger) Infof(string, ...any)  {}
func (QuietLogger) Errorf(string, ...any) {}
func (l QuietLogger) Fatalf(format string, args ...any) {
	kind := l.Fatal
	if kind == nil {
		kind = ErrFatal
	}
	panic(fmt.Errorf("%w: "+format, append([]any{kind}, args...)...))
}

// Lookup reads one key from r, consulting the bloom filters of every level.
// Pebble's Get skips the filters of the bottom level (L6), where most keys
// live, so looking up a key that does not exist (the head of a new stream,
// the key of a new subject) reads and decompresses a data block there: under
// load that was a quarter of the server's CPU time. The value is a copy.
func Lookup(r pebble.Reader, key []byte) (value []byte, ok bool, err error) {
	it, err := r.NewIter(&pebble.IterOptions{UseL6Filters: true})
	if err != nil {
		return nil, false, err
	}
	if it.SeekPrefixGE(key) && bytes.Equal(it.Key(), key) {
		v, verr := it.ValueAndErr()
		value, ok, err = bytes.Clone(v), verr == nil, verr
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, err
	}
	return value, ok, nil
}
