package projections

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// The coordinator's signal list walks the monitoring rows of a network,
// which are kept in raise order: a page starts where the cursor points (a
// binary search) and reads rows until it holds its items, so a page costs
// the rows it reads, not the network's history. A selective filter reads
// more rows per item; a page reads at most SignalScanBudget rows and then
// ends early, with a cursor to go on from, so no request costs more than
// that either.

// SignalScanBudget is the most rows one page of the signal list reads.
const SignalScanBudget = 50_000

// SignalQuery selects a network's signals for the coordinator's list: all
// of the set conditions hold. The list holds ids, codes and times only.
type SignalQuery struct {
	Network  string
	From, To time.Time // raised in [From, To); zero: unbounded
	Status   domain.Status
	Team     string
	NoTeam   bool // only the signals without a team
	Category string
	Urgency  string
	// Neighbourhood is a neighbourhood's id.
	Neighbourhood string
	// Late selects the signals without a first response past their norm
	// at Now (late or three times late).
	Late bool
	Now  time.Time
	// Newest lists the newest first; else the oldest first.
	Newest bool
	// After is the cursor of the last signal of the previous page, if any.
	After *SignalCursor
}

// SignalCursor is where a page of the signal list ends: the last row's
// raise time and id.
type SignalCursor struct {
	RaisedAt time.Time
	ID       uuid.UUID
}

// Encode writes the cursor as 24 bytes: Unix nanoseconds and the id.
func (c SignalCursor) Encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 24), uint64(nanos(c.RaisedAt)))
	return append(b, c.ID[:]...)
}

// DecodeSignalCursor reads an encoded cursor.
func DecodeSignalCursor(b []byte) (SignalCursor, bool) {
	if len(b) != 24 {
		return SignalCursor{}, false
	}
	id, _ := uuid.FromBytes(b[8:])
	return SignalCursor{RaisedAt: fromNanos(int64(binary.BigEndian.Uint64(b[:8]))), ID: id}, true
}

// Signals calls fn for the signals of q, in raise order (newest first with
// q.Newest), from q.After on, until fn returns false, the period ends or
// budget rows were read (0: no budget). It returns the cursor of the last
// row read when it stopped for the budget, else nil. The row is reused
// between calls. Call it under the runner's read lock.
func (p *Cases) Signals(q SignalQuery, budget int, fn func(*MonitorRow) bool) *SignalCursor {
	m := p.rows
	rows := m.byNetwork[q.Network]
	search := func(raised int64, id uuid.UUID) int {
		i, _ := slices.BinarySearchFunc(rows, raised, func(a row, t int64) int { return compareRow(a, t, id) })
		return i
	}
	lo, hi := 0, len(rows)
	if !q.From.IsZero() {
		lo = search(nanos(q.From), uuid.Nil)
	}
	if !q.To.IsZero() {
		hi = search(nanos(q.To), uuid.Nil)
	}
	if q.After != nil {
		at, id := nanos(q.After.RaisedAt), q.After.ID
		i, found := slices.BinarySearchFunc(rows, at, func(a row, t int64) int { return compareRow(a, t, id) })
		if q.Newest {
			hi = min(hi, i)
		} else {
			if found {
				i++
			}
			lo = max(lo, i)
		}
	}
	match := p.signalFilter(q)
	var mr MonitorRow
	read := 0
	for k := range max(0, hi-lo) {
		i := lo + k
		if q.Newest {
			i = hi - 1 - k
		}
		r := &rows[i]
		if budget > 0 && read == budget {
			return &SignalCursor{RaisedAt: fromNanos(rows[i-direction(q.Newest)].raised), ID: rows[i-direction(q.Newest)].id}
		}
		read++
		if !match(r) {
			continue
		}
		mr = m.monitorRow(r)
		if !fn(&mr) {
			return nil
		}
	}
	return nil
}

// direction is the step of a walk through the rows.
func direction(newest bool) int {
	if newest {
		return -1
	}
	return 1
}

// signalFilter compiles q's conditions to a test of a row, on the interned
// codes.
func (p *Cases) signalFilter(q SignalQuery) func(*row) bool {
	m := p.rows
	code := func(v string) int {
		if v == "" {
			return -1
		}
		if i, ok := m.strIdx[v]; ok {
			return int(i)
		}
		return -2 // no row has it
	}
	team, hood, urgency, status := code(q.Team), code(q.Neighbourhood), code(q.Urgency), code(string(q.Status))
	if q.NoTeam {
		team = int(m.strIdx[""])
	}
	if team == -2 || hood == -2 || urgency == -2 || status == -2 {
		return func(*row) bool { return false }
	}
	catOK := map[uint16]bool{}
	now := nanos(q.Now)
	return func(r *row) bool {
		if (team >= 0 && int(r.team) != team) || (hood >= 0 && int(r.hood) != hood) ||
			(urgency >= 0 && int(r.urgency) != urgency) || (status >= 0 && int(r.status) != status) {
			return false
		}
		if q.Late && (r.first != none || r.stopped != none || r.closed != none || r.withdrawn != none || now <= r.due) {
			return false
		}
		if q.Category != "" {
			ok, seen := catOK[r.cats]
			if !seen {
				ok = slices.Contains(m.catSets[r.cats], q.Category)
				catOK[r.cats] = ok
			}
			return ok
		}
		return true
	}
}

// monitorRow is a row as a MonitorRow.
func (m *monitorRows) monitorRow(r *row) MonitorRow {
	return MonitorRow{ID: r.id, Team: m.strs[r.team], Neighbourhood: m.strs[r.hood], Source: domain.Role(m.strs[r.source]),
		Categories: m.catSets[r.cats], Urgency: m.strs[r.urgency], Status: domain.Status(m.strs[r.status]),
		NormVersion: m.strs[r.normVer], RaisedAt: fromNanos(r.raised), DueAt: fromNanos(r.due), Due3xAt: fromNanos(r.due3x),
		FirstResponseAt: fromNanos(r.first), StoppedAt: fromNanos(r.stopped), ClosedAt: fromNanos(r.closed),
		WithdrawnAt: fromNanos(r.withdrawn), FirstFeedbackAt: fromNanos(r.feedback), FeedbackDueAt: fromNanos(r.fbDue)}
}
