package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/adapters/backup"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs/crashfs"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// TestFilesBesideTheStoresSurvivePowerLoss: the notification secret and a
// backup, written while the power is cut at each of their operations in
// turn (what a cut keeps: only what was synced, or that and some of the
// rest at random): every cut leaves the secret whole or not yet there, and
// every backup directory whole (its manifest's checksums) or only partial;
// once written, a cut keeps the secret and the backup.
func TestFilesBesideTheStoresSurvivePowerLoss(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 12))
	cutsAt := func(fs *crashfs.FS, under string, check func(cut *crashfs.FS, during bool)) func() {
		// Several goroutines may write under the path (and Pebble's own
		// in the background elsewhere): one cut at a time.
		var mu sync.Mutex
		cuts := 0
		fs.SetHook(func(op crashfs.Op) {
			if !strings.HasPrefix(op.Path, under) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			cuts++
			mode := []crashfs.Mode{crashfs.PowerCut, crashfs.Partial}[cuts%2]
			check(fs.Crash(mode, rng), true)
		})
		return func() {
			fs.SetHook(nil)
			mu.Lock()
			defer mu.Unlock()
			check(fs.Crash(crashfs.PowerCut, rng), false)
			if cuts < 5 {
				t.Fatalf("only %d operations under %s", cuts, under)
			}
		}
	}

	t.Run("notification secret", func(t *testing.T) {
		fs := crashfs.New()
		path := "/etc/buurtsignaal/notify-secret"
		var secret []byte
		done := cutsAt(fs, "/etc", func(cut *crashfs.FS, during bool) {
			f, err := cut.Open(path)
			if err != nil {
				if !during {
					t.Fatalf("the secret is gone after a cut: %v", err)
				}
				return
			}
			defer f.Close()
			got, _ := io.ReadAll(f)
			if len(got) != 65 || (!during && string(got) != string(secret)) {
				t.Fatalf("a cut left %d bytes of the secret (during its writing: %t)", len(got), during)
			}
		})
		var err error
		if secret, err = loadOrCreateSecret(fs, path); err != nil {
			t.Fatal(err)
		}
		secret = []byte(hex.EncodeToString(secret) + "\n")
		done()
		again, err := loadOrCreateSecret(fs, path)
		if err != nil || hex.EncodeToString(again)+"\n" != string(secret) {
			t.Fatalf("loaded again: %v", err)
		}
	})

	t.Run("backup", func(t *testing.T) {
		fs := crashfs.New()
		cfg, _, err := loadConfig("backup", nil, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		cfg.DataDir, cfg.BackupDir, cfg.LogLevel = "/srv/data", "/srv/backups", "error"
		sys, err := openSystem(ctx, cfg, newLogger(io.Discard, "error"), nil, fs)
		if err != nil {
			t.Fatal(err)
		}
		defer sys.Close()
		for i := range 20 { // something to back up
			e := eventlog.EventData{ID: uuid.New(), Type: "T", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
			if _, err := sys.store.Append(ctx, "org-x", eventlog.Any(), e); err != nil {
				t.Fatal(err)
			}
		}
		var made string
		done := cutsAt(fs, cfg.BackupDir, func(cut *crashfs.FS, during bool) {
			names, _ := cut.List(cfg.BackupDir)
			whole := 0
			for _, name := range names {
				if !strings.HasPrefix(name, "backup-") {
					continue
				}
				if _, err := backup.Read(cut, cut.PathJoin(cfg.BackupDir, name)); err != nil {
					t.Fatalf("a cut left a backup that is not whole: %v", err)
				}
				whole++
			}
			if !during && whole != 1 {
				t.Fatalf("after a cut there are %d whole backups, want the one made", whole)
			}
		})
		dir, m, err := sys.backup(ctx, cfg.BackupDir)
		if err != nil {
			t.Fatal(err)
		}
		made = dir
		done()
		got, err := backup.Read(fs, made)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Fatalf("manifest (-written +read):\n%s", diff)
		}
	})
}
