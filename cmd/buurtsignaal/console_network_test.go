package main

import (
	"bytes"
	"encoding/csv"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestConsoleNetworksConfigureTheirOwnWork: through the console, a
// coordinator edits the network's categories, norms and feedback texts (a
// preview saves nothing; a bad norm is refused next to its field); the
// other network's coordinator sees none of it; a signaller raises with the
// new category, and the coordinator's signal list and its CSV download
// show the signal with the norm version it was raised under.
func TestConsoleNetworksConfigureTheirOwnWork(t *testing.T) {
	s := startServer(t, "", nil)
	g := newConsoleClient(t, s)
	g.signIn("tok-gert")

	// Norms: a bad one is refused next to its input; a good one is saved.
	g.must(200, g.get("/console/norms"), "norms", `id="norms-high"`, `value="3d"`)
	form := url.Values{"version": {"0"}, "norm-acute": {"24h"}, "norm-high": {"soon"}, "norm-normal": {"10d"}, "feedback_working_days": {"5"}}
	g.must(422, g.post("/console/norms", form), "a bad norm", `id="err-norms-high"`, `value="soon"`)
	form.Set("norm-high", "6h")
	g.must(200, g.post("/console/norms", form), "norms saved", "Opgeslagen.", `value="6h"`)

	// Feedback texts: a preview shows the text without saving it.
	g.must(200, g.get("/console/feedback-texts"), "feedback texts", `id="preview"`)
	texts := url.Values{"version": {"0"}}
	for code, t := range domain.DefaultFeedbackTexts() {
		texts.Set("text-"+code+"-nl", t.NL)
		texts.Set("text-"+code+"-en", t.EN)
	}
	texts.Set("text-received-nl", "Het team uit Beesd heeft uw signaal.")
	texts.Set("preview", "1")
	g.must(200, g.post("/console/feedback-texts", texts), "preview", `data-code="received">Het team uit Beesd heeft uw signaal.`, "nog niet opgeslagen")
	if v := s.must(200, s.do("GET", "/v1/feedback-texts", "gert", nil), "texts").header.Get("ETag"); v != `"0"` {
		t.Fatalf("a preview saved the texts: version %s", v)
	}
	texts.Del("preview")
	texts.Set("text-closed-en", "")
	g.must(422, g.post("/console/feedback-texts", texts), "an empty text", `id="err-text-closed-en"`)
	texts.Set("text-closed-en", "Done.")
	g.must(200, g.post("/console/feedback-texts", texts), "texts saved", "Opgeslagen.", "Het team uit Beesd heeft uw signaal.")

	// Categories: one of the network's own, with its own norm.
	g.must(200, g.get("/console/categories"), "categories", `id="config-help"`, `value="loneliness"`)
	cats := url.Values{"version": {"0"}}
	for i, c := range append(domain.DefaultCategories(), domain.Category{ID: "mantelzorg", LabelNL: "Mantelzorg", LabelEN: "Informal care"}) {
		cats.Add("position", strconv.Itoa(i+1))
		for f, v := range map[string]string{"id": c.ID, "label_nl": c.LabelNL, "label_en": c.LabelEN, "description": "", "norms": "", "retired": ""} {
			if c.ID == "mantelzorg" && f == "norms" {
				v = "high: 2h"
			}
			cats.Add(f, v)
		}
	}
	g.must(200, g.post("/console/categories", cats), "categories saved", "Opgeslagen.", `value="high: 2h"`)

	// The other network sees none of it.
	w := newConsoleClient(t, s)
	w.signIn("tok-walter")
	w.must(200, w.get("/console/categories"), "west's categories")
	w.must(200, w.get("/console/norms"), "west's norms", `value="3d"`)
	w.must(200, w.get("/console/feedback-texts"), "west's texts")
	if strings.Contains(w.page, "Beesd") || strings.Contains(w.page, "mantelzorg") {
		t.Error("one network's configuration shows in the other's console")
	}

	// A signaller raises with the new category; the list shows it. The
	// neighbourhood field suggests the network's active neighbourhoods.
	s.must(200, s.do("PUT", "/v1/neighbourhoods", "gert", map[string]any{"neighbourhoods": []any{
		map[string]any{"id": "centrum", "name": "Centrum"}, map[string]any{"id": "dorp", "name": "Het Dorp"}}}, "If-Match", `"0"`), "neighbourhoods")
	v := newConsoleClient(t, s)
	v.signIn("tok-carla")
	v.must(200, v.get("/console/signals/new"), "raise form", `value="mantelzorg"`, "Mantelzorg",
		`list="raise-neighbourhoods"`, `<option value="dorp">Het Dorp</option>`)
	v.must(200, v.post("/console/signals", url.Values{"name": {"Zorg Persoon"}, "neighbourhood": {"centrum"}, "categories": {"mantelzorg"},
		"urgency": {"high"}, "description": {"zorgt voor haar man"}, "consent": {"informed"}, "idem": {"net-1"}}), "raise", "Mantelzorg")
	g.must(200, g.get("/console/monitor/signals?category=mantelzorg"), "the signal list", `id="signals"`, "Mantelzorg", `<td class="norm-version">1.1</td>`,
		`<option value="centrum">Centrum</option>`,
		`href="/console/monitor/signals.csv?category=mantelzorg"`)
	if strings.Contains(g.page, "Zorg Persoon") {
		t.Error("the signal list shows personal data")
	}
	resp, err := g.hc.Get(s.base + "/console/monitor/signals.csv?category=mantelzorg")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(recs) != 2 || recs[1][4] != "mantelzorg" {
		t.Fatalf("the CSV download: %v %s\n%s", err, resp.Header.Get("Content-Type"), body)
	}
	w.must(200, w.get("/console/monitor/signals"), "west's list", `id="signals-none"`)
}
