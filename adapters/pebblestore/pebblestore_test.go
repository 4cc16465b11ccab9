package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/pebbledb"
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

func mustOpen(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func appendN(t testing.TB, s *Store, stream string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		e := eventlog.EventData{ID: uuid.New(), Type: "T", Data: []byte(`{"i":1}`)}
		if _, err := s.Append(context.Background(), stream, eventlog.Any(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	appendN(t, s, "signal-a", 10)
	appendN(t, s, "signal-b", 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "signal-a", eventlog.Any(), eventlog.EventData{ID: uuid.New(), Type: "T"}); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	s = mustOpen(t, dir)
	defer s.Close()
	if head, _ := s.Head(context.Background()); head != 15 {
		t.Fatalf("head %d after reopen", head)
	}
	r, err := s.Append(context.Background(), "signal-a", eventlog.Revision(9), eventlog.EventData{ID: uuid.New(), Type: "T"})
	if err != nil || r.NextRevision != 10 || r.Position != 16 {
		t.Fatalf("append after reopen: %+v %v", r, err)
	}
}

// damage rewrites one key of a closed store through Pebble itself.
func damage(t *testing.T, dir string, edit func(db *pebble.DB)) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbledb.QuietLogger{Fatal: ErrCorrupt}})
	if err != nil {
		t.Fatal(err)
	}
	edit(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesDamagedData(t *testing.T) {
	tests := []struct {
		name string
		edit func(db *pebble.DB)
	}{
		{"flipped byte in the last event", func(db *pebble.DB) {
			v, c, _ := db.Get(logKey(20))
			b := bytes.Clone(v)
			c.Close()
			b[3] ^= 0xff
			_ = db.Set(logKey(20), b, pebble.Sync)
		}},
		{"last event deleted", func(db *pebble.DB) { _ = db.Delete(logKey(20), pebble.Sync) }},
		{"a middle event deleted", func(db *pebble.DB) { _ = db.Delete(logKey(15), pebble.Sync) }},
		{"head ahead of the log", func(db *pebble.DB) { _ = db.Set(posKey, be64(25), pebble.Sync) }},
		{"unknown format", func(db *pebble.DB) { _ = db.Set(metaKey, be64(99), pebble.Sync) }},
		{"stream index moved", func(db *pebble.DB) { _ = db.Set(streamKey("signal-x", 19), be64(3), pebble.Sync) }},
		{"format marker lost", func(db *pebble.DB) { _ = db.Delete(metaKey, pebble.Sync) }},
		{"stream head behind the last event", func(db *pebble.DB) { _ = db.Set(headKey("signal-x"), be64(5), pebble.Sync) }},
		{"stream head lost", func(db *pebble.DB) { _ = db.Delete(headKey("signal-x"), pebble.Sync) }},
		{"stream index names another event", func(db *pebble.DB) {
			id := uuid.New()
			_ = db.Set(streamKey("signal-x", 19), append(be64(20), id[:]...), pebble.Sync)
		}},
		{"an event past the head", func(db *pebble.DB) {
			v, c, _ := db.Get(logKey(20))
			b := bytes.Clone(v)
			c.Close()
			_ = db.Set(logKey(21), b, pebble.Sync)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir)
			appendN(t, s, "signal-x", 20)
			s.Close()
			damage(t, dir, tt.edit)
			s, err := Open(dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("opened a damaged store")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestReadsCheckChecksums(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	appendN(t, s, "signal-x", 200)
	s.Close()
	damage(t, dir, func(db *pebble.DB) {
		v, c, _ := db.Get(logKey(50))
		b := bytes.Clone(v)
		c.Close()
		b[len(b)/2] ^= 0x01
		_ = db.Set(logKey(50), b, pebble.Sync)
	})
	s = mustOpen(t, dir) // the tail is fine
	defer s.Close()
	if _, err := s.ReadAll(context.Background(), 0, 1000); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read all over a damaged record: %v", err)
	}
	if _, err := s.ReadStream(context.Background(), "signal-x", eventlog.Forwards, 0, 1000); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read stream over a damaged record: %v", err)
	}
	if _, err := s.ReadAll(context.Background(), 50, 1000); err != nil {
		t.Fatalf("read all past the damaged record: %v", err)
	}
}

func TestReadsCheckTheStreamIndex(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	appendN(t, s, "signal-x", 10)
	appendN(t, s, "signal-y", 10)
	s.Close()
	damage(t, dir, func(db *pebble.DB) {
		v, c, _ := db.Get(streamKey("signal-y", 3))
		b := bytes.Clone(v)
		c.Close()
		_ = db.Set(streamKey("signal-x", 3), b, pebble.Sync) // x's revision 3 points into y
	})
	s = mustOpen(t, dir)
	defer s.Close()
	if _, err := s.ReadStream(context.Background(), "signal-x", eventlog.Forwards, 0, 100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read stream over a wrong index entry: %v", err)
	}
	if _, err := s.ReadStream(context.Background(), "signal-y", eventlog.Backwards, eventlog.End, 100); err != nil {
		t.Fatalf("the other stream: %v", err)
	}
}

// countingFS counts fsyncs of the write-ahead log.
type countingFS struct {
	vfs.FS
	syncs atomic.Int64
}

type countingFile struct {
	vfs.File
	fs *countingFS
}

func (f countingFile) Sync() error { f.fs.syncs.Add(1); return f.File.Sync() }
func (f countingFile) SyncData() error {
	f.fs.syncs.Add(1)
	return f.File.SyncData()
}

func (c *countingFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return countingFile{File: f, fs: c}, nil
}

func (c *countingFS) ReuseForWrite(old, new string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.ReuseForWrite(old, new, cat)
	if err != nil {
		return nil, err
	}
	return countingFile{File: f, fs: c}, nil
}

func TestConcurrentAppendsShareSyncs(t *testing.T) {
	fs := &countingFS{FS: vfs.Default}
	s, err := Open(t.TempDir(), Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := fs.syncs.Load()
	const writers, each = 64, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			appendN(t, s, fmt.Sprintf("signal-%d", w), each)
		}(w)
	}
	wg.Wait()
	syncs := fs.syncs.Load() - before
	t.Logf("%d appends, %d syncs", writers*each, syncs)
	if syncs >= writers*each/2 {
		t.Fatalf("%d syncs for %d appends: appends are not group-committed", syncs, writers*each)
	}
	if syncs == 0 {
		t.Fatal("no syncs at all: appends are not durable")
	}
}

func TestRetryAfterReopen(t *testing.T) {
	ctx := context.Background()
	for _, exp := range []eventlog.ExpectedVersion{eventlog.Any(), eventlog.StreamExists(), eventlog.Revision(0)} {
		t.Run(exp.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir)
			appendN(t, s, "signal-r", 1)
			evs := []eventlog.EventData{{ID: uuid.New(), Type: "T"}, {ID: uuid.New(), Type: "T"}}
			first, err := s.Append(ctx, "signal-r", exp, evs...)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = mustOpen(t, dir)
			defer s.Close()
			appendN(t, s, "signal-r", 1) // the stream is touched before the retry comes
			again, err := s.Append(ctx, "signal-r", exp, evs...)
			if err != nil || again != first {
				t.Fatalf("retry after reopen: %+v, %v; first %+v", again, err, first)
			}
			if got, _ := s.ReadStream(ctx, "signal-r", eventlog.Forwards, 0, 100); len(got) != 4 {
				t.Fatalf("%d events, want 4", len(got))
			}
		})
	}
}

// TestReadEventsOwnTheirData: events of one read share chunks of memory,
// but appending to one event's Data never changes another's.
func TestReadEventsOwnTheirData(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		e := eventlog.EventData{ID: uuid.New(), Type: "T", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
		if _, err := s.Append(ctx, "signal-d", eventlog.Any(), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, read := range []func() ([]eventlog.RecordedEvent, error){
		func() ([]eventlog.RecordedEvent, error) { return s.ReadAll(ctx, 0, 10) },
		func() ([]eventlog.RecordedEvent, error) {
			return s.ReadStream(ctx, "signal-d", eventlog.Forwards, 0, 10)
		},
	} {
		evs, err := read()
		if err != nil || len(evs) != 3 {
			t.Fatalf("%d events, %v", len(evs), err)
		}
		_ = append(evs[0].Data, "overwrite"...)
		evs[2].Data[0] = '['
		if string(evs[1].Data) != `{"i":1}` {
			t.Fatalf("another event's data changed: %q", evs[1].Data)
		}
	}
}

func TestRecordedAtComesFromTheClock(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))
	s, err := Open(t.TempDir(), Options{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendN(t, s, "signal-c", 2)
	evs, err := s.ReadAll(context.Background(), 0, 10)
	if err != nil || len(evs) != 2 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	for _, e := range evs {
		if !e.RecordedAt.Equal(at) || e.RecordedAt.Location() != time.UTC {
			t.Fatalf("recorded at %v, want %v in UTC", e.RecordedAt, at)
		}
	}
}

// TestMetadataCodecReadsEveryForm: metadata written before the idempotency
// fingerprint existed ends after the schema version and still decodes;
// damaged tails are refused.
func TestMetadataCodecReadsEveryForm(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	base := eventlog.Metadata{OccurredAt: at, ActorID: "anna", ActorRole: "professional", RequestID: "r1", Network: "n", SchemaVersion: 2}
	withFP := base
	withFP.IdempotencyFingerprint = "00112233445566778899aabbccddeeff"
	old := encodeMeta(nil, base) // the form written before fingerprints
	for _, tc := range []struct {
		name string
		enc  []byte
		want eventlog.Metadata
		ok   bool
	}{
		{"without a fingerprint (the earlier form)", old, base, true},
		{"with a fingerprint", encodeMeta(nil, withFP), withFP, true},
		{"a tail that is not a whole string", append(append([]byte{}, old...), 5, 'a'), eventlog.Metadata{}, false},
		{"an empty fingerprint written out", append(append([]byte{}, old...), 0), eventlog.Metadata{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got eventlog.Metadata
			var d decoder
			ok := d.decodeMeta(tc.enc, &got)
			if ok != tc.ok {
				t.Fatalf("decode ok = %v, want %v", ok, tc.ok)
			}
			if ok {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("metadata (-want +got):\n%s", diff)
				}
			}
		})
	}
}
