package projections

import (
	"bytes"
	"math"
	"slices"
	"time"

	"github.com/RaduBerinde/btreemap"
	"github.com/google/uuid"
)

// DueKey is what "due first" sorts on: the earliest of the open first-response
// deadline and the next follow-up date.
func (c *Case) DueKey() time.Time {
	var key time.Time
	if c.FirstResponseAt.IsZero() {
		key = c.DueAt
	}
	if d := c.NextDueAt; !d.IsZero() && (key.IsZero() || d.Before(key)) {
		key = d
	}
	return key
}

// caseloads are the open cases of each team in "due first" order, with
// their counts by network and assignee: a caseload page costs the page.
type caseloads map[string]*teamCaseload

type teamCaseload struct {
	byDue    *btreemap.BTreeMap[dueKey, *Case]
	count    map[string]int    // by network
	assigned map[[2]string]int // by network and assignee
}

// dueKey is where a case sorts in a caseload: DueKey in Unix nanoseconds
// (none last), then the id.
type dueKey struct {
	due int64
	id  uuid.UUID
}

func compareDueKeys(a, b dueKey) int {
	switch {
	case a.due < b.due:
		return -1
	case a.due > b.due:
		return 1
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// countOf counts the team's open cases of a network and an assignee ("":
// any).
func (t *teamCaseload) countOf(network, assignee string) int {
	switch {
	case network != "" && assignee != "":
		return t.assigned[[2]string{network, assignee}]
	case network != "":
		return t.count[network]
	case assignee == "":
		return t.byDue.Len()
	}
	n := 0
	for k, v := range t.assigned {
		if k[1] == assignee {
			n += v
		}
	}
	return n
}

// caseloadEntry is what the index holds of a case, to find and count it
// again when the case changes.
type caseloadEntry struct {
	team, network, assignee string
	key                     dueKey
}

// dueNanos is the case's DueKey as Unix nanoseconds, none last.
func dueNanos(c *Case) int64 {
	if k := c.DueKey(); !k.IsZero() {
		return k.UnixNano()
	}
	return math.MaxInt64
}

// put files the case under team ("": out of every caseload) at its due key.
func (l caseloads) put(c *Case, team string) {
	e := caseloadEntry{team: team, network: c.Network, assignee: c.Assignee, key: dueKey{dueNanos(c), c.ID}}
	if team == "" {
		e = caseloadEntry{}
	}
	if e == c.indexed {
		return
	}
	if old := c.indexed; old.team != "" {
		t := l[old.team]
		t.byDue.Delete(old.key)
		t.count[old.network]--
		t.assigned[[2]string{old.network, old.assignee}]--
	}
	if team != "" {
		t := l[team]
		if t == nil {
			t = &teamCaseload{byDue: btreemap.New[dueKey, *Case](16, compareDueKeys), count: map[string]int{}, assigned: map[[2]string]int{}}
			l[team] = t
		}
		t.byDue.ReplaceOrInsert(e.key, c)
		t.count[e.network]++
		t.assigned[[2]string{e.network, e.assignee}]++
	}
	c.indexed = e
}

// CaseloadFilter selects a caseload.
type CaseloadFilter struct {
	Teams    []string // the teams to include (the caller's teams, or one of them)
	Assignee string   // only cases assigned to this professional, if set
	Network  string
	// Keep, if set, keeps only the cases it returns true for (the API's
	// caseload filters: unassigned, overdue). The index cannot count
	// those: a caseload with Keep costs the team's open cases.
	Keep func(*Case) bool
}

// Caseload returns the first n open cases of the teams in "due first"
// order (cases without a deadline last, then by id), and how many there are
// in all. It reads each team's cases in due order, so a page costs the page
// (and the cases of other networks or assignees it steps over), whatever
// the open work and the history.
func (p *Cases) Caseload(f CaseloadFilter, n int) ([]*Case, int) {
	var out []*Case
	total := 0
	for _, team := range f.Teams {
		t := p.caseloads[team]
		if t == nil {
			continue
		}
		if f.Keep == nil {
			total += t.countOf(f.Network, f.Assignee)
		}
		taken := 0
		t.byDue.AscendFunc(btreemap.Min[dueKey](), btreemap.Max[dueKey](), func(_ dueKey, c *Case) bool {
			if taken == n && f.Keep == nil {
				return false
			}
			if (f.Network == "" || c.Network == f.Network) && (f.Assignee == "" || c.Assignee == f.Assignee) && (f.Keep == nil || f.Keep(c)) {
				if f.Keep != nil {
					total++
				}
				if taken < n {
					out = append(out, c)
					taken++
				}
			}
			return true
		})
	}
	if len(f.Teams) > 1 {
		slices.SortFunc(out, func(a, b *Case) int { return compareDueKeys(a.indexed.key, b.indexed.key) })
	}
	return out[:min(n, len(out))], total
}

// CompareDue orders cases by due key (zero last), then id.
func CompareDue(a, b *Case) int {
	ka, kb := a.DueKey(), b.DueKey()
	switch {
	case ka.IsZero() && !kb.IsZero():
		return 1
	case !ka.IsZero() && kb.IsZero():
		return -1
	}
	if c := ka.Compare(kb); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}
