package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

var errTooLarge = &domain.Error{Kind: domain.KindTooLarge, Code: "body_too_large", Message: "the request body is too large"}

// decode reads one JSON object into v: size-limited, unknown fields and
// trailing data rejected, invalid UTF-8 rejected. Errors are 400 or 413, and
// never echo the body.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &domain.Error{Kind: domain.KindInvalid, Code: errBadRequest.Code, Message: "the body must be application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return &domain.Error{Kind: domain.KindInvalid, Code: errBadRequest.Code, Message: "the request body could not be read"}
	}
	if !utf8.Valid(body) {
		return &domain.Error{Kind: domain.KindInvalid, Code: errBadRequest.Code, Message: "the request body is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := "the request body is not valid JSON of the expected shape"
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute) && ute.Field != "":
			msg = "field " + strconv.Quote(ute.Field) + " has the wrong type"
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			msg = "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
		}
		return &domain.Error{Kind: domain.KindInvalid, Code: errBadRequest.Code, Message: msg}
	}
	if dec.More() {
		return &domain.Error{Kind: domain.KindInvalid, Code: errBadRequest.Code, Message: "the request body has data after the JSON object"}
	}
	// encoding/json matches field names regardless of case ("Reason" fills
	// reason): the contract's names are exact, so any other spelling is an
	// unknown field.
	var generic any
	if err := json.Unmarshal(body, &generic); err == nil {
		if path, ok := exactNames(generic, reflect.TypeOf(v), ""); !ok {
			return &domain.Error{Kind: domain.KindInvalid, Code: errBadRequest.Code, Message: "unknown field " + strconv.Quote(path)}
		}
	}
	return nil
}

// exactNames checks that every object key in raw (a decoded JSON value) is
// the exact json name of a field of t, recursively; it returns the path of
// the first key that is not.
func exactNames(raw any, t reflect.Type, at string) (string, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "", true
	}
	switch v := raw.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return "", true // maps and any take every key
		}
		fields := jsonFields(t)
		for k, sub := range v {
			ft, ok := fields[k]
			if !ok {
				return at + k, false
			}
			if path, ok := exactNames(sub, ft, at+k+"."); !ok {
				return path, false
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for _, sub := range v {
				if path, ok := exactNames(sub, t.Elem(), at); !ok {
					return path, false
				}
			}
		}
	}
	return "", true
}

// jsonFields maps the json names of a struct's fields (embedded structs
// flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// fields collects validation errors.
type fields []domain.FieldError

func (f *fields) add(field, msg string) {
	*f = append(*f, domain.FieldError{Field: field, Message: msg})
}

func (f *fields) required(field, v string) {
	if strings.TrimSpace(v) == "" {
		f.add(field, "is required")
	}
}

func (f *fields) maxLen(field, v string, n int) {
	if utf8.RuneCountInString(v) > n {
		f.add(field, "is longer than "+strconv.Itoa(n)+" characters")
	}
}

func (f fields) err() error {
	if len(f) == 0 {
		return nil
	}
	return domain.Invalid(f...)
}
