package main

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// readCSV parses a CSV answer with encoding/csv, as a spreadsheet import
// would, into a map per line by the header's names.
func readCSV(t *testing.T, a answer) []map[string]string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	recs, err := csv.NewReader(bytes.NewReader(a.raw)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, a.raw)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}

// listed is the monitor's signal list, by id.
func listed(t *testing.T, s *server, who, query string) map[string]map[string]any {
	t.Helper()
	page := s.must(200, s.do("GET", "/v1/monitor/signals?"+query, who, nil), "the signal list of "+who)
	out := map[string]map[string]any{}
	items, _ := page.body["items"].([]any)
	for _, it := range items {
		m := it.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

// TestTwoNetworksWorkApart: two networks in one deployment work with their
// own norms, categories and feedback texts, end to end through the real
// server: a norm change applies to signals raised after it (and the list
// and the figures say which norm version each used), a category retired
// after a signal stays on it and in the figures, a signaller keeps the
// feedback text of the moment it was given, and one network's
// configuration never shows in or applies to the other; the exports parse
// as CSV and keep the small-cell rule.
func TestTwoNetworksWorkApart(t *testing.T) {
	clk := &clock{}
	start := clientFacingStart(t, time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)) // a Monday
	clk.set(start)
	s := startServerWith(t, "", nil, clk.now)
	pos := func(a answer) string { return strconv.Itoa(a.num("position")) }

	old := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Oude Norm")), "raised under the defaults")

	// The default network: high within 6 hours, feedback within 2 working
	// days; loneliness retired; its own feedback text.
	norms := domain.DefaultNorms()
	norms.ByUrgency["high"] = domain.Norm{Hours: 6}
	norms.FeedbackWorkDays = 2
	s.must(200, s.do("PUT", "/v1/norms", "gert", map[string]any{"norms": norms}, "If-Match", `"0"`), "norms")
	cats := domain.DefaultCategories()
	for i := range cats {
		cats[i].Retired = cats[i].ID == "loneliness"
	}
	s.must(200, s.do("PUT", "/v1/categories", "gert", map[string]any{"categories": cats}, "If-Match", `"0"`), "retire loneliness")
	texts := domain.DefaultFeedbackTexts()
	texts["received"] = domain.FeedbackText{NL: "Team Beesd heeft uw signaal gezien.", EN: "Team Beesd has seen your signal."}
	s.must(200, s.do("PUT", "/v1/feedback-texts", "gert", map[string]any{"texts": texts}, "If-Match", `"0"`), "texts")

	// West: a category of its own, due within 2 hours when high.
	west := append(domain.DefaultCategories(), domain.Category{ID: "mantelzorg", LabelNL: "Mantelzorg", LabelEN: "Informal care",
		Norms: map[string]domain.Norm{"high": {Hours: 2}}})
	s.must(200, s.do("PUT", "/v1/categories", "walter", map[string]any{"categories": west}, "If-Match", `"0"`), "west's categories")
	if got := s.must(200, s.do("GET", "/v1/feedback-texts", "walter", nil), "west's texts"); got.header.Get("ETag") != `"0"` ||
		bytes.Contains(got.raw, []byte("Beesd")) {
		t.Errorf("another network's feedback texts apply in west: %s", got.raw)
	}
	if c := s.must(200, s.do("GET", "/v1/categories", "gert", nil), "categories"); bytes.Contains(c.raw, []byte("mantelzorg")) {
		t.Error("west's category shows in the default network")
	}

	clk.set(start.Add(time.Hour))
	body := raiseBody("Nieuwe Norm")
	body["categories"] = []string{"malnutrition"}
	s.must(422, s.do("POST", "/v1/signals", "carla", raiseBody("Eenzaam")), "a retired category")
	after := s.must(201, s.do("POST", "/v1/signals", "carla", body), "raised under the new norms")
	wb := raiseBody("West Signaal")
	wb["categories"] = []string{"mantelzorg"}
	w := s.must(201, s.do("POST", "/v1/signals", "wim", wb), "raised in west")

	clk.set(start.Add(2 * time.Hour))
	from := start.AddDate(0, -1, 0).Format(time.DateOnly)
	mine := listed(t, s, "gert", "min_position="+pos(w))
	theirs := listed(t, s, "walter", "min_position="+pos(w))
	if len(mine) != 2 || mine[w.str("id")] != nil || len(theirs) != 1 || theirs[w.str("id")] == nil {
		t.Fatalf("each coordinator lists their own network's signals: %d and %d", len(mine), len(theirs))
	}
	due := func(m map[string]any) time.Duration {
		raised, _ := time.Parse(time.RFC3339, m["raised_at"].(string))
		d, _ := time.Parse(time.RFC3339, m["response_due_at"].(string))
		return d.Sub(raised)
	}
	for _, tc := range []struct {
		name    string
		item    map[string]any
		version string
		due     time.Duration
	}{
		{"raised before the change: the defaults", mine[old.str("id")], "0.0", 0},
		{"raised after: the new norm", mine[after.str("id")], "1.1", 6 * time.Hour},
		{"west: its category's override", theirs[w.str("id")], "0.1", 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.item["norm_version"] != tc.version || (tc.due != 0 && due(tc.item) != tc.due) || (tc.due == 0 && due(tc.item) < 48*time.Hour) {
				t.Errorf("norm version %v due after %s, want %s %s", tc.item["norm_version"], due(tc.item), tc.version, tc.due)
			}
		})
	}
	if cats := mine[old.str("id")]["categories"].([]any); len(cats) != 2 || cats[0] != "loneliness" {
		t.Errorf("the retired category is gone from the old signal: %v", cats)
	}
	rep := s.must(200, s.do("GET", "/v1/monitor/response?from="+from+"&min_position="+pos(w), "gert", nil), "figures")
	if !bytes.Contains(rep.raw, []byte(`"key":"loneliness"`)) || !bytes.Contains(rep.raw, []byte(`"norm_versions":[{"version":"0.0","signals":null},{"version":"1.1","signals":null}]`)) {
		t.Errorf("the figures lose the retired category or the norm versions (named, their one signal each suppressed): %s", rep.raw)
	}

	// Feedback keeps the text of its moment; west reads its own (default).
	id := after.str("id")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "gert", map[string]any{"team_id": "team-a"}), "handover")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/feedback", "anna", map[string]any{"code": "received"}), "feedback")
	texts["received"] = domain.FeedbackText{NL: "Later veranderd.", EN: "Changed later."}
	changed := s.must(200, s.do("PUT", "/v1/feedback-texts", "gert", map[string]any{"texts": texts}, "If-Match", `"1"`), "texts again")
	wid := w.str("id")
	s.must(200, s.do("POST", "/v1/signals/"+wid+"/handover", "walter", map[string]any{"team_id": "team-w"}), "west handover")
	s.must(200, s.do("POST", "/v1/signals/"+wid+"/accept", "wim", nil), "west accept")
	wfb := s.must(200, s.do("POST", "/v1/signals/"+wid+"/feedback", "wim", map[string]any{"code": "received"}), "west feedback")
	read := func(who, signal, lang, at string) string {
		a := s.must(200, s.do("GET", "/v1/my/signals?min_position="+at, who, nil, "Accept-Language", lang), "my signals")
		for _, it := range a.body["items"].([]any) {
			m := it.(map[string]any)
			if m["id"] == signal {
				fb := m["feedback"].([]any)
				return fb[len(fb)-1].(map[string]any)["text"].(string)
			}
		}
		return ""
	}
	for _, tc := range []struct{ who, signal, lang, want string }{
		{"carla", id, "nl", "Team Beesd heeft uw signaal gezien."},
		{"carla", id, "en", "Team Beesd has seen your signal."},
		{"wim", wid, "nl", domain.DefaultFeedbackTexts()["received"].NL},
	} {
		if got := read(tc.who, tc.signal, tc.lang, strconv.Itoa(max(changed.num("position"), wfb.num("position")))); got != tc.want {
			t.Errorf("%s reads %q (%s), want %q", tc.who, got, tc.lang, tc.want)
		}
	}

	// The exports: the list as CSV, the figures under the small-cell rule.
	lines := readCSV(t, s.must(200, s.do("GET", "/v1/monitor/signals?format=csv&min_position="+pos(wfb), "gert", nil), "list as CSV"))
	var ids []string
	for _, l := range lines {
		ids = append(ids, l["id"]+" "+l["norm_version"])
	}
	if diff := cmp.Diff([]string{id + " 1.1", old.str("id") + " 0.0"}, ids); diff != "" {
		t.Errorf("the CSV list (-want +got):\n%s", diff)
	}
	figs := readCSV(t, s.must(200, s.do("GET", "/v1/monitor/response?from="+from, "gert", nil, "Accept", "text/csv"), "figures as CSV"))
	if figs[0]["group"] != "all" || figs[0]["total"] != "<5" || figs[0]["within_norm_share"] != "<5" {
		t.Errorf("two signals are published as figures: %v", figs[0])
	}
	monthly := readCSV(t, s.must(200, s.do("GET", "/v1/monitor/response?format=csv&per=month&from="+from, "gert", nil), "figures per month"))
	var spans []string
	for _, l := range monthly {
		if l["group"] == "all" {
			spans = append(spans, l["from"]+" "+l["to"])
		}
	}
	if len(spans) < 2 || !strings.HasPrefix(spans[0], start.AddDate(0, -1, 0).Format(time.DateOnly)) {
		t.Errorf("the figures per month cover %v", spans)
	}
	s.must(422, s.do("GET", "/v1/monitor/response?per=month", "gert", nil), "per without CSV")
	s.must(422, s.do("GET", "/v1/monitor/signals?format=xlsx", "gert", nil), "an unknown format")
	s.must(422, s.do("GET", "/v1/monitor/signals?status=open", "gert", nil), "an unknown status")
}
