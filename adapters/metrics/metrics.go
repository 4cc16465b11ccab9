// Package metrics holds the Prometheus instrumentation that is not HTTP:
// the event store decorator and the projection gauges. Every label is a
// bounded code (team, urgency, state, operation); never an id or personal data.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Store wraps an event store and measures appends.
type Store struct {
	eventlog.Store
	seconds  *prometheus.HistogramVec
	appended prometheus.Counter
}

var _ eventlog.Store = (*Store)(nil)

// InstrumentStore wraps s, registering buurtsignaal_eventlog_append_seconds
// (by outcome) and buurtsignaal_eventlog_appended_events_total on reg.
func InstrumentStore(s eventlog.Store, reg prometheus.Registerer) *Store {
	m := &Store{
		Store: s,
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "buurtsignaal_eventlog_append_seconds", Help: "Durable append latency, by outcome (ok or the error kind).",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"outcome"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "buurtsignaal_eventlog_appended_events_total", Help: "Events appended durably.",
		}),
	}
	reg.MustRegister(m.seconds, m.appended)
	return m
}

// Append implements eventlog.Store.
func (m *Store) Append(ctx context.Context, stream string, expected eventlog.ExpectedVersion, events ...eventlog.EventData) (eventlog.AppendResult, error) {
	start := time.Now()
	res, err := m.Store.Append(ctx, stream, expected, events...)
	outcome := "ok"
	if err != nil {
		outcome = domain.KindOf(err).String()
	} else {
		m.appended.Add(float64(len(events)))
	}
	m.seconds.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return res, err
}

// Monitor exports the response-monitoring gauges, computed from the cases
// projection at scrape time: buurtsignaal_signals_open{team,urgency} and
// buurtsignaal_signals_overdue{team,urgency,state}, plus projection lag.
// A series that would count fewer than K signals (and more than none) is
// left out (small-cell suppression; no series is a total of others, so no
// secondary suppression is needed).
type Monitor struct {
	Runner *projections.Runner
	Cases  *projections.Cases
	Now    func() time.Time
	Head   func(context.Context) (uint64, error)
	// K is the k of small-cell suppression (0: the default; never below 3).
	K int
	// Reviews, when set, gives buurtsignaal_reviews_overdue{network}: the
	// access reviews past their term.
	Reviews *projections.Reviews
}

var (
	openDesc    = prometheus.NewDesc("buurtsignaal_signals_open", "Open signals by team and urgency.", []string{"team", "urgency"}, nil)
	overdueDesc = prometheus.NewDesc("buurtsignaal_signals_overdue", "Signals past their response norm without a first response, by team, urgency and state (late, late_3x).", []string{"team", "urgency", "state"}, nil)
	reviewsDesc = prometheus.NewDesc("buurtsignaal_reviews_overdue", "Access reviews (break-glass reads and flags) not judged within their term, by network.", []string{"network"}, nil)
	posDesc     = prometheus.NewDesc("buurtsignaal_projection_position", "Log position the projections have applied.", nil, nil)
	lagDesc     = prometheus.NewDesc("buurtsignaal_projection_lag_events", "Log positions between the head and the projections (an upper bound on a store with sparse positions).", nil, nil)
	lagSecDesc  = prometheus.NewDesc("buurtsignaal_projection_lag_seconds", "Age of the last applied event when the projections are behind the head, else 0.", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	ch <- openDesc
	ch <- overdueDesc
	ch <- reviewsDesc
	ch <- posDesc
	ch <- lagDesc
	ch <- lagSecDesc
}

// Collect implements prometheus.Collector.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	type key struct{ team, urgency, state string }
	open, overdue := map[key]int{}, map[key]int{}
	now := m.Now()
	m.Runner.Read(func() {
		m.Cases.Open(func(c *projections.Case) bool {
			if !c.Status.Open() {
				return true
			}
			team := c.Team
			if team == "" {
				team = "none"
			}
			open[key{team, c.Urgency, ""}]++
			if st := domain.StateAt(now, c.DueAt, c.Due3xAt, c.FirstResponseAt, c.StoppedAt); st == domain.StateLate || st == domain.StateLate3x {
				overdue[key{team, c.Urgency, string(st)}]++
			}
			return true
		})
	})
	small := func(n int) bool { return n > 0 && n < domain.SuppressK(m.K) }
	for k, n := range open {
		if !small(n) {
			ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(n), k.team, k.urgency)
		}
	}
	for k, n := range overdue {
		if !small(n) {
			ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(n), k.team, k.urgency, k.state)
		}
	}
	if m.Reviews != nil {
		late := map[string]int{}
		if err := m.Reviews.AllOverdue(now, func(it *projections.ReviewItem) bool { late[it.Network]++; return true }); err == nil {
			for network, n := range late {
				ch <- prometheus.MustNewConstMetric(reviewsDesc, prometheus.GaugeValue, float64(n), network)
			}
		}
	}
	pos := m.Runner.Position()
	ch <- prometheus.MustNewConstMetric(posDesc, prometheus.GaugeValue, float64(pos))
	if m.Head != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if head, err := m.Head(ctx); err == nil {
			lag, secs := 0.0, 0.0
			if head > pos {
				lag = float64(head - pos)
				if t := m.Runner.LastCommitted(); !t.IsZero() {
					secs = now.Sub(t).Seconds()
				}
			}
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag)
			ch <- prometheus.MustNewConstMetric(lagSecDesc, prometheus.GaugeValue, secs)
		}
	}
}
