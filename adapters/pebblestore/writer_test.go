package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func ev(id uuid.UUID) eventlog.EventData {
	return eventlog.EventData{ID: id, Type: "T", Data: []byte(`{}`)}
}

// TestOneGroupCommit hands the writer one group directly: each append is
// checked in order against the stream heads the earlier ones leave, a
// failing append fails alone, and the group costs one sync.
func TestOneGroupCommit(t *testing.T) {
	fs := &countingFS{FS: vfs.NewMem()}
	s, err := open("store", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	syncerDone := make(chan struct{})
	go s.syncer(syncerDone)
	started := false
	defer func() {
		if !started {
			go s.writer(syncerDone)
		}
		s.Close()
	}()

	answer := func(reqs ...*appendReq) []appendRes {
		t.Helper()
		g := s.newGroup()
		for _, r := range reqs {
			s.add(g, r)
		}
		s.commit(g)
		<-s.synced
		out := make([]appendRes, len(reqs))
		for i, r := range reqs {
			select {
			case out[i] = <-r.res:
			case <-time.After(10 * time.Second):
				t.Fatal("no answer")
			}
		}
		return out
	}
	req := func(ctx context.Context, stream string, exp eventlog.ExpectedVersion, evs ...eventlog.EventData) *appendReq {
		return &appendReq{ctx: ctx, stream: stream, expected: exp, events: evs, res: make(chan appendRes, 1)}
	}
	bg := context.Background()
	cancelled, cancel := context.WithCancel(bg)
	cancel()

	t0 := uuid.New()
	if res := answer(req(bg, "signal-t", eventlog.NoStream(), ev(t0))); res[0].err != nil {
		t.Fatal(res[0].err)
	}
	a, b, c1, c2, f, n := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	syncs := fs.syncs.Load()
	got := answer(
		req(bg, "signal-s", eventlog.NoStream(), ev(a)),                   // 0: creates s at position 2
		req(bg, "signal-s", eventlog.NoStream(), ev(b)),                   // 1: s exists now
		req(bg, "signal-s", eventlog.Revision(0), ev(c1), ev(c2)),         // 2: at s's head in the group
		req(bg, "signal-s", eventlog.NoStream(), ev(a)),                   // 3: a retry of 0 within the group
		req(bg, "signal-t", eventlog.Revision(5), ev(uuid.New())),         // 4: wrong revision
		req(cancelled, "signal-t", eventlog.Any(), ev(uuid.New())),        // 5: its caller gave up
		req(bg, "signal-t", eventlog.StreamExists(), ev(f)),               // 6
		req(bg, "signal-s", eventlog.Any(), ev(c2), ev(n)),                // 7: partly a retry of 2
		req(bg, "signal-s", eventlog.Revision(0), ev(c1), ev(uuid.New())), // 8: the first id of 2, then another
	)
	want := []appendRes{
		{r: eventlog.AppendResult{NextRevision: 0, Position: 2}},
		{err: eventlog.ErrWrongExpectedVersion},
		{r: eventlog.AppendResult{NextRevision: 2, Position: 4}},
		{r: eventlog.AppendResult{NextRevision: 0, Position: 2}},
		{err: eventlog.ErrWrongExpectedVersion},
		{err: context.Canceled},
		{r: eventlog.AppendResult{NextRevision: 1, Position: 5}},
		{err: eventlog.ErrWrongExpectedVersion},
		{err: eventlog.ErrWrongExpectedVersion},
	}
	for i := range want {
		if !errors.Is(got[i].err, want[i].err) || got[i].r != want[i].r {
			t.Errorf("append %d: %+v, %v; want %+v, %v", i, got[i].r, got[i].err, want[i].r, want[i].err)
		}
	}
	if n := fs.syncs.Load() - syncs; n != 1 {
		t.Errorf("the group took %d syncs, want 1", n)
	}
	go s.writer(syncerDone)
	started = true
	all, err := s.ReadAll(bg, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	for _, e := range all {
		log = append(log, fmt.Sprintf("%d %s@%d %s", e.Position, e.StreamID, e.Revision, e.ID))
	}
	wantLog := []string{
		fmt.Sprintf("1 signal-t@0 %s", t0), fmt.Sprintf("2 signal-s@0 %s", a), fmt.Sprintf("3 signal-s@1 %s", c1),
		fmt.Sprintf("4 signal-s@2 %s", c2), fmt.Sprintf("5 signal-t@1 %s", f),
	}
	if diff := cmp.Diff(wantLog, log); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// inject fails the file operations fail picks (nil: let it through) while
// on is set.
type inject struct {
	on   atomic.Bool
	name string
	fail func(errorfs.Op) error
}

func (f *inject) String() string { return f.name }

func (f *inject) MaybeError(op errorfs.Op) error {
	if !f.on.Load() {
		return nil
	}
	return f.fail(op)
}

// failingSyncs makes the write-ahead log's syncs fail.
func failingSyncs() *inject {
	return &inject{name: "failing WAL syncs", fail: func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				return errors.New("injected sync failure")
			}
		}
		return nil
	}}
}

