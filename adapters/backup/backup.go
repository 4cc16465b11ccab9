// Package backup is the backup format of the embedded store, and the files
// it is written and restored with.
//
// A backup is a directory backup-<UTC time> holding Pebble checkpoints of
// the stores (the command names them: events/, which holds the audit log
// too, and keys/) and manifest.json: the format, when, the log's head
// position, the audit chains' head digest and a SHA-256 of every file. It is
// written as .partial-<name>, every file and directory synced, and renamed
// when complete, so a backup that exists is whole, also after a power cut.
// Read checks a backup against its manifest before anything is restored;
// CopyTree copies it file by file, synced; Prune and Newest keep a backup
// directory within its retention.
//
// Not in a backup: the master key (keep it apart from the data; a restore
// needs the same key) and the erased-subjects file, which lives next to the
// data and is applied to every restored key store, so an erased subject
// never comes back from an older backup. Every file goes through a vfs.FS:
// the operating system's, or the power-loss tests' crashable one.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs"
)

// Format is the manifest's format.
const Format = 1

// File is a file of a backup: its path in the backup, size and SHA-256.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes a backup (manifest.json).
type Manifest struct {
	Format       int       `json:"format"`
	CreatedAt    time.Time `json:"created_at"`
	Version      string    `json:"version"`
	HeadPosition uint64    `json:"head_position"`
	AuditStreams int       `json:"audit_streams"`
	AuditRecords int       `json:"audit_records"`
	AuditHead    string    `json:"audit_head"`
	Files        []File    `json:"files"`
}

// Part is one store of a backup: Checkpoint writes a consistent copy of it
// into a directory that does not exist yet (Pebble's checkpoints).
type Part struct {
	Name       string
	Checkpoint func(dir string) error
}

// Progress counts the bytes a backup checks, for progress reports.
type Progress struct {
	Total, Done atomic.Uint64
}

// Write writes a backup of parts under root on fsys, created at m.CreatedAt
// by m.Version, and returns its directory and manifest. describe fills in
// the head position and audit chains from the copy itself (which also
// proves that it opens); it gets the directory of the copy. progress may be
// nil.
func Write(ctx context.Context, fsys vfs.FS, root string, m Manifest, parts []Part, describe func(ctx context.Context, dir string, m *Manifest) error, progress *Progress) (string, Manifest, error) {
	if root == "" {
		return "", m, errors.New("backup: no directory given (--to or BUURTSIGNAAL_BACKUP_DIR)")
	}
	if err := durablefs.MkdirAll(fsys, root); err != nil {
		return "", m, err
	}
	m.Format = Format
	name := "backup-" + m.CreatedAt.UTC().Format("20060102T150405.000000000Z")
	tmp := filepath.Join(root, ".partial-"+name)
	defer fsys.RemoveAll(tmp) //nolint:errcheck // nothing left of a failed attempt; a no-op after the rename
	for _, p := range parts {
		if err := p.Checkpoint(filepath.Join(tmp, p.Name)); err != nil {
			return "", m, fmt.Errorf("backup: %s: %w", p.Name, err)
		}
	}
	if err := describe(ctx, tmp, &m); err != nil {
		return "", m, err
	}
	// Every file and directory of the copy is synced before the manifest
	// lists them: opening the copy wrote and removed files of its own, and
	// a power cut must not bring a removed one back or cut a written one.
	if err := syncTree(fsys, tmp); err != nil {
		return "", m, err
	}
	var done *atomic.Uint64
	if progress != nil {
		progress.Total.Store(Size(fsys, tmp))
		done = &progress.Done
	}
	var err error
	if m.Files, err = checksumsCounted(fsys, tmp, done); err != nil {
		return "", m, err
	}
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := writeSynced(fsys, filepath.Join(tmp, "manifest.json"), raw); err != nil {
		return "", m, err
	}
	// The manifest's entry, then the whole backup under its final name:
	// after a power cut there is a whole backup or only a partial one.
	if err := durablefs.SyncDir(fsys, tmp); err != nil {
		return "", m, err
	}
	final := filepath.Join(root, name)
	if err := fsys.Rename(tmp, final); err != nil {
		return "", m, err
	}
	return final, m, durablefs.SyncDir(fsys, root)
}

// Checksums lists every file under dir on fsys (but the manifest) with its
// SHA-256.
func Checksums(fsys vfs.FS, dir string) ([]File, error) {
	return checksumsCounted(fsys, dir, nil)
}

// Read reads and checks a backup on fsys: the manifest's format and every
// file's size and checksum, and no file the manifest does not list.
func Read(fsys vfs.FS, dir string) (Manifest, error) {
	return ReadCounted(fsys, dir, nil)
}

// readFile reads a whole file on fsys.
func readFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// countWriter adds what is written to it to n, for progress reports.
type countWriter struct{ n *atomic.Uint64 }

func (c countWriter) Write(p []byte) (int, error) {
	if c.n != nil {
		c.n.Add(uint64(len(p)))
	}
	return len(p), nil
}

