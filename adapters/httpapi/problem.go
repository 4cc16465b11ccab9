package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// statusOf is the one table from error kind to HTTP status.
var statusOf = map[domain.Kind]int{
	domain.KindInternal:        http.StatusInternalServerError,
	domain.KindInvalid:         http.StatusUnprocessableEntity,
	domain.KindNotFound:        http.StatusNotFound,
	domain.KindConflict:        http.StatusConflict,
	domain.KindForbidden:       http.StatusForbidden,
	domain.KindUnauthenticated: http.StatusUnauthorized,
	domain.KindUnavailable:     http.StatusServiceUnavailable,
	domain.KindTooLarge:        http.StatusRequestEntityTooLarge,
	domain.KindTooMany:         http.StatusTooManyRequests,
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Code      string              `json:"code,omitempty"`
	Errors    []domain.FieldError `json:"errors,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
}

// errBadRequest marks malformed requests (bad JSON, unknown fields): 400.
var errBadRequest = &domain.Error{Kind: domain.KindInvalid, Code: "bad_request", Message: "the request body is not valid JSON of the expected shape"}

// writeError writes err as problem+json. Classified errors show their safe
// message; anything else is a 500 whose text goes only to the log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := domain.AsError(err)
	kind := domain.KindOf(err)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		kind = domain.KindUnavailable
		e = &domain.Error{Kind: kind, Code: "canceled", Message: "the request was canceled"}
	}
	status := statusOf[kind]
	if e != nil && e.Code == errBadRequest.Code {
		status = http.StatusBadRequest
	}
	p := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, RequestID: requestID(r.Context())}
	if kind == domain.KindInternal || e == nil {
		p.Detail = "an internal error occurred; it has been logged"
		s.log.ErrorContext(r.Context(), "internal error", "request_id", p.RequestID, "route", routePattern(r), "err", err)
	} else {
		p.Detail, p.Code, p.Errors = e.Message, e.Code, e.Fields
		if p.Code != "" {
			p.Type = "https://buurtsignaal.invalid/problems/" + p.Code
		}
	}
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	s.metrics.errors.WithLabelValues(kind.String()).Inc()
	send(w, status, "application/problem+json", p)
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) { send(w, status, "application/json", v) }

// jsonBuffers are send's encoding buffers, reused across requests.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// send encodes v into a buffer first, so the answer goes out with a
// Content-Length in one write instead of chunked in pieces (a caseload page
// is about 15 KiB). A value that cannot be encoded (a bug) becomes a bare
// 500 problem.
func send(w http.ResponseWriter, status int, contentType string, v any) {
	buf := jsonBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 { // a rare huge answer's buffer is not kept
			buf.Reset()
			jsonBuffers.Put(buf)
		}
	}()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		buf.Reset()
		buf.WriteString(`{"type":"about:blank","title":"Internal Server Error","status":500}` + "\n")
		status, contentType = http.StatusInternalServerError, "application/problem+json"
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// handlerFunc is a handler that returns its error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

func logAttrsOf(r *http.Request) []any {
	return []any{"request_id", requestID(r.Context()), "method", r.Method, "route", routePattern(r)}
}
