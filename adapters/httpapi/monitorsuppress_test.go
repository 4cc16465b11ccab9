package httpapi

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/projections"
)

// TestPublishSuppressesNormVersions: a row's signals by norm version add up
// to its total, so a small version count is hidden and so is the one that
// would give it back by subtraction.
func TestPublishSuppressesNormVersions(t *testing.T) {
	ptr := func(n int) *int { return &n }
	for _, tc := range []struct {
		name     string
		versions map[string]int
		want     []normVersionCount
	}{
		{"none", nil, []normVersionCount{}},
		{"all large", map[string]int{"0.0": 6, "1.1": 9}, []normVersionCount{{"0.0", ptr(6)}, {"1.1", ptr(9)}}},
		{"one small, its partner hidden too", map[string]int{"0.0": 1, "1.1": 14}, []normVersionCount{{"0.0", nil}, {"1.1", nil}}},
		{"one small of three", map[string]int{"0.0": 2, "1.1": 6, "2.1": 7}, []normVersionCount{{"0.0", nil}, {"1.1", nil}, {"2.1", ptr(7)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total := 0
			for _, n := range tc.versions {
				total += n
			}
			all := projections.Figures{Total: total, Answered: total, WithinNorm: total, FeedbackGiven: total, NormVersions: tc.versions}
			pr := projections.MonitorReport{All: all}
			var rep responseReport
			publish(&rep, &pr, 5)
			if diff := cmp.Diff(tc.want, rep.NormVersions); diff != "" {
				t.Errorf("norm versions (-want +got):\n%s", diff)
			}
			if rep.Total == nil || *rep.Total != total {
				t.Errorf("total %v, want %d published", rep.Total, total)
			}
			if want := len(tc.want) > 0 && tc.want[0].Signals == nil; rep.Suppressed != want {
				t.Errorf("suppressed %v, want %v", rep.Suppressed, want)
			}
		})
	}
}
