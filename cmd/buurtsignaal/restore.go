package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/buurtsignaal/buurtsignaal/adapters/backup"
	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs"
	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
)

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
	if serverHolds(cfg) {
		return heldByServer("restore", cfg, "restore into an empty data directory, with no server running on it")
	}
	r, err := restore(ctx, vfs.Default, cfg, from, noErased, newLogger(stderr, cfg.LogLevel), stderr)
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

// restore restores the backup at from on fsys into cfg's data directory
// (see restoreCmd), reporting progress on progress.
func restore(ctx context.Context, fsys vfs.FS, cfg Config, from string, noErased bool, log *slog.Logger, progress io.Writer) (restored, error) {
	if cfg.Store != "" {
		return restored{}, errors.New("restore: only into the embedded store")
	}
	// The backup, whole: every file against its checksum.
	pre, err := backup.ReadManifest(fsys, from)
	if err != nil {
		return restored{}, fmt.Errorf("restore: %s is not a backup: %w", from, err)
	}
	var size uint64
	for _, f := range pre.Files {
		size += uint64(f.Size)
	}
	var checked atomic.Uint64
	var m backup.Manifest
	err = withProgress(ctx, progress, log, "restore: checking the backup", "bytes", func() uint64 { return size }, checked.Load, func(context.Context) error {
		m, err = backup.ReadCounted(fsys, from, &checked)
		return err
	})
	if err != nil {
		return restored{}, err
	}
	// The data directory: empty, but for the master key to restore with
	// (and what a failed restore left in .restore-partial).
	partial := filepath.Join(cfg.DataDir, ".restore-partial")
	if names, err := fsys.List(cfg.DataDir); err == nil {
		var others []string
		for _, name := range names {
			switch name {
			case "master-key.json", "notify-secret", ".restore-partial", "erased-subjects": // erased-subjects: an earlier version's place for the list
			default:
				others = append(others, name)
			}
		}
		if len(others) > 0 {
			sort.Strings(others)
			return restored{}, fmt.Errorf("restore: the data directory %s is not empty (it holds %s): restore into an empty directory (it may hold the master key file)", cfg.DataDir, strings.Join(others, ", "))
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
	// The master key: not in the backup, never made here, and it must open
	// the backup's keys before anything is copied into place.
	keySource := "BUURTSIGNAAL_MASTER_KEY"
	if path := masterKeyPath(cfg); path != "" {
		keySource = path
		if _, err := fsys.Stat(path); err != nil {
			return restored{}, fmt.Errorf("restore: there is no master key at %s: a backup opens only with the master key it was made with, which backups leave out; "+
				"put that key there, name it with --master-key-file (or BUURTSIGNAAL_MASTER_KEY_FILE), or give it in BUURTSIGNAAL_MASTER_KEY", path)
		}
	}
	master, err := masterKey(cfg, fsys)
	if err != nil {
		return restored{}, fmt.Errorf("restore: the master key %s: %w", keySource, err)
	}
	umaskPrivate() // the copies are the server's alone, as openSystem keeps them
	if err := fsys.RemoveAll(partial); err != nil {
		return restored{}, err
	}
	if err := durablefs.MkdirAll(fsys, partial); err != nil {
		return restored{}, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = fsys.RemoveAll(partial)
		}
	}()
	if err := backup.CopyTree(fsys, filepath.Join(from, "keys"), filepath.Join(partial, "keys"), nil); err != nil {
		return restored{}, fmt.Errorf("restore: %w", err)
	}
	ks, err := keystore.Open(filepath.Join(partial, "keys"), master, keystore.Options{FS: fsys})
	if err != nil {
		return restored{}, fmt.Errorf("restore: the master key %s does not open the keys of %s, so it is not the key the backup was made with; nothing was restored: "+
			"pass that key with --master-key-file (or BUURTSIGNAAL_MASTER_KEY_FILE) or BUURTSIGNAAL_MASTER_KEY (%w)", keySource, from, err)
	}
	if err := ks.Close(); err != nil {
		return restored{}, err
	}
	var copied atomic.Uint64
	eventsSize := backup.Size(fsys, filepath.Join(from, "events"))
	err = withProgress(ctx, progress, log, "restore: copying the events", "bytes", func() uint64 { return eventsSize }, copied.Load, func(context.Context) error {
		return backup.CopyTree(fsys, filepath.Join(from, "events"), filepath.Join(partial, "events"), &copied)
	})
	if err != nil {
		return restored{}, fmt.Errorf("restore: %w", err)
	}
	for _, part := range []string{"keys", "events"} {
		if err := fsys.Rename(filepath.Join(partial, part), filepath.Join(cfg.DataDir, part)); err != nil {
			return restored{}, fmt.Errorf("restore: %w", err)
		}
	}
	ok = true
	if err := errors.Join(fsys.Remove(partial), durablefs.SyncDir(fsys, cfg.DataDir)); err != nil {
		return restored{}, err
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
	var stop func() error
	err = withProgress(ctx, progress, log, "restore: rebuilding the projections", "log positions", func() uint64 { return head }, sys.runner.Position, func(ctx context.Context) error {
		stop, err = sys.startProjections(ctx)
		return err
	})
	if err != nil {
		return restored{}, err
	}
	if err := stop(); err != nil {
		return restored{}, err
	}
	return restored{head: head, records: rep.Records, auditHead: rep.Head, events: sys.runner.Applied(), signals: sys.cases.Len()}, nil
}
