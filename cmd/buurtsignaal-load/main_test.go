package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
	bin := filepath.Join(t.TempDir(), "buurtsignaal")
	if out, err := exec.Command("go", "build", "-o", bin, "../buurtsignaal").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
