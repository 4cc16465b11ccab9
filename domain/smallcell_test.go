package domain

import "testing"

func TestSmallCell(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want bool
	}{{0, false}, {1, true}, {4, true}, {SmallCellK, false}, {1000, false}} {
		if got := SmallCell(tc.n); got != tc.want {
			t.Errorf("SmallCell(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}
