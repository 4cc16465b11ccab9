package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Prism's validating proxy (@stoplight/prism-cli, pinned in
// scripts/apitools) between the end-to-end tests and the server: with
// BUURTSIGNAAL_PRISM naming its executable (make test-api sets it), every
// server a test starts gets a proxy that checks each request and answer
// against the server's own /openapi.json, and the tests talk to the server
// through it. Each violation comes back in the answer's sl-violations
// header; the transport below fails the test on
//
//   - any violation of an answer (a status, header or body the document
//     does not allow), and
//   - a request the document calls invalid that the server accepted (an
//     answer below 400): the document is stricter than the server.
//
// A request the document calls invalid and the server refused is what the
// tests meant (they send such requests on purpose): counted, not failed.
// Prism leaves a request whose body is not JSON at all unanswered, so those
// go to the server directly (counted as passed by).

// prismTotals are the counts of the whole test binary, which make test-api
// prints at the end (writePrismSummary).
var prismTotals struct {
	sync.Mutex
	requests, responseViolations, acceptedInvalid, refusedInvalid, direct int
	proxies                                                               int
}

// startPrism starts a validating proxy for s and sends s's requests
// through it, when BUURTSIGNAAL_PRISM names Prism; else it does nothing.
func startPrism(t testing.TB, s *server) {
	bin := os.Getenv("BUURTSIGNAAL_PRISM")
	if bin == "" {
		return
	}
	t.Helper()
	resp, err := http.Get(s.base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	dir := t.TempDir()
	spec := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(spec, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	out := &syncBuffer{}
	cmd := exec.Command(bin, "proxy", spec, s.base, "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Prism: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	listening := fmt.Sprintf("Prism is listening on http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), listening); {
		if time.Now().After(deadline) {
			t.Fatalf("Prism did not start:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	prismTotals.Lock()
	prismTotals.proxies++
	prismTotals.Unlock()
	s.client = &http.Client{Transport: &prismTransport{t: t, server: s.base, proxy: fmt.Sprintf("http://127.0.0.1:%d", port)}}
}

// prismTransport sends requests through the proxy and checks its verdict.
type prismTransport struct {
	t             testing.TB
	server, proxy string
}

type prismViolation struct {
	Location []string `json:"location"`
	Severity string   `json:"severity"`
	Code     any      `json:"code"`
	Message  string   `json:"message"`
}

func (p *prismTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	r := req.Clone(req.Context())
	r.Body, r.ContentLength = http.NoBody, 0
	if len(body) > 0 {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	if len(body) > 0 && !json.Valid(body) {
		prismTotals.Lock()
		prismTotals.direct++
		prismTotals.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	}
	u := *r.URL
	u.Host = strings.TrimPrefix(p.proxy, "http://")
	r.URL, r.Host = &u, ""
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	var vs []prismViolation
	if h := resp.Header.Get("sl-violations"); h != "" {
		if err := json.Unmarshal([]byte(h), &vs); err != nil {
			p.t.Errorf("Prism's sl-violations is not JSON: %q", h)
		}
	}
	resp.Header.Del("sl-violations")
	for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Headers", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers"} {
		resp.Header.Del(k) // Prism's own
	}
	what := fmt.Sprintf("%s %s: %d", req.Method, req.URL.RequestURI(), resp.StatusCode)
	var reqErrs, respErrs []string
	for _, v := range vs {
		s := strings.Join(v.Location, ".") + ": " + v.Message
		switch {
		case len(v.Location) > 0 && v.Location[0] == "response":
			respErrs = append(respErrs, s)
		case v.Severity == "Error":
			reqErrs = append(reqErrs, s)
		}
	}
	prismTotals.Lock()
	prismTotals.requests++
	prismTotals.responseViolations += len(respErrs)
	if len(reqErrs) > 0 && resp.StatusCode < 400 {
		prismTotals.acceptedInvalid++
	} else if len(reqErrs) > 0 {
		prismTotals.refusedInvalid++
	}
	prismTotals.Unlock()
	if len(respErrs) > 0 {
		p.t.Errorf("Prism: the answer to %s violates the OpenAPI document:\n  %s", what, strings.Join(respErrs, "\n  "))
	}
	if len(reqErrs) > 0 && resp.StatusCode < 400 {
		p.t.Errorf("Prism: %s accepted a request the OpenAPI document calls invalid:\n  %s", what, strings.Join(reqErrs, "\n  "))
	}
	return resp, nil
}

// writePrismSummary adds the totals to make test-api's summary.
func writePrismSummary() {
	if os.Getenv("BUURTSIGNAAL_PRISM") == "" {
		return
	}
	prismTotals.Lock()
	defer prismTotals.Unlock()
	if prismTotals.proxies == 0 {
		return
	}
	writeAPISummary(fmt.Sprintf("Prism validating proxy: %d proxies, %d requests through them, %d response violations, %d invalid requests accepted, %d invalid requests refused as the tests meant, %d requests that are not JSON sent past the proxy",
		prismTotals.proxies, prismTotals.requests, prismTotals.responseViolations, prismTotals.acceptedInvalid, prismTotals.refusedInvalid, prismTotals.direct))
}

func TestMain(m *testing.M) {
	code := m.Run()
	writePrismSummary()
	os.Exit(code)
}
