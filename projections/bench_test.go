package projections_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/adapters/readstore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// The benchmark log: 103,500 signals through realistic lifecycles, just over
// 1,000,000 events in the embedded store, with personal data sealed by the
// real key store. Built once per run, outside the timers.
const benchSignals = 103_500

var fixture struct {
	once   sync.Once
	dir    string
	events int
	err    error
}

func buildFixture(b *testing.B) (string, int) {
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "buurtsignaal-projbench-")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.dir = dir
		fixture.events, fixture.err = writeLog(dir)
	})
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
	return fixture.dir, fixture.events
}

func openKeys(dir string) (*keystore.Store, error) {
	m, err := keystore.LoadOrCreateMasterKey(nil, filepath.Join(dir, "master.json"))
	if err != nil {
		return nil, err
	}
	return keystore.Open(filepath.Join(dir, "keys"), m, keystore.Options{})
}

// writeLog appends the signals' histories: every signal is raised, most are
// handed over and accepted, followed up a few times, some referred and closed.
func writeLog(dir string) (int, error) {
	store, err := pebblestore.Open(filepath.Join(dir, "events"), pebblestore.Options{NoSync: true})
	if err != nil {
		return 0, err
	}
	defer store.Close()
	keys, err := openKeys(dir)
	if err != nil {
		return 0, err
	}
	defer keys.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < benchSignals; i += 8 {
				n, err := writeSignal(ctx, store, keys, i, t0.Add(time.Duration(i)*time.Minute))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return total, <-errs
}

func writeSignal(ctx context.Context, store eventlog.Store, keys domain.Cipher, i int, at time.Time) (int, error) {
	sig, subj := uuid.New(), uuid.New()
	seal := func(s string) domain.Sealed {
		b, _ := keys.Seal(ctx, subj, []byte(s))
		return b
	}
	team := "team-" + strconv.Itoa(i%20)
	prof := fmt.Sprintf("prof-%d", i%60)
	evs := []domain.Event{
		domain.SignalRaised{SignalID: sig, SubjectID: subj, RaisedBy: fmt.Sprintf("vol-%d", i%200), Source: domain.RoleBuurtsteun, Network: "net",
			Neighbourhood: []string{"centrum", "noord", "oost", "zuid"}[i%4], Categories: []string{domain.Categories[i%8]},
			Urgency: []string{"normal", "high", "acute"}[i%3], Consent: "informed",
			Description: seal("Buurtbewoner maakt zich zorgen over deze bewoner; de post stapelt zich op sinds enkele weken."), RaisedAt: at},
		domain.SignalHandedOver{TeamID: team, Note: seal("Graag oppakken")},
		domain.HandoverAccepted{TeamID: team},
		domain.CaseAssigned{ProfessionalID: prof},
		domain.FollowUpRecorded{FollowUpID: uuid.New(), Kind: "phone_call", Outcome: "not_reached", NextDue: at.AddDate(0, 0, 3).Format(time.DateOnly)},
		domain.FollowUpRecorded{FollowUpID: uuid.New(), Kind: "home_visit", Outcome: "reached", Note: seal("Huisbezoek afgelegd, bewoner staat open voor hulp."), NextDue: at.AddDate(0, 0, 10).Format(time.DateOnly)},
		domain.FeedbackGiven{Code: "in_progress"},
	}
	if i%3 == 0 {
		ref := uuid.New()
		evs = append(evs, domain.ReferralMade{ReferralID: ref, OrganisationID: "org-1", Reason: seal("Schuldhulp")}, domain.ReferralAccepted{ReferralID: ref})
	}
	if (i/20)%2 == 0 { // half stay open: the caseload holds 50,000 cases, 2,500 per team
		evs = append(evs, domain.FeedbackGiven{Code: "closed"}, domain.CaseClosed{Outcome: "resolved"})
	}
	data := make([]eventlog.EventData, len(evs))
	for k, e := range evs {
		body, err := domain.Encode(e)
		if err != nil {
			return 0, err
		}
		data[k] = eventlog.EventData{ID: uuid.New(), Type: e.EventType(), Data: body, Metadata: eventlog.Metadata{
			OccurredAt: at.Add(time.Duration(k) * time.Hour), ActorID: prof, ActorRole: "professional", Network: "net",
			RequestID: "req", CorrelationID: "corr", SchemaVersion: domain.SchemaVersion}}
	}
	reg := domain.SubjectRegistered{SubjectID: subj, Network: "net", Data: seal(`{"name":"Bewoner ` + strconv.Itoa(i) + `","birth_date":"1950-01-01"}`)}
	body, _ := domain.Encode(reg)
	if _, err := store.Append(ctx, "subject-"+subj.String(), eventlog.NoStream(), eventlog.EventData{ID: uuid.New(), Type: reg.EventType(), Data: body,
		Metadata: eventlog.Metadata{OccurredAt: at, Network: "net", SchemaVersion: domain.SchemaVersion}}); err != nil {
		return 0, err
	}
	if _, err := store.Append(ctx, "signal-"+sig.String(), eventlog.NoStream(), data...); err != nil {
		return 0, err
	}
	return len(evs) + 1, nil
}

type benchSet struct {
	runner *projections.Runner
	cases  *projections.Cases
}

// newBenchSet builds the projections over a new on-disk read-model store,
// as the server does.
func newBenchSet(b *testing.B, store eventlog.Store) benchSet {
	cases := projections.NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, domain.DutchHolidays(2026)))
	r := projections.NewRunner(store, domain.NewRegistry(), cases, projections.NewSubjects(), projections.NewOrganisations(), projections.NewAuditTrail())
	rs, err := readstore.Open(b.TempDir(), readstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rs.Close() })
	if _, err := r.Open(context.Background(), rs, false); err != nil {
		b.Fatal(err)
	}
	return benchSet{runner: r, cases: cases}
}

