package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// The delivery pool: pending deliveries sent on their channels.

// deliverLoop sends pending deliveries, Workers at a time. A target whose
// last delivery failed gets one delivery at a time until one succeeds, so
// a receiver that is down holds one worker, not all, and the others'
// notifications keep flowing. It stops when the outbox answers that
// another replica has taken it over (domain.ErrFenced).
func (n *Notifier) deliverLoop(ctx context.Context) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
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
	const page = 1024
	for {
		ds, err := n.Outbox.Pending(ctx, page)
		if err != nil {
			return cause(ctx, err)
		}
		dispatched := 0
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
				return cause(ctx, ctx.Err())
			}
			dispatched++
			wg.Add(1)
			go func() {
				defer wg.Done()
				failed, fenced := n.send(ctx, d)
				if fenced != nil {
					stop(fenced)
				}
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
		if len(ds) == page && dispatched > 0 {
			continue // a backlog larger than a page: the next page at once
		}
		select {
		case <-ctx.Done():
			return cause(ctx, ctx.Err())
		case <-n.wake:
		case <-time.After(2 * time.Second):
		}
	}
}

// cause is why ctx ended when the delivery pool stopped itself (the outbox
// was fenced), else err.
func cause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); errors.Is(c, domain.ErrFenced) {
		return c
	}
	return err
}

// send delivers one item and records the outcome in the outbox; it
// reports whether the delivery failed for good, and returns ErrFenced when
// the outbox was taken over (the new owner sends what is left, under the
// same keys).
func (n *Notifier) send(ctx context.Context, d Delivery) (failed bool, fenced error) {
	id := d.Notification.ID
	if still, err := n.Outbox.IsPending(ctx, id); err != nil || !still {
		return false, isFenced(err) // delivered meanwhile, by the round that listed it before
	}
	var (
		t  domain.NotificationTarget
		ok bool
	)
	find := func() { t, ok = n.Targets.Get(d.Notification.Network, d.TargetID) }
	if n.Runner.Read(find); !ok || t.Channel != d.Channel {
		// A replica that has just taken over may not have read the
		// target yet: it is gone only if the read models, holding the
		// log as it is now, say so. Until they do, the item stays pending.
		if !n.Runner.Current(ctx, 5*time.Second) {
			return false, nil
		}
		n.Runner.Read(find)
	}
	if !ok || t.Channel != d.Channel {
		n.Log.Info("notification dropped: its target is gone", "notification", id, "target", d.TargetID)
		n.Metrics.dropped(d)
		return false, isFenced(n.Outbox.Done(ctx, id))
	}
	err := n.deliver(ctx, t, d.Notification)
	if ctx.Err() != nil {
		return false, nil // stopping: it stays pending and goes out after the restart or takeover
	}
	if err == nil {
		n.Metrics.sent(d, n.Now().Sub(d.Notification.At))
		if err := n.Outbox.Done(ctx, id); err != nil {
			n.Log.Error("notification outbox", "err", err)
			return false, isFenced(err)
		}
		return false, nil
	}
	d.Attempts++
	d.FailedAt, d.Error = n.Now().UTC(), describe(err)
	n.Log.Warn("notification dead-lettered", "notification", id, "target", d.TargetID, "channel", d.Channel, "err", d.Error)
	n.Metrics.failed(d)
	if err := n.Outbox.Fail(ctx, d); err != nil {
		n.Log.Error("notification outbox", "err", err)
		return true, isFenced(err)
	}
	return true, nil
}

func isFenced(err error) error {
	if errors.Is(err, domain.ErrFenced) {
		return err
	}
	return nil
}

// errNoRelay dead-letters e-mail when no SMTP relay is configured.
var errNoRelay = errors.New("no SMTP relay is configured")

func (n *Notifier) deliver(ctx context.Context, t domain.NotificationTarget, nt Notification) (err error) {
	tp := n.Tracer
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	ctx, span := tp.Tracer("github.com/buurtsignaal/buurtsignaal/adapters/notify").Start(ctx, "notify.deliver", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("notification.kind", nt.Kind), attribute.String("notification.channel", t.Channel), attribute.String("notification.id", nt.ID)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, "delivery failed")
		}
		span.End()
	}()
	switch t.Channel {
	case domain.ChannelWebhook:
		body, err := Event(nt, EventSource(n.BaseURL))
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
