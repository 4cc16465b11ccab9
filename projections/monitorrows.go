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
}

type monitorRows struct {
	byNetwork map[string][]row
	strs      []string          // teams, neighbourhoods and sources
	strIdx    map[string]uint16 // their indexes
	catSets   [][]string        // category lists
	catIdx    map[string]uint16
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
	k := strings.Join(cats, "\x00")
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
		cats: m.catSet(c.Categories)}
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

// load adds a stored row; rows come in key order (network, then raise order).
func (m *monitorRows) load(k, v []byte) error {
	d := dec{b: k[2:]}
	network := d.str()
	if d.err != nil || len(d.b) != 24 {
		return ErrCorrupt
	}
	d = dec{b: v}
	if d.byte() != 1 {
		return ErrCorrupt
	}
	var r row
	r.id = d.uuid()
	for _, t := range []*int64{&r.raised, &r.due, &r.due3x, &r.first, &r.stopped, &r.closed, &r.withdrawn, &r.feedback, &r.fbDue} {
		*t = d.varint()
	}
	r.team, r.hood, r.source = m.str(d.str()), m.str(d.str()), m.str(d.str())
	r.cats = m.catSet(d.strs())
	if err := d.done(); err != nil {
		return err
	}
	m.byNetwork[network] = append(m.byNetwork[network], r)
	return nil
}

func encodeRow(c *Case) []byte {
	e := enc{b: make([]byte, 0, 128)}
	e.byte(1)
	e.uuid(c.ID)
	for _, t := range []time.Time{c.RaisedAt, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt, c.ClosedAt, c.WithdrawnAt, c.FirstFeedbackAt, c.FeedbackDueAt} {
		e.varint(nanos(t))
	}
	e.str(c.Team)
	e.str(c.Neighbourhood)
	e.str(string(c.Source))
	e.strs(c.Categories)
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
		mr = MonitorRow{ID: r.id, Team: m.strs[r.team], Neighbourhood: m.strs[r.hood], Source: domain.Role(m.strs[r.source]),
			Categories: m.catSets[r.cats], RaisedAt: fromNanos(r.raised), DueAt: fromNanos(r.due), Due3xAt: fromNanos(r.due3x),
			FirstResponseAt: fromNanos(r.first), StoppedAt: fromNanos(r.stopped), ClosedAt: fromNanos(r.closed),
			WithdrawnAt: fromNanos(r.withdrawn), FirstFeedbackAt: fromNanos(r.feedback), FeedbackDueAt: fromNanos(r.fbDue)}
		if !fn(&mr) {
			return
		}
	}
}
