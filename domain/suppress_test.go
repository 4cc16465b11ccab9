package domain

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// table builds the figures of a table with margins: rows x cols cells,
// then each row's total, each column's total and the grand total, and the
// relations between them.
func table(cells [][]int) ([]int, []Relation) {
	rows, cols := len(cells), len(cells[0])
	var v []int
	for _, r := range cells {
		v = append(v, r...)
	}
	cell := func(r, c int) int { return r*cols + c }
	rowTotal := func(r int) int { return rows*cols + r }
	colTotal := func(c int) int { return rows*cols + rows + c }
	grand := rows*cols + rows + cols
	var rels []Relation
	colSums := make([]int, cols)
	all := 0
	for r := range rows {
		sum := 0
		rel := Relation{Total: rowTotal(r)}
		for c := range cols {
			sum += cells[r][c]
			colSums[c] += cells[r][c]
			rel.Parts = append(rel.Parts, cell(r, c))
		}
		all += sum
		v = append(v, sum)
		rels = append(rels, rel)
	}
	v = append(v, colSums...)
	v = append(v, all)
	for c := range cols {
		rel := Relation{Total: colTotal(c)}
		for r := range rows {
			rel.Parts = append(rel.Parts, cell(r, c))
		}
		rels = append(rels, rel)
	}
	grandRows, grandCols := Relation{Total: grand}, Relation{Total: grand}
	for r := range rows {
		grandRows.Parts = append(grandRows.Parts, rowTotal(r))
	}
	for c := range cols {
		grandCols.Parts = append(grandCols.Parts, colTotal(c))
	}
	return v, append(rels, grandRows, grandCols)
}

func TestSuppress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cells [][]int
		k     int
		want  []bool // cells, row totals, column totals, grand total
	}{
		{"nothing small", [][]int{{5, 6}, {7, 8}}, 5,
			[]bool{false, false, false, false, false, false, false, false, false}},
		{"zeros are published", [][]int{{0, 6}, {7, 0}}, 5,
			[]bool{false, false, false, false, false, false, false, false, false}},
		// 2 is primary; 6 (next smallest in its row) and 7 (in its column)
		// secondary, and then 8 so the second row and column keep two.
		{"one small cell takes a rectangle", [][]int{{2, 6}, {7, 8}}, 5,
			[]bool{true, true, true, true, false, false, false, false, false}},
		// A row total below k: the total and its non-zero cell; then the
		// column's next smallest cell (9), and the next smallest row total
		// (17), which keeps the second row at two hidden figures too.
		{"a small row", [][]int{{3, 0}, {9, 8}, {10, 12}}, 5,
			[]bool{true, false, true, false, false, false, true, true, false, false, false, false}},
		{"k is never below 3", [][]int{{2, 6}, {7, 8}}, 1,
			[]bool{true, true, true, true, false, false, false, false, false}},
		{"k 3 publishes 4", [][]int{{4, 6}, {7, 8}}, 3,
			[]bool{false, false, false, false, false, false, false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, rels := table(tc.cells)
			if diff := cmp.Diff(tc.want, Suppress(v, rels, tc.k)); diff != "" {
				t.Errorf("Suppress(%v) (-want +got):\n%s", v, diff)
			}
		})
	}
}

func TestSuppressK(t *testing.T) {
	for in, want := range map[int]int{0: 5, 1: 3, 2: 3, 3: 3, 5: 5, 10: 10} {
		if got := SuppressK(in); got != want {
			t.Errorf("SuppressK(%d) = %d, want %d", in, got, want)
		}
	}
}

// recover plays the attacker: with the published figures and the
// relations, it solves every relation with one unknown left, again and
// again, and returns the figures it learnt.
func recoverHidden(values []int, hidden []bool, rels []Relation) map[int]int {
	known := map[int]int{}
	for i, v := range values {
		if !hidden[i] {
			known[i] = v
		}
	}
	for changed := true; changed; {
		changed = false
		for _, r := range rels {
			members := append([]int{r.Total}, r.Parts...)
			unknown, n := -1, 0
			for _, i := range members {
				if _, ok := known[i]; !ok {
					unknown, n = i, n+1
				}
			}
			if n != 1 {
				continue
			}
			sum := 0
			for _, p := range r.Parts {
				if p != unknown {
					sum += known[p]
				}
			}
			if unknown == r.Total {
				known[unknown] = sum
			} else {
				known[unknown] = known[r.Total] - sum
			}
			changed = true
		}
	}
	return known
}

// TestSuppressProperty: on any table with margins, every figure below k
// (and above 0) is hidden, and no hidden figure can be recovered from the
// published figures and margins by subtraction, however the subtractions
// are chained.
func TestSuppressProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rows, cols := rapid.IntRange(1, 6).Draw(t, "rows"), rapid.IntRange(1, 6).Draw(t, "cols")
		cells := make([][]int, rows)
		for r := range cells {
			cells[r] = rapid.SliceOfN(rapid.IntRange(0, 12), cols, cols).Draw(t, "row")
		}
		k := rapid.IntRange(0, 8).Draw(t, "k")
		v, rels := table(cells)
		hidden := Suppress(v, rels, k)
		for i, x := range v {
			if x > 0 && x < SuppressK(k) && !hidden[i] {
				t.Fatalf("figure %d = %d published with k %d", i, x, SuppressK(k))
			}
		}
		known := recoverHidden(v, hidden, rels)
		for i := range v {
			if _, ok := known[i]; ok && hidden[i] {
				t.Fatalf("hidden figure %d = %d recovered from %v (hidden %v)", i, v[i], v, hidden)
			}
		}
	})
}