// checksumsCounted is Checksums, adding the bytes it reads to done.
func checksumsCounted(fsys vfs.FS, dir string, done *atomic.Uint64) ([]File, error) {
	var out []File
	err := walkTree(fsys, dir, func(path, rel string, isDir bool) error {
		if isDir || rel == "manifest.json" {
			return nil
		}
		f, err := fsys.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(h, countWriter{done}), f)
		if err != nil {
			return err
		}
		out = append(out, File{Path: filepath.ToSlash(rel), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// walkTree calls fn for every file and directory under dir on fsys (dir
// itself last, as "."), in name order, with its path and its path relative
// to dir.
func walkTree(fsys vfs.FS, dir string, fn func(path, rel string, isDir bool) error) error {
	var walk func(path, rel string) error
	walk = func(path, rel string) error {
		names, err := fsys.List(path)
		if err != nil {
			return err
		}
		sort.Strings(names)
		for _, name := range names {
			p, r := fsys.PathJoin(path, name), filepath.Join(rel, name)
			st, err := fsys.Stat(p)
			if err != nil {
				return err
			}
			if st.IsDir() {
				err = walk(p, r)
			} else {
				err = fn(p, r, false)
			}
			if err != nil {
				return err
			}
		}
		return fn(path, rel, true)
	}
	return walk(dir, ".")
}

// syncTree syncs every file and directory under dir on fsys.
func syncTree(fsys vfs.FS, dir string) error {
	return walkTree(fsys, dir, func(path, _ string, isDir bool) error {
		if isDir {
			return durablefs.SyncDir(fsys, path)
		}
		f, err := fsys.Open(path)
		if err != nil {
			return err
		}
		return errors.Join(f.Sync(), f.Close())
	})
}

// writeSynced creates the file at path on fsys with data and syncs it (its
// directory entry is the caller's to sync).
func writeSynced(fsys vfs.FS, path string, data []byte) error {
	f, err := fsys.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	return errors.Join(werr, f.Sync(), f.Close())
}

// ReadCounted is Read, adding the bytes it checks to done.
func ReadCounted(fsys vfs.FS, dir string, done *atomic.Uint64) (Manifest, error) {
	var m Manifest
	raw, err := readFile(fsys, filepath.Join(dir, "manifest.json"))
	if err != nil {
		return m, fmt.Errorf("not a backup: %w", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("manifest format %d, want %d", m.Format, Format)
	}
	have, err := checksumsCounted(fsys, dir, done)
	if err != nil {
		return m, err
	}
	want := map[string]File{}
	for _, f := range m.Files {
		want[f.Path] = f
	}
	for _, f := range have {
		w, ok := want[f.Path]
		switch {
		case !ok:
			return m, fmt.Errorf("backup: %s is not in the manifest", f.Path)
		case w != f:
			return m, fmt.Errorf("backup: %s does not match its checksum", f.Path)
		}
		delete(want, f.Path)
	}
	for p := range want {
		return m, fmt.Errorf("backup: %s is missing", p)
	}
	return m, nil
}

// Prune deletes the backups under root on fsys created more than
// keep before now (by their manifests), and partial ones older than a day.
func Prune(fsys vfs.FS, root string, keep time.Duration, now time.Time) ([]string, error) {
	names, err := fsys.List(root)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var removed []string
	for _, name := range names {
		dir := fsys.PathJoin(root, name)
		info, err := fsys.Stat(dir)
		switch {
		case err != nil || !info.IsDir():
			continue
		case strings.HasPrefix(name, "backup-"):
			m, err := ReadManifest(fsys, dir)
			if err != nil || now.Sub(m.CreatedAt) <= keep {
				continue
			}
		case strings.HasPrefix(name, ".partial-"):
			if now.Sub(info.ModTime()) <= 24*time.Hour {
				continue
			}
		default:
			continue
		}
		if err := fsys.RemoveAll(dir); err != nil {
			return removed, err
		}
		removed = append(removed, dir)
	}
	if len(removed) > 0 {
		return removed, durablefs.SyncDir(fsys, root)
	}
	return removed, nil
}

// ReadManifest reads a backup's manifest, without checking its files.
func ReadManifest(fsys vfs.FS, dir string) (Manifest, error) {
	var m Manifest
	raw, err := readFile(fsys, filepath.Join(dir, "manifest.json"))
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	return m, err
}

// Newest returns the creation time of the newest backup under root
// on fsys.
func Newest(fsys vfs.FS, root string) (time.Time, bool) {
	names, err := fsys.List(root)
	if err != nil {
		return time.Time{}, false
	}
	var newest time.Time
	for _, name := range names {
		if strings.HasPrefix(name, "backup-") {
			if m, err := ReadManifest(fsys, fsys.PathJoin(root, name)); err == nil && m.CreatedAt.After(newest) {
				newest = m.CreatedAt
			}
		}
	}
	return newest, !newest.IsZero()
}

// Size is the bytes of the files under dir on fsys.
func Size(fsys vfs.FS, dir string) uint64 {
	var n uint64
	_ = walkTree(fsys, dir, func(path, _ string, isDir bool) error {
		if !isDir {
			if info, err := fsys.Stat(path); err == nil {
				n += uint64(info.Size())
			}
		}
		return nil
	})
	return n
}

// CopyTree copies the files under src to dst on fsys, syncing each file and
// each directory, and adds the bytes it copies to done (when not nil); a
// file that exists in dst already is an error.
func CopyTree(fsys vfs.FS, src, dst string, done *atomic.Uint64) error {
	if err := durablefs.MkdirAll(fsys, dst); err != nil {
		return err
	}
	names, err := fsys.List(src)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		from, to := fsys.PathJoin(src, name), fsys.PathJoin(dst, name)
		st, err := fsys.Stat(from)
		if err != nil {
			return err
		}
		if st.IsDir() {
			if err := CopyTree(fsys, from, to, done); err != nil {
				return err
			}
			continue
		}
		if _, err := fsys.Stat(to); err == nil {
			return fmt.Errorf("%s: %w", to, fs.ErrExist)
		}
		if err := copyFile(fsys, from, to, done); err != nil {
			return err
		}
	}
	return durablefs.SyncDir(fsys, dst)
}

// copyFile copies a file and syncs the copy.
func copyFile(fsys vfs.FS, from, to string, done *atomic.Uint64) error {
	in, err := fsys.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fsys.Create(to, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(io.MultiWriter(out, countWriter{done}), in)
	return errors.Join(cerr, out.Sync(), out.Close())
}
