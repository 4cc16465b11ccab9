package projections

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/google/uuid"
)

// The read models' records are a compact binary form: varints, length-
// prefixed strings and bytes, UUIDs as 16 bytes, times as Unix nanoseconds
// in UTC. Each record starts with its format number. Decoding checks every
// length and fails with ErrCorrupt on anything it does not understand.

// ErrCorrupt is returned for a read-model record that does not decode: the
// read-model store is damaged (rebuild it with `buurtsignaal rebuild`).
var ErrCorrupt = errors.New("projections: a read-model record does not decode")

type enc struct{ b []byte }

func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) byte(v byte)      { e.b = append(e.b, v) }
func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *enc) bytes(v []byte)   { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) str(v string)     { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) uuid(v uuid.UUID) { e.b = append(e.b, v[:]...) }
func (e *enc) time(v time.Time) { e.varint(nanos(v)) }
func (e *enc) strs(v []string) {
	e.uvarint(uint64(len(v)))
	for _, s := range v {
		e.str(s)
	}
}
func (e *enc) uuids(v []uuid.UUID) {
	e.uvarint(uint64(len(v)))
	for _, u := range v {
		e.uuid(u)
	}
}

// nanos is a time as Unix nanoseconds, with the zero time as math.MinInt64
// (the Unix epoch itself is a time, not "none").
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// fromNanos is nanos' inverse, in UTC.
func fromNanos(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.b = nil
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

// n reads a count of things at least min bytes each, checked against what
// is left, so a corrupt count never allocates much.
func (d *dec) n(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/max(min, 1)) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *dec) bytes() []byte {
	n := d.n(1)
	if d.err != nil || n == 0 {
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

// raw reads a length-prefixed string without copying it: valid while the
// decoded bytes are.
func (d *dec) raw() []byte {
	n := d.n(1)
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string {
	n := d.n(1)
	if d.err != nil || n == 0 {
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *dec) uuid() uuid.UUID {
	var v uuid.UUID
	if len(d.b) < 16 {
		d.fail()
		return v
	}
	copy(v[:], d.b)
	d.b = d.b[16:]
	return v
}

func (d *dec) time() time.Time { return fromNanos(d.varint()) }

func (d *dec) strs() []string {
	n := d.n(1)
	if d.err != nil || n == 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.str()
	}
	return v
}

func (d *dec) uuids() []uuid.UUID {
	n := d.n(16)
	if d.err != nil || n == 0 {
		return nil
	}
	v := make([]uuid.UUID, n)
	for i := range v {
		v[i] = d.uuid()
	}
	return v
}

// done reports the decoding error, or ErrCorrupt when bytes are left over.
func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrCorrupt
	}
	return d.err
}

// Key helpers. Keys are a read model's prefix byte, then fields that sort
// as their values do: fixed-width big-endian numbers, 16-byte UUIDs, and
// strings with their length first (so no string is a prefix of another's key).

func appendU64(k []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(k, v) }

// appendTime appends a time so that keys sort in time order (zero first).
func appendTime(k []byte, t time.Time) []byte { return appendU64(k, uint64(nanos(t))^(1<<63)) }

func appendStr(k []byte, s string) []byte {
	k = binary.AppendUvarint(k, uint64(len(s)))
	return append(k, s...)
}

func key(prefix byte, parts ...[]byte) []byte {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 1, n)
	k[0] = prefix
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// prefixEnd returns the first key after every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // every byte 0xff: no upper bound
}
