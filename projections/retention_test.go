package projections

import (
	"testing"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func TestRetentionExpiresOnlyFinalSignalsPastTheirTerm(t *testing.T) {
	s := newSet(t)
	applyAll(t, s, history(t, 200, 5))
	r := DefaultRetention()
	var last time.Time
	s.cases.All(func(c *Case) bool {
		if c.LastActivityAt.After(last) {
			last = c.LastActivityAt
		}
		return true
	})
	if got := Expired(s.cases, s.subjects, last, r); len(got) != 0 {
		t.Fatalf("%d subjects expired right after their last activity", len(got))
	}
	halfYear := Expired(s.cases, s.subjects, last.Add(190*24*time.Hour), r)
	threeYears := Expired(s.cases, s.subjects, last.Add(3*365*24*time.Hour), r)
	if len(halfYear) == 0 || len(threeYears) <= len(halfYear) {
		t.Fatalf("expired after half a year: %d, after three years: %d", len(halfYear), len(threeYears))
	}
	for _, id := range threeYears {
		for _, c := range s.cases.OfSubject(id) {
			if c.Status != domain.StatusWithdrawn && c.Status != domain.StatusClosed && c.DeclinedAt.IsZero() {
				t.Fatalf("subject with a %s signal expired", c.Status)
			}
		}
	}
	for _, id := range halfYear {
		for _, c := range s.cases.OfSubject(id) {
			if c.Status == domain.StatusClosed {
				t.Fatalf("a closed case expired after half a year")
			}
		}
	}
}
