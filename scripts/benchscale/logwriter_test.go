package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/adapters/readstore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// TestLogWriterWritesARealisticLog is bench-scale's harness at a small
// size: the log writer, in two steps as the benchmark writes it, makes a
// log in the full mix's proportions (a third access records once
// lifecycles close, more in the first weeks as here; caseload lists of at
// most 50 signals), with lifecycles interleaved in time and open work at
// the end, ending about now (within the warm-up's error at this size),
// that the projections read.
func TestLogWriterWritesARealisticLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := newLogWriter(40_000, 1)
	if err := w.Open(dir); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, 10_000); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Open(dir); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, 40_000); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	store, err := pebblestore.Open(filepath.Join(dir, "events"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	recs, err := store.ReadAll(ctx, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 40_000 || len(recs) > 40_100 {
		t.Fatalf("%d events, want about 40,000", len(recs))
	}
	reg := domain.NewRegistry()
	types := map[string]int{}
	var last time.Time
	for _, re := range recs {
		types[re.Type]++
		if re.Type == "RecordAccessed" {
			e, err := reg.Decode(re.Type, re.Data)
			if err != nil {
				t.Fatal(err)
			}
			if a := e.(domain.RecordAccessed); len(a.Subjects) > 50 || !strings.HasPrefix(re.StreamID, "audit-bench-") {
				t.Fatalf("an access record of %d subjects in %s", len(a.Subjects), re.StreamID)
			}
		}
		if re.Metadata.OccurredAt.After(last) {
			last = re.Metadata.OccurredAt
		}
	}
	if share := float64(types["RecordAccessed"]) / float64(len(recs)); share < 0.25 || share > 0.45 {
		t.Fatalf("access records are %.2f of the log, want about a third: %v", share, types)
	}
	if types["SignalRaised"] != types["SubjectRegistered"] || types["CaseClosed"] == 0 || types["ReferralMade"] == 0 {
		t.Fatalf("lifecycles: %v", types)
	}
	if d := time.Since(last); d < -20*24*time.Hour || d > 20*24*time.Hour {
		t.Fatalf("the log ends %s ago", d)
	}

	cases := projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil))
	auditTrail := projections.NewAuditTrail()
	r := projections.NewRunner(store, reg, cases, projections.NewSubjects(), projections.NewOrganisations(), auditTrail)
	rs, err := readstore.Open(t.TempDir(), readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if _, err := r.Open(ctx, rs, false); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	head, _ := store.Head(ctx)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := r.WaitFor(wctx, head); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	open := cases.OpenLen()
	if open == 0 || open >= cases.Len() || auditTrail.Records() != types["RecordAccessed"] {
		t.Fatalf("%d open cases of %d, %d access records", open, cases.Len(), auditTrail.Records())
	}
}
