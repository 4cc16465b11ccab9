package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

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
//     it was raised (domain.UnroutedDue), to the coordinators, once;
//   - review_overdue: an item to review (a break-glass read or a flag) not
//     judged within its term, to the network's privacy officers, once.
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
//
// On a cluster every replica may run a notifier: with a Lease, one at a
// time runs the loops (lead.go), and the outbox they share fences the
// writes of one that lost the lease without noticing yet.

// Mailer sends one notification by e-mail (the SMTP channel).
type MailSender interface {
	Deliver(ctx context.Context, to, lang string, n Notification) error
}

// Notifier follows the log and delivers what it derives.
type Notifier struct {
	Outbox domain.Outbox
	// Lease, when set, chooses the one replica that delivers: the loops
	// run only while this notifier holds it (nil: always, one process).
	Lease   domain.Lease
	Store   eventlog.Store
	Reg     *domain.Registry
	Runner  *projections.Runner
	Cases   *projections.Cases
	Reviews *projections.Reviews // nil: no review_overdue
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
	// Tracer gives each delivery a span (nil: none): its kind, channel and
	// outcome, never an address or a body.
	Tracer trace.TracerProvider

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

// RetryDeadLetter puts a dead letter back in the queue.
func (n *Notifier) RetryDeadLetter(ctx context.Context, id string) (Delivery, error) {
	n.init()
	d, err := n.Outbox.Retry(ctx, id)
	if err == nil {
		n.signal()
	}
	return d, err
}

// TargetSecret is the signing key of one of this notifier's webhook targets.
func (n *Notifier) TargetSecret(targetID string) []byte { return TargetSecret(n.Secret, targetID) }

// DeadLetters lists up to limit dead letters.
func (n *Notifier) DeadLetters(ctx context.Context, limit int) ([]Delivery, error) {
	return n.Outbox.DeadLetters(ctx, limit)
}
