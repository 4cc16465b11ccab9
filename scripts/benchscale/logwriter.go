package main

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/audit"
	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// The realistic log: signals raised at a steady rate over the years up to
// the present, each through its lifecycle (handed over, accepted, followed
// up, referred now and then, given feedback, closed weeks later; a few
// withdrawn), interleaved in time order as a network produces them, with
// the access records of the reads beside them in the full load mix's
// proportions (per raise about one caseload list naming 50 open signals of
// a team, three quarters of a case read, a tenth of an audit query; a third
// of all events), written straight through the embedded store, the key
// store (every subject its own key) and the audit log (hash-chained, in
// daily streams of a replica "bench"). Everything is in the load
// principals' network, so the load generator's principals read it.

// Per signal, on average: subject, raise, handover, accept, 1.5 follow-ups,
// a quarter referral with its answer, feedback twice, close: 9 events; and
// 4 access records.
const (
	eventsPerSignal = 13
	signalsPerDay   = 150
	teams           = 4
)

var (
	hoods      = []string{"centrum", "noord", "oost", "zuid", "west"}
	raisers    = []string{"vol1", "vol2", "par1"}
	professors = []string{"pro1", "pro2", "pro3"}
)

// logWriter writes the log in steps: Write(n) appends until the store
// holds n events. It keeps its simulation between calls, so a longer log
// continues the shorter one.
type logWriter struct {
	store    *pebblestore.Store
	keys     *keystore.Store
	audit    *audit.Log
	rng      *rand.Rand
	clock    atomic.Int64 // simulated now (unix nanos), for the audit log's day streams
	start    time.Time
	next     int // the next signal to raise
	queue    eventQueue
	open     [teams][]int // open signals per team, in raise order
	sigs     []signal
	access   time.Time // when the next access record is due
	accesses int
}

type signal struct {
	id, subject uuid.UUID
	team        int
}

// scheduled is one step of a signal's lifecycle, due at a simulated time.
type scheduled struct {
	at     time.Time
	signal int
	step   int
}

type eventQueue []scheduled

func (q eventQueue) Len() int           { return len(q) }
func (q eventQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q eventQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)        { *q = append(*q, x.(scheduled)) }
func (q *eventQueue) Pop() any {
	old := *q
	s := old[len(old)-1]
	*q = old[:len(old)-1]
	return s
}

// newLogWriter starts a simulation whose log will reach total events: the
// simulated time starts so many days back that the last events land about
// now (the first weeks, before lifecycles close, hold fewer events a day:
// about 20 days more). Open gives it the stores to write to.
func newLogWriter(total int, seed uint64) *logWriter {
	days := float64(total)/eventsPerSignal/signalsPerDay + 20
	w := &logWriter{rng: rand.New(rand.NewPCG(seed, 3)), start: time.Now().UTC().Add(-time.Duration(days*24) * time.Hour)}
	w.access = w.start
	return w
}

// Open opens the data directory's stores as the server would find them.
func (w *logWriter) Open(dataDir string) error {
	store, err := pebblestore.Open(filepath.Join(dataDir, "events"), pebblestore.Options{NoSync: true})
	if err != nil {
		return err
	}
	master, err := keystore.LoadOrCreateMasterKey(vfs.Default, filepath.Join(dataDir, "master-key.json"))
	if err != nil {
		store.Close()
		return err
	}
	keys, err := keystore.Open(filepath.Join(dataDir, "keys"), master, keystore.Options{CacheSize: 1000})
	if err != nil {
		store.Close()
		return err
	}
	w.store, w.keys = store, keys
	w.audit = audit.New(store, keys, "bench", func() time.Time { return time.Unix(0, w.clock.Load()).UTC() })
	return nil
}

// Close closes the stores; the simulation stays, for a later Open.
func (w *logWriter) Close() error {
	return errors.Join(w.audit.Close(), w.keys.Close(), w.store.Close())
}

// op is what one worker does at a time: appends to streams in order (a
// subject, then its signal), or one access record through the audit log.
// Sealing happens in the worker (a new subject's first seal creates its
// key: a synced write).
type op struct {
	shard  string // the stream whose worker does it
	events int    // how many events it appends
	build  func() []streamEvents
	at     time.Time
	actor  string
	role   string
	access *domain.Access
}

type streamEvents struct {
	stream string
	events []domain.Event
}

// Write appends until the store holds n events.
func (w *logWriter) Write(ctx context.Context, n uint64) error {
	const workers = 256
	var (
		wg     sync.WaitGroup
		failed atomic.Pointer[error]
	)
	queues := make([]chan op, workers)
	for i := range queues {
		queues[i] = make(chan op, 64)
		wg.Add(1)
		go func(q chan op) {
			defer wg.Done()
			for o := range q {
				if failed.Load() != nil {
					continue
				}
				if err := w.apply(ctx, o); err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			}
		}(queues[i])
	}
	shard := func(stream string) chan op {
		h := fnv.New32a()
		h.Write([]byte(stream))
		return queues[h.Sum32()%workers]
	}
	sent, err := w.store.Head(ctx)
	if err == nil && sent == 0 {
		shard("org-load-school") <- op{shard: "org-load-school", events: 1, at: w.start, actor: "adm1", role: string(domain.RoleAdmin),
			build: func() []streamEvents {
				return []streamEvents{{stream: "org-load-school", events: []domain.Event{
					domain.OrganisationRegistered{OrganisationID: "load-school", Network: "default", Name: "Load School", Kind: "school"}}}}
			}}
		sent++
	}
	for err == nil && sent < n && failed.Load() == nil {
		o := w.nextOp()
		sent += uint64(o.events)
		shard(o.shard) <- o
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		return *f
	}
	return err
}

