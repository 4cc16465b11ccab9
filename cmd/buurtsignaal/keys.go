package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/adapters/clusterkeys"
	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// The key store follows the event store: with a KurrentDB store every
// replica shares the cluster key store (keys and blind index in the
// cluster); the embedded default keeps the local key store in
// <data-dir>/keys.

// onKurrentDB reports whether the configuration's event store is KurrentDB.
func onKurrentDB(cfg Config) bool {
	switch strings.ToLower(strings.SplitN(cfg.Store, "://", 2)[0]) {
	case "kurrentdb", "kurrent", "esdb", "esdb+discover", "kurrentdb+discover", "kurrent+discover":
		return true
	}
	return false
}

// openKeys opens the key store that goes with the configuration's event
// store, recording erasures in the erased-subjects file.
func openKeys(ctx context.Context, cfg Config, master tink.AEAD, log *slog.Logger, fsys vfs.FS) (domain.KeyStore, error) {
	if onKurrentDB(cfg) {
		ks, err := clusterkeys.Open(ctx, cfg.Store, master, clusterkeys.Options{ErasedFile: erasedFile(cfg), FS: fsys, Log: log})
		if err != nil {
			return nil, fmt.Errorf("cluster key store: %w", err)
		}
		return ks, nil
	}
	ks, err := keystore.Open(filepath.Join(cfg.DataDir, "keys"), master, keystore.Options{ErasedFile: erasedFile(cfg), FS: fsys})
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	return ks, nil
}

// erasureApplier is a key store that applies an erased-subjects file: the
// local store shreds the listed subjects that still have a key, the cluster
// store finishes (tombstones) those whose key stream is not yet gone. Both
// are idempotent.
type erasureApplier interface {
	ShredErased(ctx context.Context, path string) (int, error)
}

// applyErasures applies erased-subjects files to the key store and returns
// how many subjects it erased.
func applyErasures(ctx context.Context, keys domain.KeyStore, paths ...string) (int, error) {
	a, ok := keys.(erasureApplier)
	if !ok {
		return 0, errors.New("the key store cannot apply an erased-subjects file")
	}
	total := 0
	for _, p := range paths {
		n, err := a.ShredErased(ctx, p)
		total += n
		if err != nil {
			return total, fmt.Errorf("erased subjects %s: %w", p, err)
		}
	}
	return total, nil
}

// erasuresCmd is `buurtsignaal erasures apply|scavenge`:
//
//	erasures apply [flags] [FILE...]  apply the erased-subjects file
//	    (--erased-file) and every FILE given (the other replicas') to the
//	    key store of the configuration: after a restore of the cluster (or
//	    the embedded store), before the server serves. Idempotent.
//	erasures scavenge [flags]  ask every KurrentDB node to scavenge, so the
//	    events of erased subjects leave the nodes' chunk files.
func erasuresCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || (args[0] != "apply" && args[0] != "scavenge") {
		return usagef("erasures: give apply or scavenge")
	}
	name := "erasures " + args[0]
	cfg, fs, err := loadConfig(name, args[1:], getenv, output(stderr))
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	if args[0] == "scavenge" && !onKurrentDB(cfg) {
		return usagef("erasures scavenge: only a KurrentDB store (--store kurrentdb://...) is scavenged; the embedded key store purges its files at every erasure")
	}
	if err := requireStore(name, cfg); err != nil {
		return err
	}
	if serverHolds(cfg) {
		return heldByServer(name, cfg, "stop it first (the server applies its own erased-subjects file as it starts)")
	}
	if err := requireMasterKey(name, cfg); err != nil {
		return err
	}
	master, err := masterKey(cfg, vfs.Default)
	if err != nil {
		return err
	}
	keys, err := openKeys(ctx, cfg, master, log, vfs.Default)
	if err != nil {
		return explainLocked(name, cfg, err)
	}
	defer keys.Close()
	if args[0] == "scavenge" {
		return scavenge(ctx, keys, stdout)
	}
	files := append([]string{erasedFile(cfg)}, fs.Args()...)
	n, err := applyErasures(ctx, keys, files...)
	fmt.Fprintf(stdout, "erasures: applied %d erasures from %d erased-subjects files\n", n, len(files))
	return err
}

// scavenger is the cluster key store's scavenge.
type scavenger interface {
	Scavenge(ctx context.Context) ([]clusterkeys.NodeScavenge, error)
}

func scavenge(ctx context.Context, keys domain.KeyStore, stdout io.Writer) error {
	s, ok := keys.(scavenger)
	if !ok {
		return errors.New("the key store is not the cluster's")
	}
	got, err := s.Scavenge(ctx)
	for _, n := range got {
		role := "follower"
		if n.Leader {
			role = "leader"
		}
		fmt.Fprintf(stdout, "scavenge %s on %s (%s): %s\n", n.ID, n.Node, role, n.Result)
	}
	return err
}

// scavengeLoop starts a scavenge of every KurrentDB node every
// cfg.ScavengeInterval, when some replica erased a subject since the last
// one (as this replica's erasure watch saw), until ctx ends. One replica
// should have it on.
func (s *system) scavengeLoop(ctx context.Context) {
	ck, ok := s.keys.(*clusterkeys.Store)
	if !ok || s.cfg.ScavengeInterval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.ScavengeInterval)
	defer t.Stop()
	var done int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seen := ck.Erasures()
		if seen == done {
			continue
		}
		got, err := ck.Scavenge(ctx)
		if err != nil {
			s.log.Error("scavenge", "err", err, "nodes", len(got))
			continue
		}
		done = seen
		s.log.Info("scavenge started", "nodes", len(got))
	}
}
