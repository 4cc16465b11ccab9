package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// interferingLog lets a test act just before appends to subject streams:
// before returns the error the append should fail with (nil: go on).
type interferingLog struct {
	eventlog.Store
	mu     sync.Mutex
	before func(ctx context.Context, stream string) error
}

func (l *interferingLog) Append(ctx context.Context, stream string, expected eventlog.ExpectedVersion, events ...eventlog.EventData) (eventlog.AppendResult, error) {
	l.mu.Lock()
	before := l.before
	l.mu.Unlock()
	if before != nil && len(events) > 0 && events[0].Type == (domain.SubjectErased{}).EventType() {
		if err := before(ctx, stream); err != nil {
			return eventlog.AppendResult{}, err
		}
	}
	return l.Store.Append(ctx, stream, expected, events...)
}

// cancellingCipher cancels the request's context as soon as a shred is done:
// the client hung up in the middle of the erasure.
type cancellingCipher struct {
	domain.Cipher
	cancel context.CancelFunc
}

func (c *cancellingCipher) Shred(ctx context.Context, subject uuid.UUID) error {
	err := c.Cipher.Shred(ctx, subject)
	if c.cancel != nil {
		c.cancel()
	}
	return err
}

// TestErasureNeverStopsHalfDone: once the subject's key is shredded, the
// erasure records SubjectErased whatever happens around it: an export that
// appends to the subject's stream first (a version conflict), a store that
// is briefly unavailable, a client that hangs up.
func TestErasureNeverStopsHalfDone(t *testing.T) {
	officer := domain.Principal{ID: "hanna", Roles: []domain.Role{domain.RolePrivacyOfficer}, Network: "default", MFA: true}
	tests := []struct {
		name string
		// before runs before each SubjectErased append (n counts them from 1).
		before func(svc *app.Service, subject uuid.UUID, n int) error
		hangUp bool
	}{
		{name: "an export gets in first", before: func(svc *app.Service, subject uuid.UUID, n int) error {
			if n <= 3 { // three exports win the race in a row
				_, err := svc.RecordExport(context.Background(), app.Request{Actor: officer}, subject, "R")
				return err
			}
			return nil
		}},
		{name: "the store is briefly unavailable", before: func(_ *app.Service, _ uuid.UUID, n int) error {
			if n <= 2 {
				return eventlog.ErrUnavailable
			}
			return nil
		}},
		{name: "the client hangs up after the shred", hangUp: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store, keys := openStores(t)
			log := &interferingLog{Store: store}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cipher := &cancellingCipher{Cipher: keys}
			if tc.hangUp {
				cipher.cancel = cancel
			}
			svc := &app.Service{Log: log, Cipher: cipher, Index: keys.BlindIndex(), Subjects: keys, Lookup: noLookup{},
				Reg: domain.NewRegistry(), Now: time.Now, NewID: uuid.New}
			raised, err := svc.Raise(context.Background(), app.Request{Actor: domain.Principal{ID: "carla", Roles: []domain.Role{domain.RoleBuurtsteun}, Network: "default"}},
				app.RaiseInput{Subject: app.SubjectData{Name: "Wis Persoon", BirthDate: "1950-01-01"}, Neighbourhood: "centrum",
					Categories: []string{"loneliness"}, Urgency: "normal", Consent: "informed", Description: "test"})
			if err != nil {
				t.Fatal(err)
			}
			subject := raised.SubjectID
			n := 0
			if tc.before != nil {
				log.before = func(context.Context, string) error {
					n++
					return tc.before(svc, subject, n)
				}
			}

			res, err := svc.EraseSubject(ctx, app.Request{Actor: officer, RequestID: "erase-1"}, subject, "AVG-1", "request", true)
			if err != nil {
				t.Fatalf("erasure: %v", err)
			}
			recs, err := store.ReadStream(context.Background(), eventlog.StreamName(domain.SubjectCategory, subject.String()), eventlog.Forwards, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			last := recs[len(recs)-1]
			if last.Type != (domain.SubjectErased{}).EventType() || res.Version != len(recs) || res.Position != last.Position {
				t.Fatalf("erasure answered version %d at %d; the stream ends with %s (revision %d at %d)", res.Version, res.Position, last.Type, last.Revision, last.Position)
			}
			if _, err := keys.Open(context.Background(), subject, nil); !errors.Is(err, domain.ErrErased) {
				t.Fatalf("the subject's data after the erasure: %v, want ErrErased", err)
			}
		})
	}
}
