package backup_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/adapters/backup"
)

// writeFile puts data at path on fsys.
func writeFile(t *testing.T, fsys vfs.FS, path, data string) {
	t.Helper()
	if err := fsys.MkdirAll(fsys.PathDir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// part is a store whose checkpoint writes these files.
func part(t *testing.T, fsys vfs.FS, name string, files map[string]string) backup.Part {
	return backup.Part{Name: name, Checkpoint: func(dir string) error {
		for p, data := range files {
			writeFile(t, fsys, fsys.PathJoin(dir, p), data)
		}
		return nil
	}}
}

// TestWriteAndRead: a backup written is read back whole, with the manifest
// it was written with; any change to it afterwards is refused by name.
func TestWriteAndRead(t *testing.T) {
	at := time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		damage func(fsys vfs.FS, dir string) error
		want   string // in the error; "" for none
	}{
		{name: "whole"},
		{name: "a file changed", want: "events/000001.sst does not match its checksum", damage: func(fsys vfs.FS, dir string) error {
			writeFile(t, fsys, fsys.PathJoin(dir, "events", "000001.sst"), "tampered")
			return nil
		}},
		{name: "a file missing", want: "keys/MANIFEST is missing", damage: func(fsys vfs.FS, dir string) error {
			return fsys.Remove(fsys.PathJoin(dir, "keys", "MANIFEST"))
		}},
		{name: "a file added", want: "events/extra is not in the manifest", damage: func(fsys vfs.FS, dir string) error {
			writeFile(t, fsys, fsys.PathJoin(dir, "events", "extra"), "x")
			return nil
		}},
		{name: "no manifest", want: "not a backup", damage: func(fsys vfs.FS, dir string) error {
			return fsys.Remove(fsys.PathJoin(dir, "manifest.json"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMem()
			parts := []backup.Part{
				part(t, fsys, "events", map[string]string{"000001.sst": "events", "sub/000002.log": "log"}),
				part(t, fsys, "keys", map[string]string{"MANIFEST": "keys"}),
			}
			var progress backup.Progress
			dir, m, err := backup.Write(context.Background(), fsys, "/backups", backup.Manifest{CreatedAt: at, Version: "test"}, parts,
				func(_ context.Context, dir string, m *backup.Manifest) error {
					if _, err := fsys.Stat(fsys.PathJoin(dir, "events", "000001.sst")); err != nil {
						return err
					}
					m.HeadPosition = 42
					return nil
				}, &progress)
			if err != nil {
				t.Fatal(err)
			}
			if want := "/backups/backup-20260601T020000.000000000Z"; dir != want {
				t.Fatalf("backup at %s, want %s", dir, want)
			}
			if progress.Total.Load() != 13 || progress.Done.Load() != 13 {
				t.Fatalf("progress %d of %d bytes, want 13 of 13", progress.Done.Load(), progress.Total.Load())
			}
			if names, _ := fsys.List("/backups"); len(names) != 1 {
				t.Fatalf("the backup directory holds %v, want only the backup", names)
			}
			if tc.damage != nil {
				if err := tc.damage(fsys, dir); err != nil {
					t.Fatal(err)
				}
			}
			got, err := backup.Read(fsys, dir)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("read: %v, want an error with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m, got); diff != "" {
				t.Fatalf("manifest (-written +read):\n%s", diff)
			}
			wantFiles := []string{"events/000001.sst", "events/sub/000002.log", "keys/MANIFEST"}
			var files []string
			for _, f := range got.Files {
				files = append(files, f.Path)
			}
			if diff := cmp.Diff(wantFiles, files); diff != "" || got.HeadPosition != 42 || got.Format != backup.Format {
				t.Fatalf("files (-want +got):\n%s; head %d, format %d", diff, got.HeadPosition, got.Format)
			}
			// Copied whole, and never over an existing file.
			if err := backup.CopyTree(fsys, dir, "/restore", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := backup.Read(fsys, "/restore"); err != nil {
				t.Fatalf("the copy: %v", err)
			}
			if err := backup.CopyTree(fsys, dir, "/restore", nil); err == nil {
				t.Fatal("a copy over existing files succeeded")
			}
		})
	}
}

// TestAFailedBackupLeavesNothing: a part that fails leaves no directory
// behind, partial or whole.
func TestAFailedBackupLeavesNothing(t *testing.T) {
	fsys := vfs.NewMem()
	boom := errors.New("boom")
	parts := []backup.Part{part(t, fsys, "events", map[string]string{"a": "b"}), {Name: "keys", Checkpoint: func(string) error { return boom }}}
	_, _, err := backup.Write(context.Background(), fsys, "/backups", backup.Manifest{CreatedAt: time.Unix(0, 0)}, parts,
		func(context.Context, string, *backup.Manifest) error { return nil }, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("write: %v, want the part's error", err)
	}
	if names, _ := fsys.List("/backups"); len(names) != 0 {
		t.Fatalf("a failed backup left %v", names)
	}
}
