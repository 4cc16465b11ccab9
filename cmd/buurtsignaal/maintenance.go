package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/buurtsignaal/buurtsignaal/adapters/audit"
	"github.com/buurtsignaal/buurtsignaal/adapters/httpapi"
)

// rebuild clears the read models, replays the whole log into them and
// reports what it built.
func rebuild(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	start := time.Now()
	cfg, _, err := loadConfig("rebuild", args, getenv, output(stderr))
	if err != nil {
		return err
	}
	if serverHolds(cfg) {
		return heldByServer("rebuild", cfg, "stop it first")
	}
	sys, stop, err := openCaughtUp(ctx, "rebuild", cfg, stderr)
	if err != nil {
		return err
	}
	defer sys.Close()
	if err := stop(); err != nil {
		return err
	}
	// A server that opens the rebuilt store should not pay for its
	// compactions while it serves.
	if err := sys.readStore.Compact(ctx); err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(stdout, "rebuilt projections: %d events to position %d in %.2fs; %d signals\n",
		sys.runner.Applied(), sys.runner.Position(), secs, sys.cases.Len())
	return nil
}

// openCaughtUp opens the system of cfg for an admin command, which must
// exist, and replays the log into its projections, reporting progress;
// stop ends the projection runner.
func openCaughtUp(ctx context.Context, name string, cfg Config, stderr io.Writer) (*system, func() error, error) {
	if err := requireStore(name, cfg); err != nil {
		return nil, nil, err
	}
	if err := requireMasterKey(name, cfg); err != nil {
		return nil, nil, err
	}
	log := newLogger(stderr, cfg.LogLevel)
	sys, err := openSystem(ctx, cfg, log, nil, nil)
	if err != nil {
		return nil, nil, explainLocked(name, cfg, err)
	}
	sys.rebuild = name == "rebuild"
	head, err := sys.store.Head(ctx)
	if err != nil {
		_ = sys.Close()
		return nil, nil, err
	}
	var stop func() error
	err = withProgress(ctx, stderr, log, name+": replaying the log", "log positions", func() uint64 { return head }, sys.runner.Position, func(ctx context.Context) error {
		stop, err = sys.startProjections(ctx)
		return err
	})
	if err != nil {
		_ = sys.Close()
		return nil, nil, err
	}
	return sys, stop, nil
}

// verify recomputes every audit chain in the log.
func (s *system) verify(ctx context.Context) (httpapi.VerifyReport, error) {
	rep, err := audit.Verify(ctx, s.store)
	if err != nil {
		return httpapi.VerifyReport{}, err
	}
	return httpapi.VerifyReport{OK: rep.OK, Streams: rep.Streams, Records: rep.Records, Head: rep.Head, Problems: rep.Problems}, nil
}

// verifyCmd is `buurtsignaal verify`: it recomputes the audit chains and
// prints the head digest; it fails when a chain is broken.
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, _, err := loadConfig("verify", args, getenv, output(stderr))
	if err != nil {
		return err
	}
	if err := requireStore("verify", cfg); err != nil {
		return err
	}
	var rep audit.Report
	if serverHolds(cfg) {
		// The server verifies its own log, asked over its admin socket.
		fmt.Fprintf(stderr, "verify: the data directory %s is held by a running server: asking it over its admin socket\n", cfg.DataDir)
		if err := askAdmin(ctx, adminSocket(cfg), http.MethodGet, "/verify", &rep); err != nil {
			return err
		}
	} else {
		store, err := openStore(ctx, cfg, newLogger(stderr, cfg.LogLevel), vfs.Default)
		if err != nil {
			return explainLocked("verify", cfg, err)
		}
		defer store.Close()
		if rep, err = audit.Verify(ctx, store); err != nil {
			return err
		}
	}
	// One value is the head digest (the one to keep outside the system, as
	// GET /v1/audit/verify's head); each chain's line names its last
	// record's digest, from which the head digest is computed.
	for _, h := range rep.Heads {
		fmt.Fprintf(stdout, "%s\t%d records\tlast record %s\n", h.Stream, h.Records, h.Digest)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	fmt.Fprintf(stdout, "audit streams: %d, records: %d, head digest: %s, ok: %t\n", rep.Streams, rep.Records, rep.Head, rep.OK)
	if !rep.OK {
		return fmt.Errorf("audit chains broken: %d problems", len(rep.Problems))
	}
	return nil
}
