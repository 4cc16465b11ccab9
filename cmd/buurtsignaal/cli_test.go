package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
)

// runCmd runs the program with args and an environment of env alone.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return out.String(), errOut.String(), err
}

// TestEachCommandListsItsOwnFlags: -h of each command lists the settings it
// uses and its own flags, nothing else, and the exit codes.
func TestEachCommandListsItsOwnFlags(t *testing.T) {
	own := map[string][]string{
		"backup": {"prune", "to"}, "restore": {"from", "no-erased-file"}, "retention": {"apply", "dry-run"},
	}
	for _, command := range append(slices.Sorted(func(yield func(string) bool) {
		for c := range commandFlags {
			if !yield(c) {
				return
			}
		}
	}), "serve") {
		t.Run(command, func(t *testing.T) {
			_, help, err := runCLI(t, nil, append(strings.Fields(command), "-h")...)
			if exitCode(err) != exitOK {
				t.Fatalf("-h: %v (exit %d)", err, exitCode(err))
			}
			var got []string
			for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(help, -1) {
				got = append(got, m[1])
			}
			want := append(slices.Clone(commandFlags[command]), own[command]...)
			if command == "serve" {
				want = configFlags()
			}
			slices.Sort(want)
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s -h lists (-want +got):\n%s\n%s", command, diff, help)
			}
			if !strings.Contains(help, "usage: buurtsignaal "+command) || !strings.Contains(help, exitHelpMsg) {
				t.Errorf("%s -h has no usage line or no exit codes:\n%s", command, help)
			}
		})
	}
}

// configFlags are the flag names of every setting.
func configFlags() []string {
	var out []string
	_, fs, _ := loadConfig("serve", nil, func(string) string { return "" })
	fs.VisitAll(func(f *flag.Flag) { out = append(out, f.Name) })
	return out
}

// TestExitCodes: a usage error exits 2, a failure 1, help 0.
func TestExitCodes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	tests := []struct {
		args []string
		want int
	}{
		{nil, exitUsage},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"verify", "--no-such-flag"}, exitUsage},
		{[]string{"restore", "--rate-limit", "3"}, exitUsage}, // a flag of serve's, not restore's
		{[]string{"retention", "--data-dir", dir}, exitUsage},
		{[]string{"retention", "--apply", "--dry-run", "--data-dir", dir}, exitUsage},
		{[]string{"restore", "--data-dir", dir}, exitUsage},
		{[]string{"backup", "--data-dir", dir}, exitUsage},
		{[]string{"erasures"}, exitUsage},
		{[]string{"verify", "--data-dir", dir}, exitFailed},
		{[]string{"help"}, exitOK},
		{[]string{"verify", "-h"}, exitOK},
		{[]string{"version"}, exitOK},
	}
	for _, tt := range tests {
		_, _, err := runCLI(t, nil, tt.args...)
		if got := exitCode(err); got != tt.want {
			t.Errorf("buurtsignaal %s: exit %d (%v), want %d", strings.Join(tt.args, " "), got, err, tt.want)
		}
	}
}

