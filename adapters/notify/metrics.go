package notify

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Metrics are the notifier's Prometheus metrics.
type Metrics struct {
	queuedC, sentC, failedC, retriedC, deadC, droppedC *prometheus.CounterVec
	lag                                                prometheus.Histogram
	leader                                             prometheus.Gauge
	terms                                              prometheus.Counter
}

// NewMetrics registers the notification metrics; pending reports the
// outbox's pending deliveries and dead letters for two gauges (asked with a
// deadline of a few seconds, -1 when it fails). With an outbox shared by
// replicas every replica reports the same figures for those two; the
// counters count what this replica did.
func NewMetrics(reg prometheus.Registerer, pending func(context.Context) (int, int, error)) *Metrics {
	m := &Metrics{
		queuedC:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "buurtsignaal_notifications_queued_total", Help: "Notifications queued in the outbox, by channel and kind."}, []string{"channel", "kind"}),
		sentC:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "buurtsignaal_notifications_sent_total", Help: "Notifications delivered, by channel and kind."}, []string{"channel", "kind"}),
		failedC:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "buurtsignaal_notifications_failed_total", Help: "Delivery attempts that failed (each retried one, and the last), by channel."}, []string{"channel"}),
		retriedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "buurtsignaal_notifications_retried_total", Help: "Delivery retries, by channel."}, []string{"channel"}),
		deadC:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "buurtsignaal_notifications_dead_lettered_total", Help: "Notifications moved to the dead letters after their last try, by channel."}, []string{"channel"}),
		droppedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "buurtsignaal_notifications_dropped_total", Help: "Queued notifications dropped because their target was removed, by channel."}, []string{"channel"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "buurtsignaal_notifications_delivery_lag_seconds", Help: "Time from the event (or the norm moment) to the delivery of its notification.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "buurtsignaal_notifier_leader", Help: "1 while this replica's notifier delivers (it holds the notifier lease, or runs alone on the embedded store), else 0."}),
		terms:  prometheus.NewCounter(prometheus.CounterOpts{Name: "buurtsignaal_notifier_leaderships_total", Help: "Times this replica's notifier started delivering (took the notifier lease)."}),
	}
	gauge := func(opts prometheus.GaugeOpts, pick func(pending, dead int) int) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(opts, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			p, d, err := pending(ctx)
			if err != nil {
				return -1
			}
			return float64(pick(p, d))
		})
	}
	reg.MustRegister(m.queuedC, m.sentC, m.failedC, m.retriedC, m.deadC, m.droppedC, m.lag, m.leader, m.terms,
		gauge(prometheus.GaugeOpts{Name: "buurtsignaal_notifications_pending", Help: "Notifications waiting in the outbox."}, func(p, _ int) int { return p }),
		gauge(prometheus.GaugeOpts{Name: "buurtsignaal_notifications_dead_letters", Help: "Notifications in the dead letters, waiting for an admin's retry."}, func(_, d int) int { return d }))
	for _, ch := range []string{domain.ChannelWebhook, domain.ChannelEmail} {
		m.failedC.WithLabelValues(ch)
		m.deadC.WithLabelValues(ch)
		m.retriedC.WithLabelValues(ch)
	}
	return m
}

// RetriedFunc returns a callback for a channel's Retried hook: a retry is
// a failed attempt that will be tried again.
func (m *Metrics) RetriedFunc(channel string) func() {
	if m == nil {
		return nil
	}
	return func() {
		m.retriedC.WithLabelValues(channel).Inc()
		m.failedC.WithLabelValues(channel).Inc()
	}
}

func (m *Metrics) queued(ds []Delivery) {
	if m == nil {
		return
	}
	for _, d := range ds {
		m.queuedC.WithLabelValues(d.Channel, d.Notification.Kind).Inc()
	}
}

func (m *Metrics) sent(d Delivery, lag time.Duration) {
	if m == nil {
		return
	}
	m.sentC.WithLabelValues(d.Channel, d.Notification.Kind).Inc()
	m.lag.Observe(lag.Seconds())
}

func (m *Metrics) failed(d Delivery) {
	if m == nil {
		return
	}
	m.failedC.WithLabelValues(d.Channel).Inc()
	m.deadC.WithLabelValues(d.Channel).Inc()
}

func (m *Metrics) dropped(d Delivery) {
	if m == nil {
		return
	}
	m.droppedC.WithLabelValues(d.Channel).Inc()
}

// leading records that the notifier starts or stops delivering.
func (m *Metrics) leading(on bool) {
	if m == nil {
		return
	}
	if on {
		m.leader.Set(1)
		m.terms.Inc()
	} else {
		m.leader.Set(0)
	}
}
