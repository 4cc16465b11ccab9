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
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/audit"
	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
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
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", manifest{}, err
	}
	m := manifest{Format: manifestFormat, CreatedAt: s.now().UTC(), Version: version}
	name := "backup-" + m.CreatedAt.Format("20060102T150405.000000000Z")
	tmp := filepath.Join(root, ".partial-"+name)
	defer os.RemoveAll(tmp) // nothing left of a failed attempt; a no-op after the rename
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
	if err := describeCopy(ctx, filepath.Join(tmp, "events"), &m); err != nil {
		return "", m, err
	}
	var err error
	s.backupTotal.Store(dirSize(tmp))
	if m.Files, err = checksumsCounted(tmp, &s.backupDone); err != nil {
		return "", m, err
	}
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := writeSynced(filepath.Join(tmp, "manifest.json"), raw); err != nil {
		return "", m, err
	}
	final := filepath.Join(root, name)
	if err := os.Rename(tmp, final); err != nil {
		return "", m, err
	}
	return final, m, syncDir(root)
}

// describeCopy fills the head position and the audit chains of the event
// store at dir into m.
func describeCopy(ctx context.Context, dir string, m *manifest) error {
	st, err := pebblestore.Open(dir, pebblestore.Options{})
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

// checksums lists every file under dir (but the manifest) with its SHA-256.
func checksums(dir string) ([]fileSum, error) { return checksumsCounted(dir, nil) }

// countWriter adds what is written to it to n, for progress reports.
type countWriter struct{ n *atomic.Uint64 }

func (c countWriter) Write(p []byte) (int, error) {
	if c.n != nil {
		c.n.Add(uint64(len(p)))
	}
	return len(p), nil
}

// checksumsCounted is checksums, adding the bytes it reads to done.
func checksumsCounted(dir string, done *atomic.Uint64) ([]fileSum, error) {
	var out []fileSum
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "manifest.json" {
			return nil
		}
		f, err := os.Open(path)
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

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	return errors.Join(werr, f.Sync(), f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// readManifest reads and checks a backup: the manifest's format and every
// file's size and checksum, and no file the manifest does not list.
func readManifest(dir string) (manifest, error) { return readManifestCounted(dir, nil) }

// readManifestCounted is readManifest, adding the bytes it checks to done.
func readManifestCounted(dir string, done *atomic.Uint64) (manifest, error) {
	var m manifest
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return m, fmt.Errorf("not a backup: %w", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	if m.Format != manifestFormat {
		return m, fmt.Errorf("manifest format %d, want %d", m.Format, manifestFormat)
	}
	have, err := checksumsCounted(dir, done)
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
	// The commands that find the data directory held by this server ask it
	// here: verify its audit chains, run the retention sweep.
	mux.HandleFunc("GET /verify", func(w http.ResponseWriter, r *http.Request) {
		rep, err := audit.Verify(r.Context(), s.store)
		if err != nil {
			log.Error("verify failed", "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("POST /retention", func(w http.ResponseWriter, r *http.Request) {
		ids, err := s.sweep(r.Context(), r.URL.Query().Get("apply") == "true")
		ans := struct {
			IDs   []uuid.UUID `json:"ids"`
			Error string      `json:"error,omitempty"`
		}{IDs: ids}
		if err != nil {
			log.Error("retention sweep", "err", err, "erased", len(ids))
			ans.Error = err.Error()
		}
		_ = json.NewEncoder(w).Encode(ans)
	})
	s.adminHSDS(mux, log)
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
		removed, err := pruneBackups(to, cfg.BackupRetention, time.Now())
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
	sys, err := openSystem(ctx, cfg, log, nil)
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

var errNoServer = errors.New("no server on the admin socket")

// adminClient talks HTTP over the admin socket.
func adminClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
}

// askAdmin asks the running server over its admin socket and decodes its
// JSON answer into out; errNoServer when none runs.
func askAdmin(ctx context.Context, socket, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://admin"+path, nil)
	if err != nil {
		return err
	}
	return doAdmin(socket, req, out)
}

// askAdminBody posts body to the running server's admin socket.
func askAdminBody(ctx context.Context, socket, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://admin"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	return doAdmin(socket, req, out)
}

func doAdmin(socket string, req *http.Request, out any) error {
	resp, err := adminClient(socket).Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return errNoServer
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server (admin socket %s): %s", socket, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, out)
}

// askServer asks the running server for a backup; errNoServer when none runs.
func askServer(ctx context.Context, socket, to string) ([]byte, error) {
	client := adminClient(socket)
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

// pruneBackups deletes the backups under root created more than keep
// before now (by their manifests), and partial ones older than a day.
func pruneBackups(root string, keep time.Duration, now time.Time) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		switch {
		case !e.IsDir():
			continue
		case strings.HasPrefix(e.Name(), "backup-"):
			m, err := readManifestOnly(dir)
			if err != nil || now.Sub(m.CreatedAt) <= keep {
				continue
			}
		case strings.HasPrefix(e.Name(), ".partial-"):
			info, err := e.Info()
			if err != nil || now.Sub(info.ModTime()) <= 24*time.Hour {
				continue
			}
		default:
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return removed, err
		}
		removed = append(removed, dir)
	}
	return removed, nil
}

func readManifestOnly(dir string) (manifest, error) {
	var m manifest
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	return m, err
}

// newestBackup returns the creation time of the newest backup under root.
func newestBackup(root string) (time.Time, bool) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return time.Time{}, false
	}
	var newest time.Time
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "backup-") {
			if m, err := readManifestOnly(filepath.Join(root, e.Name())); err == nil && m.CreatedAt.After(newest) {
				newest = m.CreatedAt
			}
		}
	}
	return newest, !newest.IsZero()
}

// restoreCmd is `buurtsignaal restore --from BACKUP --data-dir EMPTY`: it
// checks the backup's checksums and that the master key opens the backup's
// keys before it copies anything into the data directory (empty but for the
// master key file), copies it (into .restore-partial, renamed into place
// when whole), applies the erased-subjects file (--erased-file) to the
// restored keys, verifies the audit chains and rebuilds the projections.
func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var from string
	var noErased bool
	cfg, _, err := loadConfig("restore", args, getenv, output(stderr), func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "the backup directory (backup-...)")
		fs.BoolVar(&noErased, "no-erased-file", false, "restore although there is no erased-subjects file (only when this deployment never erased anyone: a restore without the list brings erased people back)")
	})
	if err != nil {
		return err
	}
	if from == "" {
		return usagef("restore: give --from BACKUP")
	}
	if cfg.Store != "" {
		return errors.New("restore: only into the embedded store")
	}
	if serverHolds(cfg) {
		return heldByServer("restore", cfg, "restore into an empty data directory, with no server running on it")
	}
	log := newLogger(stderr, cfg.LogLevel)
	// The backup, whole: every file against its checksum.
	pre, err := readManifestOnly(from)
	if err != nil {
		return fmt.Errorf("restore: %s is not a backup: %w", from, err)
	}
	var size uint64
	for _, f := range pre.Files {
		size += uint64(f.Size)
	}
	var checked atomic.Uint64
	var m manifest
	err = withProgress(ctx, stderr, log, "restore: checking the backup", "bytes", func() uint64 { return size }, checked.Load, func(context.Context) error {
		m, err = readManifestCounted(from, &checked)
		return err
	})
	if err != nil {
		return err
	}
	// The data directory: empty, but for the master key to restore with
	// (and what a failed restore left in .restore-partial).
	partial := filepath.Join(cfg.DataDir, ".restore-partial")
	if entries, err := os.ReadDir(cfg.DataDir); err == nil {
		var others []string
		for _, e := range entries {
			switch e.Name() {
			case "master-key.json", "notify-secret", ".restore-partial", "erased-subjects": // erased-subjects: an earlier version's place for the list
			default:
				others = append(others, e.Name())
			}
		}
		if len(others) > 0 {
			return fmt.Errorf("restore: the data directory %s is not empty (it holds %s): restore into an empty directory (it may hold the master key file)", cfg.DataDir, strings.Join(others, ", "))
		}
	}
	// Without the erased-subjects list, subjects erased after the backup
	// would come back: refuse, unless told there is none to bring.
	if _, err := os.Stat(erasedFile(cfg)); err != nil && !noErased {
		if _, oerr := os.Stat(filepath.Join(cfg.DataDir, "erased-subjects")); oerr != nil {
			return fmt.Errorf("restore: there is no erased-subjects file at %s: a restore without it brings back every subject erased since the backup; "+
				"bring the list there (or name it with --erased-file), or pass --no-erased-file if this deployment never erased anyone", erasedFile(cfg))
		}
	}
	// The master key: not in the backup, never made here, and it must open
	// the backup's keys before anything is copied into place.
	keySource := "BUURTSIGNAAL_MASTER_KEY"
	if path := masterKeyPath(cfg); path != "" {
		keySource = path
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("restore: there is no master key at %s: a backup opens only with the master key it was made with, which backups leave out; "+
				"put that key there, name it with --master-key-file (or BUURTSIGNAAL_MASTER_KEY_FILE), or give it in BUURTSIGNAAL_MASTER_KEY", path)
		}
	}
	master, err := masterKey(cfg)
	if err != nil {
		return fmt.Errorf("restore: the master key %s: %w", keySource, err)
	}
	if err := os.RemoveAll(partial); err != nil {
		return err
	}
	if err := os.MkdirAll(partial, 0o700); err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(partial)
		}
	}()
	if err := copyTree(filepath.Join(from, "keys"), filepath.Join(partial, "keys")); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	ks, err := keystore.Open(filepath.Join(partial, "keys"), master, keystore.Options{})
	if err != nil {
		return fmt.Errorf("restore: the master key %s does not open the keys of %s, so it is not the key the backup was made with; nothing was restored: "+
			"pass that key with --master-key-file (or BUURTSIGNAAL_MASTER_KEY_FILE) or BUURTSIGNAAL_MASTER_KEY (%w)", keySource, from, err)
	}
	if err := ks.Close(); err != nil {
		return err
	}
	var copied atomic.Uint64
	eventsSize := dirSize(filepath.Join(from, "events"))
	err = withProgress(ctx, stderr, log, "restore: copying the events", "bytes", func() uint64 { return eventsSize }, copied.Load, func(context.Context) error {
		return copyTreeCounted(filepath.Join(from, "events"), filepath.Join(partial, "events"), &copied)
	})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, part := range []string{"keys", "events"} {
		if err := os.Rename(filepath.Join(partial, part), filepath.Join(cfg.DataDir, part)); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	ok = true
	if err := errors.Join(os.Remove(partial), syncDir(cfg.DataDir)); err != nil {
		return err
	}
	// openSystem applies the erased-subjects file before anything reads.
	sys, err := openSystem(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer sys.Close()
	head, err := sys.store.Head(ctx)
	if err != nil {
		return err
	}
	if head != m.HeadPosition {
		return fmt.Errorf("restore: head position %d, the manifest says %d", head, m.HeadPosition)
	}
	rep, err := sys.verify(ctx)
	if err != nil {
		return err
	}
	if !rep.OK || rep.Head != m.AuditHead {
		return fmt.Errorf("restore: audit chains do not verify against the manifest (ok %t, head %s, want %s)", rep.OK, rep.Head, m.AuditHead)
	}
	var stop func() error
	err = withProgress(ctx, stderr, log, "restore: rebuilding the projections", "log positions", func() uint64 { return head }, sys.runner.Position, func(ctx context.Context) error {
		stop, err = sys.startProjections(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if err := stop(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s: head position %d, %d audit records verified (head %s), projections rebuilt: %d events, %d signals\n",
		from, head, rep.Records, rep.Head, sys.runner.Applied(), sys.cases.Len())
	return nil
}

// copyTree copies the files under src to dst, syncing each file and its
// directory; a file that exists in dst already is an error.
func copyTree(src, dst string) error { return copyTreeCounted(src, dst, nil) }

// copyTreeCounted is copyTree, adding the bytes it copies to done.
func copyTreeCounted(src, dst string, done *atomic.Uint64) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, cerr := io.Copy(io.MultiWriter(out, countWriter{done}), in)
		if err := errors.Join(cerr, out.Sync(), out.Close()); err != nil {
			return err
		}
		return syncDir(filepath.Dir(target))
	})
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) uint64 {
	var n uint64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += uint64(info.Size())
			}
		}
		return nil
	})
	return n
}
