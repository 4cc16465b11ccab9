package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The command line: each subcommand has its own flag set (the settings it
// uses, commandFlags), so -h lists only those; exit codes are 0 done, 1
// failed, 2 a usage error (an unknown command or flag, a missing or
// contradictory argument). Only serve creates a store and a master key:
// every other command refuses a data directory that holds no store, naming
// it, and one that a running server holds, offering the server's admin
// socket where the server can do the work.

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitHelpMsg = "exit codes: 0 done, 1 failed, 2 usage error"
)

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode is the process's exit code for run's error.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitFailed
}

// commandFlags are the settings (Config's flag names) each command uses;
// serve uses them all. A command's own flags (--to, --from, --apply, ...)
// come on top.
var commandFlags = map[string][]string{
	"rebuild":           {"data-dir", "store", "master-key-file", "erased-file", "timezone", "holidays", "log-level"},
	"verify":            {"data-dir", "store", "log-level"},
	"retention":         {"data-dir", "store", "master-key-file", "erased-file", "network", "timezone", "holidays", "retention-withdrawn", "retention-declined", "retention-closed", "log-level"},
	"backup":            {"data-dir", "master-key-file", "erased-file", "backup-dir", "backup-retention", "timezone", "holidays", "log-level"},
	"restore":           {"data-dir", "master-key-file", "erased-file", "timezone", "holidays", "log-level"},
	"erasures apply":    {"data-dir", "store", "master-key-file", "erased-file", "log-level"},
	"erasures scavenge": {"store", "master-key-file", "erased-file", "log-level"},
	"import-hsds":       {"data-dir", "store", "master-key-file", "erased-file", "network", "timezone", "holidays", "log-level"},
}

// commandUsage is the first line of each command's -h.
var commandUsage = map[string]string{
	"serve":             "buurtsignaal serve [flags]: run the HTTP API (the only command that creates a store and a master key)",
	"rebuild":           "buurtsignaal rebuild [flags]: replay the whole log into fresh projections and report figures",
	"verify":            "buurtsignaal verify [flags]: recompute the audit hash chains and print their head digests (through the running server's admin socket when one holds the data directory)",
	"retention":         "buurtsignaal retention --dry-run|--apply [flags]: list or erase the subjects past their retention (through the running server's admin socket when one holds the data directory)",
	"backup":            "buurtsignaal backup [--to DIR] [--prune] [flags]: back up the embedded store (through the running server's admin socket when one holds it), or delete backups past --backup-retention",
	"restore":           "buurtsignaal restore --from BACKUP [flags]: restore a backup into an empty data directory and verify it; the master key must be the backup's",
	"erasures apply":    "buurtsignaal erasures apply [flags] [FILE...]: apply the erased-subjects file and the other replicas' FILEs to the key store",
	"erasures scavenge": "buurtsignaal erasures scavenge [flags]: ask every KurrentDB node to scavenge erased subjects' keys off disk",
	"import-hsds":       "buurtsignaal import-hsds [flags] FILE: register the organisations and services of an Open Referral HSDS 3.0 JSON file that the network's sociale kaart does not hold yet (through the running server's admin socket when one holds the data directory)",
}

// usesFlag reports whether command registers the setting flag.
func usesFlag(command, flag string) bool {
	fl, ok := commandFlags[command]
	return !ok || slices.Contains(fl, flag)
}

// setUsage makes fs's -h say what the command does, its flags and the exit
// codes.
func setUsage(fs *flag.FlagSet, command string) {
	fs.Usage = func() {
		w := fs.Output()
		line := commandUsage[command]
		if line == "" {
			line = "buurtsignaal " + command + " [flags]"
		}
		fmt.Fprintf(w, "usage: %s\n\nflags (each also from its environment variable):\n", line)
		fs.PrintDefaults()
		fmt.Fprintf(w, "\n%s\n", exitHelpMsg)
	}
}

// storeMissing is the error of a command pointed at a data directory that
// holds no store.
func storeMissing(command, dir string) error {
	return fmt.Errorf("%s: the data directory %s holds no store (no event store in %s): check --data-dir (or BUURTSIGNAAL_DATA_DIR); "+
		"only 'buurtsignaal serve' creates a new store", command, dir, filepath.Join(dir, "events"))
}

// hasStore reports whether dir holds an embedded event store.
func hasStore(dir string) bool {
	entries, err := os.ReadDir(filepath.Join(dir, "events"))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "MANIFEST-") || strings.HasPrefix(e.Name(), "marker.manifest.") {
			return true
		}
	}
	return false
}

