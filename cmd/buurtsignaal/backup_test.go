package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/backup"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// readLog reads every event of the embedded store at dir up to head.
func readLog(t *testing.T, dir string, head uint64) []eventlog.RecordedEvent {
	t.Helper()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []eventlog.RecordedEvent
	var after uint64
	for {
		page, err := st.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range page {
			if re.Position > head {
				return out
			}
			out = append(out, re)
		}
		if len(page) < 1000 {
			return out
		}
		after = page[len(page)-1].Position
	}
}

// casesOf projects events into a fresh cases projection.
func casesOf(t *testing.T, events []eventlog.RecordedEvent) *projections.Cases {
	t.Helper()
	cases := projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil))
	reg := domain.NewRegistry()
	for _, re := range events {
		env, err := projections.Decode(reg, re)
		if err != nil {
			t.Fatal(err)
		}
		cases.Apply(env)
	}
	return cases
}

// TestBackupUnderLoadAndRestore backs the running server up through its
// admin socket while clients raise signals, restores the backup into an
// empty data directory, and finds every event up to the backup's head, and
// the projections built from them, equal to the original's.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn"}, nil)
	backups := t.TempDir()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if a := s.do("POST", "/v1/signals", "carla", raiseBody(fmt.Sprintf("Back Up %d-%d", w, i))); a.status != 201 {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	var out bytes.Buffer
	err := run(context.Background(), []string{"backup", "--to", backups}, &out, io.Discard, envOf(map[string]string{"BUURTSIGNAAL_DATA_DIR": s.dataDir}))
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if failed > 0 {
		t.Errorf("%d raises failed during the backup", failed)
	}
	var ans struct {
		Dir string `json:"dir"`
		backup.Manifest
	}
	if err := json.Unmarshal(out.Bytes(), &ans); err != nil || ans.Dir == "" {
		t.Fatalf("the running server did not take the backup: %q (%v)", out.String(), err)
	}
	if ans.HeadPosition == 0 || ans.AuditHead == "" || len(ans.Files) == 0 {
		t.Fatalf("manifest: %+v", ans.Manifest)
	}
	s.stop()

	restored := filepath.Join(t.TempDir(), "data")
	var rout, rerr bytes.Buffer
	err = run(context.Background(), []string{"restore", "--from", ans.Dir, "--data-dir", restored, "--no-erased-file", // nobody was erased
		"--master-key-file", filepath.Join(s.dataDir, "master-key.json"), "--log-level", "warn"}, &rout, &rerr, envOf(nil))
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, rerr.String())
	}
	if !strings.Contains(rout.String(), "projections rebuilt") {
		t.Fatalf("restore said: %s", rout.String())
	}
	orig := readLog(t, filepath.Join(s.dataDir, "events"), ans.HeadPosition)
	back := readLog(t, filepath.Join(restored, "events"), ans.HeadPosition+1_000_000)
	if len(orig) == 0 || orig[len(orig)-1].Position != ans.HeadPosition {
		t.Fatalf("the original log does not reach the backup's head %d", ans.HeadPosition)
	}
	if diff := cmp.Diff(orig, back); diff != "" {
		t.Fatalf("restored events differ from the original's up to the head (-orig +restored):\n%.2000s", diff)
	}
	want, got := casesOf(t, orig), casesOf(t, back)
	n := 0
	for _, re := range orig {
		if re.Type != "SignalRaised" {
			continue
		}
		id := uuid.MustParse(strings.TrimPrefix(re.StreamID, domain.SignalCategory+"-"))
		a, _ := want.Get(id)
		b, ok := got.Get(id)
		if !ok {
			t.Fatalf("signal %s missing from the restored projections", id)
		}
		if diff := cmp.Diff(*a, *b, cmpopts.IgnoreUnexported(projections.Case{})); diff != "" {
			t.Fatalf("case %s differs (-orig +restored):\n%s", id, diff)
		}
		n++
	}
	if n < 10 {
		t.Errorf("only %d signals in the backup", n)
	}
	if err := readManifestErr(ans.Dir); err != nil {
		t.Fatal(err)
	}
}

func readManifestErr(dir string) error { _, err := backup.Read(vfs.Default, dir); return err }

