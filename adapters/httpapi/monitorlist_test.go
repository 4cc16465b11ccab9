package httpapi

import (
	"bytes"
	"encoding/csv"
	"net/http/httptest"
	"testing"
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
