package subjectkeys

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs"
)

func TestErasedFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		dir  func(t *testing.T) string
	}{
		{"os", vfs.Default, func(t *testing.T) string { return t.TempDir() }},
		{"memory", vfs.NewMem(), func(t *testing.T) string { return "/data" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			if err := tc.fs.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := tc.fs.PathJoin(dir, "erased-subjects")
			if ids, err := ReadErased(tc.fs, path); err != nil || len(ids) != 0 {
				t.Fatalf("a missing file: %v, %v; want an empty list", ids, err)
			}
			a, b := uuid.New(), uuid.New()
			for _, id := range []uuid.UUID{a, b, a} {
				if err := RecordErased(tc.fs, path, id); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ReadErased(tc.fs, path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]uuid.UUID{a, b, a}, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
			// A torn last line (a crash while recording) is skipped.
			writeFile(t, tc.fs, path, a.String()+"\n"+b.String()+"\n"+a.String()+"\n"+b.String()[:10])
			if got, err := ReadErased(tc.fs, path); err != nil || len(got) != 3 {
				t.Fatalf("a torn last line: %v, %v", got, err)
			}
			// A bad line before the end is damage.
			writeFile(t, tc.fs, path, "not-an-id\n"+a.String()+"\n")
			if _, err := ReadErased(tc.fs, path); err == nil {
				t.Fatal("a bad line before the end: want an error")
			}
		})
	}
}

// TestRecordErasedAfterATornLine: the append after a crash that tore the
// last line drops that line first, so the file stays readable.
func TestRecordErasedAfterATornLine(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for _, tc := range []struct {
		name, content string
		want          []uuid.UUID
	}{
		{"empty", "", []uuid.UUID{c}},
		{"whole", a.String() + "\n" + b.String() + "\n", []uuid.UUID{a, b, c}},
		{"blank lines", a.String() + "\n\n", []uuid.UUID{a, c}},
		{"no newline", a.String() + "\n" + b.String()[:20], []uuid.UUID{a, c}},
		// A whole id without its newline was asked for: it stays.
		{"an id without its newline", a.String() + "\n" + b.String(), []uuid.UUID{a, b, c}},
		{"zeros", a.String() + "\n" + strings.Repeat("\x00", 300), []uuid.UUID{a, c}},
		// What a power cut can leave of an append that spanned two blocks:
		// zeros, then the line's end with its newline.
		{"zeros then a line's end", a.String() + "\n" + strings.Repeat("\x00", 90) + b.String()[30:] + "\n", []uuid.UUID{a, c}},
		{"a long last line", a.String() + "\n" + strings.Repeat("x", 500) + "\n", []uuid.UUID{a, c}},
		{"only a torn line", b.String()[:7], []uuid.UUID{c}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			path := "/erased-subjects"
			writeFile(t, fs, path, tc.content)
			if err := RecordErased(fs, path, c); err != nil {
				t.Fatal(err)
			}
			got, err := ReadErased(fs, path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRecordErasedSurvivesPowerLoss: after every RecordErased, a crash clone
// of the file system (what a power cut leaves: only what was synced, or
// that and some of the rest) holds every id recorded, the first one too,
// whose call created the file.
func TestRecordErasedSurvivesPowerLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dropDirSync := range []bool{false, true} {
		mem := vfs.NewCrashableMem()
		var fs vfs.FS = mem
		if dropDirSync {
			fs = noDirSync{mem}
		}
		if err := durablefs.MkdirAll(mem, "/var/erased"); err != nil {
			t.Fatal(err)
		}
		path := "/var/erased/erased-subjects"
		var want []uuid.UUID
		lost := 0
		for i := range 40 {
			id := uuid.New()
			if err := RecordErased(fs, path, id); err != nil {
				t.Fatal(err)
			}
			want = append(want, id)
			pct := []int{0, 0, rng.IntN(100)}[i%3]
			clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng})
			got, err := ReadErased(clone, path)
			if err != nil {
				t.Fatalf("after %d ids: %v", i+1, err)
			}
			if !slices.Equal(got, want) {
				lost++
			}
		}
		switch {
		case !dropDirSync && lost > 0:
			t.Errorf("%d of 40 crash clones lost a recorded id", lost)
		case dropDirSync && lost == 0:
			// The file system model must catch a missing directory sync, or
			// this test proves nothing.
			t.Error("without the directory sync no crash clone lost the file: the test has no teeth")
		}
	}
}

// TestRecordErasedConcurrently: appends at once all land, none over another.
func TestRecordErasedConcurrently(t *testing.T) {
	fs := vfs.Default
	path := filepath.Join(t.TempDir(), "erased-subjects")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var want []uuid.UUID
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				id := uuid.New()
				if err := RecordErased(fs, path, id); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want = append(want, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got, err := ReadErased(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	less := func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) }
	slices.SortFunc(got, less)
	slices.SortFunc(want, less)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != int64(37*len(want)) {
		t.Fatalf("file size: %v, %v; want %d", st, err, 37*len(want))
	}
}

func writeFile(t *testing.T, fs vfs.FS, path, content string) {
	t.Helper()
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// noDirSync is a file system whose directory syncs do nothing: the bug the
// power-loss tests must catch.
type noDirSync struct{ vfs.FS }

func (f noDirSync) OpenDir(name string) (vfs.File, error) {
	d, err := f.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return noSyncFile{d}, nil
}

type noSyncFile struct{ vfs.File }

func (noSyncFile) Sync() error { return nil }
