package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestSocialeKaartInHSDS: GET /v1/organisations?format=hsds answers the
// network's sociale kaart as valid HSDS 3.0 (checked against the schema of
// adapters/hsds/testdata), and `buurtsignaal import-hsds` loads another
// system's HSDS directory into it, through the running server's admin
// socket; a second import registers nothing again.
func TestSocialeKaartInHSDS(t *testing.T) {
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn"})
	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school",
		"services": []any{map[string]any{"name": "Schoolmaatschappelijk werk", "volunteer": false}}}), "register")
	file := filepath.Join("..", "..", "adapters", "hsds", "testdata", "directory.json")
	env := map[string]string{"BUURTSIGNAAL_DATA_DIR": s.dataDir}
	out, _, err := runCLI(t, env, "import-hsds", file)
	if err != nil || !strings.Contains(out, "registered 2 organisations (1f0c8d4e-2b7a-4c55-9d61-3e8f2a9b7c10, zonnebloem-beesd); 0 already") {
		t.Fatalf("import-hsds: %v\n%s", err, out)
	}
	var export answer
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		export = s.must(200, s.do("GET", "/v1/organisations?format=hsds", "anna", nil), "export")
		if n, _ := export.body["total_items"].(float64); n == 3 || time.Now().After(deadline) {
			break
		}
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	path, _ := filepath.Abs(filepath.Join("..", "..", "adapters", "hsds", "testdata", "hsds-3.0-organization-list.schema.json"))
	sch, err := c.Compile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(export.raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("the export is not valid HSDS 3.0: %v\n%s", err, export.raw)
	}
	var names []string
	for _, o := range export.body["contents"].([]any) {
		names = append(names, o.(map[string]any)["name"].(string))
	}
	slices.Sort(names)
	if want := []string{"School X", "Stichting Welzijn Lingewaal", "Zonnebloem afdeling Beesd"}; !slices.Equal(names, want) {
		t.Errorf("exported %v, want %v", names, want)
	}
	if !strings.Contains(string(export.raw), `"identifier":"zonnebloem-beesd"`) || strings.Contains(string(export.raw), "Boodschappenbus") {
		t.Errorf("the export lacks the imported identifier or holds the defunct service: %s", export.raw)
	}
	out, _, err = runCLI(t, env, "import-hsds", file)
	if err != nil || !strings.Contains(out, "registered 0 organisations (); 2 already on the sociale kaart") {
		t.Errorf("a second import-hsds: %v\n%s", err, out)
	}
	s.must(422, s.do("GET", "/v1/organisations?format=csv", "anna", nil), "another format")
	// With the server stopped, the command opens the data directory itself.
	s.stop()
	out, _, err = runCLI(t, env, "import-hsds", file)
	if err != nil || !strings.Contains(out, "2 already on the sociale kaart") {
		t.Errorf("import-hsds without a server: %v\n%s", err, out)
	}
}
