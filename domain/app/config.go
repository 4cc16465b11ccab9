package app

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// Configuration streams (routing rules, notification targets) hold one kind
// of event, each replacing the whole configuration; the stream's revision + 1
// is the configuration's version (0: never set).

// readConfig returns the last event of a configuration stream (nil when the
// stream is empty) and its version.
func (s *Service) readConfig(ctx context.Context, stream string) (domain.Event, int, error) {
	recs, err := s.Log.ReadStream(ctx, stream, eventlog.Backwards, eventlog.End, 1)
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
	return e, int(recs[0].Revision) + 1, nil
}

// setConfig appends e to a configuration stream; with req.HasIfMatch the
// configuration must be at version req.IfMatch (KindConflict otherwise).
func (s *Service) setConfig(ctx context.Context, req Request, stream, what string, e domain.Event) (Result, error) {
	expected := eventlog.Any()
	if req.HasIfMatch {
		expected = eventlog.NoStream()
		if req.IfMatch > 0 {
			expected = eventlog.Revision(uint64(req.IfMatch - 1))
		}
	}
	data, err := s.encode(req, s.eventIDs(req, stream, 1), []domain.Event{e}, s.Now().UTC())
	if err != nil {
		return Result{}, err
	}
	ar, err := s.Log.Append(ctx, stream, expected, data...)
	if errors.Is(err, eventlog.ErrWrongExpectedVersion) {
		return Result{}, &domain.Error{Kind: domain.KindConflict, Code: "stale_version", Message: "the " + what + " changed since you read them (If-Match)"}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{ID: stream, Version: int(ar.NextRevision) + 1, Position: ar.Position}, nil
}

func unexpected(stream string, e domain.Event) error {
	return domain.Errorf(domain.KindInternal, "unexpected_event", "%s holds %s", stream, e.EventType())
}

// configOf reads a configuration stream's last event, of type E, and
// picks the configuration out of it.
func configOf[E domain.Event, T any](s *Service, ctx context.Context, stream string, pick func(E) []T) ([]T, int, error) {
	e, version, err := s.readConfig(ctx, stream)
	if err != nil || e == nil {
		return nil, version, err
	}
	set, ok := e.(E)
	if !ok {
		return nil, 0, unexpected(stream, e)
	}
	return pick(set), version, nil
}

// RoutingRules returns a network's routing rules and their version, read
// from their stream, so a handover right after a change uses the change.
func (s *Service) RoutingRules(ctx context.Context, network string) ([]domain.RoutingRule, int, error) {
	return configOf(s, ctx, domain.RoutingStream(network), func(e domain.RoutingRulesSet) []domain.RoutingRule { return e.Rules })
}

// SetRoutingRules replaces the caller's network's routing rules. With
// req.HasIfMatch the rules must be at version req.IfMatch (KindConflict
// otherwise). It returns the new version.
func (s *Service) SetRoutingRules(ctx context.Context, req Request, rules []domain.RoutingRule) (Result, error) {
	if _, err := domain.Authorize(req.Actor, domain.ActManageRouting, domain.Target{}); err != nil {
		return Result{}, err
	}
	network := req.Actor.Network
	cfg, err := s.Network(ctx, network)
	if err != nil {
		return Result{}, err
	}
	knownCategory := func(id string) bool { _, ok := cfg.Category(id); return ok }
	if err := domain.ValidateRoutingRules(rules, func(team string) bool { return s.Lookup.KnownTeam(network, team) }, knownCategory); err != nil {
		return Result{}, err
	}
	if rules == nil {
		rules = []domain.RoutingRule{}
	}
	return s.setConfig(ctx, req, domain.RoutingStream(network), "routing rules", domain.RoutingRulesSet{Network: network, Rules: rules})
}

// NotificationTargets returns a network's notification targets and their
// version.
func (s *Service) NotificationTargets(ctx context.Context, network string) ([]domain.NotificationTarget, int, error) {
	return configOf(s, ctx, domain.NotificationStream(network), func(e domain.NotificationTargetsSet) []domain.NotificationTarget { return e.Targets })
}

// SetNotificationTargets replaces the caller's network's notification
// targets, versioned like SetRoutingRules.
func (s *Service) SetNotificationTargets(ctx context.Context, req Request, targets []domain.NotificationTarget) (Result, error) {
	if _, err := domain.Authorize(req.Actor, domain.ActManageNotifications, domain.Target{}); err != nil {
		return Result{}, err
	}
	network := req.Actor.Network
	known := func(subscriber, id string) bool {
		if subscriber == domain.SubscribeTeam {
			return s.Lookup.KnownTeam(network, id)
		}
		return s.Lookup.OrganisationExists(ctx, network, id)
	}
	if err := domain.ValidateNotificationTargets(targets, known); err != nil {
		return Result{}, err
	}
	if targets == nil {
		targets = []domain.NotificationTarget{}
	}
	return s.setConfig(ctx, req, domain.NotificationStream(network), "notification targets", domain.NotificationTargetsSet{Network: network, Targets: targets})
}

// Network returns a network's configuration as it stands in the log (the
// defaults for what it never set), read from its streams, so a command
// right after a change uses the change.
func (s *Service) Network(ctx context.Context, network string) (domain.NetworkConfig, error) {
	cfg := domain.DefaultConfig()
	var err error
	var cats []domain.Category
	if cats, cfg.CategoriesVersion, err = configOf(s, ctx, domain.ConfigStream(domain.CategoriesCategory, network),
		func(e domain.CategoriesSet) []domain.Category { return e.Categories }); err != nil {
		return cfg, err
	}
	if cfg.CategoriesVersion > 0 {
		cfg.Categories = cats
	}
	e, v, err := s.readConfig(ctx, domain.ConfigStream(domain.NormsCategory, network))
	if err != nil {
		return cfg, err
	}
	if n, ok := e.(domain.NormsSet); ok {
		cfg.Norms, cfg.NormsVersion = n.Norms, v
	}
	e, v, err = s.readConfig(ctx, domain.ConfigStream(domain.FeedbackTextsCategory, network))
	if err != nil {
		return cfg, err
	}
	if t, ok := e.(domain.FeedbackTextsSet); ok {
		cfg.FeedbackTexts, cfg.FeedbackTextsVersion = t.Texts, v
	}
	if cfg.Neighbourhoods, cfg.NeighbourhoodsVersion, err = configOf(s, ctx, domain.ConfigStream(domain.NeighbourhoodsCategory, network),
		func(e domain.NeighbourhoodsSet) []domain.Neighbourhood { return e.Neighbourhoods }); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Categories returns a network's categories and their version (the
// defaults and 0 while it set none): one stream read, where Network reads
// four (the console names categories on every page).
func (s *Service) Categories(ctx context.Context, network string) ([]domain.Category, int, error) {
	cats, version, err := configOf(s, ctx, domain.ConfigStream(domain.CategoriesCategory, network),
		func(e domain.CategoriesSet) []domain.Category { return e.Categories })
	if err == nil && version == 0 {
		cats = domain.DefaultCategories()
	}
	return cats, version, err
}

// manageNetwork authorizes a change of the caller's network's
// configuration and reads the configuration as it stands.
func (s *Service) manageNetwork(ctx context.Context, req Request) (domain.NetworkConfig, error) {
	if _, err := domain.Authorize(req.Actor, domain.ActManageNetwork, domain.Target{}); err != nil {
		return domain.NetworkConfig{}, err
	}
	return s.Network(ctx, req.Actor.Network)
}

// SetCategories replaces the caller's network's categories (versioned like
// SetRoutingRules). A category of the current list may be retired, never
// left out.
func (s *Service) SetCategories(ctx context.Context, req Request, list []domain.Category) (Result, error) {
	cur, err := s.manageNetwork(ctx, req)
	if err != nil {
		return Result{}, err
	}
	if err := domain.ValidateCategories(list, cur.Categories); err != nil {
		return Result{}, err
	}
	return s.setConfig(ctx, req, domain.ConfigStream(domain.CategoriesCategory, req.Actor.Network), "categories",
		domain.CategoriesSet{Network: req.Actor.Network, Categories: list})
}

// SetNorms replaces the caller's network's response and feedback norms;
// they apply to signals raised after the change (a raise records the norms
// in force on the signal: domain.SignalNorms).
func (s *Service) SetNorms(ctx context.Context, req Request, norms domain.Norms) (Result, error) {
	if _, err := s.manageNetwork(ctx, req); err != nil {
		return Result{}, err
	}
	if err := domain.ValidateNorms(norms); err != nil {
		return Result{}, err
	}
	return s.setConfig(ctx, req, domain.ConfigStream(domain.NormsCategory, req.Actor.Network), "norms",
		domain.NormsSet{Network: req.Actor.Network, Norms: norms})
}

// SetFeedbackTexts replaces what signallers read for each feedback code;
// feedback given before keeps the text it was given with.
func (s *Service) SetFeedbackTexts(ctx context.Context, req Request, texts map[string]domain.FeedbackText) (Result, error) {
	if _, err := s.manageNetwork(ctx, req); err != nil {
		return Result{}, err
	}
	if err := domain.ValidateFeedbackTexts(texts); err != nil {
		return Result{}, err
	}
	return s.setConfig(ctx, req, domain.ConfigStream(domain.FeedbackTextsCategory, req.Actor.Network), "feedback texts",
		domain.FeedbackTextsSet{Network: req.Actor.Network, Texts: texts})
}

// SetNeighbourhoods replaces the caller's network's neighbourhoods: from
// then on a new signal must name one of them (active).
func (s *Service) SetNeighbourhoods(ctx context.Context, req Request, list []domain.Neighbourhood) (Result, error) {
	cur, err := s.manageNetwork(ctx, req)
	if err != nil {
		return Result{}, err
	}
	if err := domain.ValidateNeighbourhoods(list, cur.Neighbourhoods); err != nil {
		return Result{}, err
	}
	return s.setConfig(ctx, req, domain.ConfigStream(domain.NeighbourhoodsCategory, req.Actor.Network), "neighbourhoods",
		domain.NeighbourhoodsSet{Network: req.Actor.Network, Neighbourhoods: list})
}

// GiveFeedback gives the signaller of a signal a feedback code, recording
// the network's text for it as it reads now (and the texts' version): the
// signaller keeps reading that text after the texts change.
func (s *Service) GiveFeedback(ctx context.Context, req Request, signalID uuid.UUID, code string) (Result, error) {
	cfg, err := s.Network(ctx, req.Actor.Network)
	if err != nil {
		return Result{}, err
	}
	return s.Execute(ctx, req, signalID, func(domain.Signal, Sealer) (domain.Command, error) {
		return domain.GiveFeedback{Code: code, Text: cfg.FeedbackText(code), TextsVersion: cfg.FeedbackTextsVersion}, nil
	})
}
