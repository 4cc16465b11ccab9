package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/buurtsignaal/buurtsignaal/adapters/tracing"
)

// TestTracesHoldNoPersonalData walks the whole lifecycle (with a
// break-glass read and a webhook notification) with tracing on, into an
// in-memory exporter: the spans the issue asks for are there (HTTP
// requests, commands, store appends and reads, the projections' catch-up
// and min_position waits, audit writes, notification deliveries), the log
// lines of a request carry its trace id, and no span name, attribute,
// event or status holds any of the lifecycle's personal data, a token or a
// client's address.
func TestTracesHoldNoPersonalData(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	rcv := newReceiver(t)
	s := startServerHooks(t, "", nil, hooks{tracer: tp})
	rcv.setTargets(s, []map[string]any{hook("team-a-hook", "team", "team-a", rcv.url("/team-a"), "handed_over")})
	s.must(200, s.do("GET", "/v1/teams?min_position=1", "anna", nil), "a read of one's writes")
	walkLifecycle(t, s) // stops the server at its end, which flushes the spans
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(exp.GetSpans(), func(sp tracetest.SpanStub) bool { return sp.Name == "notify.deliver" }) {
		if time.Now().After(deadline) {
			t.Fatal("no notify.deliver span")
		}
		time.Sleep(20 * time.Millisecond)
	}
	spans := exp.GetSpans()

	names := map[string]int{}
	for _, sp := range spans {
		names[sp.Name]++
	}
	for _, want := range []string{"POST /v1/signals", "GET /v1/signals/{id}", "command raiseSignal", "command handOverSignal", "eventlog.append",
		"eventlog.read_stream", "projections.catch_up", "projections.wait", "audit.record", "notify.deliver"} {
		if names[want] == 0 {
			t.Errorf("no %q span; the spans: %v", want, names)
		}
	}
	// A command's span is a child of its request's, and its append a child
	// of the command's.
	var raiseReq, raiseCmd tracetest.SpanStub
	for _, sp := range spans {
		switch sp.Name {
		case "POST /v1/signals":
			raiseReq = sp
		case "command raiseSignal":
			raiseCmd = sp
		}
	}
	if raiseCmd.Parent.SpanID() != raiseReq.SpanContext.SpanID() {
		t.Errorf("the command's span is not the request's child")
	}
	appendUnder := slices.ContainsFunc(spans, func(sp tracetest.SpanStub) bool {
		return sp.Name == "eventlog.append" && sp.Parent.SpanID() == raiseCmd.SpanContext.SpanID()
	})
	if !appendUnder {
		t.Errorf("no append under the raise's command span")
	}

	secrets := []string{secretName, secretDesc, secretNote, "Dorpsstraat", "0612345678", "1941-03-12", "waarneming tijdens vakantie", "tok-", "127.0.0.1"}
	for _, sp := range spans {
		texts := []string{sp.Name, sp.Status.Description}
		for _, a := range sp.Attributes {
			texts = append(texts, string(a.Key), a.Value.String())
		}
		for _, e := range sp.Events {
			texts = append(texts, e.Name)
			for _, a := range e.Attributes {
				texts = append(texts, a.Value.String())
			}
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if strings.Contains(strings.ToLower(text), strings.ToLower(secret)) {
					t.Errorf("span %q holds %q: %q", sp.Name, secret, text)
				}
			}
		}
	}
	// The request log lines carry their trace's id.
	traceOf := map[string]bool{}
	for _, sp := range spans {
		traceOf[sp.SpanContext.TraceID().String()] = true
	}
	found := 0
	for _, m := range regexp.MustCompile(`"msg":"request".*?"trace_id":"([0-9a-f]{32})"`).FindAllStringSubmatch(s.stderr.String(), -1) {
		if traceOf[m[1]] {
			found++
		}
	}
	if found == 0 {
		t.Errorf("no request log line carries a trace id of the exported spans:\n%.2000s", s.stderr.String())
	}
	t.Logf("%d spans (%v); %d request log lines with their trace id", len(spans), names, found)
}

// TestTracingIsOffUnlessConfigured: without the OTEL_* variables the
// server has no tracer (and exports nothing); with OTEL_EXPORTER_OTLP_ENDPOINT
// it exports over OTLP/HTTP to that endpoint, and what it sends holds no
// personal data.
func TestTracingIsOffUnlessConfigured(t *testing.T) {
	for _, env := range []map[string]string{
		{}, {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
	} {
		if tracing.Enabled(func(k string) string { return env[k] }) {
			t.Errorf("tracing on with %v", env)
		}
	}
	var mu sync.Mutex
	var bodies [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			bodies = append(bodies, b)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}
	s := startServer(t, "", env)
	s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	s.stop() // flushes the exporter
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) == 0 {
		t.Fatal("the OTLP collector received no traces")
	}
	all := strings.Join(func() []string {
		var out []string
		for _, b := range bodies {
			out = append(out, string(b))
		}
		return out
	}(), "")
	for _, want := range []string{"POST /v1/signals", "command raiseSignal", "eventlog.append", "buurtsignaal"} {
		if !strings.Contains(all, want) {
			t.Errorf("the exported traces lack %q", want)
		}
	}
	for _, secret := range []string{secretName, secretDesc, "Dorpsstraat", "0612345678", "1941-03-12", "tok-carla"} {
		if strings.Contains(all, secret) {
			t.Errorf("the exported traces hold %q", secret)
		}
	}
}
