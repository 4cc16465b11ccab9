package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/adapters/readstore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

func TestProfileOpen(t *testing.T) {
	dir := os.Getenv("PROF_DATA")
	if dir == "" {
		t.Skip()
	}
	ctx := context.Background()
	t0 := time.Now()
	store, err := pebblestore.Open(filepath.Join(dir, "events"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t.Logf("event store open %s", time.Since(t0))
	t0 = time.Now()
	rs, err := readstore.Open(filepath.Join(dir, "readmodels"), readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	t.Logf("read store open %s", time.Since(t0))
	cases := projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil))
	r := projections.NewRunner(store, domain.NewRegistry(), cases, projections.NewSubjects(), projections.NewOrganisations(), projections.NewAuditTrail(), projections.NewNotificationTargets(), projections.NewEndedSessions())
	f, _ := os.Create("/tmp/open.prof")
	pprof.StartCPUProfile(f)
	t0 = time.Now()
	cleared, err := r.Open(ctx, rs, false)
	pprof.StopCPUProfile()
	t.Logf("runner open %s cleared %v; open cases %d of %d", time.Since(t0), cleared, cases.OpenLen(), cases.Len())
}
