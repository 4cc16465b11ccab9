package domain

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "write golden files of event types (and versions) that have none; never rewrite one")

// golden is a golden file: an event body as a version of this code wrote it.
type golden struct {
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
}

var goldenName = regexp.MustCompile(`^([A-Za-z]+)\.v([0-9]+)\.json$`)

// TestGoldenEvents decodes every golden file in testdata/events, old
// versions through the upcasters, forever: a change that breaks events
// already in some log fails here. Every registered type must have a golden
// file of its first version and of its current one; with -update, the
// missing ones are written from registrySamples.
func TestGoldenEvents(t *testing.T) {
	reg := NewRegistry()
	dir := filepath.Join("testdata", "events")
	samples := map[string]Event{}
	for _, e := range registrySamples() {
		samples[e.EventType()] = e
	}
	if *update {
		for _, typ := range reg.Types() {
			for _, v := range []int{SchemaVersion, reg.Version(typ)} {
				path := filepath.Join(dir, fmt.Sprintf("%s.v%d.json", typ, v))
				if _, err := os.Stat(path); err == nil || v != reg.Version(typ) {
					continue // never rewrite history; an old version cannot be written now
				}
				data, err := Encode(samples[typ])
				if err != nil {
					t.Fatal(err)
				}
				out, _ := json.MarshalIndent(golden{Type: typ, SchemaVersion: v, Data: data}, "", "  ")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range files {
		m := goldenName.FindStringSubmatch(f.Name())
		if m == nil {
			t.Errorf("%s: not a golden file name (Type.vN.json)", f.Name())
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Errorf("%s: %v", f.Name(), err)
			continue
		}
		if v, _ := strconv.Atoi(m[2]); g.Type != m[1] || g.SchemaVersion != v {
			t.Errorf("%s: holds %s v%d", f.Name(), g.Type, g.SchemaVersion)
		}
		have[f.Name()] = true
		e, err := reg.DecodeVersion(g.Type, g.SchemaVersion, g.Data)
		if err != nil {
			t.Errorf("%s no longer decodes: %v", f.Name(), err)
			continue
		}
		if g.SchemaVersion != reg.Version(g.Type) {
			continue
		}
		// The current version's golden file is what the code still writes:
		// the same fields, the same names.
		again, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		var want, got bytes.Buffer
		_ = json.Compact(&want, g.Data)
		_ = json.Compact(&got, again)
		if want.String() != got.String() {
			t.Errorf("%s: the current code encodes it as\n%s\nnot\n%s\n(a new field or a new name needs a new version: see the doc on SchemaVersion)", f.Name(), got.String(), want.String())
		}
	}
	for _, typ := range reg.Types() {
		for _, v := range []int{SchemaVersion, reg.Version(typ)} {
			if name := fmt.Sprintf("%s.v%d.json", typ, v); !have[name] {
				t.Errorf("no golden file %s (go test ./domain -run TestGoldenEvents -update writes it)", name)
			}
		}
	}
}