func (w *logWriter) apply(ctx context.Context, o op) error {
	if o.access != nil {
		return w.audit.RecordAccess(ctx, *o.access)
	}
	for _, a := range o.build() {
		data := make([]eventlog.EventData, len(a.events))
		for i, e := range a.events {
			body, err := domain.Encode(e)
			if err != nil {
				return err
			}
			data[i] = eventlog.EventData{ID: uuid.New(), Type: e.EventType(), Data: body, Metadata: eventlog.Metadata{
				OccurredAt: o.at, ActorID: o.actor, ActorRole: o.role, Network: "default", RequestID: "bench", CorrelationID: "bench",
				SchemaVersion: domain.SchemaVersion}}
		}
		if _, err := w.store.Append(ctx, a.stream, eventlog.Any(), data...); err != nil {
			return err
		}
	}
	return nil
}

func (w *logWriter) seal(subject uuid.UUID, text string) domain.Sealed {
	b, err := w.keys.Seal(context.Background(), subject, []byte(text))
	if err != nil {
		panic(fmt.Sprintf("seal: %v", err))
	}
	return b
}

func (w *logWriter) raiseAt(i int) time.Time {
	return w.start.Add(time.Duration(float64(i) / signalsPerDay * float64(24*time.Hour)))
}

// nextOp advances the simulation to its next append: a raise, a lifecycle
// step or an access record, whichever is due first.
func (w *logWriter) nextOp() op {
	raise := w.raiseAt(w.next)
	if w.queue.Len() > 0 && w.queue[0].at.Before(raise) && w.queue[0].at.Before(w.access) {
		s := heap.Pop(&w.queue).(scheduled)
		w.clock.Store(s.at.UnixNano())
		return w.step(s)
	}
	if w.access.Before(raise) {
		at := w.access
		w.access = at.Add(time.Duration(w.rng.ExpFloat64() * float64(24*time.Hour) / (4 * signalsPerDay)))
		w.clock.Store(at.UnixNano())
		return w.accessOp(at)
	}
	w.clock.Store(raise.UnixNano())
	return w.raise(raise)
}

// The steps of a lifecycle.
const (
	stepHandover = iota
	stepAccept
	stepFollowUp
	stepRefer
	stepFeedback
	stepClose
	stepWithdraw
)

func (w *logWriter) raise(at time.Time) op {
	i := w.next
	w.next++
	rng := w.rng
	s := signal{id: uuid.New(), subject: uuid.New(), team: rng.IntN(teams)}
	w.sigs = append(w.sigs, s)
	subjectData := fmt.Sprintf(`{"name":"Bewoner %d","birth_date":"19%02d-%02d-%02d"}`, i, 30+rng.IntN(70), 1+rng.IntN(12), 1+rng.IntN(28))
	raiser := raisers[rng.IntN(len(raisers))]
	source := domain.RoleBuurtsteun
	if raiser == "par1" {
		source = domain.RolePartner
	}
	raised := domain.SignalRaised{SignalID: s.id, SubjectID: s.subject, RaisedBy: raiser, Source: source, Network: "default",
		Neighbourhood: hoods[rng.IntN(len(hoods))], Categories: []string{domain.Categories[rng.IntN(len(domain.Categories))]},
		Urgency: []string{"normal", "normal", "high", "acute"}[rng.IntN(4)], Consent: "informed",
		Description: w.seal(s.subject, "Buurtbewoner maakt zich zorgen; al enige weken geen contact meer gehad met deze bewoner en de post stapelt zich op."),
		RaisedAt:    at}
	// The lifecycle's steps, each some time after the one before.
	t := at
	next := func(step int, lo, hi time.Duration) {
		t = t.Add(lo + time.Duration(rng.Int64N(int64(hi-lo))))
		heap.Push(&w.queue, scheduled{at: t, signal: i, step: step})
	}
	if rng.IntN(50) == 0 {
		next(stepWithdraw, time.Hour, 48*time.Hour)
	} else {
		next(stepHandover, time.Hour, 48*time.Hour)
		next(stepAccept, time.Hour, 72*time.Hour)
		for range 1 + rng.IntN(2) {
			next(stepFollowUp, 24*time.Hour, 10*24*time.Hour)
		}
		if rng.IntN(4) == 0 {
			next(stepRefer, time.Hour, 5*24*time.Hour)
		}
		next(stepFeedback, time.Hour, 5*24*time.Hour)
		next(stepClose, 24*time.Hour, 30*24*time.Hour)
	}
	stream := "signal-" + s.id.String()
	return op{shard: stream, events: 2, at: at, actor: raiser, role: string(source), build: func() []streamEvents {
		reg := domain.SubjectRegistered{SubjectID: s.subject, Network: "default", Data: w.seal(s.subject, subjectData)}
		raised.Description = w.seal(s.subject, "Buurtbewoner maakt zich zorgen; al enige weken geen contact meer gehad met deze bewoner en de post stapelt zich op.")
		return []streamEvents{{stream: "subject-" + s.subject.String(), events: []domain.Event{reg}}, {stream: stream, events: []domain.Event{raised}}}
	}}
}

