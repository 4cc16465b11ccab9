package domain

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/buurtsignaal/buurtsignaal"

// allowedInDomain reports whether domain code may import path: the standard
// library (no dot in the first path element), google/uuid, and the domain's
// own packages.
func allowedInDomain(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	switch {
	case !strings.Contains(first, "."):
		return true
	case path == "github.com/google/uuid":
		return true
	case path == modulePath+"/domain" || strings.HasPrefix(path, modulePath+"/domain/"):
		return true
	}
	return false
}

func TestAllowedInDomain(t *testing.T) {
	for path, want := range map[string]bool{
		"fmt": true, "encoding/json": true, "log/slog": true,
		"github.com/google/uuid":                         true,
		modulePath + "/domain":                           true,
		modulePath + "/domain/eventlog":                  true,
		modulePath + "/domainx":                          false,
		modulePath + "/adapters/httpapi":                 false,
		modulePath + "/projections":                      false,
		"github.com/google/go-cmp/cmp":                   false,
		"github.com/google/uuid/v2":                      false,
		"golang.org/x/text/unicode/norm":                 false,
		"github.com/cockroachdb/pebble/v2":               false,
		"pgregory.net/rapid":                             false,
		"example.com":                                    false,
		"github.com/EventStore/EventStore-Client-Go/v4/": false,
	} {
		if got := allowedInDomain(path); got != want {
			t.Errorf("allowedInDomain(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestDomainImportsOnlyTheStandardLibraryAndUUID keeps the domain pure: every
// non-test Go file under domain/, whatever its build tags, imports only the
// standard library, google/uuid and the domain's own packages.
func TestDomainImportsOnlyTheStandardLibraryAndUUID(t *testing.T) {
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if !allowedInDomain(p) {
				t.Errorf("%s imports %s: domain code may import only the standard library, github.com/google/uuid and the domain's own packages", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("parsed only %d files: is the test running in domain/?", files)
	}
}
