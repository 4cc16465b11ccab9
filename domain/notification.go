package domain

import (
	"context"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Notification targets: who hears about what, and how. Like routing rules
// they are event-sourced configuration, one stream per network
// (NotificationStream); each NotificationTargetsSet replaces the whole list
// and the stream's revision is its version.
//
// A notification carries ids, codes and links, never personal data. A
// target's e-mail address is a staff member's work address, held in clear in
// this configuration event; no resident's data is ever part of it.

// NotificationCategory is the stream category of notification configuration.
const NotificationCategory = "notify"

// NotificationStream is the stream of a network's notification targets.
func NotificationStream(network string) string { return NotificationCategory + "-" + network }

// MaxNotificationTargets bounds one network's list.
const MaxNotificationTargets = 500

// Notification kinds: what happened.
const (
	NotifyHandedOver    = "handed_over"    // a signal was handed over to the team
	NotifyMatched       = "matched"        // signals about the same subject were matched (the teams involved)
	NotifyNormLapsing   = "norm_lapsing"   // the response norm is about to lapse (the team)
	NotifyNormLapsed    = "norm_lapsed"    // the response norm lapsed (the team)
	NotifyNormEscalated = "norm_escalated" // three times the norm passed (coordinators)
	NotifyReferralMade  = "referral_made"  // a referral to the organisation
	NotifyFeedbackGiven = "feedback_given" // terugkoppeling on a signal (its signaller)
	NotifyUnrouted      = "unrouted"       // a raised signal still has no team one working day on (coordinators)
	NotifyReviewOverdue = "review_overdue" // an access review (break-glass read or flag) is past its term (privacy officers)
)

// NotificationKinds lists every kind in a fixed order.
var NotificationKinds = []string{NotifyHandedOver, NotifyMatched, NotifyNormLapsing, NotifyNormLapsed, NotifyNormEscalated, NotifyReferralMade, NotifyFeedbackGiven, NotifyUnrouted, NotifyReviewOverdue}

// Subscribers: whom a target serves.
const (
	SubscribeTeam         = "team"         // SubscriberID is a team id
	SubscribeOrganisation = "organisation" // SubscriberID is an organisation id
	SubscribePrincipal    = "principal"    // SubscriberID is a principal id (a signaller)
	SubscribeCoordinators = "coordinators" // the network's coordinators; no SubscriberID
	// SubscribePrivacyOfficers: the network's privacy officers; no
	// SubscriberID. Only they hear of access reviews (staff activity is
	// personal data too).
	SubscribePrivacyOfficers = "privacy_officers"
)

// Channels.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// NotificationTarget delivers the notifications of a subscriber, of the
// kinds it lists (all kinds when none), on one channel.
type NotificationTarget struct {
	ID           string   `json:"id"`
	Subscriber   string   `json:"subscriber"`
	SubscriberID string   `json:"subscriber_id,omitempty"`
	Channel      string   `json:"channel"`
	URL          string   `json:"url,omitempty"`   // webhook
	Email        string   `json:"email,omitempty"` // email
	Language     string   `json:"language,omitempty"`
	Kinds        []string `json:"kinds,omitempty"`
}

// Wants reports whether the target takes notifications of this kind.
func (t NotificationTarget) Wants(kind string) bool {
	return len(t.Kinds) == 0 || slices.Contains(t.Kinds, kind)
}

// NotificationTargetsSet replaces a network's notification targets.
type NotificationTargetsSet struct {
	Network string               `json:"network"`
	Targets []NotificationTarget `json:"targets"`
}

// EventType implements Event.
func (NotificationTargetsSet) EventType() string { return "NotificationTargetsSet" }

// TargetsOf returns the targets of one subscriber that want kind.
func TargetsOf(targets []NotificationTarget, kind, subscriber, id string) []NotificationTarget {
	var out []NotificationTarget
	for _, t := range targets {
		if t.Subscriber == subscriber && t.SubscriberID == id && t.Wants(kind) {
			out = append(out, t)
		}
	}
	return out
}

// ValidateNotificationTargets checks a list before it is set. known says
// whether a team or organisation (subscriber kind, id) exists in the network.
// Webhooks must use https, except on loopback addresses (receivers on the
// same machine, and tests).
func ValidateNotificationTargets(targets []NotificationTarget, known func(subscriber, id string) bool) error {
	var errs []FieldError
	if len(targets) > MaxNotificationTargets {
		errs = append(errs, FieldError{Field: "targets", Message: fmt.Sprintf("at most %d targets", MaxNotificationTargets)})
	}
	seen := map[string]bool{}
	for i, t := range targets {
		at := func(f string) string { return fmt.Sprintf("targets[%d].%s", i, f) }
		switch {
		case strings.TrimSpace(t.ID) == "":
			errs = append(errs, FieldError{Field: at("id"), Message: "is required"})
		case seen[t.ID]:
			errs = append(errs, FieldError{Field: at("id"), Message: "is used twice"})
		case len(t.ID) > 100 || !isToken(t.ID):
			errs = append(errs, FieldError{Field: at("id"), Message: "must be at most 100 letters, digits, '-', '_' or '.'"})
		}
		seen[t.ID] = true
		switch t.Subscriber {
		case SubscribeCoordinators, SubscribePrivacyOfficers:
			if t.SubscriberID != "" {
				errs = append(errs, FieldError{Field: at("subscriber_id"), Message: "must be empty for " + t.Subscriber})
			}
		case SubscribeTeam, SubscribeOrganisation, SubscribePrincipal:
			switch {
			case t.SubscriberID == "":
				errs = append(errs, FieldError{Field: at("subscriber_id"), Message: "is required"})
			case len(t.SubscriberID) > 200:
				errs = append(errs, FieldError{Field: at("subscriber_id"), Message: "is longer than 200 characters"})
			case t.Subscriber != SubscribePrincipal && !known(t.Subscriber, t.SubscriberID):
				errs = append(errs, FieldError{Field: at("subscriber_id"), Message: "unknown " + t.Subscriber})
			}
		default:
			errs = append(errs, FieldError{Field: at("subscriber"), Message: "must be team, organisation, principal, coordinators or privacy_officers"})
		}
		switch t.Channel {
		case ChannelWebhook:
			if msg := checkWebhookURL(t.URL); msg != "" {
				errs = append(errs, FieldError{Field: at("url"), Message: msg})
			}
			if t.Email != "" {
				errs = append(errs, FieldError{Field: at("email"), Message: "is for the email channel"})
			}
		case ChannelEmail:
			if a, err := mail.ParseAddress(t.Email); err != nil || a.Address != t.Email || len(t.Email) > 254 {
				errs = append(errs, FieldError{Field: at("email"), Message: "must be a plain e-mail address"})
			}
			if t.URL != "" {
				errs = append(errs, FieldError{Field: at("url"), Message: "is for the webhook channel"})
			}
		default:
			errs = append(errs, FieldError{Field: at("channel"), Message: "must be webhook or email"})
		}
		if t.Language != "" && t.Language != "nl" && t.Language != "en" {
			errs = append(errs, FieldError{Field: at("language"), Message: "must be nl or en"})
		}
		for j, k := range t.Kinds {
			if !slices.Contains(NotificationKinds, k) {
				errs = append(errs, FieldError{Field: fmt.Sprintf("targets[%d].kinds[%d]", i, j), Message: "unknown kind"})
			}
		}
	}
	if len(errs) > 0 {
		return Invalid(errs...)
	}
	return nil
}

func checkWebhookURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "is required"
	case len(s) > 2000:
		return "is longer than 2000 characters"
	case err != nil || u.Host == "" || u.User != nil || u.Fragment != "":
		return "must be an absolute URL without credentials or fragment"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	default:
		return "must use https (http only on loopback addresses)"
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isToken(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Notification is what a receiver gets: ids, codes and a link, never
// personal data.
type Notification struct {
	ID       string `json:"id"`   // idempotency key: the same for every retry
	Kind     string `json:"kind"` // one of NotificationKinds
	Signal   string `json:"signal_id,omitempty"`
	Team     string `json:"team_id,omitempty"`
	Org      string `json:"organisation_id,omitempty"`
	Referral string `json:"referral_id,omitempty"`
	Code     string `json:"code,omitempty"` // the feedback code of feedback_given
	// ReviewItem is the item of review_overdue (break_glass:<position> or
	// flag:<position>:<rule>): ids only.
	ReviewItem string    `json:"review_item,omitempty"`
	Link       string    `json:"link,omitempty"`
	At         time.Time `json:"at"`
	Network    string    `json:"network"`
}

// Delivery is one notification for one target, as the outbox keeps it. It
// names the target by id: the address is looked up when sending.
type Delivery struct {
	Notification Notification `json:"notification"`
	TargetID     string       `json:"target_id"`
	Channel      string       `json:"channel"`
	Attempts     int          `json:"attempts,omitempty"` // outbox rounds tried (each with the channel's own retries)
	QueuedAt     time.Time    `json:"queued_at"`
	FailedAt     time.Time    `json:"failed_at,omitzero"`
	Error        string       `json:"error,omitempty"` // the last failure, without addresses or bodies
}

// ErrNoDeadLetter answers a retry of a dead letter that is not (or no
// longer) there.
var ErrNoDeadLetter = &Error{Kind: KindNotFound, Code: "not_found", Message: "no such dead letter"}

// ErrFenced answers a write of an outbox handle whose claim was taken over
// by another handle (another replica's): the writer is no longer the one
// that may deliver, and stops.
var ErrFenced = &Error{Kind: KindConflict, Code: "outbox_fenced", Message: "another replica has taken the outbox over"}

// Outbox is the durable queue between the log and the notification
// channels: the notifier's checkpoint (the last log position turned into
// notifications), the pending deliveries, the dead letters, and the marks of
// time-triggered notifications already queued. Enqueue stores deliveries,
// marks and the checkpoint atomically and durably, so a crash keeps all or
// none: nothing is lost, and what is redone carries the same idempotency key.
//
// An outbox may be shared by several processes (the replicas of a cluster),
// each through its own handle. Then one handle at a time writes deliveries:
// the one that claimed it last (Claim). Every handle reads, and an admin's
// Retry works through any of them.
type Outbox interface {
	// Claim makes this handle the outbox's writer, for owner (a name for
	// logs): once another handle claims it, this handle's Start, Enqueue,
	// Done and Fail fail with ErrFenced, and so do Pending and IsPending,
	// the reads of the delivery pool; the state it reads is the new
	// writer's. A shared outbox's handle that never claimed it is fenced
	// the same way. An outbox only one process can open has nothing to
	// fence: Claim succeeds and changes nothing.
	Claim(ctx context.Context, owner string) error
	// Checkpoint returns the last position turned into notifications, and
	// whether there is one (a new outbox has none).
	Checkpoint(ctx context.Context) (uint64, bool, error)
	// Start records the first checkpoint of a new outbox, durably.
	Start(ctx context.Context, pos uint64) error
	// Marked reports whether a time-triggered notification was queued before.
	Marked(ctx context.Context, id string) (bool, error)
	// Enqueue stores deliveries (replacing pending ones with the same id),
	// a mark per id in marks and, when not nil, the new checkpoint. A
	// delivery that is a dead letter stays one.
	Enqueue(ctx context.Context, ds []Delivery, marks []string, checkpoint *uint64) error
	// Pending returns up to limit pending deliveries.
	Pending(ctx context.Context, limit int) ([]Delivery, error)
	// IsPending reports whether a delivery is still pending.
	IsPending(ctx context.Context, id string) (bool, error)
	// Done removes a delivered (or undeliverable) delivery. The removal
	// need not be durable at once: it may be written with the handle's next
	// write, its next Pending, or Close, and one lost in a crash or a
	// takeover sends the delivery again, under its key. A handle of a
	// shared outbox may find out only then that it was fenced, and drop it.
	Done(ctx context.Context, id string) error
	// Fail moves a pending delivery to the dead letters with its error.
	Fail(ctx context.Context, d Delivery) error
	// DeadLetters returns up to limit dead letters.
	DeadLetters(ctx context.Context, limit int) ([]Delivery, error)
	// Retry moves a dead letter back to the pending deliveries; it returns
	// ErrNoDeadLetter when there is none with that id.
	Retry(ctx context.Context, id string) (Delivery, error)
	// Count returns the number of pending deliveries and dead letters.
	Count(ctx context.Context) (pending, dead int, err error)
	Close() error
}
