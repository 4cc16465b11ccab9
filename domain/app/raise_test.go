package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// flakyIndex fails the first n Puts.
type flakyIndex struct {
	domain.SubjectIndex
	fail atomic.Int32
}

func (f *flakyIndex) Put(ctx context.Context, network, token string, subject uuid.UUID) error {
	if f.fail.Add(-1) >= 0 {
		return errors.New("index unavailable")
	}
	return f.SubjectIndex.Put(ctx, network, token, subject)
}

type noLookup struct{}

func (noLookup) OpenSignalsOfSubject(uuid.UUID) []uuid.UUID { return nil }
func (noLookup) SignalOfReferral(context.Context, uuid.UUID) (uuid.UUID, bool, error) {
	return uuid.Nil, false, nil
}

// openStores opens an embedded event store and a local key store in a
// directory of the test's own, closed when the test ends.
func openStores(t *testing.T) (*pebblestore.Store, *keystore.Store) {
	t.Helper()
	dir := t.TempDir()
	store, err := pebblestore.Open(filepath.Join(dir, "events"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	master, err := keystore.LoadOrCreateMasterKey(nil, filepath.Join(dir, "master.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keystore.Open(filepath.Join(dir, "keys"), master, keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keys.Close() })
	return store, keys
}
func (noLookup) OrganisationExists(context.Context, string, string) bool { return false }
func (noLookup) KnownTeam(string, string) bool                           { return true }
func (noLookup) TeamsOf(string) ([]string, bool)                         { return nil, true }
func (noLookup) Professional(string, string, string) (bool, bool)        { return false, false }

// TestRaiseRetryWritesAFailedIndexEntry: a raise writes the new subject's
// index entry side by side with the signal. When only the index entry fails,
// the raise reports the failure, and its retry (same Idempotency-Key)
// answers as the first attempt would have and writes the entry, so later
// signals about the same person match.
func TestRaiseRetryWritesAFailedIndexEntry(t *testing.T) {
	log, keys := openStores(t)
	index := &flakyIndex{SubjectIndex: keys}
	index.fail.Store(1)
	svc := &app.Service{Log: log, Cipher: keys, Index: keys.BlindIndex(), Subjects: index, Lookup: noLookup{},
		Reg: domain.NewRegistry(), Now: time.Now, NewID: uuid.New}
	req := app.Request{Actor: domain.Principal{ID: "vol1", Roles: []domain.Role{domain.RoleBuurtsteun}, Network: "default"}, IdempotencyKey: "raise-1"}
	in := app.RaiseInput{Subject: app.SubjectData{Name: "Test Persoon", BirthDate: "1950-01-01"}, Neighbourhood: "centrum",
		Categories: []string{"loneliness"}, Urgency: "normal", Consent: "informed", Description: "test"}
	ctx := context.Background()

	if _, err := svc.Raise(ctx, req, in); err == nil {
		t.Fatal("raise with a failing index: want an error")
	}
	token := keys.BlindIndex().Token(in.Subject.Name, in.Subject.BirthDate)
	if _, found, err := keys.Find(ctx, "default", token); err != nil || found {
		t.Fatalf("after the failed index entry: found=%v err=%v, want not found", found, err)
	}
	res, err := svc.Raise(ctx, req, in)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	got, found, err := keys.Find(ctx, "default", token)
	if err != nil || !found || got != res.SubjectID {
		t.Fatalf("after the retry: Find = %v, %v, %v; want %v, true, nil", got, found, err, res.SubjectID)
	}
	recs, err := log.ReadStream(ctx, eventlog.StreamName(domain.SignalCategory, res.ID), eventlog.Forwards, 0, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("signal stream: %d records, err %v; want the one raise", len(recs), err)
	}
}