// TestCommandsRefuseADirectoryWithoutAStore: a mistyped --data-dir is
// named, not taken for a new store: nothing is created there, no master key
// either.
func TestCommandsRefuseADirectoryWithoutAStore(t *testing.T) {
	for _, args := range [][]string{
		{"verify"}, {"rebuild"}, {"retention", "--dry-run"}, {"retention", "--apply"},
		{"backup", "--to", filepath.Join(t.TempDir(), "backups")}, {"erasures", "apply"},
		{"import-hsds", "--data-dir", "{dir}", filepath.Join("..", "..", "adapters", "hsds", "testdata", "directory.json")},
	} {
		for _, exists := range []bool{false, true} {
			dir := filepath.Join(t.TempDir(), "dat")
			if exists {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			full := append(slices.Clone(args), "--data-dir", dir)
			if i := slices.Index(args, "{dir}"); i >= 0 { // flags before the file
				full = slices.Clone(args)
				full[i] = dir
			}
			_, _, err := runCLI(t, nil, full...)
			if err == nil || !strings.Contains(err.Error(), "the data directory "+dir+" holds no store") {
				t.Errorf("%s on a directory without a store (existing: %t): %v", args[0], exists, err)
			}
			entries, statErr := os.ReadDir(dir)
			if exists && len(entries) > 0 || !exists && statErr == nil {
				t.Errorf("%s wrote into a directory without a store (existing: %t): %v", args[0], exists, entries)
			}
		}
	}
}

// TestRestoreChecksTheMasterKeyFirst: a restore without the backup's master
// key, or with another one, is refused before anything is copied, saying
// which key it needs; the retry with the right key restores.
func TestRestoreChecksTheMasterKeyFirst(t *testing.T) {
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn"})
	s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	backups := t.TempDir()
	out, _, err := runCLI(t, map[string]string{"BUURTSIGNAAL_DATA_DIR": s.dataDir}, "backup", "--to", backups)
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Dir string `json:"dir"`
	}
	if err := json.Unmarshal([]byte(out), &ans); err != nil {
		t.Fatalf("backup said %q: %v", out, err)
	}
	target := filepath.Join(t.TempDir(), "restored")
	restore := func(extra ...string) error {
		_, _, err := runCLI(t, nil, append([]string{"restore", "--from", ans.Dir, "--data-dir", target, "--no-erased-file", "--log-level", "warn"}, extra...)...)
		return err
	}
	empty := func(what string) {
		t.Helper()
		entries, _ := os.ReadDir(target)
		for _, e := range entries {
			if e.Name() != "master-key.json" {
				t.Fatalf("%s left %s in the data directory", what, e.Name())
			}
		}
	}
	// No key: it says where it looked and how to name one.
	if err := restore(); err == nil || !strings.Contains(err.Error(), "there is no master key at "+filepath.Join(target, "master-key.json")) ||
		!strings.Contains(err.Error(), "--master-key-file") {
		t.Fatalf("restore without a master key: %v", err)
	}
	empty("a restore without a key")
	if _, err := os.Stat(filepath.Join(target, "master-key.json")); err == nil {
		t.Fatal("restore created a master key")
	}
	// Another key: refused, nothing copied.
	other := filepath.Join(t.TempDir(), "other-key.json")
	if _, err := keystore.LoadOrCreateMasterKey(nil, other); err != nil {
		t.Fatal(err)
	}
	if err := restore("--master-key-file", other); err == nil || !strings.Contains(err.Error(), "does not open the keys of") || !strings.Contains(err.Error(), "nothing was restored") {
		t.Fatalf("restore with another master key: %v", err)
	}
	empty("a restore with another key")
	// The backup's key: restored, with the key beside the data as the
	// server keeps it.
	key, err := os.ReadFile(filepath.Join(s.dataDir, "master-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "master-key.json"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := restore(); err != nil {
		t.Fatalf("restore with the backup's master key: %v", err)
	}
	if !hasStore(target) {
		t.Fatal("no store after the restore")
	}
}

// TestCommandsNameARunningServer: against a data directory a running
// server holds, verify and retention go through its admin socket; rebuild
// and erasures apply say the server holds it, instead of "resource
// temporarily unavailable".
func TestCommandsNameARunningServer(t *testing.T) {
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn"})
	s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	s.must(200, s.do("GET", "/v1/caseload", "anna", nil), "an audited read")
	env := map[string]string{"BUURTSIGNAAL_DATA_DIR": s.dataDir}
	out, errOut, err := runCLI(t, env, "verify")
	if err != nil || !strings.Contains(out, "head digest:") || !strings.Contains(out, "ok: true") || !strings.Contains(errOut, "held by a running server: asking it over its admin socket") {
		t.Errorf("verify against a running server: %v\n%s\n%s", err, out, errOut)
	}
	out, _, err = runCLI(t, env, "retention", "--dry-run")
	if err != nil || !strings.Contains(out, "retention: would erase 0 subjects") {
		t.Errorf("retention against a running server: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"rebuild"}, {"erasures", "apply"}} {
		_, _, err := runCLI(t, env, args...)
		if err == nil || !strings.Contains(err.Error(), "is held by a running server") {
			t.Errorf("%s against a running server: %v", args[0], err)
		}
	}
}

// TestLongCommandsReportProgress: off a terminal, rebuild, backup, restore
// and retention log their progress (counts, rate, ETA) as they go and when
// done.
func TestLongCommandsReportProgress(t *testing.T) {
	old := progressEvery
	progressEvery = time.Millisecond
	defer func() { progressEvery = old }()
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn"})
	for range 20 {
		s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	}
	s.stop()
	env := map[string]string{"BUURTSIGNAAL_DATA_DIR": s.dataDir}
	backups := t.TempDir()
	restored := filepath.Join(t.TempDir(), "restored")
	steps := []struct {
		args []string
		want []string
	}{
		{[]string{"rebuild"}, []string{"rebuild: replaying the log: done"}},
		{[]string{"retention", "--apply"}, []string{"retention: replaying the log: done", "retention: erasing: done"}},
		{[]string{"backup", "--to", backups}, []string{"backup: checking the copy: done"}},
	}
	for _, st := range steps {
		_, errOut, err := runCLI(t, env, st.args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", st.args[0], err, errOut)
		}
		for _, w := range st.want {
			if !strings.Contains(errOut, `"msg":"`+w+`"`) || !strings.Contains(errOut, `"per_second":`) || !strings.Contains(errOut, `"eta_seconds":`) {
				t.Errorf("%s reported no %q:\n%s", st.args[0], w, errOut)
			}
		}
	}
	entries, _ := os.ReadDir(backups)
	if len(entries) != 1 {
		t.Fatalf("backups: %v", entries)
	}
	_, errOut, err := runCLI(t, nil, "restore", "--from", filepath.Join(backups, entries[0].Name()), "--data-dir", restored, "--no-erased-file",
		"--master-key-file", filepath.Join(s.dataDir, "master-key.json"))
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, errOut)
	}
	for _, w := range []string{"restore: checking the backup: done", "restore: copying the events: done", "restore: rebuilding the projections: done"} {
		if !strings.Contains(errOut, `"msg":"`+w+`"`) {
			t.Errorf("restore reported no %q:\n%s", w, errOut)
		}
	}
}
