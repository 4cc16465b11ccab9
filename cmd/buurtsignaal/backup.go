package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/buurtsignaal/buurtsignaal/adapters/audit"
	"github.com/buurtsignaal/buurtsignaal/adapters/backup"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
)

// Backups of the embedded store (the format: adapters/backup).
//
// The server takes backups itself while it serves (Pebble allows one process
// per directory): `buurtsignaal backup` asks it over the admin socket
// <data-dir>/admin.sock (mode 0600: only the server's own user reaches it),
// and opens the data directory itself when no server runs.

// backup writes a backup of s under root and returns its directory.
func (s *system) backup(ctx context.Context, root string) (string, backup.Manifest, error) {
	if s.pebble == nil {
		return "", backup.Manifest{}, errors.New("backup: only the embedded store is backed up here; back KurrentDB up with its own tools")
	}
	local, ok := s.keys.(interface{ Checkpoint(dir string) error }) // the local key store, with the embedded store
	if !ok {
		return "", backup.Manifest{}, errors.New("backup: the key store is not the local one")
	}
	m := backup.Manifest{CreatedAt: s.now().UTC(), Version: version}
	parts := []backup.Part{{Name: "events", Checkpoint: s.pebble.Checkpoint}, {Name: "keys", Checkpoint: local.Checkpoint}}
	return backup.Write(ctx, s.fs, root, m, parts, func(ctx context.Context, dir string, m *backup.Manifest) error {
		return describeCopy(ctx, s.fs, filepath.Join(dir, "events"), m)
	}, &s.backupProgress)
}

// describeCopy fills the head position and the audit chains of the event
// store at dir on fsys into m.
func describeCopy(ctx context.Context, fsys vfs.FS, dir string, m *backup.Manifest) error {
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
		removed, err := backup.Prune(vfs.Default, to, cfg.BackupRetention, time.Now())
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
	var m backup.Manifest
	err = withProgress(ctx, stderr, log, "backup: checking the copy", "bytes", sys.backupProgress.Total.Load, sys.backupProgress.Done.Load, func(ctx context.Context) error {
		dir, m, err = sys.backup(ctx, to)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup %s: head position %d, %d audit records, audit head %s, %d files\n", dir, m.HeadPosition, m.AuditRecords, m.AuditHead, len(m.Files))
	return nil
}
