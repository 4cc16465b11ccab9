package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestFullMixAgainstTheRealServer builds the server, lets the generator
// start it on loopback with its own tokens file and data, drives the whole
// mix briefly and checks the report: every operation ran, none failed, and
// the summary adds up.
func TestFullMixAgainstTheRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	bin := serverBinary(t)
	var out bytes.Buffer
	o := options{bin: bin, mix: "full", duration: 3 * time.Second, concurrency: 8, maxRequests: 100_000, seed: 7}
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	row := regexp.MustCompile(`(?m)^(\w+)\s+(\d+)\s+(\d+)\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+$`)
	ops := map[string]bool{}
	total := 0
	for _, m := range row.FindAllStringSubmatch(report, -1) {
		count, _ := strconv.Atoi(m[2])
		if m[3] != "0" {
			t.Errorf("%s: %s errors", m[1], m[3])
		}
		ops[m[1]] = count > 0
		total += count
	}
	for _, name := range []string{"raise", "handover", "accept", "follow_up", "referral", "close", "caseload", "case_detail", "monitor", "audit"} {
		if !ops[name] {
			t.Errorf("operation %s did not run", name)
		}
	}
	sum := regexp.MustCompile(`summary: mix=full concurrency=8 duration=[\d.]+s requests=(\d+) errors=0 rps=\d+`).FindStringSubmatch(report)
	if sum == nil || sum[1] != strconv.Itoa(total) {
		t.Errorf("summary does not add up to %d requests:\n%s", total, report)
	}
}

var built struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// serverBinary builds the server once for the package's tests.
func serverBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "buurtsignaal-load-test-")
		if built.err == nil {
			built.out, built.err = exec.Command("go", "build", "-o", filepath.Join(built.dir, "buurtsignaal"), "../buurtsignaal").CombinedOutput()
		}
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return filepath.Join(built.dir, "buurtsignaal")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// TestServerCrash is the short form of make crashtest-server: two SIGKILLs
// of the real server under 16 clients, nothing acknowledged lost.
func TestServerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the server")
	}
	tokens, err := tokensFile()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o := options{bin: serverBinary(t), concurrency: 16, crashRounds: 2, seed: 3}
	if err := crashTest(context.Background(), o, tokens, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !regexp.MustCompile(`^server crash rounds: 2, acknowledged: [1-9]\d*, lost: 0\n$`).MatchString(out.String()) {
		t.Fatalf("crash test said %q", out.String())
	}
}

func TestRefusesANonLoopbackTarget(t *testing.T) {
	for _, u := range []string{"http://192.0.2.1:8080", "http://8.8.8.8"} {
		if err := loopbackOnly(u); err == nil {
			t.Errorf("loopbackOnly(%q) = nil, want a refusal", u)
		}
	}
	if err := loopbackOnly("http://127.0.0.1:8080"); err != nil {
		t.Errorf("loopbackOnly(127.0.0.1) = %v", err)
	}
}
