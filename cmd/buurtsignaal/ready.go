package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// readiness is what GET /readyz answers. The server is ready while the
// event store answers (a Head probe every interval), the projections have
// caught up and not stopped, and they have applied what the log held
// maxLag ago (so a stalled subscription, or one that cannot reach the
// store, turns it off). It exports buurtsignaal_ready and
// buurtsignaal_store_reachable and logs each change. It measures on the
// real clock, whatever clock the server's domain runs on.
type readiness struct {
	head     func(context.Context) (uint64, error)
	position func() uint64 // the projections' position
	caughtUp func() bool
	stopped  func() error // why the projections stopped, nil while they run
	interval time.Duration
	maxLag   time.Duration
	log      *slog.Logger

	mu        sync.Mutex
	state     string // "" when ready, else why not
	reachable bool
	// marks are heads the probes saw that the projections had not
	// applied then, oldest first: the oldest one's age is how long the
	// projections are behind what the log held.
	marks []mark
}

type mark struct {
	at   time.Time
	head uint64
}

// Reasons for not being ready, as logged.
const (
	notStarted        = "starting"
	storeUnreachable  = "store_unreachable"
	catchingUp        = "catching_up"
	projectionsStall  = "projections_stalled"
	projectionsFailed = "projections_stopped"
)

// maxMarks bounds the marks kept while the projections are behind: the
// oldest stays, middle ones go.
const maxMarks = 64

func newReadiness(head func(context.Context) (uint64, error), position func() uint64, caughtUp func() bool, stopped func() error,
	interval, maxLag time.Duration, log *slog.Logger, reg prometheus.Registerer) *readiness {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	if maxLag <= 0 {
		maxLag = 30 * time.Second
	}
	r := &readiness{head: head, position: position, caughtUp: caughtUp, stopped: stopped, interval: interval, maxLag: maxLag,
		log: log, state: notStarted}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "buurtsignaal_ready", Help: "1 while the server is ready (GET /readyz 200): the event store answers and the projections follow the log within --ready-max-lag; else 0.",
		}, func() float64 { return b2f(r.Ready()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "buurtsignaal_store_reachable", Help: "1 when the event store answered the last readiness probe (every --ready-interval), else 0.",
		}, func() float64 {
			r.mu.Lock()
			defer r.mu.Unlock()
			return b2f(r.reachable)
		}),
	)
	return r
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Ready reports whether the server is ready, as of the last probe.
func (r *readiness) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state == ""
}

// run probes every interval until ctx ends.
func (r *readiness) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.probe(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe asks the store for its head, bounded by a second or the interval,
// compares it with the projections and updates the state.
func (r *readiness) probe(ctx context.Context, now time.Time) {
	pctx, cancel := context.WithTimeout(ctx, max(r.interval, time.Second))
	head, err := r.head(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	pos := r.position()
	stopped := r.stopped()

	r.mu.Lock()
	r.reachable = err == nil
	if err == nil && head > pos && (len(r.marks) == 0 || head > r.marks[len(r.marks)-1].head) {
		r.marks = append(r.marks, mark{at: now, head: head})
		if len(r.marks) > maxMarks {
			r.marks = append(r.marks[:1], r.marks[2:]...)
		}
	}
	applied := 0
	for applied < len(r.marks) && r.marks[applied].head <= pos {
		applied++
	}
	r.marks = r.marks[applied:]
	state := ""
	switch {
	case stopped != nil:
		state = projectionsFailed
	case err != nil:
		state = storeUnreachable
	case !r.caughtUp():
		state = catchingUp
	case len(r.marks) > 0 && now.Sub(r.marks[0].at) >= r.maxLag:
		state = projectionsStall
	}
	was := r.state
	r.state = state
	var behind time.Duration
	if len(r.marks) > 0 {
		behind = now.Sub(r.marks[0].at)
	}
	r.mu.Unlock()

	if state == was {
		return
	}
	switch state {
	case "":
		r.log.Info("ready", "was", was)
	case projectionsFailed:
		r.log.Error("not ready: the projections stopped", "reason", state, "err", stopped)
	case storeUnreachable:
		r.log.Warn("not ready: the event store does not answer", "reason", state, "err", err)
	case projectionsStall:
		r.log.Warn("not ready: the projections are behind the log", "reason", state, "behind_seconds", behind.Seconds(), "position", pos, "head", head)
	default:
		r.log.Info("not ready", "reason", state)
	}
}
