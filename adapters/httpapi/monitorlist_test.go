package httpapi

import (
	"bytes"
	"encoding/csv"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// TestCSVCellsAreNoFormulas: a cell a spreadsheet would take for a formula
// gets a leading apostrophe; the line parses back with encoding/csv to the
// cells as written, quotes and commas included.
func TestCSVCellsAreNoFormulas(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"+31 6", "'+31 6"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"team-a", "team-a"},
		{"a,b \"c\"", "a,b \"c\""},
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if diff := cmp.Diff([]string{tc.want}, roundTrip(t, []string{tc.in})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func roundTrip(t testing.TB, rec []string) []string {
	w := httptest.NewRecorder()
	cw := startCSV(w, "x.csv")
	cw.Write(safeCSV(append([]string{"k"}, rec...))) // a first cell: a line of one empty cell is no line
	cw.Flush()
	got, err := csv.NewReader(bytes.NewReader(w.Body.Bytes())).Read()
	if err != nil {
		t.Fatalf("%q does not parse: %v", w.Body.String(), err)
	}
	return got[1:]
}

// FuzzCSVCells: whatever a cell holds, the line parses back to one cell
// that starts with no formula character.
func FuzzCSVCells(f *testing.F) {
	for _, s := range []string{"=1+1", "-", "@", "+", "\"", "a\nb", ",", "\t=", "ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip()
		}
		got := roundTrip(t, []string{s})
		if len(got) != 1 {
			t.Fatalf("%q became %d cells", s, len(got))
		}
		if c := got[0]; c != "" && bytes.ContainsRune([]byte("=+-@\t\r"), rune(c[0])) {
			t.Fatalf("%q starts a formula", c)
		}
	})
}

// TestPeriodsSplitAtCalendarBoundaries: per month and per week, periods
// start at the local calendar's boundaries (across a DST change) and cover
// the whole span without gaps; too many is refused.
func TestPeriodsSplitAtCalendarBoundaries(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, ams).UTC() }
	for _, tc := range []struct {
		name     string
		from, to time.Time
		per      string
		starts   []time.Time
	}{
		{"one period", day(2026, 3, 10), day(2026, 3, 20), "", []time.Time{day(2026, 3, 10)}},
		{"months across the clock change", day(2026, 2, 15), day(2026, 4, 2), "month", []time.Time{day(2026, 2, 15), day(2026, 3, 1), day(2026, 4, 1)}},
		{"weeks start on Monday", day(2026, 3, 25), day(2026, 4, 8), "week", []time.Time{day(2026, 3, 25), day(2026, 3, 30), day(2026, 4, 6)}},
		{"a Monday start", day(2026, 3, 30), day(2026, 4, 6), "week", []time.Time{day(2026, 3, 30)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := periods(tc.from, tc.to, tc.per, ams)
			if err != nil {
				t.Fatal(err)
			}
			var starts []time.Time
			for i, p := range got {
				starts = append(starts, p[0])
				if i > 0 && !got[i-1][1].Equal(p[0]) {
					t.Errorf("a gap before period %d", i)
				}
			}
			if !got[len(got)-1][1].Equal(tc.to) {
				t.Errorf("the last period ends %s, want %s", got[len(got)-1][1], tc.to)
			}
			if diff := cmp.Diff(tc.starts, starts); diff != "" {
				t.Errorf("starts (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := periods(day(2020, 1, 1), day(2026, 1, 1), "month", ams); err == nil {
		t.Error("72 months are taken")
	}
}
