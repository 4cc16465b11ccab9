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

func TestProfileRebuild(t *testing.T) {
	dir := os.Getenv("PROF_DATA")
	if dir == "" {
		t.Skip()
	}
	ctx := context.Background()
	store, err := pebblestore.Open(filepath.Join(dir, "events"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cases := projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil))
	r := projections.NewRunner(store, domain.NewRegistry(), cases, projections.NewSubjects(), projections.NewOrganisations(), projections.NewAuditTrail(), projections.NewNotificationTargets(), projections.NewEndedSessions())
	rs, err := readstore.Open(t.TempDir(), readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if _, err := r.Open(ctx, rs, false); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create("/tmp/rebuild.prof")
	pprof.StartCPUProfile(f)
	t0 := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	head, _ := store.Head(ctx)
	if err := r.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	pprof.StopCPUProfile()
	t.Logf("%d events in %s, %d writes", head, time.Since(t0), r.Writes())
	m := rs.Metrics()
	t.Logf("\n%s", m.String())
	cancel()
	<-done
}
