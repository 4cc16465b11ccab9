package projections

import (
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Retention is how long personal data is kept after a signal reaches a final
// state. Defaults (DefaultRetention): withdrawn or declined signals 6 months,
// closed cases 2 years after closing. Audit records are not personal data in
// clear and are kept at least AuditYears (never shorter than 5).
type Retention struct {
	Withdrawn  time.Duration
	Declined   time.Duration
	Closed     time.Duration
	AuditYears int
}

// DefaultRetention is DESIGN.md's retention.
func DefaultRetention() Retention {
	return Retention{Withdrawn: 183 * 24 * time.Hour, Declined: 183 * 24 * time.Hour, Closed: 2 * 365 * 24 * time.Hour, AuditYears: 5}
}

// expiry returns when a case's personal data may go, or false while the
// case is still live (open and not declined).
func (r Retention) expiry(c *Case) (time.Time, bool) {
	switch {
	case !c.WithdrawnAt.IsZero() && c.Status == domain.StatusWithdrawn:
		return c.WithdrawnAt.Add(r.Withdrawn), true
	case !c.ClosedAt.IsZero() && c.Status == domain.StatusClosed:
		return c.ClosedAt.Add(r.Closed), true
	case !c.DeclinedAt.IsZero() && c.Status == domain.StatusRaised:
		return c.DeclinedAt.Add(r.Declined), true
	}
	return time.Time{}, false
}

// Expired lists the subjects, not yet erased, whose every signal has passed
// its retention at now. It reads the retention index up to each term's
// horizon: the cost follows the signals past their term whose subjects are
// not erased yet (an erased subject's signals leave the index), not the
// history. Call it under the runner's read lock.
func Expired(cases *Cases, subjects *Subjects, now time.Time, r Retention) []uuid.UUID {
	seen := map[uuid.UUID]bool{}
	var out []uuid.UUID
	for _, term := range []struct {
		kind byte
		keep time.Duration
	}{{expiryWithdrawn, r.Withdrawn}, {expiryClosed, r.Closed}, {expiryDeclined, r.Declined}} {
		pre := expiryPrefix(term.kind)
		// Past the term at now: the final moment plus the term is not after now.
		upper := expiryKey(term.kind, now.Add(-term.keep), uuid.Max)
		var ids []uuid.UUID
		_ = cases.rs.Scan(pre, append(upper, 0), false, func(k, _ []byte) bool {
			if len(k) == len(pre)+24 {
				ids = append(ids, uuid.UUID(k[len(k)-16:]))
			}
			return true
		})
		for _, id := range ids {
			c, ok := cases.Get(id)
			if !ok || seen[c.SubjectID] {
				continue
			}
			seen[c.SubjectID] = true
			if s, ok := subjects.Get(c.SubjectID); !ok || s.Erased {
				continue
			}
			if allExpired(cases.OfSubject(c.SubjectID), now, r) {
				out = append(out, c.SubjectID)
			}
		}
	}
	return out
}

func allExpired(sigs []*Case, now time.Time, r Retention) bool {
	if len(sigs) == 0 {
		return false
	}
	for _, c := range sigs {
		exp, final := r.expiry(c)
		if !final || now.Before(exp) {
			return false
		}
	}
	return true
}
