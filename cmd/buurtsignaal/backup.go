package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/buurtsignaal/buurtsignaal/adapters/audit"
	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
)

// Backups of the embedded store.
//
// A backup is a directory backup-<UTC time> holding Pebble checkpoints of
// the event store (events/, which holds the audit log too) and of the key
// store (keys/), and manifest.json: the format, when, the log's head
// position, the audit chains' head digest and a SHA-256 of every file. It is
// written as .partial-<name> and renamed when complete, so a backup that
// exists is whole.
//
// The server takes backups itself while it serves (Pebble allows one process
// per directory): `buurtsignaal backup` asks it over the admin socket
// <data-dir>/admin.sock (mode 0600: only the server's own user reaches it),
// and opens the data directory itself when no server runs.
//
// Not in a backup: the master key (keep it apart from the data; a restore
// needs the same key) and the erased-subjects file, which lives next to the
// data and is applied to every restored key store, so an erased subject
// never comes back from an older backup.

const manifestFormat = 1

type fileSum struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type manifest struct {
	Format       int       `json:"format"`
	CreatedAt    time.Time `json:"created_at"`
	Version      string    `json:"version"`
	HeadPosition uint64    `json:"head_position"`
	AuditStreams int       `json:"audit_streams"`
	AuditRecords int       `json:"audit_records"`
	AuditHead    string    `json:"audit_head"`
	Files        []fileSum `json:"files"`
}

// backup writes a backup of s under root and returns its directory.
func (s *system) backup(ctx context.Context, root string) (string, manifest, error) {
	if s.pebble == nil {
		return "", manifest{}, errors.New("backup: only the embedded store is backed up here; back KurrentDB up with its own tools")
	}
	if root == "" {
		return "", manifest{}, errors.New("backup: no directory given (--to or BUURTSIGNAAL_BACKUP_DIR)")
	}
	if err := durablefs.MkdirAll(s.fs, root); err != nil {
		return "", manifest{}, err
	}
	m := manifest{Format: manifestFormat, CreatedAt: s.now().UTC(), Version: version}
	name := "backup-" + m.CreatedAt.Format("20060102T150405.000000000Z")
	tmp := filepath.Join(root, ".partial-"+name)
	defer s.fs.RemoveAll(tmp) //nolint:errcheck // nothing left of a failed attempt; a no-op after the rename
	if err := s.pebble.Checkpoint(filepath.Join(tmp, "events")); err != nil {
		return "", m, err
	}
	local, ok := s.keys.(interface{ Checkpoint(dir string) error }) // the local key store, with the embedded store
	if !ok {
		return "", m, errors.New("backup: the key store is not the local one")
	}
	if err := local.Checkpoint(filepath.Join(tmp, "keys")); err != nil {
		return "", m, err
	}
	// The head and the audit chains of the copy itself, which also proves
	// that it opens.
	if err := describeCopy(ctx, s.fs, filepath.Join(tmp, "events"), &m); err != nil {
		return "", m, err
	}
	// Every file and directory of the copy is synced before the manifest
	// lists them: opening the copy wrote and removed files of its own, and
	// a power cut must not bring a removed one back or cut a written one.
	if err := syncTree(s.fs, tmp); err != nil {
		return "", m, err
	}
	var err error
	s.backupTotal.Store(dirSize(s.fs, tmp))
	if m.Files, err = checksumsCounted(s.fs, tmp, &s.backupDone); err != nil {
		return "", m, err
	}
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := writeSynced(s.fs, filepath.Join(tmp, "manifest.json"), raw); err != nil {
		return "", m, err
	}
	// The manifest's entry, then the whole backup under its final name:
	// after a power cut there is a whole backup or only a partial one.
	if err := durablefs.SyncDir(s.fs, tmp); err != nil {
		return "", m, err
	}
	final := filepath.Join(root, name)
	if err := s.fs.Rename(tmp, final); err != nil {
		return "", m, err
	}
	return final, m, durablefs.SyncDir(s.fs, root)
}

// describeCopy fills the head position and the audit chains of the event
// store at dir on fsys into m.
func describeCopy(ctx context.Context, fsys vfs.FS, dir string, m *manifest) error {
	st, err := pebblestore.Open(dir, pebblestore.Options{FS: fsys})
	if err != nil {
		return fmt.Errorf("open the copy: %w", err)
	}
	defer st.Close()
	if m.HeadPosition, err = st.Head(ctx); err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, st)
	if err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("audit chains of the copy do not verify: %v", rep.Problems)
	}
	m.AuditStreams, m.AuditRecords, m.AuditHead = rep.Streams, rep.Records, rep.Head
	return nil
}