// TestErasureSurvivesRestore: back up, erase a subject, restore the older
// backup: the subject's data stays unreadable, because the erased-subjects
// file lives next to the data, not in the backup.
func TestErasureSurvivesRestore(t *testing.T) {
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn"}, nil)
	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	subject := s.subjectOf(raised.str("id"))
	backups := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--to", backups}, &out, io.Discard, envOf(map[string]string{"BUURTSIGNAAL_DATA_DIR": s.dataDir})); err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Dir string `json:"dir"`
	}
	if err := json.Unmarshal(out.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	s.must(200, s.do("POST", "/v1/subjects/"+subject+"/erasure", "hanna", map[string]any{"reason": "verzoek betrokkene", "request_ref": "AVG-2026-17"}), "erase")
	s.stop()

	// The erased list goes with the operator to the new data directory.
	restored := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	list, err := os.ReadFile(s.dataDir + ".erased-subjects")
	if err != nil || !strings.Contains(string(list), subject) {
		t.Fatalf("erased-subjects file: %q, %v", list, err)
	}
	// A restore without the list is refused.
	var refused bytes.Buffer
	if err := run(context.Background(), []string{"restore", "--from", ans.Dir, "--data-dir", restored,
		"--master-key-file", filepath.Join(s.dataDir, "master-key.json"), "--log-level", "warn"}, io.Discard, &refused, envOf(nil)); err == nil || !strings.Contains(err.Error(), "no erased-subjects file") {
		t.Fatalf("a restore without the erased-subjects list: %v", err)
	}
	if entries, _ := os.ReadDir(restored); len(entries) != 0 {
		t.Fatalf("the refused restore wrote %d entries", len(entries))
	}
	if err := os.WriteFile(restored+".erased-subjects", list, 0o600); err != nil {
		t.Fatal(err)
	}
	var rerr bytes.Buffer
	if err := run(context.Background(), []string{"restore", "--from", ans.Dir, "--data-dir", restored,
		"--master-key-file", filepath.Join(s.dataDir, "master-key.json"), "--log-level", "warn"}, io.Discard, &rerr, envOf(nil)); err != nil {
		t.Fatalf("restore: %v\n%s", err, rerr.String())
	}
	cfg := Config{DataDir: restored, MasterKeyFile: filepath.Join(s.dataDir, "master-key.json"), Timezone: "Europe/Amsterdam", Network: "default"}
	sys, err := openSystem(context.Background(), cfg, newLogger(io.Discard, "error"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.MustParse(subject)
	if erased, err := sys.keys.Erased(context.Background(), id); err != nil || !erased {
		t.Fatalf("after the restore the subject is erased = %v (%v), want true", erased, err)
	}
	if _, err := sys.keys.Open(context.Background(), id, []byte("x")); err == nil {
		t.Fatal("the erased subject's data opens again after the restore")
	}
	if err := sys.Close(); err != nil { // no file may change while the scan reads them
		t.Fatal(err)
	}
	assertNoPlaintext(t, restored, secretName, secretDesc)
}

func TestPruneBackups(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for name, age := range map[string]time.Duration{"backup-old": 40 * 24 * time.Hour, "backup-new": 2 * 24 * time.Hour} {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(backup.Manifest{Format: backup.Format, CreatedAt: now.Add(-age)})
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := backup.Prune(vfs.Default, root, 35*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{filepath.Join(root, "backup-old")}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if newest, ok := backup.Newest(vfs.Default, root); !ok || !newest.Equal(now.Add(-2*24*time.Hour)) {
		t.Errorf("newest backup = %v, %v", newest, ok)
	}
}

// TestRestoreRefusesADamagedBackup: a flipped byte fails the checksums.
func TestRestoreRefusesADamagedBackup(t *testing.T) {
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn"}, nil)
	s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Kapot Bestand")), "raise")
	s.stop()
	backups := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--to", backups, "--log-level", "warn"}, &out, io.Discard, envOf(map[string]string{"BUURTSIGNAAL_DATA_DIR": s.dataDir})); err != nil {
		t.Fatalf("offline backup: %v", err)
	}
	dir := strings.Fields(out.String())[1]
	dir = strings.TrimSuffix(dir, ":")
	m, err := backup.Read(vfs.Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	biggest := m.Files[0]
	for _, f := range m.Files {
		if f.Size > biggest.Size {
			biggest = f
		}
	}
	victim := filepath.Join(dir, biggest.Path)
	raw, _ := os.ReadFile(victim)
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(victim, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"restore", "--from", dir, "--data-dir", t.TempDir(), "--no-erased-file"}, io.Discard, io.Discard, envOf(nil))
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("restore of a damaged backup: %v, want a checksum error", err)
	}
}
