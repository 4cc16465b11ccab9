package projections

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Response monitoring needs, of every signal raised in a period, its
// moments and codes: a compact row per signal (about 100 bytes), kept in
// memory in raise order per network and in the store for restarts. A report
// reads the rows of its period only (two binary searches), so its cost
// follows the signals raised in the period asked, not the history.

// MonitorRow is one signal as response monitoring sees it.
type MonitorRow struct {
	ID              uuid.UUID
	Team            string // "" while no team has it
	Neighbourhood   string
	Source          domain.Role
	Categories      []string
	Urgency         string
	Status          domain.Status
	NormVersion     string // of the norms it was raised under
	RaisedAt        time.Time
	DueAt           time.Time
	Due3xAt         time.Time
	FirstResponseAt time.Time
	StoppedAt       time.Time
	ClosedAt        time.Time
	WithdrawnAt     time.Time
	FirstFeedbackAt time.Time
	FeedbackDueAt   time.Time
}

// row is MonitorRow as kept: times as Unix nanoseconds (math.MinInt64:
// none), codes as indexes into the rows' string tables.
type row struct {
	id                                 uuid.UUID
	raised, due, due3x, first, stopped int64
	closed, withdrawn, feedback, fbDue int64
	team, hood, source, cats           uint16
	urgency, status, normVer           uint16
}

// rowFormat is the format of a stored row.
const rowFormat = 2

type monitorRows struct {
	byNetwork map[string][]row
	strs      []string          // teams, neighbourhoods and sources
	strIdx    map[string]uint16 // their indexes
	catSets   [][]string        // category lists
	catIdx    map[string]uint16
	loading   string // the network of the rows being loaded
}

func newMonitorRows() *monitorRows {
	m := &monitorRows{byNetwork: map[string][]row{}, strIdx: map[string]uint16{}, catIdx: map[string]uint16{}}
	m.str("")
	return m
}

// str interns a code; past 65,535 distinct codes the rest share the last
// slot (codes are teams, neighbourhoods and sources: a few dozen).
func (m *monitorRows) str(s string) uint16 {
	if i, ok := m.strIdx[s]; ok {
		return i
	}
	if len(m.strs) == math.MaxUint16 {
		return math.MaxUint16 - 1
	}
	i := uint16(len(m.strs))
	m.strs = append(m.strs, s)
	m.strIdx[s] = i
	return i
}

func (m *monitorRows) catSet(cats []string) uint16 {
	var k string
	if len(cats) == 1 {
		k = cats[0] // the usual case, without a join
	} else {
		k = strings.Join(cats, "\x00") + "\x00"
	}
	if i, ok := m.catIdx[k]; ok {
		return i
	}
	if len(m.catSets) == math.MaxUint16 {
		return math.MaxUint16 - 1
	}
	i := uint16(len(m.catSets))
	m.catSets = append(m.catSets, slices.Clone(cats))
	m.catIdx[k] = i
	return i
}

func (m *monitorRows) rowOf(c *Case) row {
	return row{id: c.ID, raised: nanos(c.RaisedAt), due: nanos(c.DueAt), due3x: nanos(c.Due3xAt), first: nanos(c.FirstResponseAt),
		stopped: nanos(c.StoppedAt), closed: nanos(c.ClosedAt), withdrawn: nanos(c.WithdrawnAt), feedback: nanos(c.FirstFeedbackAt),
		fbDue: nanos(c.FeedbackDueAt), team: m.str(c.Team), hood: m.str(c.Neighbourhood), source: m.str(string(c.Source)),
		cats: m.catSet(c.Categories), urgency: m.str(c.Urgency), status: m.str(string(c.Status)), normVer: m.str(c.NormVersion)}
}

