package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/buurtsignaal/buurtsignaal"

// TestTheHouse checks the dependency rules of the code that is not tests:
// an adapter imports no other adapter (shared libraries under
// adapters/internal, and adapters/durablefs which the command uses too, are
// not adapters, and test fixtures such as storetest
// are only imported by tests), and projections import no adapter. The
// domain's own rule is TestDomainImportsOnlyTheStandardLibraryAndUUID.
func TestTheHouse(t *testing.T) {
	root := filepath.Join("..", "..")
	files := 0
	for _, top := range []string{"adapters", "projections"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			pkg := filepath.ToSlash(rel)
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			files++
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if msg := houseRule(pkg, p); msg != "" {
					t.Errorf("%s imports %s: %s", path, p, msg)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 40 {
		t.Fatalf("parsed only %d files: is the test running in cmd/buurtsignaal?", files)
	}
}

// houseRule returns why package pkg (a path from the module root) may not
// import path, or "".
func houseRule(pkg, path string) string {
	own, ok := strings.CutPrefix(path, module+"/")
	if !ok || !strings.HasPrefix(own, "adapters/") {
		return ""
	}
	switch {
	case strings.HasPrefix(own, "adapters/internal/"):
		return ""
	case own == "adapters/durablefs" && !strings.HasPrefix(pkg, "projections"):
		// A library, not an adapter: files written durably, shared by the
		// adapters and the command (which adapters/internal cannot be).
		return ""
	case strings.HasPrefix(pkg, "projections"):
		return "projections import no adapter (they reach stores and keys through domain ports)"
	case adapterOf(pkg) != adapterOf(own):
		return "an adapter imports no other adapter: the port belongs in domain"
	}
	return ""
}

// adapterOf is the adapter a package belongs to: adapters/<name>.
func adapterOf(pkg string) string {
	parts := strings.SplitN(pkg, "/", 3)
	if len(parts) < 2 {
		return pkg
	}
	return parts[0] + "/" + parts[1]
}

func TestHouseRule(t *testing.T) {
	for _, tc := range []struct {
		pkg, path string
		ok        bool
	}{
		{"adapters/audit", module + "/domain", true},
		{"adapters/audit", module + "/adapters/httpapi", false},
		{"adapters/console", module + "/adapters/httpapi", false},
		{"adapters/keystore", module + "/adapters/internal/pebbledb", true},
		{"adapters/keystore", module + "/adapters/durablefs", true},
		{"projections", module + "/adapters/durablefs", false},
		{"adapters/kurrentdb/kurrenttest", module + "/adapters/kurrentdb", true},
		{"adapters/notify", module + "/adapters/notify/notifytest", true},
		{"projections", module + "/adapters/keystore", false},
		{"projections", module + "/domain", true},
		{"adapters/httpapi", "github.com/go-chi/chi/v5", true},
	} {
		if got := houseRule(tc.pkg, tc.path) == ""; got != tc.ok {
			t.Errorf("houseRule(%q, %q) allows = %v, want %v", tc.pkg, tc.path, got, tc.ok)
		}
	}
}

// TestHandlersGoThroughTheReader: the HTTP API and the console never call
// the auditor or the key store themselves (no RecordAccess, RecordDenied or
// Shred, no name of domain.Cipher, domain.Auditor or domain.KeyStore, so no
// cipher to Open with): every read of personal data goes through
// app.Reader, which records before it opens.
func TestHandlersGoThroughTheReader(t *testing.T) {
	root := filepath.Join("..", "..")
	banned := map[string]bool{"RecordAccess": true, "RecordDenied": true, "Shred": true}
	files := 0
	for _, dir := range []string{"adapters/httpapi", "adapters/console"} {
		paths, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files++
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "domain" && (sel.Sel.Name == "Cipher" || sel.Sel.Name == "Auditor" || sel.Sel.Name == "KeyStore") {
					t.Errorf("%s names domain.%s: handlers reach keys and the auditor through app.Reader only", path, sel.Sel.Name)
				}
				if banned[sel.Sel.Name] {
					t.Errorf("%s calls %s: records and keys are app.Reader's", path, sel.Sel.Name)
				}
				return true
			})
		}
	}
	if files < 20 {
		t.Fatalf("parsed only %d files", files)
	}
}
