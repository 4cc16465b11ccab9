// Command buurtsignaal is the Buurtsignaal server and its admin tools:
//
//	buurtsignaal serve     run the HTTP API (flags and env: see README)
//	buurtsignaal rebuild   replay the log into fresh projections and report
//	buurtsignaal verify    recompute the audit hash chains, print the head digests
//	buurtsignaal retention --dry-run|--apply   the retention sweep
//	buurtsignaal backup [--to DIR] [--prune]   back up the embedded store, or prune old backups
//	buurtsignaal restore --from BACKUP         restore a backup into an empty data directory
//	buurtsignaal erasures apply [FILE...]      apply erased-subjects files to the key store
//	buurtsignaal erasures scavenge             ask every KurrentDB node to scavenge
//	buurtsignaal import-hsds FILE              register the organisations of an HSDS 3.0 file
//	buurtsignaal version   print the version
//
// Each command has its own flags (-h lists them); exit codes are 0 done, 1
// failed, 2 a usage error (cli.go). It is the only place that wires
// adapters together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	_ "time/tzdata" // working days are computed in Europe/Amsterdam on any machine
)

const version = "0.1.0"

// defaultGCPercent is the garbage collector's target when GOGC is not set:
// Go's own. (It was 300 while every projection lived in memory and the live
// heap was mostly history; now history is on disk and the live heap is the
// open work, a tenth of it, and +300% doubled the RSS for little CPU.) GOGC
// overrides it; GOMEMLIMIT caps the memory either way.
const defaultGCPercent = 100

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "buurtsignaal:", err)
	}
	os.Exit(exitCode(err))
}

const usage = `usage: buurtsignaal <command> [flags]

commands:
  serve     run the HTTP API
  rebuild   replay the whole log into fresh projections and report figures
  verify    recompute the audit hash chains and print their head digests
  retention --dry-run|--apply   list or erase the subjects past their retention
  backup [--to DIR] [--prune]   back up the embedded store (through the running server if
                                there is one), or delete backups past --backup-retention
  restore --from BACKUP         restore a backup into an empty data directory and verify it
  erasures apply [FILE...]      apply the erased-subjects file (--erased-file) and the other
                                replicas' FILEs to the key store, e.g. after a restore of KurrentDB
  erasures scavenge             ask every KurrentDB node to scavenge erased subjects' keys off disk
  import-hsds FILE              register the organisations of an Open Referral HSDS 3.0 JSON file
                                (GET /v1/organisations?format=hsds exports the sociale kaart so)
  version   print the version

Run "buurtsignaal <command> -h" for the flags of a command: each lists only the
settings it uses. Only serve creates a store and a master key; the other commands
refuse a data directory that holds no store.

Exit codes: 0 done, 1 failed, 2 usage error (an unknown command or flag, a missing
or contradictory argument).
`

// run is the whole program, testable: it returns when ctx ends (serve) or
// the command is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr, getenv, hooks{})
	case "rebuild":
		return rebuild(ctx, args[1:], stdout, stderr, getenv)
	case "retention":
		return retentionCmd(ctx, args[1:], stdout, stderr, getenv)
	case "backup":
		return backupCmd(ctx, args[1:], stdout, stderr, getenv)
	case "restore":
		return restoreCmd(ctx, args[1:], stdout, stderr, getenv)
	case "verify":
		return verifyCmd(ctx, args[1:], stdout, stderr, getenv)
	case "erasures":
		return erasuresCmd(ctx, args[1:], stdout, stderr, getenv)
	case "import-hsds":
		return importHSDSCmd(ctx, args[1:], stdout, stderr, getenv)
	case "version":
		fmt.Fprintln(stdout, "buurtsignaal", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", args[0])
}
