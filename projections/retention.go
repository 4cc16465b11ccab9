package projections

import (
	"time"

	"github.com/google/uuid"
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
	case !c.WithdrawnAt.IsZero() && c.Status == "withdrawn":
		return c.WithdrawnAt.Add(r.Withdrawn), true
	case !c.ClosedAt.IsZero() && c.Status == "closed":
		return c.ClosedAt.Add(r.Closed), true
	case !c.DeclinedAt.IsZero() && c.Status == "raised":
		return c.DeclinedAt.Add(r.Declined), true
	}
	return time.Time{}, false
}

// Expired lists the subjects, not yet erased, whose every signal has passed
// its retention at now. Call it under the runner's read lock.
func Expired(cases *Cases, subjects *Subjects, now time.Time, r Retention) []uuid.UUID {
	var out []uuid.UUID
	subjects.All(func(s *Subject) bool {
		if s.Erased {
			return true
		}
		sigs := cases.OfSubject(s.ID)
		if len(sigs) == 0 {
			return true // a subject without signals: an interrupted raise; left to the operator
		}
		for _, c := range sigs {
			exp, final := r.expiry(c)
			if !final || now.Before(exp) {
				return true
			}
		}
		out = append(out, s.ID)
		return true
	})
	return out
}
