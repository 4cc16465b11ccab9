package main

import (
	"strings"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestNetworksConfigureTheirOwnWork: one network's categories and
// neighbourhoods never apply to another; a retired category is refused on
// new signals and stays on old ones; a category cannot be left out; a
// neighbourhood outside a network's list is refused, and without a list
// only a neighbourhood code is taken (no free text).
func TestNetworksConfigureTheirOwnWork(t *testing.T) {
	s := startServer(t, "", nil)
	// Both networks start from the defaults.
	for _, who := range []string{"carla", "wim"} {
		c := s.must(200, s.do("GET", "/v1/categories", who, nil), "categories as "+who)
		if c.num("version") != 0 || !strings.Contains(string(c.raw), `"id":"debt"`) || c.header.Get("ETag") != `"0"` {
			t.Fatalf("defaults for %s: %s", who, c.raw)
		}
	}
	old := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Oud Signaal")), "a debt signal before the change").str("id")

	cats := domain.DefaultCategories()
	for i := range cats {
		if cats[i].ID == "debt" {
			cats[i].Retired = true
		}
	}
	cats = append(cats, domain.Category{ID: "mantelzorg", LabelNL: "Mantelzorg", LabelEN: "Informal care", Norms: map[string]domain.Norm{"normal": {WorkingDays: 5}}})
	s.must(409, s.do("PUT", "/v1/categories", "gert", map[string]any{"categories": cats}, "If-Match", `"3"`), "stale If-Match")
	s.must(422, s.do("PUT", "/v1/categories", "gert", map[string]any{"categories": cats[1:]}, "If-Match", `"0"`), "a category left out")
	s.must(200, s.do("PUT", "/v1/categories", "gert", map[string]any{"categories": cats}, "If-Match", `"0"`), "retire debt, add mantelzorg")
	s.must(403, s.do("PUT", "/v1/categories", "anna", map[string]any{"categories": cats}), "a professional edits")

	debt := raiseBody("Nieuw Signaal")
	debt["categories"] = []string{"debt"}
	s.must(422, s.do("POST", "/v1/signals", "carla", debt), "a retired category on a new signal")
	s.must(201, s.do("POST", "/v1/signals", "wim", debt), "the other network still has debt") // wim raises as a professional of west
	care := raiseBody("Mantelzorg Signaal")
	care["categories"] = []string{"mantelzorg"}
	s.must(201, s.do("POST", "/v1/signals", "carla", care), "the new category")
	s.must(422, s.do("POST", "/v1/signals", "wim", care), "another network's category")
	if got := s.subjectOf(old); got == "" {
		t.Fatal("the old signal is gone")
	}

	// Neighbourhoods: a code while there is no list; a closed list once set.
	free := raiseBody("Vrije Tekst")
	free["neighbourhood"] = "Johanna Testpersoon woont hier"
	s.must(422, s.do("POST", "/v1/signals", "carla", free), "free text as a neighbourhood")
	s.must(200, s.do("PUT", "/v1/neighbourhoods", "gert", map[string]any{"neighbourhoods": []any{
		map[string]any{"id": "centrum", "name": "Centrum"}, map[string]any{"id": "noord", "name": "Noord"}}}), "set neighbourhoods")
	zuid := raiseBody("Zuid Signaal")
	zuid["neighbourhood"] = "zuid"
	s.must(422, s.do("POST", "/v1/signals", "carla", zuid), "a neighbourhood outside the list")
	s.must(201, s.do("POST", "/v1/signals", "wim", zuid), "the other network keeps codes")
	s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Centrum Signaal")), "a listed neighbourhood")
	s.must(422, s.do("PUT", "/v1/neighbourhoods", "gert", map[string]any{"neighbourhoods": []any{map[string]any{"id": "noord", "name": "Noord"}}}), "a neighbourhood left out")
}
