package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
)

// Configuration of a network (routing rules, notification targets) is
// read whole with its version as ETag, and replaced whole with If-Match.

type (
	routingRulesBody struct {
		Rules []domain.RoutingRule `json:"rules"`
	}
	routingRulesView struct {
		Version int                  `json:"version"`
		Rules   []domain.RoutingRule `json:"rules"`
	}
	notificationTargetsBody struct {
		Targets []domain.NotificationTarget `json:"targets"`
	}
	notificationTargetView struct {
		domain.NotificationTarget
		// SigningSecret is the webhook target's signing key as Standard
		// Webhooks libraries take it ("whsec_" and the key in base64).
		SigningSecret string `json:"signing_secret,omitempty"`
		// Secret is the same key in hex, for the deprecated
		// Buurtsignaal-Signature header (one more version).
		Secret string `json:"secret,omitempty"`
	}
	notificationTargetsView struct {
		Version int                      `json:"version"`
		Targets []notificationTargetView `json:"targets"`
	}
	deadLettersPage struct {
		Items []domain.Delivery `json:"items"`
	}
	retryAnswer struct {
		ID     string `json:"id"`
		Status string `json:"status"` // queued
	}
)

// Notifications is the notifier's admin side.
type Notifications interface {
	TargetSecret(targetID string) []byte
	DeadLetters(ctx context.Context, limit int) ([]domain.Delivery, error)
	RetryDeadLetter(ctx context.Context, id string) (domain.Delivery, error)
}

// readConfig answers a configuration with its version as ETag.
func readConfig[T any](s *Server, a domain.Action, read func(ctx context.Context, network string) ([]T, int, error), view func([]T, int) any) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.query(r, a)
		if err != nil {
			return err
		}
		items, version, err := read(r.Context(), p.Network)
		if err != nil {
			return err
		}
		if items == nil {
			items = []T{}
		}
		w.Header().Set("ETag", strconv.Quote(strconv.Itoa(version)))
		writeJSON(w, http.StatusOK, view(items, version))
		return nil
	}
}

// errWholeList answers a PUT of a configuration without its list (absent or
// null): a PUT replaces the whole configuration, so only an explicit empty
// list empties it.
func errWholeList(field string) error {
	return domain.Invalid(domain.FieldError{Field: field, Message: "is required: the whole list (send [] for none)"})
}

// putConfig replaces a configuration; If-Match with the version read is
// checked (409 when it changed since).
func putConfig[B any](s *Server, a domain.Action, set func(ctx context.Context, req app.Request, b B) (app.Result, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := domain.Authorize(principal(r.Context()), a, domain.Target{}); err != nil {
			return err
		}
		var b B
		if err := s.decode(w, r, &b); err != nil {
			return err
		}
		req, err := appRequest(r, &b)
		if err != nil {
			return err
		}
		res, err := set(r.Context(), req, b)
		if err != nil {
			return err
		}
		return s.answer(w, http.StatusOK, res)
	}
}

func (s *Server) routingRules() handlerFunc {
	return readConfig(s, domain.ActReadRouting, s.App.RoutingRules, func(rules []domain.RoutingRule, v int) any {
		return routingRulesView{Version: v, Rules: rules}
	})
}

func (s *Server) putRoutingRules() handlerFunc {
	return putConfig(s, domain.ActManageRouting, func(ctx context.Context, req app.Request, b routingRulesBody) (app.Result, error) {
		if b.Rules == nil {
			return app.Result{}, errWholeList("rules")
		}
		return s.App.SetRoutingRules(ctx, req, b.Rules)
	})
}

// notificationTargets answers the targets with each webhook's signing key:
// only coordinators and admins, who configure the receivers, read them.
func (s *Server) notificationTargets() handlerFunc {
	return readConfig(s, domain.ActReadNotifications, s.App.NotificationTargets, func(ts []domain.NotificationTarget, v int) any {
		out := notificationTargetsView{Version: v, Targets: make([]notificationTargetView, len(ts))}
		for i, t := range ts {
			out.Targets[i].NotificationTarget = t
			if t.Channel == domain.ChannelWebhook && s.Notifications != nil {
				key := s.Notifications.TargetSecret(t.ID)
				out.Targets[i].Secret = hex.EncodeToString(key)
				out.Targets[i].SigningSecret = "whsec_" + base64.StdEncoding.EncodeToString(key)
			}
		}
		return out
	})
}

func (s *Server) putNotificationTargets() handlerFunc {
	return putConfig(s, domain.ActManageNotifications, func(ctx context.Context, req app.Request, b notificationTargetsBody) (app.Result, error) {
		if b.Targets == nil {
			return app.Result{}, errWholeList("targets")
		}
		return s.App.SetNotificationTargets(ctx, req, b.Targets)
	})
}

var errNotificationsOff = &domain.Error{Kind: domain.KindUnavailable, Code: "notifications_off", Message: "notifications are not running on this server"}

// deadLetters lists the notifications whose delivery failed for good.
func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.query(r, domain.ActDeadLetters); err != nil {
		return err
	}
	if s.Notifications == nil {
		return errNotificationsOff
	}
	items, err := s.Notifications.DeadLetters(r.Context(), 1000)
	if err != nil {
		return err
	}
	if items == nil {
		items = []domain.Delivery{}
	}
	writeJSON(w, http.StatusOK, deadLettersPage{Items: items})
	return nil
}

// retryDeadLetter queues a dead letter again, with the same idempotency key.
func (s *Server) retryDeadLetter(w http.ResponseWriter, r *http.Request) error {
	if _, err := domain.Authorize(principal(r.Context()), domain.ActDeadLetters, domain.Target{}); err != nil {
		return err
	}
	if s.Notifications == nil {
		return errNotificationsOff
	}
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	if _, err = s.Notifications.RetryDeadLetter(r.Context(), id.String()); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, retryAnswer{ID: id.String(), Status: "queued"})
	return nil
}
