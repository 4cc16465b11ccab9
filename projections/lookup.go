package projections

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
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
	// Principals are the principals the configuration lists (a tokens
	// file), by network and id; nil when it lists none (OIDC).
	Principals map[string]map[string]domain.Principal
}

// OpenSignalsOfSubject lists the subject's open signals.
func (l *Lookup) OpenSignalsOfSubject(subject uuid.UUID) (ids []uuid.UUID) {
	l.Runner.Read(func() { ids = l.Cases.OpenOfSubject(subject) })
	return ids
}

// lookupWait bounds how long a lookup that found nothing waits for the
// projections to hold the log as it is now before it answers: a command
// may name what the previous one created a moment ago, and on a loaded
// machine the projections may take a few seconds to read it.
const lookupWait = 10 * time.Second

// SignalOfReferral finds the signal of a referral. A referral the
// projections do not hold is looked for again once they hold the log as it
// is now; if they cannot get there within lookupWait, the answer is
// ErrBehind (unknown, not "no such referral").
func (l *Lookup) SignalOfReferral(ctx context.Context, referral uuid.UUID) (id uuid.UUID, ok bool, err error) {
	find := func() { id, ok = l.Cases.SignalOfReferral(referral) }
	if l.Runner.Read(find); ok {
		return id, true, nil
	}
	if !l.Runner.Current(ctx, lookupWait) {
		return uuid.Nil, false, ErrBehind
	}
	l.Runner.Read(find)
	return id, ok, nil
}

// OrganisationExists reports whether the network has this organisation.
func (l *Lookup) OrganisationExists(ctx context.Context, network, id string) (ok bool) {
	find := func() {
		o, found := l.Orgs.Get(id)
		ok = found && o.Network == network
	}
	if l.Runner.Read(find); !ok && l.Runner.Current(ctx, lookupWait) {
		l.Runner.Read(find)
	}
	return ok
}

// KnownTeam reports whether the configuration knows the team in the network.
func (l *Lookup) KnownTeam(network, team string) bool {
	if l.Teams == nil {
		return team != ""
	}
	return slices.Contains(l.Teams[network], team)
}

// TeamsOf lists the teams the configuration knows in the network, sorted and
// without repeats; open is true when the configuration names no teams (a
// nil map) and KnownTeam accepts every team.
func (l *Lookup) TeamsOf(network string) (teams []string, open bool) {
	if l.Teams == nil {
		return nil, true
	}
	teams = slices.Clone(l.Teams[network])
	slices.Sort(teams)
	return slices.Compact(teams), false
}

// Professional reports whether the principal is a professional of the team
// in the network; known is false when the configuration lists no principals.
func (l *Lookup) Professional(network, team, principal string) (member, known bool) {
	if l.Principals == nil {
		return false, false
	}
	p, ok := l.Principals[network][principal]
	return ok && p.HasRole(domain.RoleProfessional) && p.InTeam(team), true
}
