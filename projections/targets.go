package projections

import (
	"encoding/json"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// NotificationTargets is the projection of every network's notification
// targets, for the notifier: the latest NotificationTargetsSet of each. They
// are few: all in memory, and in the store for restarts.
type NotificationTargets struct {
	byNetwork map[string][]domain.NotificationTarget
	b         *Batch
	dirty     map[string]bool
}

// NewNotificationTargets returns an empty projection.
func NewNotificationTargets() *NotificationTargets {
	return &NotificationTargets{byNetwork: map[string][]domain.NotificationTarget{}, dirty: map[string]bool{}, b: new(Batch)}
}

const (
	targetsPrefix  = 't'
	targetsVersion = 1
)

func (p *NotificationTargets) name() string    { return "notification_targets" }
func (p *NotificationTargets) prefix() byte    { return targetsPrefix }
func (p *NotificationTargets) version() uint64 { return targetsVersion }

func (p *NotificationTargets) attach(rs ReadStore, b *Batch) error {
	p.b, p.byNetwork, p.dirty = b, map[string][]domain.NotificationTarget{}, map[string]bool{}
	var derr error
	lo := []byte{targetsPrefix, 'r'}
	err := rs.Scan(lo, prefixEnd(lo), false, func(k, v []byte) bool {
		var rec struct {
			Network string                      `json:"network"`
			Targets []domain.NotificationTarget `json:"targets"`
		}
		if derr = json.Unmarshal(v, &rec); derr != nil {
			return false
		}
		p.byNetwork[rec.Network] = rec.Targets
		return true
	})
	return cmpErr(err, derr)
}

func (p *NotificationTargets) flush() error {
	for network := range p.dirty {
		v, err := json.Marshal(map[string]any{"network": network, "targets": p.byNetwork[network]})
		if err != nil {
			return err
		}
		p.b.Set(appendStr([]byte{targetsPrefix, 'r'}, network), v)
	}
	return nil
}

func (p *NotificationTargets) committed() { clear(p.dirty) }

// Apply implements Projection.
func (p *NotificationTargets) Apply(env Envelope) {
	if set, ok := env.Event.(domain.NotificationTargetsSet); ok {
		p.byNetwork[set.Network] = set.Targets
		p.dirty[set.Network] = true
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
