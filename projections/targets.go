package projections

import "github.com/buurtsignaal/buurtsignaal/domain"

// NotificationTargets is the projection of every network's notification
// targets, for the notifier: the latest NotificationTargetsSet of each.
type NotificationTargets struct {
	byNetwork map[string][]domain.NotificationTarget
}

// NewNotificationTargets returns an empty projection.
func NewNotificationTargets() *NotificationTargets {
	return &NotificationTargets{byNetwork: map[string][]domain.NotificationTarget{}}
}

// Apply implements Projection.
func (p *NotificationTargets) Apply(env Envelope) {
	if set, ok := env.Event.(domain.NotificationTargetsSet); ok {
		p.byNetwork[set.Network] = set.Targets
	}
}

// Of returns a network's targets; the caller must not change them.
func (p *NotificationTargets) Of(network string) []domain.NotificationTarget {
	return p.byNetwork[network]
}

// Get finds a target of a network by id.
func (p *NotificationTargets) Get(network, id string) (domain.NotificationTarget, bool) {
	for _, t := range p.byNetwork[network] {
		if t.ID == id {
			return t, true
		}
	}
	return domain.NotificationTarget{}, false
}
