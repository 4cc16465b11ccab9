package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Expired is a subject past its retention term (the read side finds them:
// the retention index of the case projection), with its network.
type Expired struct {
	Subject uuid.UUID
	Network string
}

// RetentionActor is who the retention sweep's erasures are recorded as.
const RetentionActor = "system:retention"

// retentionWorkers is how many erasures the sweep runs at a time:
// concurrent shreds share the key store's purge.
const retentionWorkers = 4

// EraseExpired is the retention sweep's use case: it erases every subject
// past its retention term (crypto-shredding, recorded as SubjectErased with
// basis "retention" and the request reference "retention <date>"), as the
// system actor RetentionActor of the subject's network: the sweep is the
// network's own policy, authorized by its configuration, not by a person's
// role. Each erasure carries an Idempotency-Key of its subject, so a sweep
// cut short and run again (on this replica or another) records each
// erasure once. done is called after each subject, one call at a time (for
// progress; nil: none). It returns the subjects erased and the errors of the others.
func (s *Service) EraseExpired(ctx context.Context, now time.Time, expired []Expired, done func()) ([]uuid.UUID, error) {
	var (
		mu     sync.Mutex
		erased []uuid.UUID
		errs   []error
		wg     sync.WaitGroup
	)
	ref := "retention " + now.UTC().Format(time.DateOnly)
	work := make(chan Expired)
	for range retentionWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range work {
				req := Request{
					Actor:          domain.Principal{ID: RetentionActor, Roles: []domain.Role{domain.RolePrivacyOfficer}, Network: e.Network},
					RequestID:      "retention-" + now.UTC().Format("20060102T150405"),
					IdempotencyKey: "retention-" + e.Subject.String(),
				}
				_, err := s.erase(ctx, req, e.Subject, ref, "retention", true)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("subject %s: %w", e.Subject, err))
				} else {
					erased = append(erased, e.Subject)
				}
				if done != nil {
					done() // one call at a time
				}
				mu.Unlock()
			}
		}()
	}
	for _, e := range expired {
		work <- e
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return erased, fmt.Errorf("retention: erase: %w", errors.Join(errs...))
	}
	return erased, nil
}