// diskFull makes writes to the write-ahead log fail with ENOSPC.
func diskFull() *inject {
	return &inject{name: "disk full", fail: func(op errorfs.Op) error {
		if (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) && strings.HasSuffix(op.Path, ".log") {
			return syscall.ENOSPC
		}
		return nil
	}}
}

// failingOpens makes opening files fail.
func failingOpens() *inject {
	return &inject{name: "failing opens", fail: func(op errorfs.Op) error {
		if op.Kind == errorfs.OpOpen {
			return errors.New("injected open failure")
		}
		return nil
	}}
}

// TestFailedSyncRefusesWrites: after a failed sync the store answers
// ErrUnavailable, never success, until it is reopened; reopened, it has
// every acknowledged event.
func TestFailedSyncRefusesWrites(t *testing.T) {
	mem := vfs.NewMem()
	inj := failingSyncs()
	s, err := Open("store", Options{FS: errorfs.Wrap(mem, inj)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acked := 0
	for i := 0; i < 5; i++ {
		if _, err := s.Append(ctx, "signal-f", eventlog.Any(), ev(uuid.New())); err != nil {
			t.Fatal(err)
		}
		acked++
	}
	inj.on.Store(true)
	if _, err := s.Append(ctx, "signal-f", eventlog.Any(), ev(uuid.New())); !errors.Is(err, eventlog.ErrUnavailable) {
		t.Fatalf("append with a failing sync: %v, want ErrUnavailable", err)
	}
	inj.on.Store(false)
	for i := 0; i < 3; i++ {
		if _, err := s.Append(ctx, "signal-other", eventlog.Any(), ev(uuid.New())); !errors.Is(err, eventlog.ErrUnavailable) {
			t.Fatalf("append after a failed sync: %v, want ErrUnavailable", err)
		}
	}
	if head, _ := s.Head(ctx); head != uint64(acked) {
		t.Fatalf("head %d, want %d: a failed group was published", head, acked)
	}
	_ = s.Close() // Pebble may report the failure again

	s, err = Open("store", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ReadStream(ctx, "signal-f", eventlog.Forwards, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < acked {
		t.Fatalf("%d events after reopening, %d were acknowledged", len(got), acked)
	}
	if _, err := s.Append(ctx, "signal-f", eventlog.Any(), ev(uuid.New())); err != nil {
		t.Fatalf("append after reopening: %v", err)
	}
}

// TestDiskFull: with the disk full an append is never acknowledged and
// answers KindUnavailable (503 with Retry-After over HTTP); the store takes
// no writes until reopened; once space is back, reopening needs no repair
// and keeps every acknowledged event.
func TestDiskFull(t *testing.T) {
	mem := vfs.NewMem()
	inj := diskFull()
	s, err := Open("store", Options{FS: errorfs.Wrap(mem, inj)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var acked []uuid.UUID
	for i := 0; i < 5; i++ {
		id := uuid.New()
		if _, err := s.Append(ctx, "signal-d", eventlog.Any(), ev(id)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	inj.on.Store(true)
	for i := 0; i < 3; i++ {
		_, err := s.Append(ctx, "signal-d", eventlog.Any(), ev(uuid.New()))
		if err == nil || domain.KindOf(err) != domain.KindUnavailable {
			t.Fatalf("append on a full disk: %v, want KindUnavailable", err)
		}
	}
	inj.on.Store(false) // space is back
	if _, err := s.Append(ctx, "signal-d", eventlog.Any(), ev(uuid.New())); domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("append before reopening: %v, want KindUnavailable", err)
	}
	_ = s.Close()
	s, err = Open("store", Options{FS: mem})
	if err != nil {
		t.Fatalf("reopen after the disk was full: %v", err)
	}
	defer s.Close()
	got, err := s.ReadStream(ctx, "signal-d", eventlog.Forwards, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range acked {
		if i >= len(got) || got[i].ID != id {
			t.Fatalf("acknowledged event %d lost after the disk was full", i)
		}
	}
	if _, err := s.Append(ctx, "signal-d", eventlog.Any(), ev(uuid.New())); err != nil {
		t.Fatalf("append after reopening: %v", err)
	}
}

// TestOpenFailureRecovers: a store that cannot open its files fails Open
// with an error (no panic, no half-open store), and opens with every event
// once the files can be opened again.
func TestOpenFailureRecovers(t *testing.T) {
	mem := vfs.NewMem()
	inj := failingOpens()
	fs := errorfs.Wrap(mem, inj)
	s, err := Open("store", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := uuid.New()
	if _, err := s.Append(ctx, "signal-o", eventlog.NoStream(), ev(id)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	inj.on.Store(true)
	if s, err := Open("store", Options{FS: fs}); err == nil {
		s.Close()
		t.Fatal("Open with failing file opens succeeded")
	}
	inj.on.Store(false)
	s, err = Open("store", Options{FS: fs})
	if err != nil {
		t.Fatalf("Open once files open again: %v", err)
	}
	defer s.Close()
	got, err := s.ReadStream(ctx, "signal-o", eventlog.Forwards, 0, 10)
	if err != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("after recovery: %v, %v", got, err)
	}
}
