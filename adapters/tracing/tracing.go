// Package tracing is OpenTelemetry tracing: off unless the standard OTEL_*
// environment variables configure an OTLP exporter (FromEnv), with
// decorators that give the event store's appends and reads and the access
// log's writes their spans, and a log handler that puts the current trace
// and span ids into every log line.
//
// Spans carry ids of the system's own objects, codes, counts and
// positions: never personal data (names, birth dates, addresses, phone
// numbers, descriptions, notes, reasons), never a client's address, never
// a URL with a query, never a token. The tests scan every span of a full
// lifecycle for the secrets they raise, as they scan the logs.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// Name is the instrumentation scope of every tracer.
const Name = "github.com/buurtsignaal/buurtsignaal"

// Enabled reports whether the OTEL_* variables (read through getenv) ask
// for traces: an OTLP endpoint is configured, or OTEL_TRACES_EXPORTER is
// otlp; and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none
// turns them off.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return false
	case "otlp":
		return true
	case "":
	default:
		return false // an exporter this server does not have (console, zipkin): off, said by FromEnv
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// FromEnv returns the tracer provider the OTEL_* variables configure: an
// OTLP exporter (http/protobuf, or grpc when OTEL_EXPORTER_OTLP_PROTOCOL or
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL says so) behind a batch processor;
// the exporter reads its endpoint, headers, certificates, compression and
// timeout from the standard variables itself, the SDK its sampler
// (OTEL_TRACES_SAMPLER) and the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES. Without them it returns a no-op provider, and
// shutdown does nothing. replica names this process among several.
func FromEnv(ctx context.Context, getenv func(string) string, version, replica string) (trace.TracerProvider, func(context.Context) error, error) {
	none := func(context.Context) error { return nil }
	if !Enabled(getenv) {
		if exp := getenv("OTEL_TRACES_EXPORTER"); exp != "" && !strings.EqualFold(exp, "none") && !strings.EqualFold(exp, "otlp") {
			return nil, none, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: this server exports traces over OTLP only (otlp or none)", exp)
		}
		return noop.NewTracerProvider(), none, nil
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, none, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: use http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, none, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "buurtsignaal"), attribute.String("service.version", version)}
	if replica != "" {
		attrs = append(attrs, attribute.String("service.instance.id", replica))
	}
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithFromEnv())
	if err != nil {
		return nil, none, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// Tracer is the tracer of tp (a no-op one for nil).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(Name)
}

// Fail marks span failed with the error's kind and code, never its text
// (which may name an address or a file).
func Fail(span trace.Span, err error) {
	if err == nil {
		return
	}
	kind, code := domain.KindOf(err).String(), ""
	if e := domain.AsError(err); e != nil {
		code = e.Code
	}
	span.SetAttributes(attribute.String("error.type", kind))
	span.SetStatus(codes.Error, strings.TrimSuffix(kind+" "+code, " "))
}

// category is a stream's category ("signal" of "signal-<id>").
func category(stream string) string {
	c, _, _ := strings.Cut(stream, "-")
	return c
}

// Store gives the appends and reads of an event store their spans.
type Store struct {
	eventlog.Store
	tracer trace.Tracer
}

// InstrumentStore wraps s; with a no-op provider it adds almost nothing.
func InstrumentStore(s eventlog.Store, tp trace.TracerProvider) eventlog.Store {
	return &Store{Store: s, tracer: Tracer(tp)}
}

// Append implements eventlog.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventlog.ExpectedVersion, events ...eventlog.EventData) (eventlog.AppendResult, error) {
	ctx, span := s.tracer.Start(ctx, "eventlog.append", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("eventlog.stream_category", category(stream)), attribute.Int("eventlog.events", len(events))))
	defer span.End()
	res, err := s.Store.Append(ctx, stream, expected, events...)
	if err == nil {
		span.SetAttributes(attribute.Int64("eventlog.position", int64(res.Position)))
	}
	Fail(span, err)
	return res, err
}

// ReadStream implements eventlog.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, dir eventlog.Direction, from uint64, limit int) ([]eventlog.RecordedEvent, error) {
	ctx, span := s.tracer.Start(ctx, "eventlog.read_stream", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("eventlog.stream_category", category(stream)), attribute.Int("eventlog.limit", limit)))
	defer span.End()
	recs, err := s.Store.ReadStream(ctx, stream, dir, from, limit)
	span.SetAttributes(attribute.Int("eventlog.events", len(recs)))
	if err != nil && domain.KindOf(err) != domain.KindNotFound {
		Fail(span, err)
	}
	return recs, err
}

// ReadAll implements eventlog.Store.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventlog.RecordedEvent, error) {
	ctx, span := s.tracer.Start(ctx, "eventlog.read_all", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int64("eventlog.after", int64(after)), attribute.Int("eventlog.limit", limit)))
	defer span.End()
	recs, err := s.Store.ReadAll(ctx, after, limit)
	span.SetAttributes(attribute.Int("eventlog.events", len(recs)))
	Fail(span, err)
	return recs, err
}

// Auditor gives the access log's writes their spans.
type Auditor struct {
	domain.Auditor
	tracer trace.Tracer
}

// InstrumentAuditor wraps a.
func InstrumentAuditor(a domain.Auditor, tp trace.TracerProvider) domain.Auditor {
	return &Auditor{Auditor: a, tracer: Tracer(tp)}
}

func (a *Auditor) record(ctx context.Context, kind string, acc domain.Access, write func(context.Context, domain.Access) error) error {
	ctx, span := a.tracer.Start(ctx, "audit.record", trace.WithAttributes(
		attribute.String("audit.kind", kind), attribute.String("audit.action", acc.Action), attribute.String("audit.view", acc.View),
		attribute.String("audit.outcome", acc.Outcome), attribute.Int("audit.subjects", len(acc.Subjects))))
	defer span.End()
	err := write(ctx, acc)
	Fail(span, err)
	return err
}

// RecordAccess implements domain.Auditor.
func (a *Auditor) RecordAccess(ctx context.Context, acc domain.Access) error {
	return a.record(ctx, "access", acc, a.Auditor.RecordAccess)
}

// RecordDenied implements domain.Auditor.
func (a *Auditor) RecordDenied(ctx context.Context, acc domain.Access) error {
	return a.record(ctx, "denied", acc, a.Auditor.RecordDenied)
}

// LogHandler adds trace_id and span_id to every record logged with a
// context that holds a span.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }
