package app

import (
	"context"
	"errors"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// RoutingRules returns a network's routing rules and their version (how
// many times they were set; 0 when never), read from their stream, so a
// handover right after a change uses the change.
func (s *Service) RoutingRules(ctx context.Context, network string) ([]domain.RoutingRule, int, error) {
	recs, err := s.Log.ReadStream(ctx, domain.RoutingStream(network), eventlog.Backwards, eventlog.End, 1)
	if errors.Is(err, eventlog.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	e, err := s.Reg.DecodeVersion(recs[0].Type, recs[0].Metadata.SchemaVersion, recs[0].Data)
	if err != nil {
		return nil, 0, err
	}
	set, ok := e.(domain.RoutingRulesSet)
	if !ok {
		return nil, 0, domain.Errorf(domain.KindInternal, "unexpected_event", "routing stream holds %s", recs[0].Type)
	}
	return set.Rules, int(recs[0].Revision) + 1, nil
}

// SetRoutingRules replaces the caller's network's routing rules. With
// req.HasIfMatch the rules must be at version req.IfMatch (KindConflict
// otherwise). It returns the new version.
func (s *Service) SetRoutingRules(ctx context.Context, req Request, rules []domain.RoutingRule) (Result, error) {
	if _, err := domain.Authorize(req.Actor, domain.ActManageRouting, domain.Target{}); err != nil {
		return Result{}, err
	}
	network := req.Actor.Network
	if err := domain.ValidateRoutingRules(rules, func(team string) bool { return s.Lookup.KnownTeam(network, team) }); err != nil {
		return Result{}, err
	}
	stream := domain.RoutingStream(network)
	expected := eventlog.Any()
	if req.HasIfMatch {
		expected = eventlog.NoStream()
		if req.IfMatch > 0 {
			expected = eventlog.Revision(uint64(req.IfMatch - 1))
		}
	}
	if rules == nil {
		rules = []domain.RoutingRule{}
	}
	data, err := s.encode(req, s.eventIDs(req, stream, 1), []domain.Event{domain.RoutingRulesSet{Network: network, Rules: rules}}, s.Now().UTC())
	if err != nil {
		return Result{}, err
	}
	ar, err := s.Log.Append(ctx, stream, expected, data...)
	if errors.Is(err, eventlog.ErrWrongExpectedVersion) {
		return Result{}, &domain.Error{Kind: domain.KindConflict, Code: "stale_version", Message: "the routing rules changed since you read them (If-Match)"}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{ID: stream, Version: int(ar.NextRevision) + 1, Position: ar.Position}, nil
}
