package httpapi

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Spans of the HTTP API: one server span per request (continuing a
// caller's W3C traceparent), named by method and route pattern, with the
// route, the status and the request id; one span per command (a POST or
// PUT of the route table) named by its operationId; and one for the wait
// of min_position. They carry no path (ids), no query, no client address,
// no header and no body: a request's personal data stays out of them.
// Hand-written on the OpenTelemetry API rather than otelhttp, whose spans
// carry the client's address, user agent and path.

var traceContext = propagation.TraceContext{}

func (s *Server) tracer() trace.Tracer {
	tp := s.Tracer
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer("github.com/buurtsignaal/buurtsignaal/adapters/httpapi")
}

// traceRequests starts each request's server span.
func (s *Server) traceRequests(next http.Handler) http.Handler {
	tracer := s.tracer()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("buurtsignaal.request_id", requestID(r.Context()))))
		defer span.End()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route := routePattern(r)
		span.SetName(r.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", rec.status))
		if rec.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.status))
		}
	})
}

// traceCommand gives a command's handler its span.
func (s *Server) traceCommand(rt route, h handlerFunc) handlerFunc {
	tracer := s.tracer()
	name := "command " + operationID(rt.method, rt.pattern)
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx, span := tracer.Start(r.Context(), name, trace.WithAttributes(attribute.String("buurtsignaal.action", string(rt.action))))
		defer span.End()
		err := h(w, r.WithContext(ctx))
		if err != nil {
			span.SetStatus(codes.Error, kindCode(err))
		}
		return err
	}
}
