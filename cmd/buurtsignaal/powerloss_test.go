package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs/crashfs"
)

// The power-loss test (TestPowerLoss): the whole server on a file system in
// memory whose power is cut at random moments. make test runs 50 rounds,
// make soak 1,000.
var (
	powerLossRounds = flag.Int("powerloss.rounds", 50, "rounds of TestPowerLoss")
	powerLossSeed   = flag.Uint64("powerloss.seed", 0, "seed of TestPowerLoss (0: a new one, logged)")
)

// roundsPerLife is how many cuts one data directory lives through before
// the test starts over with an empty one (the log, replayed at every
// start, stays small).
const roundsPerLife = 5

// TestPowerLoss runs the real server (serve, its HTTP handler and every
// store) on a crashable file system in memory (internal/powerloss) while
// clients send commands and reads, and cuts the power at a random moment
// of each round: the k-th sync of the event log's write-ahead log (in the
// middle of a group commit), of the key store's (a key creation), an
// operation on the erased-subjects file (an erasure), on a backup under
// way, on the outbox, any operation at all, or a moment in time. What the
// cut leaves (only what was synced; now and then also some of the rest at
// random, or all of it, as a killed process leaves it) becomes the next
// round's disk: the server starts on it, and before anything else the test
// checks, for everything acknowledged before any cut so far:
//
//   - every acknowledged command's events are in the log, and every sealed
//     field of every event opens under its subject's key, or the subject is
//     erased and listed in the erased-subjects file (a key is durable before
//     any event sealed with it);
//   - every read that returned personal data has its access record (fail
//     closed holds across power loss);
//   - every acknowledged erasure: the key is gone and the erased-subjects
//     file lists the subject;
//   - every acknowledged backup is whole (its manifest's checksums) and
//     restores, and no backup directory that exists is half written;
//   - the audit chains verify, and each chain's times never go back;
//   - the projections the server opened equal projections rebuilt from the
//     log;
//   - the server opens at all: nothing half written stops it or is served.
//
// It logs "power-loss rounds: N, acknowledged: N, lost: N" last.
func TestPowerLoss(t *testing.T) {
	seed := *powerLossSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (again: -powerloss.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	root := t.TempDir()
	tokens := writeTokens(t, root)
	var sum tally
	var l *life
	for round := 1; round <= *powerLossRounds && !t.Failed(); round++ {
		if (round-1)%roundsPerLife == 0 {
			if l != nil {
				l.finish() // the last cut of the life
				sum.add(l.tally)
			}
			l = newLife(t, filepath.Join(root, fmt.Sprintf("life-%d", round/roundsPerLife)), tokens, rng)
		}
		l.round(round)
	}
	if l != nil {
		if !t.Failed() {
			l.finish()
		}
		sum.add(l.tally)
	}
	t.Logf("cuts: %s; partial cuts the stores refused to open, cleanly: %d", sum.where(), sum.refused)
	t.Logf("power-loss rounds: %d, acknowledged: %d, lost: %d", sum.rounds, sum.acked, sum.lost)
	if sum.lost > 0 {
		t.Errorf("%d acknowledged operations lost", sum.lost)
	}
}

// tally counts what a run checked.
type tally struct {
	rounds, acked, lost int
	refused             int // partial cuts whose disk the stores refused to open
	targets             map[string]int
}

func (t *tally) add(o tally) {
	t.rounds += o.rounds
	t.acked += o.acked
	t.lost += o.lost
	t.refused += o.refused
	if t.targets == nil {
		t.targets = map[string]int{}
	}
	for k, v := range o.targets {
		t.targets[k] += v
	}
}

func (t *tally) where() string {
	var parts []string
	for _, name := range targetNames {
		if n := t.targets[name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	return strings.Join(parts, ", ")
}

// acks is what the server acknowledged.
type acks struct {
	commands []ackedCommand
	reads    []string    // the request ids of reads that returned personal data
	erasures []uuid.UUID // subjects
	backups  []string    // backup directories
}

type ackedCommand struct {
	what     string
	stream   string
	version  int
	position uint64
}

func (a *acks) len() int { return len(a.commands) + len(a.reads) + len(a.erasures) + len(a.backups) }

func (a *acks) clone() acks {
	return acks{commands: append([]ackedCommand(nil), a.commands...), reads: append([]string(nil), a.reads...),
		erasures: append([]uuid.UUID(nil), a.erasures...), backups: append([]string(nil), a.backups...)}
}

func (a *acks) addAll(o acks) {
	a.commands = append(a.commands, o.commands...)
	a.reads = append(a.reads, o.reads...)
	a.erasures = append(a.erasures, o.erasures...)
	a.backups = append(a.backups, o.backups...)
}

// signalState is what the clients know of a signal, to send commands that
// fit it.
type signalState struct {
	id, subject uuid.UUID
	raisedBy    string
	name        string // the resident's (made-up) name, for searches
	status      string
}

// life is one data directory through several cuts.
type life struct {
	t      *testing.T
	rng    *rand.Rand
	tokens string
	dir    string // holds the data directory, the erased-subjects file and the backups
	cfg    Config
	fs     *crashfs.FS

	history  []string // the cuts so far, for messages
	must     acks     // acknowledged before a cut: must survive every cut after
	checked  map[string]bool
	restored map[string]bool
	cuts     int
	tally

	mu      sync.Mutex // guards what the clients share below
	cur     acks       // acknowledged in this round
	signals map[uuid.UUID]*signalState
	erased  map[uuid.UUID]bool
	names   int
	cut     *cutState // set by the cut, under mu
}

// cutState is what a cut left and knew.
type cutState struct {
	fs      *crashfs.FS
	acked   acks
	signals map[uuid.UUID]*signalState
	erased  map[uuid.UUID]bool
	target  string
	op      string
	mode    crashfs.Mode
}

func newLife(t *testing.T, dir string, tokens string, rng *rand.Rand) *life {
	// The data directory is a path in the file system in memory; the same
	// path exists on the real one, empty, for the admin socket (a socket is
	// no file to keep).
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: filepath.Join(dir, "data"), BackupDir: filepath.Join(dir, "backups")}
	return &life{t: t, rng: rng, tokens: tokens, dir: dir, cfg: cfg, fs: crashfs.New(),
		checked: map[string]bool{}, restored: map[string]bool{},
		signals: map[uuid.UUID]*signalState{}, erased: map[uuid.UUID]bool{}, tally: tally{targets: map[string]int{}}}
}

// finish checks what the last cut left and stops the server.
func (l *life) finish() {
	if l.cut == nil {
		return
	}
	if srv := l.reopenAndCheck(); srv != nil {
		if err := srv.stop(); err != nil {
			l.t.Errorf("stop: %v", err)
		}
	}
}

// startOver gives the life an empty disk.
func (l *life) startOver() {
	l.fs = crashfs.New()
	l.must, l.cur = acks{}, acks{}
	l.checked, l.restored = map[string]bool{}, map[string]bool{}
	l.signals, l.erased = map[uuid.UUID]*signalState{}, map[uuid.UUID]bool{}
	l.history = nil
}

// plServer is a server of the power-loss test.
type plServer struct {
	base   string
	sys    *system
	stderr *syncBuffer
	stop   func() error
}

// start runs serve on the life's file system.
func (l *life) start(fs *crashfs.FS) (*plServer, error) {
	env := map[string]string{
		"BUURTSIGNAAL_DATA_DIR": l.cfg.DataDir, "BUURTSIGNAAL_BACKUP_DIR": l.cfg.BackupDir,
		"BUURTSIGNAAL_ADDR": "127.0.0.1:0", "BUURTSIGNAAL_TOKENS_FILE": l.tokens,
		"BUURTSIGNAAL_REPLICA": "test", "BUURTSIGNAAL_LOG_LEVEL": "warn", "BUURTSIGNAAL_RATE_LIMIT": "0",
		"BUURTSIGNAAL_READY_INTERVAL": "1h",
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	var sys *system
	h := hooks{ready: ready, fs: fs, sys: func(s *system) { sys = s }}
	errc := make(chan error, 1)
	stderr := &syncBuffer{}
	go func() { errc <- serve(ctx, nil, io.Discard, stderr, func(k string) string { return env[k] }, h) }()
	select {
	case addr := <-ready:
		stop := func() error {
			cancel()
			select {
			case err := <-errc:
				return err
			case <-time.After(60 * time.Second):
				return errors.New("the server did not stop")
			}
		}
		return &plServer{base: "http://" + addr, sys: sys, stderr: stderr, stop: stop}, nil
	case err := <-errc:
		cancel()
		if err == nil {
			err = errors.New("serve returned before it was ready")
		}
		return nil, err
	case <-time.After(60 * time.Second):
		cancel()
		return nil, errors.New("the server did not start")
	}
}

// round runs one round: the server on the life's disk (checked first when
// a cut left it), clients until the power is cut, and what the cut left
// becomes the disk of the next.
func (l *life) round(n int) {
	t := l.t
	var srv *plServer
	if l.cut != nil {
		srv = l.reopenAndCheck()
	}
	target := l.pickTarget(srv == nil)
	l.tally.rounds++
	l.tally.targets[target.name]++
	l.cur = acks{}
	l.cut = nil
	ctx, cancelClients := context.WithCancel(context.Background())
	defer cancelClients()
	cutDone := make(chan struct{})
	var once sync.Once
	cutRng := rand.New(rand.NewPCG(l.rng.Uint64(), 2)) // the cut's own: it runs in a server goroutine
	cutNow := func(op string) {
		once.Do(func() {
			mode := crashfs.PowerCut
			switch r := cutRng.IntN(10); {
			case r == 0:
				mode = crashfs.Kill
			case r <= 2:
				mode = crashfs.Partial
			}
			l.mu.Lock()
			c := &cutState{acked: l.cur.clone(), signals: cloneSignals(l.signals), erased: cloneSet(l.erased), target: target.name, op: op, mode: mode}
			c.fs = l.fs.Crash(mode, cutRng)
			l.cut = c
			l.mu.Unlock()
			l.fs.SetHook(nil)
			close(cutDone)
		})
	}
	var count int
	var countMu sync.Mutex
	l.fs.SetHook(func(op crashfs.Op) {
		if !target.match(op) {
			return
		}
		countMu.Lock()
		count++
		hit := count == target.k
		countMu.Unlock()
		if hit {
			cutNow(fmt.Sprintf("%s %s", op.Kind, l.rel(op.Path)))
		}
	})
	if srv == nil || target.name == "start" {
		if srv != nil {
			if err := srv.stop(); err != nil {
				t.Fatalf("round %d: stop: %v", n, err)
			}
		}
		var err error
		if srv, err = l.start(l.fs); err != nil {
			select {
			case <-cutDone: // the cut came during the start
				return
			default:
			}
			t.Fatalf("round %d: the server does not start: %v", n, err)
		}
	}
	// Clients until the cut; without a cut by then, one at the end.
	deadline := time.Duration(40+l.rng.IntN(360)) * time.Millisecond
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	d := &driver{l: l, srv: srv, client: client, ctx: ctx, cutDone: cutDone}
	for i, who := range []string{"carla", "eva", "anna", "anna", "hanna", "bob"} {
		wg.Add(1)
		rng := rand.New(rand.NewPCG(l.rng.Uint64(), uint64(i)))
		go func() {
			defer wg.Done()
			d.run(who, rng, target.name)
		}()
	}
	if target.name == "backup" || l.rng.IntN(3) == 0 {
		wg.Add(1)
		wait := time.Duration(l.rng.IntN(int(deadline / 2)))
		go func() {
			defer wg.Done()
			d.backup(wait)
		}()
	}
	select {
	case <-cutDone:
	case <-time.After(deadline):
		cutNow("the end of the round")
	}
	cancelClients()
	wg.Wait()
	// A dial the clients gave up on leaves a connection that never sent a
	// request, which holds a shutdown for 5 s: close them first.
	client.CloseIdleConnections()
	if err := srv.stop(); err != nil {
		// The old server writes on past the cut, to a disk no one reads.
		t.Logf("round %d: stop after the cut: %v", n, err)
	}
}

// rel names a path within the life's directory.
func (l *life) rel(path string) string {
	if r, err := filepath.Rel(l.dir, path); err == nil {
		return r
	}
	return path
}

func cloneSignals(m map[uuid.UUID]*signalState) map[uuid.UUID]*signalState {
	out := make(map[uuid.UUID]*signalState, len(m))
	for k, v := range m {
		c := *v
		out[k] = &c
	}
	return out
}

func cloneSet[K comparable](m map[K]bool) map[K]bool {
	out := make(map[K]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
