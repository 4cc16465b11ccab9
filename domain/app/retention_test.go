package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// TestEraseExpired: the retention sweep's use case erases every expired
// subject as the system actor of the subject's own network, with basis
// "retention"; a sweep run again records nothing twice; and a person's
// erasure request can no longer pass itself off as the sweep to skip its
// authorization.
func TestEraseExpired(t *testing.T) {
	store, keys := openStores(t)
	ctx := context.Background()
	svc := &app.Service{Log: store, Cipher: keys, Index: keys.BlindIndex(), Subjects: keys, Lookup: noLookup{},
		Reg: domain.NewRegistry(), Now: time.Now, NewID: uuid.New}
	raise := func(network, name string) uuid.UUID {
		t.Helper()
		res, err := svc.Raise(ctx, app.Request{Actor: domain.Principal{ID: "carla", Roles: []domain.Role{domain.RoleBuurtsteun}, Network: network}},
			app.RaiseInput{Subject: app.SubjectData{Name: name, BirthDate: "1950-01-01"}, Neighbourhood: "centrum",
				Categories: []string{"loneliness"}, Urgency: "normal", Consent: "informed", Description: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return res.SubjectID
	}
	a, b := raise("default", "Oud Persoon"), raise("heerlen", "Ander Persoon")
	now := time.Date(2031, 5, 6, 3, 0, 0, 0, time.UTC)
	expired := []app.Expired{{Subject: a, Network: "default"}, {Subject: b, Network: "heerlen"}}

	type erasure struct {
		Network, Actor, Basis, RequestRef string
	}
	erasures := func(subject uuid.UUID) []erasure {
		t.Helper()
		recs, err := store.ReadStream(ctx, eventlog.StreamName(domain.SubjectCategory, subject.String()), eventlog.Forwards, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []erasure
		for _, r := range recs {
			if r.Type != (domain.SubjectErased{}).EventType() {
				continue
			}
			var e domain.SubjectErased
			if err := json.Unmarshal(r.Data, &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, erasure{Network: r.Metadata.Network, Actor: r.Metadata.ActorID, Basis: e.Basis, RequestRef: e.RequestRef})
		}
		return out
	}
	for round := range 2 {
		done := 0
		got, err := svc.EraseExpired(ctx, now, expired, func() { done++ })
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(got) != 2 || done != 2 {
			t.Fatalf("round %d: erased %v, done called %d times", round, got, done)
		}
	}
	for _, tc := range []struct {
		subject uuid.UUID
		network string
	}{{a, "default"}, {b, "heerlen"}} {
		want := []erasure{{Network: tc.network, Actor: app.RetentionActor, Basis: "retention", RequestRef: "retention 2031-05-06"}}
		if diff := cmp.Diff(want, erasures(tc.subject)); diff != "" {
			t.Errorf("erasures of the %s subject (-want +got):\n%s", tc.network, diff)
		}
		if _, err := keys.Open(ctx, tc.subject, nil); !errors.Is(err, domain.ErrErased) {
			t.Errorf("the %s subject's data: %v, want ErrErased", tc.network, err)
		}
	}

	c := raise("default", "Derde Persoon")
	coordinator := domain.Principal{ID: "gert", Roles: []domain.Role{domain.RoleCoordinator}, Network: "default"}
	if _, err := svc.EraseSubject(ctx, app.Request{Actor: coordinator}, c, "R", "retention", true); err == nil {
		t.Fatal("a coordinator's erasure with basis retention was allowed")
	}
}
