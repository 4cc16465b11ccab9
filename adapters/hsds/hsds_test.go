package hsds

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// hsdsSchema compiles testdata's HSDS 3.0 organization list schema, with
// its formats (uuid, email, uri) asserted.
func hsdsSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	path, _ := filepath.Abs(filepath.Join("testdata", "hsds-3.0-organization-list.schema.json"))
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validate(t *testing.T, sch *jsonschema.Schema, raw []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return sch.Validate(v)
}

var sample = []domain.RegisterOrganisation{
	{ID: "school-x", Name: "Basisschool De Klimop", Kind: "school", Services: []domain.Service{{Name: "Schoolmaatschappelijk werk", Description: "Gesprekken met ouders"}}},
	{ID: "zonnebloem-beesd", Name: "Zonnebloem Beesd", Kind: "elderly", Services: []domain.Service{{Name: "Bezoekdienst", Volunteer: true}, {Name: "Uitjes", Volunteer: true}}},
	{ID: "woonstede", Name: "Woonstede", Kind: "housing"},
}

// TestExportIsValidHSDS: the export validates against HSDS 3.0's
// organization list, and reads back as it was.
func TestExportIsValidHSDS(t *testing.T) {
	sch := hsdsSchema(t)
	raw, err := json.Marshal(Export("default", sample))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, sch, raw); err != nil {
		t.Fatalf("the export is not valid HSDS 3.0: %v\n%s", err, raw)
	}
	back, err := Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sample, back); diff != "" {
		t.Errorf("export then import (-want +got):\n%s", diff)
	}
	// The same organisation has the same HSDS id in every export; another
	// network's is another.
	again, _ := json.Marshal(Export("default", sample))
	other, _ := json.Marshal(Export("west", sample))
	if !bytes.Equal(raw, again) || bytes.Equal(raw, other) {
		t.Error("HSDS ids are not stable per network")
	}
	// The schema does refuse what HSDS does not allow.
	broken := strings.Replace(string(raw), `"status":"active"`, `"status":"open"`, 1)
	if err := validate(t, sch, []byte(broken)); err == nil {
		t.Error("a service status outside HSDS's codes validates")
	}
	noID := strings.Replace(string(raw), `"id":"`, `"id":"not-a-uuid-`, 1)
	if err := validate(t, sch, []byte(noID)); err == nil {
		t.Error("an organization id that is not a UUID validates")
	}
}

// TestImportAnotherSystemsDirectory: a directory another HSDS system
// exported (valid HSDS 3.0) imports as the sociale kaart holds it.
func TestImportAnotherSystemsDirectory(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "directory.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, hsdsSchema(t), raw); err != nil {
		t.Fatalf("testdata/directory.json is not valid HSDS 3.0: %v", err)
	}
	got, err := Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.RegisterOrganisation{
		{ID: "1f0c8d4e-2b7a-4c55-9d61-3e8f2a9b7c10", Name: "Stichting Welzijn Lingewaal", Kind: "other",
			Services: []domain.Service{{Name: "Maaltijdservice", Description: "Warme maaltijden aan huis"}}}, // the defunct one left out
		{ID: "zonnebloem-beesd", Name: "Zonnebloem afdeling Beesd", Kind: "elderly",
			Services: []domain.Service{{Name: "Bezoekdienst", Description: "Wekelijks bezoek", Volunteer: true}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("import (-want +got):\n%s", diff)
	}
	// One organization alone, or a bare array, imports too.
	var page struct {
		Contents []json.RawMessage `json:"contents"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		t.Fatal(err)
	}
	one, err := Import(page.Contents[1])
	if err != nil || len(one) != 1 || one[0].ID != "zonnebloem-beesd" {
		t.Errorf("one organization: %v %v", one, err)
	}
	arr, err := Import([]byte("[" + string(page.Contents[0]) + "," + string(page.Contents[1]) + "]"))
	if err != nil || len(arr) != 2 {
		t.Errorf("an array: %v %v", arr, err)
	}
}

func TestImportRefuses(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not JSON", `{`, "hsds"},
		{"no name", `{"id": "1f0c8d4e-2b7a-4c55-9d61-3e8f2a9b7c10", "description": ""}`, "no id or no name"},
		{"an unknown kind", `{"id": "1f0c8d4e-2b7a-4c55-9d61-3e8f2a9b7c10", "name": "X", "description": "", "attributes": [{"id": "4c3f1a7b-5e0d-4f88-8a94-6b1c5d2e0f43",
			"taxonomy_term": {"id": "5d4a2b8c-6f1e-4a99-9ba5-7c2d6e3f1a54", "code": "bakery", "name": "bakery", "description": "", "taxonomy": "buurtsignaal:organisation-kind"}}]}`, "kind \"bakery\""},
	}
	for _, tt := range tests {
		if _, err := Import([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}
