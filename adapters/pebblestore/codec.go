package pebblestore

// The record and metadata encodings, and the decoder that reads them back
// sharing what repeats.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// encodeMeta writes metadata compactly: occurred-at (unix nanos, 0 for
// none), the uvarint-prefixed strings, the schema version, and then, only
// when there is one, the uvarint-prefixed idempotency fingerprint (added
// later: records written before it end after the schema version).
func encodeMeta(dst []byte, m eventlog.Metadata) []byte {
	var at uint64
	if !m.OccurredAt.IsZero() {
		at = uint64(m.OccurredAt.UnixNano())
	}
	dst = binary.BigEndian.AppendUint64(dst, at)
	for _, f := range [...]string{m.ActorID, m.ActorRole, m.OnBehalfOf, m.CorrelationID, m.CausationID, m.RequestID, m.Network} {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	dst = binary.AppendUvarint(dst, uint64(m.SchemaVersion))
	if m.IdempotencyFingerprint != "" {
		dst = binary.AppendUvarint(dst, uint64(len(m.IdempotencyFingerprint)))
		dst = append(dst, m.IdempotencyFingerprint...)
	}
	return dst
}

// decodeMeta decodes metadata as encodeMeta wrote it.
func (d *decoder) decodeMeta(b []byte, m *eventlog.Metadata) bool {
	if len(b) < 8 {
		return false
	}
	if at := binary.BigEndian.Uint64(b); at != 0 {
		m.OccurredAt = time.Unix(0, int64(at)).UTC()
	}
	b = b[8:]
	for i, dst := range [...]*string{&m.ActorID, &m.ActorRole, &m.OnBehalfOf, &m.CorrelationID, &m.CausationID, &m.RequestID, &m.Network} {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return false
		}
		switch f := b[k : k+int(n)]; i {
		case 0, 1, 2, 6: // actors, roles and networks repeat
			*dst = d.shared(f)
		default: // ids rarely do
			*dst = string(f)
		}
		b = b[k+int(n):]
	}
	v, k := binary.Uvarint(b)
	if k <= 0 {
		return false
	}
	m.SchemaVersion = int(v)
	if b = b[k:]; len(b) == 0 {
		return true
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || uint64(len(b)-k) != n {
		return false
	}
	m.IdempotencyFingerprint = string(b[k:])
	return true
}

// record encoding: uvarint-prefixed stream, type, data, metadata; then
// revision, recorded-at (unix nanos), id; then a CRC-32C of all of it.
func encodeRecord(dst []byte, stream string, rev uint64, e eventlog.EventData, meta []byte, at time.Time) []byte {
	start := len(dst)
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Type)))
	dst = append(dst, e.Type...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	dst = append(dst, e.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(meta)))
	dst = append(dst, meta...)
	dst = binary.BigEndian.AppendUint64(dst, rev)
	dst = binary.BigEndian.AppendUint64(dst, uint64(at.UnixNano()))
	dst = append(dst, e.ID[:]...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castag))
}

// decoder turns records into events for one read. It shares what repeats
// (event types, actors, roles, networks, the stream of the previous event)
// instead of allocating it again, and carves small event bodies out of
// shared chunks (each body's capacity capped at its length, so an append to
// one copies rather than overwriting the next), so that a replay allocates
// little per event. The zero value is ready to use.
type decoder struct {
	strs       map[string]string
	prevStream string
	chunk      []byte
}

const (
	maxShared   = 1024     // distinct strings a decoder shares
	chunkBytes  = 64 << 10 // event bodies are carved out of chunks this big
	ownBodySize = 4 << 10  // bodies bigger than this get their own allocation
)

func (d *decoder) shared(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.strs[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if d.strs == nil {
		d.strs = make(map[string]string, 16)
	}
	if len(d.strs) < maxShared {
		d.strs[s] = s
	}
	return s
}

func (d *decoder) body(b []byte) []byte {
	if len(b) > ownBodySize {
		return bytes.Clone(b)
	}
	if cap(d.chunk)-len(d.chunk) < len(b) {
		d.chunk = make([]byte, 0, chunkBytes)
	}
	at := len(d.chunk)
	d.chunk = append(d.chunk, b...)
	return d.chunk[at:len(d.chunk):len(d.chunk)]
}

// decode checks a record's checksum and decodes it, returning an error
// wrapping ErrCorrupt when it does not check out.
func (d *decoder) decode(pos uint64, b []byte) (eventlog.RecordedEvent, error) {
	bad := func(what string) (eventlog.RecordedEvent, error) {
		return eventlog.RecordedEvent{}, fmt.Errorf("%w: event at position %d: %s", ErrCorrupt, pos, what)
	}
	if len(b) < 4 {
		return bad("too short")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castag) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return bad("checksum mismatch")
	}
	var fields [4][]byte
	rest := body
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return bad("bad field length")
		}
		fields[i] = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	if len(rest) != 8+8+16 {
		return bad("bad trailer")
	}
	if string(fields[0]) != d.prevStream { // no allocation for the comparison
		d.prevStream = string(fields[0])
	}
	re := eventlog.RecordedEvent{
		StreamID: d.prevStream, Type: d.shared(fields[1]), Data: d.body(fields[2]), Position: pos,
		Revision:   binary.BigEndian.Uint64(rest[:8]),
		RecordedAt: time.Unix(0, int64(binary.BigEndian.Uint64(rest[8:16]))).UTC(),
	}
	copy(re.ID[:], rest[16:])
	if !d.decodeMeta(fields[3], &re.Metadata) {
		return bad("metadata does not decode")
	}
	return re, nil
}
