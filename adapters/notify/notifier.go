package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// The notifier turns the log into notifications:
//
//   - handed_over: a signal handed over (SignalHandedOver), to the team;
//   - matched: signals about one subject matched (SubjectSignalled, and
//     SignalsMatched of earlier versions), to the teams that hold any of
//     them, and only those, each about its own case; and to a team a
//     matched signal is handed over to;
//   - referral_made: a referral (ReferralMade), to the organisation;
//   - feedback_given: terugkoppeling (FeedbackGiven), to the signaller;
//   - norm_lapsing, norm_lapsed: a signal without a first response when
//     LapsingShare of its response norm has passed, and when the norm has
//     lapsed, to the team (to the coordinators while no team has it);
//   - norm_escalated: three times the norm passed, to the coordinators;
//   - unrouted: a raised signal still without a team one working day after
//     it was raised (domain.UnroutedDue), to the coordinators, once.
//
// Event-driven notifications come from a subscription to the log that
// resumes after the outbox's checkpoint; time-driven ones from a scan of
// the case projection every ScanEvery, marked in the outbox once queued. A
// new outbox starts at the log's head at that moment: history is not
// notified. Notifications are derived from the projections as they stand
// when the event is processed (the runner has applied at least that event).
//
// Each notification has an idempotency key (Notification.ID), a name-based
// UUID of its trigger, kind and target, so a redo after a crash or restart
// carries the same key: delivery is at least once, and receivers drop
// repeats by the key.

// Mailer sends one notification by e-mail (the SMTP channel).
type MailSender interface {
	Deliver(ctx context.Context, to, lang string, n Notification) error
}

// Notifier follows the log and delivers what it derives.
type Notifier struct {
	Outbox  domain.Outbox
	Store   eventlog.Store
	Reg     *domain.Registry
	Runner  *projections.Runner
	Cases   *projections.Cases
	Targets *projections.NotificationTargets
	Webhook *Webhook
	Mailer  MailSender // nil: e-mail targets are dead-lettered ("no SMTP relay")
	// Secret is the server's notification secret; each webhook target signs
	// with its own key derived from it (TargetSecret).
	Secret []byte
	// BaseURL is the public address of the server: links point into its
	// console.
	BaseURL      string
	Now          func() time.Time
	Log          *slog.Logger
	Metrics      *Metrics      // may be nil
	ScanEvery    time.Duration // default 1 minute
	LapsingShare float64       // default 0.8
	Workers      int           // concurrent deliveries (default 8)

	once sync.Once
	wake chan struct{}
}

func (n *Notifier) init() {
	n.once.Do(func() {
		n.wake = make(chan struct{}, 1)
		if n.Now == nil {
			n.Now = time.Now
		}
		if n.Log == nil {
			n.Log = slog.New(slog.DiscardHandler)
		}
		if n.ScanEvery <= 0 {
			n.ScanEvery = time.Minute
		}
		if n.LapsingShare <= 0 || n.LapsingShare >= 1 {
			n.LapsingShare = 0.8
		}
		if n.Workers <= 0 {
			n.Workers = 8
		}
		if n.Webhook == nil {
			n.Webhook = &Webhook{}
		}
	})
}

// TargetSecret is the signing key of a webhook target: HMAC-SHA256 of the
// target id under the server's notification secret, so each receiver holds
// its own key and a new server secret changes them all.
func TargetSecret(secret []byte, targetID string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("webhook-target:" + targetID))
	return m.Sum(nil)
}

var idSpace = uuid.MustParse("0b5c1f0e-6d0a-4c8e-9a51-6a1f3c2b7d40")

// notificationID is the idempotency key of a notification.
func notificationID(trigger, kind, target string) string {
	return uuid.NewSHA1(idSpace, []byte(trigger+"|"+kind+"|"+target)).String()
}

func (n *Notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run follows the log, scans for lapsing norms and delivers, until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	n.init()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context) error{n.follow, n.scanLoop, n.deliverLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}

// notifyingEvents are the event types that notify.
var notifyingEvents = []string{"SignalHandedOver", "SignalsMatched", "SubjectSignalled", "ReferralMade", "FeedbackGiven"}

