package projections

import (
	"slices"

	"github.com/google/uuid"
)

// Lookup answers the write side's questions (app.Lookup) from the
// projections, under the runner's read lock.
type Lookup struct {
	Runner   *Runner
	Cases    *Cases
	Subjects *Subjects
	Orgs     *Organisations
	// Teams are the teams the configuration knows, per network; a nil map
	// knows every team.
	Teams map[string][]string
}

// SubjectByToken finds a subject by its blind-index token.
func (l *Lookup) SubjectByToken(network, token string) (id uuid.UUID, ok bool) {
	l.Runner.Read(func() { id, ok = l.Subjects.ByToken(network, token) })
	return id, ok
}

// OpenSignalsOfSubject lists the subject's open signals.
func (l *Lookup) OpenSignalsOfSubject(subject uuid.UUID) (ids []uuid.UUID) {
	l.Runner.Read(func() { ids = l.Cases.OpenOfSubject(subject) })
	return ids
}

// SignalOfReferral finds the signal of a referral.
func (l *Lookup) SignalOfReferral(referral uuid.UUID) (id uuid.UUID, ok bool) {
	l.Runner.Read(func() { id, ok = l.Cases.SignalOfReferral(referral) })
	return id, ok
}

// OrganisationExists reports whether the network has this organisation.
func (l *Lookup) OrganisationExists(network, id string) (ok bool) {
	l.Runner.Read(func() {
		o, found := l.Orgs.Get(id)
		ok = found && o.Network == network
	})
	return ok
}

// KnownTeam reports whether the configuration knows the team in the network.
func (l *Lookup) KnownTeam(network, team string) bool {
	if l.Teams == nil {
		return team != ""
	}
	return slices.Contains(l.Teams[network], team)
}
