package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// apiTool returns the path of an npm tool of scripts/apitools (npm ci
// there installs the versions its lock file pins; make test and make
// test-api do). Without it the test fails, unless
// BUURTSIGNAAL_SKIP_APITOOLS gives the reason to skip (make test sets it,
// and repeats it at the end, where npm cannot install it), as for axe-core.
func apiTool(t *testing.T, name string) string {
	t.Helper()
	bin, _ := filepath.Abs(filepath.Join("..", "..", "scripts", "apitools", "node_modules", ".bin", name))
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if why := os.Getenv("BUURTSIGNAAL_SKIP_APITOOLS"); why != "" {
		t.Skip(why)
	}
	t.Fatalf("%s from npm is not installed: make test installs it with 'npm ci --prefix scripts/apitools'; or set BUURTSIGNAAL_SKIP_APITOOLS to a reason", name)
	return ""
}

// TestOpenAPILintsClean lints the served /openapi.json with Redocly CLI's
// recommended rules (scripts/apitools/redocly.yaml): no error and no
// warning. The only findings let through are listed, each with its reason,
// in scripts/apitools/.redocly.lint-ignore.yaml.
func TestOpenAPILintsClean(t *testing.T) {
	redocly := apiTool(t, "redocly")
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error", "BUURTSIGNAAL_PUBLIC_URL": "https://buurtsignaal.example.nl"})
	doc := s.must(200, s.do("GET", "/openapi.json", "", nil), "openapi")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "openapi.json"), doc.raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// The ignore file is read from the working directory, keyed by the
	// document's path relative to it.
	for _, f := range []string{"redocly.yaml", ".redocly.lint-ignore.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "scripts", "apitools", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runTool(t, dir, redocly, "lint", "openapi.json", "--config", "redocly.yaml")
	summary := regexp.MustCompile(`(?m)^(Woohoo!.*|❌.*|You have \d+ warnings?\.|\d+ problems? (is|are) explicitly ignored\.)$`).FindAllString(out, -1)
	writeAPISummary("Redocly CLI lint of /openapi.json: " + strings.Join(summary, " "))
	if err != nil || !strings.Contains(out, "Your API description is valid") || regexp.MustCompile(`(?m)^\s*\d+:\d+\s+(warning|error)\b|You have \d+ warning`).MatchString(out) {
		t.Fatalf("redocly lint: %v\n%s", err, out)
	}
	t.Log(strings.Join(summary, " "))
}

// runTool runs an npm tool in dir with its telemetry and update checks off.
func runTool(t *testing.T, dir, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_UPDATE_NOTIFIER=1", "CI=true")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// writeAPISummary appends a line to BUURTSIGNAAL_API_SUMMARY, which make
// test-api prints at the end.
func writeAPISummary(line string) {
	path := os.Getenv("BUURTSIGNAAL_API_SUMMARY")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = fmt.Fprintln(f, line)
}

// TestGeneratedClient generates a typed Go client from the served
// /openapi.json with oapi-codegen (pinned as a tool of the module in
// scripts/apiclient), builds the small program there on it, and runs it
// against the real server: it raises a signal, hands it over, accepts it
// and reads it back through the typed client, and reads a typed 404
// problem. It builds oapi-codegen (about half a minute the first time), so
// it runs in make test-api (BUURTSIGNAAL_TEST_API=1).
func TestGeneratedClient(t *testing.T) {
	if os.Getenv("BUURTSIGNAAL_TEST_API") == "" {
		t.Skip("make test-api runs it (BUURTSIGNAAL_TEST_API=1)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command: %v", err)
	}
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "error"})
	doc := s.must(200, s.do("GET", "/openapi.json", "", nil), "openapi")
	dir := t.TempDir()
	src := filepath.Join("..", "..", "scripts", "apiclient")
	for _, f := range []string{"go.mod", "go.sum", "main.go", "oapi-codegen.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "openapi.json"), doc.raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "client"), 0o700); err != nil {
		t.Fatal(err)
	}
	goRun := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	goRun("tool", "oapi-codegen", "-config", "oapi-codegen.yaml", "openapi.json")
	gen, err := os.ReadFile(filepath.Join(dir, "client", "client.gen.go"))
	if err != nil || !bytes.Contains(gen, []byte("func (c *ClientWithResponses) RaiseSignalWithResponse(")) {
		t.Fatalf("oapi-codegen generated no RaiseSignalWithResponse: %v", err)
	}
	goRun("build", "-o", "apiclient", ".")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "apiclient"), "-url", s.base, "-token", "tok-anna", "-team", "team-a").CombinedOutput()
	if err != nil {
		t.Fatalf("the program on the generated client failed: %v\n%s", err, out)
	}
	for _, want := range []string{"raised signal", "read back signal", "status in_care", "the subject as raised", `404 problem "signal_not_found"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the program's output lacks %q:\n%s", want, out)
		}
	}
	writeAPISummary("oapi-codegen client (generated from /openapi.json, built and run): " + strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
	t.Logf("%s", out)
}
