package httpapi

import (
	"maps"
	"slices"
	"strings"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// The counts of a row of the response report, in the order of the
// suppression table's columns. The first six are the row's partition:
// total = within_norm + answered_late + late + late_3x + waiting.
var figureFields = []string{"total", "within_norm", "answered_late", "late", "late_3x", "waiting",
	"answered", "unanswered", "feedback_given", "feedback_within_norm"}

const (
	colTotal = iota
	colWithinNorm
	colAnsweredLate
	colLate
	colLate3x
	colWaiting
	colAnswered
	colUnanswered
	colFeedbackGiven
	colFeedbackWithinNorm
	nCols
)

func counts(f *projections.Figures) [nCols]int {
	// Waiting: no first response yet, within the norm (neither within nor
	// outside it yet).
	waiting := f.Total - f.WithinNorm - f.AnsweredLate - f.Late - f.Late3x
	return [nCols]int{f.Total, f.WithinNorm, f.AnsweredLate, f.Late, f.Late3x, waiting,
		f.Answered, f.Unanswered, f.FeedbackGiven, f.FeedbackWithinNorm}
}

// publish fills the report's figures from the projection's, with
// small-cell suppression (domain.Suppress): the rows are the whole report
// and each group; each row's partition adds up to its total, and each
// column of the team, neighbourhood and source groups (each signal in one
// of them) to the whole report's (categories overlap: no relation). The
// series' points are suppressed alone. A row's signals by norm version
// add up to its total.
func publish(rep *responseReport, pr *projections.MonitorReport, k int) {
	type row struct {
		key string
		f   *projections.Figures
	}
	sorted := func(groups map[string]*projections.Figures, none string) []row {
		out := make([]row, 0, len(groups))
		for key, f := range groups {
			if key == "" && none != "" {
				key = none
			}
			out = append(out, row{key, f})
		}
		slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.key, b.key) })
		return out
	}
	dims := [][]row{sorted(pr.ByTeam, "(none)"), sorted(pr.ByNeighbourhood, ""), sorted(pr.ByCategory, ""), sorted(pr.BySource, "")}
	partition := []bool{true, true, false, true}
	rows := []*projections.Figures{&pr.All}
	var values []int
	var rels []domain.Relation
	addRow := func(f *projections.Figures) int {
		r := len(values) / nCols
		c := counts(f)
		values = append(values, c[:]...)
		rels = append(rels, domain.Relation{Total: r*nCols + colTotal,
			Parts: []int{r*nCols + colWithinNorm, r*nCols + colAnsweredLate, r*nCols + colLate, r*nCols + colLate3x, r*nCols + colWaiting}})
		return r
	}
	addRow(&pr.All)
	for d, groups := range dims {
		first := len(rows)
		for _, g := range groups {
			addRow(g.f)
			rows = append(rows, g.f)
		}
		if !partition[d] {
			continue
		}
		for c := range nCols {
			rel := domain.Relation{Total: c}
			for r := first; r < len(rows); r++ {
				rel.Parts = append(rel.Parts, r*nCols+c)
			}
			rels = append(rels, rel)
		}
	}
	// The signals of each row by norm version: a partition of its total.
	versionAt := make([][]normVersionCount, len(rows))
	versionIdx := make([][]int, len(rows))
	for r, f := range rows {
		versions := slices.Sorted(maps.Keys(f.NormVersions))
		rel := domain.Relation{Total: r*nCols + colTotal}
		for _, v := range versions {
			versionAt[r] = append(versionAt[r], normVersionCount{Version: v})
			versionIdx[r] = append(versionIdx[r], len(values))
			rel.Parts = append(rel.Parts, len(values))
			values = append(values, f.NormVersions[v])
		}
		rels = append(rels, rel)
	}
	series := len(values)
	for i := range rep.Series {
		values = append(values, pr.Open[i], pr.Overdue[i])
	}
	hidden := domain.Suppress(values, rels, k)
	k = domain.SuppressK(k)

	out := func(r int) responseFigures {
		var f responseFigures
		cell := func(c int) *int {
			i := r*nCols + c
			if hidden[i] {
				f.Suppressed = true
				f.SuppressedFields = append(f.SuppressedFields, figureFields[c])
				return nil
			}
			v := values[i]
			return &v
		}
		f.Total, f.WithinNorm, f.AnsweredLate = cell(colTotal), cell(colWithinNorm), cell(colAnsweredLate)
		f.Late, f.Late3x, f.Waiting = cell(colLate), cell(colLate3x), cell(colWaiting)
		f.Answered, f.Unanswered = cell(colAnswered), cell(colUnanswered)
		f.FeedbackGiven, f.FeedbackWithinNorm = cell(colFeedbackGiven), cell(colFeedbackWithinNorm)
		// The share of the decided signals (answered, or past the norm)
		// within the norm: a signal still waiting within its norm counts
		// neither way.
		if f.Total != nil && f.WithinNorm != nil && f.Waiting != nil {
			if decided := *f.Total - *f.Waiting; decided >= k {
				share := float64(*f.WithinNorm) / float64(decided)
				f.WithinNormShare = &share
			} else if decided > 0 {
				f.Suppressed = true
				f.SuppressedFields = append(f.SuppressedFields, "within_norm_share")
			}
		} else {
			// Null with the counts it comes from.
			f.SuppressedFields = append(f.SuppressedFields, "within_norm_share")
		}
		f.NormVersions = versionAt[r]
		for j, i := range versionIdx[r] {
			if hidden[i] {
				if !slices.Contains(f.SuppressedFields, "norm_versions") {
					f.Suppressed = true
					f.SuppressedFields = append(f.SuppressedFields, "norm_versions")
				}
				continue
			}
			v := values[i]
			f.NormVersions[j].Signals = &v
		}
		if f.NormVersions == nil {
			f.NormVersions = []normVersionCount{}
		}
		hours := rows[r].FirstResponseHours
		if n := len(hours); n > 0 {
			if f.Answered != nil && n >= k {
				med, p90 := percentile(hours, 0.5), percentile(hours, 0.9)
				f.MedianFirstResponseHrs, f.P90FirstResponseHrs = &med, &p90
			} else {
				f.Suppressed = true
				f.SuppressedFields = append(f.SuppressedFields, "median_first_response_hours", "p90_first_response_hours")
			}
		}
		return f
	}
	rep.responseFigures = out(0)
	r := 1
	lists := []*[]groupFigures{&rep.ByTeam, &rep.ByNeighbourhood, &rep.ByCategory, &rep.BySource}
	for d, groups := range dims {
		*lists[d] = make([]groupFigures, 0, len(groups))
		for _, g := range groups {
			*lists[d] = append(*lists[d], groupFigures{Key: g.key, responseFigures: out(r)})
			r++
		}
	}
	for i := range rep.Series {
		p := &rep.Series[i]
		for j, dst := range []**int{&p.Open, &p.Overdue} {
			if at := series + 2*i + j; hidden[at] {
				p.Suppressed = true
			} else {
				v := values[at]
				*dst = &v
			}
		}
	}
}