func compareRow(a row, raised int64, id uuid.UUID) int {
	if a.raised != raised {
		if a.raised < raised {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.id[:], id[:])
}

// put sets the case's row; it reports whether the row changed.
func (m *monitorRows) put(c *Case) bool {
	r := m.rowOf(c)
	rows := m.byNetwork[c.Network]
	i, found := slices.BinarySearchFunc(rows, r, func(a, b row) int { return compareRow(a, b.raised, b.id) })
	if found {
		if rows[i] == r {
			return false
		}
		rows[i] = r
		return true
	}
	m.byNetwork[c.Network] = slices.Insert(rows, i, r)
	return true
}

// load adds a stored row; rows come in key order (network, then raise
// order). It runs for every signal at start: codes are looked up without
// copying them.
func (m *monitorRows) load(k, v []byte) error {
	d := dec{b: k[2:]}
	net := d.raw()
	if d.err != nil || len(d.b) != 24 {
		return ErrCorrupt
	}
	if string(net) != m.loading {
		m.loading = string(net)
	}
	d = dec{b: v}
	if d.byte() != rowFormat {
		return ErrCorrupt
	}
	var r row
	r.id = d.uuid()
	for _, t := range []*int64{&r.raised, &r.due, &r.due3x, &r.first, &r.stopped, &r.closed, &r.withdrawn, &r.feedback, &r.fbDue} {
		*t = d.varint()
	}
	r.team, r.hood, r.source = m.rawStr(d.raw()), m.rawStr(d.raw()), m.rawStr(d.raw())
	if n := d.n(1); n == 1 {
		r.cats = m.rawCat(d.raw())
	} else {
		cats := make([]string, n)
		for i := range cats {
			cats[i] = d.str()
		}
		r.cats = m.catSet(cats)
	}
	r.urgency, r.status, r.normVer = m.rawStr(d.raw()), m.rawStr(d.raw()), m.rawStr(d.raw())
	if err := d.done(); err != nil {
		return err
	}
	m.byNetwork[m.loading] = append(m.byNetwork[m.loading], r)
	return nil
}

func (m *monitorRows) rawStr(b []byte) uint16 {
	if i, ok := m.strIdx[string(b)]; ok {
		return i
	}
	return m.str(string(b))
}

func (m *monitorRows) rawCat(b []byte) uint16 {
	if i, ok := m.catIdx[string(b)]; ok {
		return i
	}
	return m.catSet([]string{string(b)})
}

func encodeRow(c *Case) []byte {
	e := enc{b: make([]byte, 0, 128)}
	e.byte(rowFormat)
	e.uuid(c.ID)
	for _, t := range []time.Time{c.RaisedAt, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt, c.ClosedAt, c.WithdrawnAt, c.FirstFeedbackAt, c.FeedbackDueAt} {
		e.varint(nanos(t))
	}
	e.str(c.Team)
	e.str(c.Neighbourhood)
	e.str(string(c.Source))
	e.strs(c.Categories)
	e.str(c.Urgency)
	e.str(string(c.Status))
	e.str(c.NormVersion)
	return e.b
}

// Monitor calls fn for every signal of the network raised in [from, to),
// in raise order, until fn returns false. The row is reused between calls.
// It costs the rows of the period: call it under the runner's read lock.
func (p *Cases) Monitor(network string, from, to time.Time, fn func(*MonitorRow) bool) {
	m := p.rows
	rows := m.byNetwork[network]
	lo, _ := slices.BinarySearchFunc(rows, nanos(from), func(a row, t int64) int { return compareRow(a, t, uuid.Nil) })
	var mr MonitorRow
	for _, r := range rows[lo:] {
		if !to.IsZero() && r.raised >= nanos(to) {
			return
		}
		mr = m.monitorRow(&r)
		if !fn(&mr) {
			return
		}
	}
}

// MonitorQuery selects the signals of a network raised in [From, To) (a
// zero To: no end), of a team, neighbourhood and category where set.
type MonitorQuery struct {
	Network, Team, Neighbourhood, Category string
	From, To                               time.Time
}

// MonitorSnapshot is a copy of the monitoring rows of a query's period,
// taken under the runner's read lock (a copy of memory, no decoding), so
// that the report is computed outside it.
type MonitorSnapshot struct {
	rows       []row
	strs       []string
	cats       [][]string
	team, hood int // the query's codes as indexes; -1: any; -2: none exists
	category   string
}

// MonitorBuffer holds the rows a snapshot copies: reuse one between
// reports (not while a report of its snapshot runs).
type MonitorBuffer struct{ rows []row }

// MonitorSnapshot copies the rows of q's period into buf. Call it under
// the runner's read lock.
func (p *Cases) MonitorSnapshot(q MonitorQuery, buf *MonitorBuffer) MonitorSnapshot {
	m := p.rows
	rows := m.byNetwork[q.Network]
	lo, _ := slices.BinarySearchFunc(rows, nanos(q.From), func(a row, t int64) int { return compareRow(a, t, uuid.Nil) })
	hi := len(rows)
	if !q.To.IsZero() {
		hi, _ = slices.BinarySearchFunc(rows, nanos(q.To), func(a row, t int64) int { return compareRow(a, t, uuid.Nil) })
	}
	buf.rows = append(buf.rows[:0], rows[lo:max(lo, hi)]...)
	s := MonitorSnapshot{rows: buf.rows, strs: m.strs, cats: m.catSets, team: -1, hood: -1, category: q.Category}
	code := func(v string) int {
		if v == "" {
			return -1
		}
		if i, ok := m.strIdx[v]; ok {
			return int(i)
		}
		return -2
	}
	s.team, s.hood = code(q.Team), code(q.Neighbourhood)
	return s
}

// Figures are the response figures of a set of signals.
type Figures struct {
	Total, Answered, WithinNorm, Late, Late3x, AnsweredLate, Unanswered int
	FeedbackGiven, FeedbackWithinNorm                                   int
	// FirstResponseHours holds, in no order, the hours from raising to
	// the first response of the answered ones.
	FirstResponseHours []float64
	// NormVersions counts the signals by the version of the norms they
	// were raised under (domain.SignalNorms.Version): which norms the
	// figures used.
	NormVersions map[string]int
}

// MonitorReport is a response report: figures in all and per team ("" no
// team), neighbourhood, category and source, and per point of a series the
// signals open at that moment and how many of those were overdue.
type MonitorReport struct {
	All                                           Figures
	ByTeam, ByNeighbourhood, ByCategory, BySource map[string]*Figures
	Open, Overdue                                 []int
}

const none = math.MinInt64

// Report computes the report of the snapshot's signals at now, with a
// series at points (ascending). It costs the rows of the period, in
// integer arithmetic, and holds no lock.
func (s MonitorSnapshot) Report(now time.Time, points []time.Time) MonitorReport {
	rep := MonitorReport{ByTeam: map[string]*Figures{}, ByNeighbourhood: map[string]*Figures{}, ByCategory: map[string]*Figures{},
		BySource: map[string]*Figures{}, Open: make([]int, len(points)), Overdue: make([]int, len(points))}
	if s.team == -2 || s.hood == -2 {
		return rep
	}
	n := nanos(now)
	pts := make([]int64, len(points))
	for i, t := range points {
		pts[i] = nanos(t)
	}
	// first returns the index of the first point at or after t (after: past
	// t): arithmetic when the points are evenly spaced (a report's series
	// is), else a binary search.
	step := int64(0)
	if len(pts) > 1 {
		step = pts[1] - pts[0]
		for i := 2; i < len(pts) && step > 0; i++ {
			if pts[i]-pts[i-1] != step {
				step = 0
			}
		}
	}
	first := func(t int64, after bool) int {
		if step > 0 {
			switch {
			case t < pts[0]:
				return 0
			case t > pts[len(pts)-1]:
				return len(pts)
			}
			d := t - pts[0]
			i := int(d / step)
			if d%step != 0 || after {
				i++
			}
			return i
		}
		i, _ := slices.BinarySearchFunc(pts, t, func(p, t int64) int {
			switch {
			case p < t || (after && p == t):
				return -1
			case p > t:
				return 1
			}
			return 0
		})
		return i
	}
	open, overdue := make([]int, len(pts)+1), make([]int, len(pts)+1)
	teams, hoods, sources := make([]*Figures, len(s.strs)), make([]*Figures, len(s.strs)), make([]*Figures, len(s.strs))
	catOK := make([]int8, len(s.cats)) // 0 unknown, 1 matches, -1 not
	byCat := map[string]*Figures{}
	at := func(figs []*Figures, i uint16) *Figures {
		if figs[i] == nil {
			figs[i] = &Figures{}
		}
		return figs[i]
	}
	for i := range s.rows {
		r := &s.rows[i]
		if (s.team >= 0 && int(r.team) != s.team) || (s.hood >= 0 && int(r.hood) != s.hood) {
			continue
		}
		cats := s.cats[r.cats]
		if s.category != "" {
			if catOK[r.cats] == 0 {
				catOK[r.cats] = -1
				if slices.Contains(cats, s.category) {
					catOK[r.cats] = 1
				}
			}
			if catOK[r.cats] < 0 {
				continue
			}
		}
		ver := s.strs[r.normVer]
		rep.All.add(r, n, ver)
		at(teams, r.team).add(r, n, ver)
		at(hoods, r.hood).add(r, n, ver)
		at(sources, r.source).add(r, n, ver)
		for _, c := range cats {
			f := byCat[c]
			if f == nil {
				f = &Figures{}
				byCat[c] = f
			}
			f.add(r, n, ver)
		}
		// The series: open from raising until closed or withdrawn; overdue
		// past the norm until the first response (or a withdrawal before one).
		end := len(pts)
		for _, t := range []int64{r.closed, r.withdrawn} {
			if t != none {
				end = min(end, first(t, false))
			}
		}
		start := first(r.raised, false)
		if start >= end {
			continue
		}
		open[start]++
		open[end]--
		lateEnd := end
		for _, t := range []int64{r.first, r.stopped} {
			if t != none {
				lateEnd = min(lateEnd, first(t, false))
			}
		}
		if lateStart := max(start, first(r.due, true)); lateStart < lateEnd {
			overdue[lateStart]++
			overdue[lateEnd]--
		}
	}
	o, d := 0, 0
	for i := range pts {
		o, d = o+open[i], d+overdue[i]
		rep.Open[i], rep.Overdue[i] = o, d
	}
	for i, f := range teams {
		if f != nil {
			rep.ByTeam[s.strs[i]] = f
		}
	}
	for i, f := range hoods {
		if f != nil {
			rep.ByNeighbourhood[s.strs[i]] = f
		}
	}
	for i, f := range sources {
		if f != nil {
			rep.BySource[s.strs[i]] = f
		}
	}
	rep.ByCategory = byCat
	return rep
}

// add counts a signal, with its state at now (domain.StateAt in integers).
func (f *Figures) add(r *row, now int64, normVersion string) {
	f.Total++
	if f.NormVersions == nil {
		f.NormVersions = map[string]int{}
	}
	f.NormVersions[normVersion]++
	switch {
	case r.first != none:
		if r.first > r.due {
			f.AnsweredLate++
		} else {
			f.WithinNorm++
		}
	case r.stopped != none:
		if r.stopped > r.due {
			f.AnsweredLate++
		} else {
			f.WithinNorm++
		}
	case now > r.due3x:
		f.Late3x++
	case now > r.due:
		f.Late++
	}
	if r.first == none {
		if r.stopped == none {
			f.Unanswered++
		}
	} else {
		f.Answered++
		f.FirstResponseHours = append(f.FirstResponseHours, time.Duration(r.first-r.raised).Hours())
	}
	if r.feedback != none {
		f.FeedbackGiven++
		if r.fbDue != none && r.feedback <= r.fbDue {
			f.FeedbackWithinNorm++
		}
	}
}