// requireStore refuses a configuration whose embedded store does not exist
// (a KurrentDB store is the cluster's to have).
func requireStore(command string, cfg Config) error {
	if cfg.Store != "" || hasStore(cfg.DataDir) {
		return nil
	}
	return storeMissing(command, cfg.DataDir)
}

// masterKeyPath is where cfg's master key file is (empty with the key in
// BUURTSIGNAAL_MASTER_KEY).
func masterKeyPath(cfg Config) string {
	if cfg.MasterKey != "" {
		return ""
	}
	if cfg.MasterKeyFile != "" {
		return cfg.MasterKeyFile
	}
	return filepath.Join(cfg.DataDir, "master-key.json")
}

// requireMasterKey refuses a configuration whose master key file does not
// exist: only serve creates one.
func requireMasterKey(command string, cfg Config) error {
	path := masterKeyPath(cfg)
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: there is no master key at %s: name the store's master key with --master-key-file (or BUURTSIGNAAL_MASTER_KEY_FILE), or give it in BUURTSIGNAAL_MASTER_KEY; "+
			"only 'buurtsignaal serve' creates a new one", command, path)
	}
	return nil
}

// serverHolds reports whether a running server holds cfg's data directory:
// its admin socket answers.
func serverHolds(cfg Config) bool {
	if cfg.Store != "" {
		return false
	}
	c, err := net.DialTimeout("unix", adminSocket(cfg), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// heldByServer is the error of a command that cannot go through the
// server's admin socket.
func heldByServer(command string, cfg Config, what string) error {
	return fmt.Errorf("%s: the data directory %s is held by a running server (its admin socket %s answers): %s",
		command, cfg.DataDir, adminSocket(cfg), what)
}

// explainLocked names another process that holds the directory, for an
// error of opening a store whose lock is taken.
func explainLocked(command string, cfg Config, err error) error {
	if err == nil || !(errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "resource temporarily unavailable")) {
		return err
	}
	return fmt.Errorf("%s: the data directory %s is held by another process (a running server?): stop it first, or use a command that goes through its admin socket: %w", command, cfg.DataDir, err)
}

// progress reports a long operation: on a terminal a line redrawn four
// times a second (done of total, rate, ETA), otherwise a log line every
// progressEvery. stop prints the last state.
type progress struct {
	what, unit string
	total      func() uint64 // 0: unknown
	done       func() uint64
	w          io.Writer
	tty        bool
	log        *slog.Logger
	start      time.Time
	stopOnce   sync.Once
	quit       chan struct{}
	wg         sync.WaitGroup
}

// progressEvery is how often progress logs off a terminal (tests shorten it).
var progressEvery = 10 * time.Second

// isTerminal reports whether w is a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func startProgress(stderr io.Writer, log *slog.Logger, what, unit string, total, done func() uint64) *progress {
	p := &progress{what: what, unit: unit, total: total, done: done, w: stderr, tty: isTerminal(stderr), log: log, start: time.Now(), quit: make(chan struct{})}
	every := progressEvery
	if p.tty {
		every = 250 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.report(false)
			}
		}
	}()
	return p
}

func (p *progress) report(final bool) {
	done, total := p.done(), uint64(0)
	if p.total != nil {
		total = p.total()
	}
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(done) / secs
	}
	var eta time.Duration
	if rate > 0 && total > done {
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second)
	}
	if p.tty {
		line := fmt.Sprintf("%s: %d", p.what, done)
		if total > 0 {
			line += fmt.Sprintf(" of %d %s (%d%%)", total, p.unit, done*100/max(total, 1))
		} else {
			line += " " + p.unit
		}
		line += fmt.Sprintf(", %.0f/s", rate)
		if !final && eta > 0 {
			line += ", ETA " + eta.String()
		}
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(p.w, "\r%-78s%s", line, end)
		return
	}
	msg := "progress"
	if final {
		msg = "done"
	}
	p.log.Info(p.what+": "+msg, "done", done, "total", total, "unit", p.unit, "per_second", int64(rate), "eta_seconds", int64(eta.Seconds()))
}

// stop ends the reports with a last one.
func (p *progress) stop() {
	p.stopOnce.Do(func() {
		close(p.quit)
		p.wg.Wait()
		p.report(true)
	})
}

// withProgress runs f with a progress report of done against total.
func withProgress(ctx context.Context, stderr io.Writer, log *slog.Logger, what, unit string, total, done func() uint64, f func(context.Context) error) error {
	p := startProgress(stderr, log, what, unit, total, done)
	err := f(ctx)
	p.stop()
	return err
}