// step is one lifecycle step of a signal.
func (w *logWriter) step(sc scheduled) op {
	s := w.sigs[sc.signal]
	rng := w.rng
	team := fmt.Sprintf("team-%d", s.team+1)
	prof := professors[rng.IntN(len(professors))]
	o := op{shard: "signal-" + s.id.String(), events: 1, at: sc.at, actor: prof, role: string(domain.RoleProfessional)}
	var evs func() []domain.Event
	switch sc.step {
	case stepHandover:
		o.actor, o.role = "coo1", string(domain.RoleCoordinator)
		evs = func() []domain.Event { return []domain.Event{domain.SignalHandedOver{TeamID: team}} }
	case stepAccept:
		evs = func() []domain.Event { return []domain.Event{domain.HandoverAccepted{TeamID: team}} }
		w.open[s.team] = append(w.open[s.team], sc.signal)
	case stepFollowUp:
		fu, due := uuid.New(), sc.at.AddDate(0, 0, 7).Format(time.DateOnly)
		evs = func() []domain.Event {
			return []domain.Event{domain.FollowUpRecorded{FollowUpID: fu, Kind: "phone_call", Outcome: "reached",
				Note: w.seal(s.subject, "Gebeld, afspraak gemaakt voor huisbezoek."), NextDue: due}}
		}
	case stepRefer:
		ref := uuid.New()
		o.events = 2
		evs = func() []domain.Event {
			return []domain.Event{domain.ReferralMade{ReferralID: ref, OrganisationID: "load-school", Reason: w.seal(s.subject, "Doorverwijzing voor ondersteuning.")},
				domain.ReferralAccepted{ReferralID: ref}}
		}
	case stepFeedback:
		evs = func() []domain.Event { return []domain.Event{domain.FeedbackGiven{Code: "in_progress"}} }
	case stepClose:
		o.events = 2
		evs = func() []domain.Event {
			return []domain.Event{domain.FeedbackGiven{Code: "closed"}, domain.CaseClosed{Outcome: "resolved"}}
		}
		w.open[s.team] = slices.DeleteFunc(w.open[s.team], func(j int) bool { return j == sc.signal })
	case stepWithdraw:
		o.actor, o.role = "vol1", string(domain.RoleBuurtsteun)
		evs = func() []domain.Event {
			return []domain.Event{domain.SignalWithdrawn{Reason: w.seal(s.subject, "Dubbel gemeld.")}}
		}
	}
	o.build = func() []streamEvents { return []streamEvents{{stream: o.shard, events: evs()}} }
	return o
}

// accessOp is the access record of a read in the load mix's proportions:
// 20 caseload lists (50 open signals of a team), 15 case reads (one in 100
// by break-glass), 2 audit queries.
func (w *logWriter) accessOp(at time.Time) op {
	rng := w.rng
	team := rng.IntN(teams)
	prof := professors[rng.IntN(len(professors))]
	a := domain.Access{AccessRecord: domain.AccessRecord{At: at, ActorID: prof, ActorRole: string(domain.RoleProfessional), Purpose: "care",
		Basis: domain.BasisTeam, ClientAddr: "127.0.0.1", RequestID: "bench", Network: "default", Outcome: "allowed"}}
	open := w.open[team]
	switch n := rng.IntN(37); {
	case n < 20 && len(open) > 0:
		a.Action, a.View = "list", "/v1/caseload"
		for _, i := range open[:min(50, len(open))] {
			a.Subjects = append(a.Subjects, w.sigs[i].subject)
			a.Signals = append(a.Signals, w.sigs[i].id)
		}
	case n < 35 && len(open) > 0:
		s := w.sigs[open[rng.IntN(len(open))]]
		a.Action, a.View = "read", "/v1/signals/{id}"
		a.Subjects, a.Signals = []uuid.UUID{s.subject}, []uuid.UUID{s.id}
		if rng.IntN(100) == 0 {
			a.Basis, a.Reason, a.Purpose = domain.BasisBreakGlass, "Waarneming buiten het eigen team", "break_glass"
		}
	default:
		a.ActorID, a.ActorRole = "pri1", string(domain.RolePrivacyOfficer)
		a.Action, a.View, a.Basis, a.Purpose = "audit_read", "/v1/audit/actors/{id}", domain.BasisRole, "privacy_audit"
	}
	w.accesses++
	return op{shard: fmt.Sprint("audit-", w.accesses%64), events: 1, at: at, access: &a}
}