func (n *Notifier) follow(ctx context.Context) error {
	cp, ok, err := n.Outbox.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if !ok {
		if cp, err = n.Store.Head(ctx); err != nil {
			return fmt.Errorf("notify: head: %w", err)
		}
		if err := n.Outbox.Start(ctx, cp); err != nil {
			return err
		}
	}
	sub, err := n.Store.Subscribe(ctx, cp, eventlog.Filter{StreamPrefixes: []string{domain.SignalCategory + "-", domain.SubjectCategory + "-"}, EventTypes: notifyingEvents})
	if err != nil {
		return fmt.Errorf("notify: subscribe: %w", err)
	}
	defer sub.Close()
	// A reader goroutine keeps the next events at hand, so a burst of
	// events is checkpointed with its deliveries in one synced batch.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type next struct {
		re  eventlog.RecordedEvent
		err error
	}
	events := make(chan next, 256)
	go func() {
		for {
			re, err := sub.Next(ctx)
			select {
			case events <- next{re, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		var e next
		select {
		case e = <-events:
		case <-ctx.Done():
			return ctx.Err()
		}
		var batch []eventlog.RecordedEvent
		failed := e.err
	drain:
		for failed == nil {
			if e.re.Position > cp { // at-least-once delivery of the subscription
				batch = append(batch, e.re)
			}
			if len(batch) == cap(events) {
				break
			}
			select {
			case e = <-events:
				failed = e.err
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			last := batch[len(batch)-1].Position
			if err := n.Runner.WaitFor(ctx, last); err != nil {
				return err
			}
			var ds []Delivery
			for _, re := range batch {
				env, err := projections.Decode(n.Reg, re)
				if err != nil {
					return err
				}
				n.Runner.Read(func() { ds = append(ds, n.derive(env)...) })
			}
			if err := n.Outbox.Enqueue(ctx, ds, nil, &last); err != nil {
				return err
			}
			cp = last
			if len(ds) > 0 {
				n.Metrics.queued(ds)
				n.signal()
			}
		}
		if failed != nil {
			return failed
		}
	}
}

// derive returns the deliveries of an event; the caller holds the runner's
// read lock.
func (n *Notifier) derive(env projections.Envelope) []Delivery {
	trigger := fmt.Sprintf("%s@%d", env.Stream, env.Revision)
	var out []Delivery
	// about addresses a notification about case c, linking to c, to the
	// targets of a subscriber; edit adds its kind's fields.
	about := func(c *projections.Case, kind, subscriber, subscriberID string, edit func(*Notification)) {
		nt := Notification{Kind: kind, Signal: c.ID.String(), Network: c.Network, At: env.At, Link: n.link(c.ID)}
		if edit != nil {
			edit(&nt)
		}
		key := trigger
		if kind == domain.NotifyMatched {
			// A match notifies each team about its own case: the case is
			// part of the trigger, so each has its own idempotency key
			// (the other kinds keep the keys they always had).
			key += "/" + c.ID.String()
		}
		out = append(out, n.deliveries(key, nt, c.Network, subscriber, subscriberID)...)
	}
	// matched tells every team that holds a case of a match about its own
	// case, which shows the match; only those teams hear of it.
	matched := func(ids []uuid.UUID) {
		network := ""
		for _, id := range ids {
			c, ok := n.Cases.Get(id)
			if !ok {
				continue
			}
			if network == "" {
				network = c.Network // the new signal's: a match never crosses networks
			}
			if c.Team == "" || c.Network != network {
				continue
			}
			about(c, domain.NotifyMatched, domain.SubscribeTeam, c.Team, func(nt *Notification) { nt.Team = c.Team })
		}
	}
	switch e := env.Event.(type) {
	case domain.SubjectSignalled: // on the subject's stream
		if len(e.Matched) > 0 {
			matched(append([]uuid.UUID{e.SignalID}, e.Matched...))
		}
		return out
	case domain.SignalsMatched: // written by earlier versions on the newer signal
		if id, ok := projections.SignalID(env.Stream); ok {
			matched(append([]uuid.UUID{id}, e.SignalIDs...))
		}
		return out
	}
	id, ok := projections.SignalID(env.Stream)
	if !ok {
		return nil
	}
	c, ok := n.Cases.Get(id)
	if !ok {
		return nil
	}
	switch e := env.Event.(type) {
	case domain.SignalHandedOver:
		about(c, domain.NotifyHandedOver, domain.SubscribeTeam, e.TeamID, func(nt *Notification) { nt.Team = e.TeamID })
		if len(c.Matched) > 0 { // the receiving team hears of the match too
			about(c, domain.NotifyMatched, domain.SubscribeTeam, e.TeamID, func(nt *Notification) { nt.Team = e.TeamID })
		}
	case domain.ReferralMade:
		about(c, domain.NotifyReferralMade, domain.SubscribeOrganisation, e.OrganisationID, func(nt *Notification) {
			nt.Org, nt.Referral = e.OrganisationID, e.ReferralID.String()
		})
	case domain.FeedbackGiven:
		about(c, domain.NotifyFeedbackGiven, domain.SubscribePrincipal, c.RaisedBy, func(nt *Notification) { nt.Code = e.Code })
	}
	return out
}

// deliveries addresses a notification to every target of a subscriber
// that wants its kind.
func (n *Notifier) deliveries(trigger string, nt Notification, network, subscriber, subscriberID string) []Delivery {
	var out []Delivery
	for _, t := range domain.TargetsOf(n.Targets.Of(network), nt.Kind, subscriber, subscriberID) {
		d := Delivery{Notification: nt, TargetID: t.ID, Channel: t.Channel, QueuedAt: n.Now().UTC()}
		d.Notification.ID = notificationID(trigger, nt.Kind, t.ID)
		out = append(out, d)
	}
	return out
}

func (n *Notifier) link(signal uuid.UUID) string {
	if n.BaseURL == "" {
		return ""
	}
	return strings.TrimSuffix(n.BaseURL, "/") + "/console/cases/" + signal.String()
}

func (n *Notifier) scanLoop(ctx context.Context) error {
	t := time.NewTicker(n.ScanEvery)
	defer t.Stop()
	for {
		if err := n.Scan(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// lapse is one time-triggered notification found by a scan.
type lapse struct {
	mark string
	nt   Notification
	sub  string
	id   string
}

// Scan queues the norm notifications due now that were not queued before.
func (n *Notifier) Scan(ctx context.Context) error {
	n.init()
	now := n.Now().UTC()
	var found []lapse
	n.Runner.Read(func() {
		n.Cases.All(func(c *projections.Case) bool {
			if c.Unrouted(now) {
				found = append(found, n.lapse(c, domain.NotifyUnrouted, c.UnroutedDueAt, domain.SubscribeCoordinators, ""))
			}
			if !c.FirstResponseAt.IsZero() || !c.StoppedAt.IsZero() || !c.ClosedAt.IsZero() || !c.WithdrawnAt.IsZero() || c.DueAt.IsZero() {
				return true
			}
			team := func(kind string, at time.Time) {
				sub, id := domain.SubscribeTeam, c.Team
				if c.Team == "" {
					sub, id = domain.SubscribeCoordinators, ""
				}
				found = append(found, n.lapse(c, kind, at, sub, id))
			}
			warnAt := c.RaisedAt.Add(time.Duration(float64(c.DueAt.Sub(c.RaisedAt)) * n.LapsingShare))
			switch {
			case now.Before(warnAt):
			case now.Before(c.DueAt):
				team(domain.NotifyNormLapsing, warnAt)
			default:
				team(domain.NotifyNormLapsed, c.DueAt)
			}
			if !now.Before(c.Due3xAt) {
				found = append(found, n.lapse(c, domain.NotifyNormEscalated, c.Due3xAt, domain.SubscribeCoordinators, ""))
			}
			return true
		})
	})
	// What is new is queued, with its marks, in one synced batch: the first
	// scan of a large log may find many lapsed signals at once.
	fresh := found[:0]
	for _, l := range found {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		done, err := n.Outbox.Marked(ctx, l.mark)
		if err != nil {
			return err
		}
		if !done {
			fresh = append(fresh, l)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	var ds []Delivery
	marks := make([]string, len(fresh))
	n.Runner.Read(func() {
		for i, l := range fresh {
			marks[i] = l.mark
			ds = append(ds, n.deliveries(l.mark, l.nt, l.nt.Network, l.sub, l.id)...)
		}
	})
	if err := n.Outbox.Enqueue(ctx, ds, marks, nil); err != nil {
		return err
	}
	if len(ds) > 0 {
		n.Metrics.queued(ds)
		n.signal()
	}
	return nil
}

func (n *Notifier) lapse(c *projections.Case, kind string, at time.Time, sub, id string) lapse {
	nt := Notification{Kind: kind, Signal: c.ID.String(), Team: c.Team, Network: c.Network, At: at, Link: n.link(c.ID)}
	return lapse{mark: c.ID.String() + "/" + kind, nt: nt, sub: sub, id: id}
}

// deliverLoop sends pending deliveries, Workers at a time. A target whose
// last delivery failed gets one delivery at a time until one succeeds, so
// a receiver that is down holds one worker, not all, and the others'
// notifications keep flowing.
func (n *Notifier) deliverLoop(ctx context.Context) error {
	type target struct {
		inflight int
		failing  bool
	}
	var (
		mu       sync.Mutex
		inflight = map[string]bool{}
		targets  = map[string]*target{}
		wg       sync.WaitGroup
		sem      = make(chan struct{}, n.Workers)
	)
	defer wg.Wait()
	for {
		ds, err := n.Outbox.Pending(ctx, 1024)
		if err != nil {
			return err
		}
		for _, d := range ds {
			id, key := d.Notification.ID, d.Notification.Network+"/"+d.TargetID
			mu.Lock()
			tg := targets[key]
			if tg == nil {
				tg = &target{}
				targets[key] = tg
			}
			skip := inflight[id] || (tg.failing && tg.inflight > 0)
			if !skip {
				inflight[id] = true
				tg.inflight++
			}
			mu.Unlock()
			if skip {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				failed := n.send(ctx, d)
				mu.Lock()
				delete(inflight, id)
				if tg.inflight--; tg.inflight == 0 && !tg.failing && !failed {
					delete(targets, key)
				}
				wasFailing := tg.failing
				tg.failing = failed
				mu.Unlock()
				<-sem
				if failed || wasFailing {
					n.signal() // the target's next delivery may go
				}
			}()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.wake:
		case <-time.After(2 * time.Second):
		}
	}
}

// send delivers one item and records the outcome in the outbox; it
// reports whether the delivery failed for good.
func (n *Notifier) send(ctx context.Context, d Delivery) (failed bool) {
	id := d.Notification.ID
	if still, err := n.Outbox.IsPending(ctx, id); err != nil || !still {
		return false // delivered meanwhile, by the round that listed it before
	}
	var (
		t  domain.NotificationTarget
		ok bool
	)
	n.Runner.Read(func() { t, ok = n.Targets.Get(d.Notification.Network, d.TargetID) })
	if !ok || t.Channel != d.Channel {
		n.Log.Info("notification dropped: its target is gone", "notification", id, "target", d.TargetID)
		n.Metrics.dropped(d)
		_ = n.Outbox.Done(ctx, id)
		return false
	}
	err := n.deliver(ctx, t, d.Notification)
	if ctx.Err() != nil {
		return false // shutting down: it stays pending and goes out after the restart
	}
	if err == nil {
		if err := n.Outbox.Done(ctx, id); err != nil {
			n.Log.Error("notification outbox", "err", err)
		}
		n.Metrics.sent(d, n.Now().Sub(d.Notification.At))
		return false
	}
	d.Attempts++
	d.FailedAt, d.Error = n.Now().UTC(), describe(err)
	n.Log.Warn("notification dead-lettered", "notification", id, "target", d.TargetID, "channel", d.Channel, "err", d.Error)
	if err := n.Outbox.Fail(ctx, d); err != nil {
		n.Log.Error("notification outbox", "err", err)
	}
	n.Metrics.failed(d)
	return true
}

// errNoRelay dead-letters e-mail when no SMTP relay is configured.
var errNoRelay = errors.New("no SMTP relay is configured")

func (n *Notifier) deliver(ctx context.Context, t domain.NotificationTarget, nt Notification) error {
	switch t.Channel {
	case domain.ChannelWebhook:
		body, err := json.Marshal(nt)
		if err != nil {
			return err
		}
		return n.Webhook.Deliver(ctx, t.URL, TargetSecret(n.Secret, t.ID), nt.ID, body)
	case domain.ChannelEmail:
		if n.Mailer == nil {
			return errNoRelay
		}
		lang := t.Language
		if lang == "" {
			lang = "nl"
		}
		return n.Mailer.Deliver(ctx, t.Email, lang, nt)
	}
	return fmt.Errorf("unknown channel %q", t.Channel)
}

// describe keeps addresses and bodies out of a delivery error: an HTTP
// client error names its URL, which is dropped.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// RetryDeadLetter puts a dead letter back in the queue.
func (n *Notifier) RetryDeadLetter(ctx context.Context, id string) (Delivery, error) {
	n.init()
	d, err := n.Outbox.Retry(ctx, id)
	if err == nil {
		n.signal()
	}
	return d, err
}

// Metrics are the notifier's Prometheus metrics.
type Metrics struct {
	queuedC, sentC, failedC, retriedC, deadC, droppedC *prometheus.CounterVec
	lag                                                prometheus.Histogram
}

// NewMetrics registers the notification metrics; pending reports the
// outbox's pending deliveries and dead letters for two gauges (asked with a
// deadline of a few seconds, -1 when it fails).
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
	reg.MustRegister(m.queuedC, m.sentC, m.failedC, m.retriedC, m.deadC, m.droppedC, m.lag,
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

// TargetSecret is the signing key of one of this notifier's webhook targets.
func (n *Notifier) TargetSecret(targetID string) []byte { return TargetSecret(n.Secret, targetID) }

// DeadLetters lists up to limit dead letters.
func (n *Notifier) DeadLetters(ctx context.Context, limit int) ([]Delivery, error) {
	return n.Outbox.DeadLetters(ctx, limit)
}
