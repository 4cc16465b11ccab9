// Package crashfs is test support for the power-loss tests: a file
// system in memory whose power a test can cut at any moment, and what a
// power cut leaves of it. It wraps Pebble's crashable in-memory file system
// (vfs.NewCrashableMem), which keeps, for every file, the bytes last synced
// and, for every directory, the entries last synced: its crash clone holds
// exactly those (or those and, at random, some of the rest). A hook sees
// every operation that makes something durable or changes a directory,
// before it happens, so a test can cut the power in the middle of a group
// commit, a key creation, an erasure or a backup.
//
// It is imported by tests only.
package crashfs

import (
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Kind is what an operation does.
type Kind int

// The operations a hook sees.
const (
	Sync   Kind = iota // a file's or a directory's sync
	Create             // a file made (or replaced)
	Rename
	Remove
	Link
	Mkdir
)

func (k Kind) String() string {
	return [...]string{"sync", "create", "rename", "remove", "link", "mkdir"}[k]
}

// Op is an operation about to happen.
type Op struct {
	Kind Kind
	Path string // the file or directory (the new name of a rename or link)
	Dir  bool   // a directory's sync
}

// FS is a vfs.FS in memory whose power can be cut. It is safe for
// concurrent use.
type FS struct {
	mem  *vfs.MemFS
	hook atomic.Pointer[func(Op)]
	// nested holds Crash off while a Link, ReuseForWrite or Lock runs:
	// MemFS takes its clone lock for reading twice in those, which
	// deadlocks when a clone waits in between.
	nested sync.RWMutex
}

var _ vfs.FS = (*FS)(nil)

// New returns an empty file system.
func New() *FS { return On(vfs.NewCrashableMem()) }

// On returns a file system over mem, which must be crashable (a
// vfs.NewCrashableMem, or a crash clone).
func On(mem *vfs.MemFS) *FS { return &FS{mem: mem} }

// SetHook makes fn see every operation before it happens (nil: none). fn
// runs in the goroutine of the operation and may call Crash.
func (f *FS) SetHook(fn func(Op)) {
	if fn == nil {
		f.hook.Store(nil)
		return
	}
	f.hook.Store(&fn)
}

func (f *FS) before(op Op) {
	if h := f.hook.Load(); h != nil {
		(*h)(op)
	}
}

// Mode is what a power cut keeps of what was never synced.
type Mode int

// The modes of Crash.
const (
	PowerCut Mode = iota // what was synced only: a power cut, a kernel crash
	Partial              // that, and each unsynced block and entry at random
	Kill                 // everything: a killed process (the kernel's cache survives)
)

func (m Mode) String() string { return [...]string{"power cut", "partial", "kill"}[m] }

// Crash returns what the file system would hold after a crash at this
// moment (this one carries on untouched, as if nothing happened).
func (f *FS) Crash(mode Mode, rng *rand.Rand) *FS {
	cfg := vfs.CrashCloneCfg{}
	switch mode {
	case Partial:
		cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: 1 + rng.IntN(99), RNG: rng}
	case Kill:
		cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rng}
	}
	f.nested.Lock()
	defer f.nested.Unlock()
	return On(f.mem.CrashClone(cfg))
}

// String lists the files, for a failing test's message.
func (f *FS) String() string { return f.mem.String() }

// Create implements vfs.FS.
func (f *FS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f.before(Op{Kind: Create, Path: name})
	file, err := f.mem.Create(name, category)
	return f.wrap(file, name, false), err
}

// Link implements vfs.FS.
func (f *FS) Link(oldname, newname string) error {
	f.before(Op{Kind: Link, Path: newname})
	f.nested.RLock()
	defer f.nested.RUnlock()
	return f.mem.Link(oldname, newname)
}

// Open implements vfs.FS.
func (f *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.mem.Open(name, opts...)
	return f.wrap(file, name, false), err
}

// OpenReadWrite implements vfs.FS.
func (f *FS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	if _, err := f.mem.Stat(name); err != nil {
		f.before(Op{Kind: Create, Path: name})
	}
	file, err := f.mem.OpenReadWrite(name, category, opts...)
	return f.wrap(file, name, false), err
}

// OpenDir implements vfs.FS.
func (f *FS) OpenDir(name string) (vfs.File, error) {
	file, err := f.mem.OpenDir(name)
	return f.wrap(file, name, true), err
}

// Remove implements vfs.FS.
func (f *FS) Remove(name string) error {
	f.before(Op{Kind: Remove, Path: name})
	return f.mem.Remove(name)
}

// RemoveAll implements vfs.FS.
func (f *FS) RemoveAll(name string) error {
	f.before(Op{Kind: Remove, Path: name})
	return f.mem.RemoveAll(name)
}

// Rename implements vfs.FS.
func (f *FS) Rename(oldname, newname string) error {
	f.before(Op{Kind: Rename, Path: newname})
	return f.mem.Rename(oldname, newname)
}

// ReuseForWrite implements vfs.FS.
func (f *FS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f.before(Op{Kind: Rename, Path: newname})
	f.nested.RLock()
	defer f.nested.RUnlock()
	file, err := f.mem.ReuseForWrite(oldname, newname, category)
	return f.wrap(file, newname, false), err
}

// MkdirAll implements vfs.FS.
func (f *FS) MkdirAll(dir string, perm os.FileMode) error {
	if _, err := f.mem.Stat(dir); err != nil {
		f.before(Op{Kind: Mkdir, Path: dir})
	}
	return f.mem.MkdirAll(dir, perm)
}

// Lock implements vfs.FS.
func (f *FS) Lock(name string) (io.Closer, error) {
	f.nested.RLock()
	defer f.nested.RUnlock()
	return f.mem.Lock(name)
}

// List implements vfs.FS.
func (f *FS) List(dir string) ([]string, error) { return f.mem.List(dir) }

// Stat implements vfs.FS.
func (f *FS) Stat(name string) (vfs.FileInfo, error) { return f.mem.Stat(name) }

// PathBase implements vfs.FS.
func (f *FS) PathBase(p string) string { return f.mem.PathBase(p) }

// PathJoin implements vfs.FS.
func (f *FS) PathJoin(elem ...string) string { return f.mem.PathJoin(elem...) }

// PathDir implements vfs.FS.
func (f *FS) PathDir(p string) string { return f.mem.PathDir(p) }

// GetDiskUsage implements vfs.FS.
func (f *FS) GetDiskUsage(p string) (vfs.DiskUsage, error) { return f.mem.GetDiskUsage(p) }

// Unwrap implements vfs.FS: this is the root.
func (f *FS) Unwrap() vfs.FS { return nil }

func (f *FS) wrap(file vfs.File, name string, dir bool) vfs.File {
	if file == nil {
		return nil
	}
	return &syncFile{File: file, fs: f, op: Op{Kind: Sync, Path: name, Dir: dir}}
}

// syncFile lets the hook see its syncs.
type syncFile struct {
	vfs.File
	fs *FS
	op Op
}

func (s *syncFile) Sync() error {
	s.fs.before(s.op)
	return s.File.Sync()
}

func (s *syncFile) SyncData() error {
	s.fs.before(s.op)
	return s.File.SyncData()
}
