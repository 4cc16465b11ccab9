// Command benchscale is `make bench-scale`: how the server holds up as the
// log grows, in one run on this machine. It writes a realistic log
// (logwriter.go) straight through the stores and measures, with the load
// generator's full mix at 64 clients:
//
//   - on an empty store: req/s (the baseline);
//   - at the intermediate size (200,000 events), on a copy of the data:
//     the server's steady-state RSS under load;
//   - at the full size (2,000,000 events): a full rebuild, then under load
//     req/s, p99, failed requests and RSS, then the restart to ready.
//
// It prints each phase's figures, then these summary lines last:
//
//	ready_seconds, rss_mb, rss_growth, throughput_ratio, p99_ms, errors, rebuild_seconds
//
// Run: go run ./scripts/benchscale -bin bin/buurtsignaal -load bin/buurtsignaal-load
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type options struct {
	bin, load, work string
	events, small   uint64
	duration        time.Duration
	concurrency     int
	keep            bool
	pprofAddr       string
	writeOnly       string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/buurtsignaal", "the server binary")
	flag.StringVar(&o.load, "load", "bin/buurtsignaal-load", "the load generator binary")
	flag.Uint64Var(&o.events, "events", 2_000_000, "events in the full log")
	flag.Uint64Var(&o.small, "small", 200_000, "events in the intermediate log (RSS growth is measured from it)")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "length of each load run")
	flag.IntVar(&o.concurrency, "concurrency", 64, "load clients")
	flag.StringVar(&o.work, "work", "", "working directory (default: a new temporary one, removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the working directory")
	flag.StringVar(&o.pprofAddr, "pprof-addr", "", "profiler address of the server in the full-size load run")
	flag.StringVar(&o.writeOnly, "write", "", "only write a log of -events events into this new data directory, and exit")
	flag.Parse()
	if o.writeOnly != "" {
		w := newLogWriter(int(o.events), 1)
		err := w.Open(o.writeOnly)
		if err == nil {
			err = errors.Join(w.Write(context.Background(), o.events), w.Close())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchscale:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

// result is what one load run measured.
type result struct {
	rps, p99 float64
	errors   int
	rssMB    float64
	summary  string
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.small >= o.events {
		return errors.New("-small must be below -events")
	}
	work := o.work
	if work == "" {
		dir, err := os.MkdirTemp("", "buurtsignaal-benchscale-")
		if err != nil {
			return err
		}
		work = dir
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	tokens := filepath.Join(work, "tokens.json")
	if b, err := exec.CommandContext(ctx, o.load, "-write-tokens", tokens).CombinedOutput(); err != nil {
		return fmt.Errorf("tokens: %v: %s", err, b)
	}
	logs, err := os.Create(filepath.Join(work, "server.log"))
	if err != nil {
		return err
	}
	defer logs.Close()
	srv := serverRunner{bin: o.bin, tokens: tokens, logs: logs}

	fmt.Fprintf(out, "== empty store: full mix, %d clients, %s\n", o.concurrency, o.duration)
	empty, err := srv.loadRun(ctx, o, filepath.Join(work, "empty"), "")
	if err != nil {
		return fmt.Errorf("empty store: %w", err)
	}
	fmt.Fprintln(out, empty.summary)

	data := filepath.Join(work, "data")
	w := newLogWriter(int(o.events), 1)
	if err := w.Open(data); err != nil {
		return err
	}
	start := time.Now()
	if err := w.Write(ctx, o.small); err != nil {
		w.Close()
		return fmt.Errorf("write the log: %w", err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "== wrote %d events in %.1fs\n", o.small, time.Since(start).Seconds())
	smallDir := filepath.Join(work, "small")
	if b, err := exec.CommandContext(ctx, "cp", "-a", data, smallDir).CombinedOutput(); err != nil {
		return fmt.Errorf("copy: %v: %s", err, b)
	}
	// Both sizes are measured the same way: read models rebuilt first, then
	// a server that opens them.
	if b, err := exec.CommandContext(ctx, o.bin, "rebuild", "--data-dir", smallDir, "--log-level", "warn").CombinedOutput(); err != nil {
		return fmt.Errorf("rebuild: %v: %s", err, b)
	}
	fmt.Fprintf(out, "== %d events (a copy): full mix, %d clients, %s\n", o.small, o.concurrency, o.duration)
	small, err := srv.loadRun(ctx, o, smallDir, "")
	if err != nil {
		return fmt.Errorf("%d events: %w", o.small, err)
	}
	fmt.Fprintln(out, small.summary)
	os.RemoveAll(smallDir)

	if err := w.Open(data); err != nil { // the same simulation goes on
		return err
	}
	start = time.Now()
	if err := w.Write(ctx, o.events); err != nil {
		w.Close()
		return fmt.Errorf("write the log: %w", err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "== wrote %d events in %.1fs\n", o.events, time.Since(start).Seconds())

	start = time.Now()
	rb := exec.CommandContext(ctx, o.bin, "rebuild", "--data-dir", data, "--log-level", "warn")
	rbOut, err := rb.CombinedOutput()
	if err != nil {
		return fmt.Errorf("rebuild: %v: %s", err, rbOut)
	}
	rebuildSecs := time.Since(start).Seconds()
	fmt.Fprintf(out, "== rebuild: %s", rbOut)

	fmt.Fprintf(out, "== %d events: full mix, %d clients, %s\n", o.events, o.concurrency, o.duration)
	full, err := srv.loadRun(ctx, o, data, o.pprofAddr)
	if err != nil {
		return fmt.Errorf("%d events: %w", o.events, err)
	}
	fmt.Fprintln(out, full.summary)

	// Restart to ready: the server opens its read models and catches up
	// from their checkpoints.
	var readies []float64
	for range 3 {
		s, secs, err := srv.start(ctx, data, "")
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		readies = append(readies, secs)
		if err := s.stop(); err != nil {
			return err
		}
	}
	sort.Float64s(readies)
	fmt.Fprintf(out, "== restart to ready at %d events: %.2f, %.2f, %.2f s\n", o.events, readies[0], readies[1], readies[2])

	errs := empty.errors + small.errors + full.errors
	fmt.Fprintln(out)
	fmt.Fprintf(out, "ready_seconds: %.2f\n", readies[1])
	fmt.Fprintf(out, "rss_mb: %.0f\n", full.rssMB)
	fmt.Fprintf(out, "rss_growth: %.2f\n", full.rssMB/small.rssMB)
	fmt.Fprintf(out, "throughput_ratio: %.2f\n", full.rps/empty.rps)
	fmt.Fprintf(out, "p99_ms: %.2f\n", full.p99)
	fmt.Fprintf(out, "errors: %d\n", errs)
	fmt.Fprintf(out, "rebuild_seconds: %.1f\n", rebuildSecs)
	return nil
}

type serverRunner struct {
	bin, tokens string
	logs        io.Writer
}

type server struct {
	base string
	cmd  *exec.Cmd
	done chan error
}

// start starts the server on data and waits until it is ready; it reports
// the seconds from start to ready.
func (r serverRunner) start(ctx context.Context, data, pprofAddr string) (*server, float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, r.bin, "serve", "--addr", addr, "--data-dir", data, "--tokens-file", r.tokens,
		"--replica", "load", "--log-level", "warn", "--retention-interval", "0", "--rate-limit", "0", "--pprof-addr", pprofAddr)
	cmd.Stdout, cmd.Stderr = io.Discard, r.logs
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	s := &server{base: "http://" + addr, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	for {
		select {
		case err := <-s.done:
			return nil, 0, fmt.Errorf("the server exited: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, time.Since(t0).Seconds(), nil
			}
		}
		if time.Since(t0) > 30*time.Minute {
			_ = cmd.Process.Kill()
			return nil, 0, errors.New("the server did not become ready")
		}
	}
}

func (s *server) stop() error {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
		return nil
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("the server did not stop in time")
	}
}

var summaryRE = regexp.MustCompile(`errors=(\d+) rps=([0-9.]+) .*p99_ms=([0-9.]+)`)

// loadRun starts the server on data, drives the full mix against it and
// samples its RSS over the second half of the run.
func (r serverRunner) loadRun(ctx context.Context, o options, data, pprofAddr string) (result, error) {
	s, ready, err := r.start(ctx, data, pprofAddr)
	if err != nil {
		return result{}, err
	}
	defer s.stop()
	var res result
	var mu sync.Mutex
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		select {
		case <-time.After(o.duration / 2):
		case <-stopSampling:
			return
		}
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if mb, err := rssMB(s.cmd.Process.Pid); err == nil {
				mu.Lock()
				res.rssMB = max(res.rssMB, mb)
				mu.Unlock()
			}
			select {
			case <-t.C:
			case <-stopSampling:
				return
			}
		}
	}()
	cmd := exec.CommandContext(ctx, o.load, "-url", s.base, "-mix", "full", "-concurrency", strconv.Itoa(o.concurrency),
		"-duration", o.duration.String())
	outText, err := cmd.Output()
	close(stopSampling)
	<-sampled
	if err != nil {
		return result{}, fmt.Errorf("load: %v: %s", err, outText)
	}
	for _, line := range strings.Split(string(outText), "\n") {
		if m := summaryRE.FindStringSubmatch(line); m != nil {
			res.errors, _ = strconv.Atoi(m[1])
			res.rps, _ = strconv.ParseFloat(m[2], 64)
			res.p99, _ = strconv.ParseFloat(m[3], 64)
		}
	}
	if res.rps == 0 {
		return result{}, fmt.Errorf("load reported nothing: %s", outText)
	}
	res.summary = fmt.Sprintf("%sready in %.2fs; server RSS under load (max over the second half): %.0f MB", outText, ready, res.rssMB)
	return res, nil
}

// rssMB reads a process's resident set size.
func rssMB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}
