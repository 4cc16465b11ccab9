package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
)

// deployment is N server processes (replicas) on one KurrentDB: the
// in-repo protocol server kurrenttest in this process, or a real cluster
// (BUURTSIGNAAL_KURRENTDB_URL). The replicas share what a deployment
// shares, one master key, one tokens file, one notification secret, and
// each has its own data directory (its read models) and --replica name.
type deployment struct {
	bin    string
	store  string // connection string
	test   *kurrenttest.Server
	dir    string
	tokens string
	extra  []string

	mu       sync.Mutex
	replicas []*replica
}

// replica is one server process of a deployment.
type replica struct {
	name, base, addr, dataDir string
	cmd                       *exec.Cmd
	done                      chan struct{}
}

// startDeployment starts the store (unless store names a real one) and n
// replicas, the first alone (it creates the master key and the
// notification secret the others then read), and waits until every one is
// ready. extra are more serve flags for every replica.
func startDeployment(ctx context.Context, bin string, n int, store string, tokens []byte, extra ...string) (*deployment, error) {
	dir, err := os.MkdirTemp("", "buurtsignaal-replicas-")
	if err != nil {
		return nil, err
	}
	d := &deployment{bin: bin, store: store, dir: dir, extra: extra, tokens: filepath.Join(dir, "tokens.json")}
	if err := os.WriteFile(d.tokens, tokens, 0o600); err != nil {
		d.stop()
		return nil, err
	}
	if d.store == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			d.stop()
			return nil, err
		}
		d.test = kurrenttest.New(kurrenttest.Options{})
		d.test.Serve(ln)
		d.store = d.test.URL()
	}
	for i := 0; i < n; i++ {
		if _, err := d.start(ctx, i); err != nil {
			d.stop()
			return nil, err
		}
	}
	return d, nil
}

// start starts replica i (again, after a kill: same name, address and data
// directory) and waits until it is ready.
func (d *deployment) start(ctx context.Context, i int) (*replica, error) {
	d.mu.Lock()
	for len(d.replicas) <= i {
		d.replicas = append(d.replicas, nil)
	}
	r := d.replicas[i]
	if r == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			d.mu.Unlock()
			return nil, err
		}
		addr := ln.Addr().String()
		ln.Close()
		r = &replica{name: "r" + strconv.Itoa(i+1), addr: addr, base: "http://" + addr, dataDir: filepath.Join(d.dir, "r"+strconv.Itoa(i+1))}
		d.replicas[i] = r
	}
	d.mu.Unlock()
	args := append([]string{"serve", "--addr", r.addr, "--store", d.store, "--replica", r.name, "--data-dir", r.dataDir,
		"--tokens-file", d.tokens, "--master-key-file", filepath.Join(d.dir, "master-key.json"),
		"--notify-secret-file", filepath.Join(d.dir, "notify-secret"), "--public-url", "http://" + r.addr,
		"--log-level", "warn", "--retention-interval", "0", "--rate-limit", "0"}, d.extra...)
	cmd := exec.Command(d.bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", r.name, err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(r.done)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			break
		}
		resp, err := http.Get(r.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("replica %s exited before it was ready", r.name)
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = cmd.Process.Kill()
	<-r.done
	return nil, errors.New("replica " + r.name + " did not become ready")
}

// bases are the replicas' base URLs.
func (d *deployment) bases() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.replicas))
	for i, r := range d.replicas {
		out[i] = r.base
	}
	return out
}

// kill SIGKILLs replica i and waits until it is gone.
func (d *deployment) kill(i int) {
	r := d.replicas[i]
	_ = r.cmd.Process.Kill()
	<-r.done
}

// stop stops every replica (SIGINT, then SIGKILL after 20 s) and the
// store, and removes the deployment's files.
func (d *deployment) stop() {
	for _, r := range d.replicas {
		if r == nil || r.cmd == nil {
			continue
		}
		select {
		case <-r.done:
			continue
		default:
		}
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	}
	if d.test != nil {
		d.test.Stop()
	}
	os.RemoveAll(d.dir)
}