// replayAll feeds every event of the store to the runner, as start-up does.
func replayAll(b *testing.B, store eventlog.Store, apply func(eventlog.RecordedEvent) error) int {
	n := 0
	var after uint64
	for {
		page, err := store.ReadAll(context.Background(), after, 4096)
		if err != nil {
			b.Fatal(err)
		}
		if len(page) == 0 {
			return n
		}
		for _, re := range page {
			if err := apply(re); err != nil {
				b.Fatal(err)
			}
		}
		n += len(page)
		after = page[len(page)-1].Position
	}
}

func openFixture(b *testing.B) (eventlog.Store, *keystore.Store, int) {
	dir, events := buildFixture(b)
	store, err := pebblestore.Open(filepath.Join(dir, "events"), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	keys, err := openKeys(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { keys.Close(); store.Close() })
	return store, keys, events
}

// runToHead runs the runner as start-up does (catch-up subscription,
// decoding ahead of applying) until it has applied the whole log.
func runToHead(b *testing.B, store eventlog.Store, set benchSet) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- set.runner.Run(ctx) }()
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := set.runner.WaitFor(ctx, head); err != nil {
		b.Fatal(err)
	}
	cancel()
	<-done
}

// BenchmarkReplayProjections replays the whole log into all projections.
func BenchmarkReplayProjections(b *testing.B) {
	store, _, events := openFixture(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		set := newBenchSet(b, store)
		runToHead(b, store, set)
		if n := int(set.runner.Applied()); n != events {
			b.Fatalf("replayed %d events, want %d", n, events)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/replay")
	b.ReportMetric(float64(events), "events")
}

// BenchmarkDecodeOnly reads and decodes the same events without projecting:
// the limit for the replay.
func BenchmarkDecodeOnly(b *testing.B) {
	store, _, events := openFixture(b)
	reg := domain.NewRegistry()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		replayAll(b, store, func(re eventlog.RecordedEvent) error {
			_, err := projections.Decode(reg, re)
			return err
		})
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}

func rssBytes() uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// BenchmarkCaseload measures caseload queries (first page of 50, due first)
// of one professional's team with 50,000 open signals over 20 teams, and
// reports the memory held per event.
func BenchmarkCaseload(b *testing.B) {
	store, _, events := openFixture(b)
	runtime.GC()
	debug.FreeOSMemory()
	before := rssBytes()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	set := newBenchSet(b, store)
	runToHead(b, store, set)
	runtime.GC()
	debug.FreeOSMemory()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	after := rssBytes()
	open := set.cases.OpenLen()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		team := "team-" + strconv.Itoa(i%20)
		t0 := time.Now()
		var page []*projections.Case
		set.runner.Read(func() {
			page, _ = set.cases.Caseload(projections.CaseloadFilter{Teams: []string{team}, Network: "net"}, 50)
		})
		lat = append(lat, time.Since(t0))
		if len(page) != 50 {
			b.Fatalf("page of %d", len(page))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	p99 := lat[min(len(lat)-1, len(lat)*99/100)]
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(open), "open_signals")
	heldHeap := float64(ms1.HeapAlloc) - float64(ms0.HeapAlloc)
	b.ReportMetric(heldHeap/float64(events), "heap_bytes/event")
	b.ReportMetric((float64(after)-float64(before))/float64(events), "rss_bytes/event")
	runtime.KeepAlive(set)
}

// TestMain removes the benchmark fixture and fails the run when a test
// leaves goroutines behind (writers, syncers, subscriptions, runners).
func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	if err := goleak.Find(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "goleak:", err)
		code = 1
	}
	os.Exit(code)
}
