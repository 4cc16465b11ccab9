package console

import (
	"io/fs"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestEveryTextIsTranslated: every key a template passes to tr has a
// Dutch and an English text, and the two differ only where they may.
func TestEveryTextIsTranslated(t *testing.T) {
	key := regexp.MustCompile(`tr \S+ "([a-z_0-9]+)"`)
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v", err)
	}
	for _, f := range files {
		src, _ := fs.ReadFile(templateFS, f)
		for _, m := range key.FindAllStringSubmatch(string(src), -1) {
			if tx, ok := texts[m[1]]; !ok || tx[0] == "" || tx[1] == "" {
				t.Errorf("%s: %q has no Dutch and English text", f, m[1])
			}
		}
	}
	for _, e := range []configEditor{routingEditor, targetsEditor} {
		for _, f := range e.fields {
			if _, ok := texts["col_"+f]; !ok {
				t.Errorf("%s: column %s has no text", e.title, f)
			}
		}
	}
	if _, err := New(Options{}); err != nil {
		t.Fatalf("the templates do not parse: %v", err)
	}
}

func TestChart(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		series []seriesPoint
		want   chartData
	}{
		{"no points", nil, chartData{Width: 600, Height: 200}},
		{"one point", []seriesPoint{{At: day(1), Open: 2, Overdue: 1}}, chartData{Width: 600, Height: 200, Points: 1, Max: 2,
			OpenPath: "30.0,30.0", OverduePath: "30.0,100.0", First: "2026-11-01", Last: "2026-11-01", LastOpen: 2, LastO: 1,
			YTicks: []chartTick{{170, 0}, {100, 1}, {30, 2}}}},
		{"three points", []seriesPoint{{At: day(1), Open: 0}, {At: day(2), Open: 4, Overdue: 2}, {At: day(3), Open: 2}},
			chartData{Width: 600, Height: 200, Points: 3, Max: 4, OpenPath: "30.0,170.0 300.0,30.0 570.0,100.0",
				OverduePath: "30.0,170.0 300.0,100.0 570.0,170.0", First: "2026-11-01", Last: "2026-11-03", LastOpen: 2,
				YTicks: []chartTick{{170, 0}, {135, 1}, {100, 2}, {65, 3}, {30, 4}}}},
		{"all zero", []seriesPoint{{At: day(1)}, {At: day(2)}}, chartData{Width: 600, Height: 200, Points: 2,
			OpenPath: "30.0,170.0 570.0,170.0", OverduePath: "30.0,170.0 570.0,170.0", First: "2026-11-01", Last: "2026-11-02",
			YTicks: []chartTick{{170, 0}, {30, 1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, chart(tt.series)); diff != "" {
				t.Errorf("chart (-want +got):\n%s", diff)
			}
		})
	}
}
