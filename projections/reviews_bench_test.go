package projections_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/readstore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// BenchmarkAccessFlags measures GET /v1/audit/flags's read: a page of 50
// flags of a network in a period, over a read-model store (Pebble, on
// disk) holding the audit trail and the reviews read model of N access
// records (BUURTSIGNAAL_BENCH_ACCESS_RECORDS, default 1,000,000; the
// target is 10,000,000). The records are applied to the read models as
// the runner does (in batches, with their checkpoints), decoded already:
// 200 staff of one network reading 50,000 residents' cases, 40,000 reads
// a working day from 08:00 to 18:00, one in a hundred after 19:00, one in
// a hundred break-glass, one in a thousand on a case closed long ago.
// Built once, outside the timer; it reports the build rate and the
// query's p50 and p99.
func BenchmarkAccessFlags(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("BUURTSIGNAAL_BENCH_ACCESS_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	rs, err := readstore.Open(dir, readstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	cal := domain.NewCalendar(ams, append(domain.DutchHolidays(2025), domain.DutchHolidays(2026)...))
	audit, reviews := projections.NewAuditTrail(), projections.NewReviews(domain.DefaultFlagRules(), cal, 0)
	r := projections.NewRunner(nil, domain.NewRegistry(), audit, reviews)
	if _, err := r.Open(context.Background(), rs, false); err != nil {
		b.Fatal(err)
	}
	const perDay, batch = 40_000, 2048
	actors := make([]string, 200)
	for i := range actors {
		actors[i] = "staff-" + strconv.Itoa(i)
	}
	subjects, signals := make([]uuid.UUID, 50_000), make([]uuid.UUID, 50_000)
	for i := range subjects {
		subjects[i], signals[i] = uuid.New(), uuid.New()
	}
	closed := signals[:50]
	start := time.Now()
	envs := make([]projections.Envelope, 0, batch)
	pos := uint64(0)
	flush := func() {
		if err := r.ApplyDecoded(envs); err != nil {
			b.Fatal(err)
		}
		envs = envs[:0]
	}
	for _, s := range closed {
		pos++
		envs = append(envs, projections.Envelope{Position: pos, Stream: "signal-" + s.String(), Event: domain.CaseClosed{Outcome: "resolved"},
			At: time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)})
	}
	day := time.Date(2025, 1, 6, 0, 0, 0, 0, ams)
	var last time.Time
	for i := 0; i < n; {
		for !cal.WorkingDay(day) {
			day = day.AddDate(0, 0, 1)
		}
		for j := 0; j < perDay && i < n; j, i = j+1, i+1 {
			at := day.Add(8*time.Hour + time.Duration(j)*10*time.Hour/perDay)
			k := i % 50_000
			rec := domain.AccessRecord{At: at.UTC(), ActorID: actors[i%len(actors)], ActorRole: "professional", Action: "read", View: "/v1/signals/{id}",
				Basis: domain.BasisTeam, Subjects: []uuid.UUID{subjects[k]}, Signals: []uuid.UUID{signals[k]}, Outcome: "allowed", Network: "net"}
			switch {
			case i%100 == 7:
				rec.At = day.Add(20 * time.Hour).UTC()
			case i%100 == 42:
				rec.Basis, rec.BreakGlassReason = domain.BasisBreakGlass, domain.Sealed("sealed")
			case i%1000 == 500:
				rec.Signals = []uuid.UUID{closed[i%len(closed)]}
			}
			pos++
			envs = append(envs, projections.Envelope{Position: pos, Stream: "audit-bench-" + day.Format("20060102"), Event: domain.RecordAccessed{AccessRecord: rec}, At: rec.At})
			last = rec.At
			if len(envs) == batch {
				flush()
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	flush()
	built := time.Since(start)
	fmt.Fprintf(os.Stderr, "built %d access records in %s\n", n, built.Round(time.Second))

	from, to := last.AddDate(0, 0, -7), last.Add(time.Second)
	queries := []struct {
		name  string
		list  projections.ReviewList
		match func(*projections.ReviewItem) bool
	}{
		{"flags of the last week", projections.ReviewList{Network: "net", Flags: true}, nil},
		{"after_hours of the last week", projections.ReviewList{Network: "net", Rule: domain.RuleAfterHours}, nil},
		{"open flags", projections.ReviewList{Network: "net", Open: true}, func(it *projections.ReviewItem) bool { return it.Rule != projections.RuleBreakGlass }},
	}
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := queries[i%len(queries)]
		qfrom, qto := from, to
		if q.list.Open {
			qfrom, qto = time.Time{}, time.Time{}
		}
		t0 := time.Now()
		items, _, err := reviews.Page(q.list, qfrom, qto, q.match, nil, 50)
		times = append(times, time.Since(t0))
		if err != nil || len(items) != 50 {
			b.Fatalf("%s: %d items, %v", q.name, len(items), err)
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(n), "access_records")
	b.ReportMetric(float64(n)/built.Seconds(), "build_records/s")
}
