package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
	if m.Files, err = checksums(s.fs, tmp); err != nil {
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
// store at dir into m.
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
		n, err := io.Copy(h, f)
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
// itself last), in name order, with its path and its path relative to dir.
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

// readManifest reads and checks a backup: the manifest's format and every
// file's size and checksum, and no file the manifest does not list.
func readManifest(fsys vfs.FS, dir string) (manifest, error) {
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
	have, err := checksums(fsys, dir)
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

// adminSocket is the server's backup trigger.
func adminSocket(cfg Config) string { return filepath.Join(cfg.DataDir, "admin.sock") }

// serveAdmin answers POST /backup?to=DIR on the admin socket until ctx ends.
func (s *system) serveAdmin(ctx context.Context, path string, log *slog.Logger) (stop func(), err error) {
	_ = os.Remove(path) // a stale socket of a previous run
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /backup", func(w http.ResponseWriter, r *http.Request) {
		dir, m, err := s.backup(r.Context(), r.URL.Query().Get("to"))
		if err != nil {
			log.Error("backup failed", "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log.Info("backup written", "dir", dir, "head_position", m.HeadPosition)
		_ = json.NewEncoder(w).Encode(struct {
			Dir string `json:"dir"`
			manifest
		}{dir, m})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close(); _ = os.Remove(path) }, nil
}

// backupCmd is `buurtsignaal backup [--to DIR] [--prune]`.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var to string
	var prune bool
	cfg, _, err := loadConfig("backup", args, getenv, func(fs *flag.FlagSet) {
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
		return errors.New("backup: give --to DIR or set BUURTSIGNAAL_BACKUP_DIR")
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
	sys, err := openSystem(ctx, cfg, newLogger(stderr, cfg.LogLevel), nil, nil)
	if err != nil {
		return err
	}
	defer sys.Close()
	dir, m, err := sys.backup(ctx, to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup %s: head position %d, %d audit records, audit head %s, %d files\n", dir, m.HeadPosition, m.AuditRecords, m.AuditHead, len(m.Files))
	return nil
}

var errNoServer = errors.New("no server on the admin socket")

// askServer asks the running server for a backup; errNoServer when none runs.
func askServer(ctx context.Context, socket, to string) ([]byte, error) {
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://admin/backup?to="+url.QueryEscape(to), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, errNoServer
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("backup by the server: %s", bytes.TrimSpace(body))
	}
	return body, nil
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

// restoreCmd is `buurtsignaal restore --from BACKUP --data-dir EMPTY`: it
// checks the backup, copies it into the empty data directory, applies the
// erased-subjects file (--erased-file) to the restored keys, verifies the
// audit chains and rebuilds the projections.
func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var from string
	var noErased bool
	cfg, _, err := loadConfig("restore", args, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "the backup directory (backup-...)")
		fs.BoolVar(&noErased, "no-erased-file", false, "restore although there is no erased-subjects file (only when this deployment never erased anyone: a restore without the list brings erased people back)")
	})
	if err != nil {
		return err
	}
	if from == "" {
		return errors.New("restore: give --from BACKUP")
	}
	r, err := restore(ctx, vfs.Default, cfg, from, noErased, newLogger(stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s: head position %d, %d audit records verified (head %s), projections rebuilt: %d events, %d signals\n",
		from, r.head, r.records, r.auditHead, r.events, r.signals)
	return nil
}

// restored is what a restore reports.
type restored struct {
	head      uint64
	records   int
	auditHead string
	events    uint64
	signals   int
}

// restore restores the backup at from on fsys into cfg's empty data
// directory (see restoreCmd).
func restore(ctx context.Context, fsys vfs.FS, cfg Config, from string, noErased bool, log *slog.Logger) (restored, error) {
	if cfg.Store != "" {
		return restored{}, errors.New("restore: only into the embedded store")
	}
	m, err := readManifest(fsys, from)
	if err != nil {
		return restored{}, err
	}
	if names, err := fsys.List(cfg.DataDir); err == nil {
		for _, name := range names {
			if name != "erased-subjects" { // an earlier version's place for the erased list
				return restored{}, fmt.Errorf("restore: the data directory %s is not empty", cfg.DataDir)
			}
		}
	}
	// Without the erased-subjects list, subjects erased after the backup
	// would come back: refuse, unless told there is none to bring.
	if _, err := fsys.Stat(erasedFile(cfg)); err != nil && !noErased {
		if _, oerr := fsys.Stat(filepath.Join(cfg.DataDir, "erased-subjects")); oerr != nil {
			return restored{}, fmt.Errorf("restore: there is no erased-subjects file at %s: a restore without it brings back every subject erased since the backup; "+
				"bring the list there (or name it with --erased-file), or pass --no-erased-file if this deployment never erased anyone", erasedFile(cfg))
		}
	}
	umaskPrivate() // the copies are the server's alone, as openSystem keeps them
	if err := durablefs.MkdirAll(fsys, cfg.DataDir); err != nil {
		return restored{}, fmt.Errorf("restore: %w", err)
	}
	for _, part := range []string{"events", "keys"} {
		if err := copyTree(fsys, filepath.Join(from, part), filepath.Join(cfg.DataDir, part)); err != nil {
			return restored{}, fmt.Errorf("restore: %w", err)
		}
	}
	// openSystem applies the erased-subjects file before anything reads.
	sys, err := openSystem(ctx, cfg, log, nil, fsys)
	if err != nil {
		return restored{}, err
	}
	defer sys.Close()
	head, err := sys.store.Head(ctx)
	if err != nil {
		return restored{}, err
	}
	if head != m.HeadPosition {
		return restored{}, fmt.Errorf("restore: head position %d, the manifest says %d", head, m.HeadPosition)
	}
	rep, err := sys.verify(ctx)
	if err != nil {
		return restored{}, err
	}
	if !rep.OK || rep.Head != m.AuditHead {
		return restored{}, fmt.Errorf("restore: audit chains do not verify against the manifest (ok %t, head %s, want %s)", rep.OK, rep.Head, m.AuditHead)
	}
	stop, err := sys.startProjections(ctx)
	if err != nil {
		return restored{}, err
	}
	if err := stop(); err != nil {
		return restored{}, err
	}
	return restored{head: head, records: rep.Records, auditHead: rep.Head, events: sys.runner.Applied(), signals: sys.cases.Len()}, nil
}

// copyTree copies the files under src to dst on fsys, syncing each file and
// each directory; a file that exists in dst already is an error.
func copyTree(fsys vfs.FS, src, dst string) error {
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
			if err := copyTree(fsys, from, to); err != nil {
				return err
			}
			continue
		}
		if _, err := fsys.Stat(to); err == nil {
			return fmt.Errorf("%s: %w", to, fs.ErrExist)
		}
		if err := copyFile(fsys, from, to); err != nil {
			return err
		}
	}
	return durablefs.SyncDir(fsys, dst)
}

// copyFile copies a file and syncs the copy.
func copyFile(fsys vfs.FS, from, to string) error {
	in, err := fsys.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fsys.Create(to, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	return errors.Join(cerr, out.Sync(), out.Close())
}
