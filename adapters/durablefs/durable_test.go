package durablefs

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// stepFS calls step before and after every operation that changes the file
// system, so a test can take a crash clone at each of those moments.
type stepFS struct {
	vfs.FS
	step func()
}

func (f stepFS) around(op func() error) error {
	f.step()
	err := op()
	f.step()
	return err
}

func (f stepFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	var file vfs.File
	err := f.around(func() (err error) { file, err = f.FS.Create(name, c); return err })
	if err != nil {
		return nil, err
	}
	return stepFile{file, f.step}, nil
}
func (f stepFS) Rename(a, b string) error { return f.around(func() error { return f.FS.Rename(a, b) }) }
func (f stepFS) Link(a, b string) error   { return f.around(func() error { return f.FS.Link(a, b) }) }
func (f stepFS) Remove(a string) error    { return f.around(func() error { return f.FS.Remove(a) }) }
func (f stepFS) MkdirAll(d string, p os.FileMode) error {
	return f.around(func() error { return f.FS.MkdirAll(d, p) })
}
func (f stepFS) OpenDir(name string) (vfs.File, error) {
	d, err := f.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return stepFile{d, f.step}, nil
}

type stepFile struct {
	vfs.File
	step func()
}

func (f stepFile) Write(p []byte) (int, error) {
	// Half, a step, the rest: a clone may see a half-written file.
	h := len(p) / 2
	n, err := f.File.Write(p[:h])
	if err != nil {
		return n, err
	}
	f.step()
	m, err := f.File.Write(p[h:])
	f.step()
	return n + m, err
}

func (f stepFile) Sync() error {
	f.step()
	err := f.File.Sync()
	f.step()
	return err
}

func read(t *testing.T, fs vfs.FS, path string) (string, bool) {
	t.Helper()
	f, err := fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// TestWriteFileIsWholeAtEveryMoment: a power cut at any moment of WriteFile
// leaves the old file or the new one, whole; once it returned, the new one.
func TestWriteFileIsWholeAtEveryMoment(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mem := vfs.NewCrashableMem()
	if err := MkdirAll(mem, "/etc/app"); err != nil {
		t.Fatal(err)
	}
	path := "/etc/app/secret"
	old, oldExists := "", false
	var next string
	clones := 0
	check := func(when string) {
		clones++
		pct := []int{0, 100, rng.IntN(100)}[clones%3]
		clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng})
		got, ok := read(t, clone, path)
		switch {
		case ok && (got == old || got == next):
		case !ok && !oldExists && when == "during":
		default:
			t.Fatalf("%s a write (clone %d, %d%% unsynced): %q (exists %t), want %q or %q", when, clones, pct, got, ok, old, next)
		}
	}
	fs := stepFS{mem, func() { check("during") }}
	for i, content := range []string{"first version\n", "second, longer version of the file\n", "3\n", string(make([]byte, 9000))} {
		next = content
		if err := WriteFile(fs, path, []byte(content)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		old, oldExists = content, true
		check("after")
	}
	if clones < 40 {
		t.Fatalf("only %d moments checked", clones)
	}
}

// TestCreateFileNeverReplaces: CreateFile makes a file durably and never
// replaces one that exists.
func TestCreateFileNeverReplaces(t *testing.T) {
	mem := vfs.NewCrashableMem()
	if err := MkdirAll(mem, "/keys"); err != nil {
		t.Fatal(err)
	}
	if err := CreateFile(mem, "/keys/master", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := CreateFile(mem, "/keys/master", []byte("two")); !errors.Is(err, os.ErrExist) {
		t.Fatalf("a second create: %v, want ErrExist", err)
	}
	clone := mem.CrashClone(vfs.CrashCloneCfg{})
	if got, ok := read(t, clone, "/keys/master"); !ok || got != "one" {
		t.Fatalf("after a power cut: %q (exists %t), want %q", got, ok, "one")
	}
	if names, _ := clone.List("/keys"); len(names) != 1 {
		t.Fatalf("files left behind: %v", names)
	}
}

// TestMkdirAllSurvivesPowerLoss: the directories MkdirAll made are there
// after a power cut; the file system's MkdirAll alone does not keep them,
// which shows the crash clone models what it must.
func TestMkdirAllSurvivesPowerLoss(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mkdir func(vfs.FS, string) error
		kept  bool
	}{
		{"durable", MkdirAll, true},
		{"plain", func(fs vfs.FS, dir string) error { return fs.MkdirAll(dir, 0o700) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			if err := tc.mkdir(mem, "/srv/data/events"); err != nil {
				t.Fatal(err)
			}
			_, err := mem.CrashClone(vfs.CrashCloneCfg{}).Stat("/srv/data/events")
			if kept := err == nil; kept != tc.kept {
				t.Fatalf("directory kept after a power cut: %t, want %t (%v)", kept, tc.kept, err)
			}
		})
	}
}