// checksums lists every file under dir on fsys (but the manifest) with its
// SHA-256.
func checksums(fsys vfs.FS, dir string) ([]fileSum, error) {
	return checksumsCounted(fsys, dir, nil)
}

// countWriter adds what is written to it to n, for progress reports.
type countWriter struct{ n *atomic.Uint64 }

func (c countWriter) Write(p []byte) (int, error) {
	if c.n != nil {
		c.n.Add(uint64(len(p)))
	}
	return len(p), nil
}

// checksumsCounted is checksums, adding the bytes it reads to done.
func checksumsCounted(fsys vfs.FS, dir string, done *atomic.Uint64) ([]fileSum, error) {
	var out []fileSum
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
		out = append(out, fileSum{Path: filepath.ToSlash(rel), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
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

// readManifest reads and checks a backup on fsys: the manifest's format and
// every file's size and checksum, and no file the manifest does not list.
func readManifest(fsys vfs.FS, dir string) (manifest, error) {
	return readManifestCounted(fsys, dir, nil)
}

// readManifestCounted is readManifest, adding the bytes it checks to done.
func readManifestCounted(fsys vfs.FS, dir string, done *atomic.Uint64) (manifest, error) {
	var m manifest
	raw, err := readFile(fsys, filepath.Join(dir, "manifest.json"))
	if err != nil {
		return m, fmt.Errorf("not a backup: %w", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	if m.Format != manifestFormat {
		return m, fmt.Errorf("manifest format %d, want %d", m.Format, manifestFormat)
	}
	have, err := checksumsCounted(fsys, dir, done)
	if err != nil {
		return m, err
	}
	want := map[string]fileSum{}
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

// backupCmd is `buurtsignaal backup [--to DIR] [--prune]`.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var to string
	var prune bool
	cfg, _, err := loadConfig("backup", args, getenv, output(stderr), func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "directory of backups (default: --backup-dir)")
		fs.BoolVar(&prune, "prune", false, "delete the backups older than --backup-retention instead")
	})
	if err != nil {
		return err
	}
	if to == "" {
		to = cfg.BackupDir
	}
	if to == "" {
		return usagef("backup: give --to DIR or set BUURTSIGNAAL_BACKUP_DIR")
	}
	if prune {
		removed, err := pruneBackups(vfs.Default, to, cfg.BackupRetention, time.Now())
		for _, r := range removed {
			fmt.Fprintln(stdout, "removed", r)
		}
		return err
	}
	if to, err = filepath.Abs(to); err != nil {
		return err
	}
	out, err := askServer(ctx, adminSocket(cfg), to)
	if err == nil {
		_, err = stdout.Write(out)
		return err
	}
	if !errors.Is(err, errNoServer) {
		return err
	}
	// No server: the command opens the data directory itself, which must
	// hold a store and its master key.
	if err := requireStore("backup", cfg); err != nil {
		return err
	}
	if err := requireMasterKey("backup", cfg); err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	sys, err := openSystem(ctx, cfg, log, nil, nil)
	if err != nil {
		return explainLocked("backup", cfg, err)
	}
	defer sys.Close()
	var dir string
	var m manifest
	err = withProgress(ctx, stderr, log, "backup: checking the copy", "bytes", sys.backupTotal.Load, sys.backupDone.Load, func(ctx context.Context) error {
		dir, m, err = sys.backup(ctx, to)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup %s: head position %d, %d audit records, audit head %s, %d files\n", dir, m.HeadPosition, m.AuditRecords, m.AuditHead, len(m.Files))
	return nil
}

// pruneBackups deletes the backups under root on fsys created more than
// keep before now (by their manifests), and partial ones older than a day.
func pruneBackups(fsys vfs.FS, root string, keep time.Duration, now time.Time) ([]string, error) {
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
			m, err := readManifestOnly(fsys, dir)
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

func readManifestOnly(fsys vfs.FS, dir string) (manifest, error) {
	var m manifest
	raw, err := readFile(fsys, filepath.Join(dir, "manifest.json"))
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	return m, err
}

// newestBackup returns the creation time of the newest backup under root
// on fsys.
func newestBackup(fsys vfs.FS, root string) (time.Time, bool) {
	names, err := fsys.List(root)
	if err != nil {
		return time.Time{}, false
	}
	var newest time.Time
	for _, name := range names {
		if strings.HasPrefix(name, "backup-") {
			if m, err := readManifestOnly(fsys, fsys.PathJoin(root, name)); err == nil && m.CreatedAt.After(newest) {
				newest = m.CreatedAt
			}
		}
	}
	return newest, !newest.IsZero()
}

// dirSize is the bytes of the files under dir on fsys.
func dirSize(fsys vfs.FS, dir string) uint64 {
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
