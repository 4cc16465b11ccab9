package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// TestProblems: every error kind answers its status as problem+json, a store
// that cannot write (disk full) is a 503 with Retry-After, and an internal
// error never shows its text.
func TestProblems(t *testing.T) {
	s := New(Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tests := []struct {
		err        error
		status     int
		retryAfter string
	}{
		{fmt.Errorf("append: %w", eventlog.ErrUnavailable), 503, "1"},
		{domain.Invalid(domain.FieldError{Field: "x", Message: "is required"}), 422, ""},
		{&domain.Error{Kind: domain.KindTooMany, Code: "rate_limited", Message: "slow down"}, 429, "1"},
		{&domain.Error{Kind: domain.KindTooLarge, Code: "body_too_large", Message: "too large"}, 413, ""},
		{errors.New("pebble: /secret/path/000123.sst: input/output error"), 500, ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		s.writeError(w, httptest.NewRequest(http.MethodPost, "/v1/signals", nil), tt.err)
		body := w.Body.String()
		if w.Code != tt.status || w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("Retry-After") != tt.retryAfter {
			t.Errorf("%v: %d %q Retry-After %q, want %d problem+json %q", tt.err, w.Code, w.Header().Get("Content-Type"), w.Header().Get("Retry-After"), tt.status, tt.retryAfter)
		}
		if strings.Contains(body, "secret") || strings.Contains(body, "pebble") {
			t.Errorf("%v: the answer leaks internals: %s", tt.err, body)
		}
	}
}

func TestExactNames(t *testing.T) {
	type inner struct {
		Name string `json:"name"`
	}
	type body struct {
		Reason string            `json:"reason"`
		Items  []inner           `json:"items,omitempty"`
		Ptr    *inner            `json:"ptr,omitempty"`
		Any    map[string]string `json:"any,omitempty"`
	}
	for _, tc := range []struct {
		json, bad string
	}{
		{`{"reason":"x"}`, ""},
		{`{"Reason":"x"}`, "Reason"},
		{`{"REASON":"x"}`, "REASON"},
		{`{"items":[{"name":"a"},{"Name":"b"}]}`, "items.Name"},
		{`{"ptr":{"nAme":"a"}}`, "ptr.nAme"},
		{`{"any":{"Whatever":"a"}}`, ""},
	} {
		var raw any
		if err := json.Unmarshal([]byte(tc.json), &raw); err != nil {
			t.Fatal(err)
		}
		path, ok := exactNames(raw, reflect.TypeOf(&body{}), "")
		if ok != (tc.bad == "") || path != tc.bad {
			t.Errorf("%s: exactNames = %q, %v; want %q", tc.json, path, ok, tc.bad)
		}
	}
}
