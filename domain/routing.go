package domain

import (
	"fmt"
	"slices"
	"strings"
)

// Routing rules: the ordered list by which a handover without a team goes
// to a basisteam. Coordinators maintain it as event-sourced configuration,
// one stream per network (RoutingStream); each RoutingRulesSet replaces the
// whole list, and the stream's revision is its version.

// RoutingCategory is the stream category of routing configuration.
const RoutingCategory = "routing"

// RoutingStream is the stream of a network's routing rules.
func RoutingStream(network string) string { return RoutingCategory + "-" + network }

// MaxRoutingRules bounds one network's list.
const MaxRoutingRules = 500

// RoutingRule sends signals that match every field it sets (an empty field
// matches anything) to a team. A rule marked OnRaise hands a signal over
// when it is raised, if it is the first rule that matches; the others apply
// when someone hands a signal over without naming a team.
type RoutingRule struct {
	ID            string `json:"id"`
	Neighbourhood string `json:"neighbourhood,omitempty"`
	Category      string `json:"category,omitempty"`
	Urgency       string `json:"urgency,omitempty"`
	TeamID        string `json:"team_id"`
	OnRaise       bool   `json:"on_raise,omitempty"`
}

// SystemRouting is the actor of a handover that a routing rule made when the
// signal was raised (in the event's metadata, with the role SystemRole).
const (
	SystemRouting = "system:routing"
	SystemRole    = "system"
)

// Matches reports whether the rule applies to a signal.
func (r RoutingRule) Matches(neighbourhood string, categories []string, urgency string) bool {
	return (r.Neighbourhood == "" || strings.EqualFold(r.Neighbourhood, neighbourhood)) &&
		(r.Category == "" || slices.Contains(categories, r.Category)) &&
		(r.Urgency == "" || r.Urgency == urgency)
}

// RoutingRulesSet replaces a network's routing rules.
type RoutingRulesSet struct {
	Network string        `json:"network"`
	Rules   []RoutingRule `json:"rules"`
}

// EventType implements Event.
func (RoutingRulesSet) EventType() string { return "RoutingRulesSet" }

// Route returns the first rule, in order, that matches the signal.
func Route(rules []RoutingRule, s Signal) (RoutingRule, bool) {
	for _, r := range rules {
		if r.Matches(s.Neighbourhood, s.Categories, s.Urgency) {
			return r, true
		}
	}
	return RoutingRule{}, false
}

// RouteOnRaise returns the handover a newly raised signal gets from the
// rules: when the first rule that matches it is marked OnRaise, a handover to
// that rule's team naming the rule. ok is false otherwise, and for a signal
// that is no longer raised.
func RouteOnRaise(rules []RoutingRule, s Signal) (e SignalHandedOver, ok bool) {
	r, found := Route(rules, s)
	if !found || !r.OnRaise || s.Status != StatusRaised || r.TeamID == "" {
		return SignalHandedOver{}, false
	}
	return SignalHandedOver{TeamID: r.TeamID, RuleID: r.ID}, true
}

// ValidateRoutingRules checks a list before it is set: every rule has an id
// (unique in the list) and a team, and names only known categories and
// urgencies. knownTeam says whether a team exists in the network,
// knownCategory whether a category does (retired or not).
func ValidateRoutingRules(rules []RoutingRule, knownTeam, knownCategory func(string) bool) error {
	var errs []FieldError
	if len(rules) > MaxRoutingRules {
		errs = append(errs, FieldError{Field: "rules", Message: fmt.Sprintf("at most %d rules", MaxRoutingRules)})
	}
	seen := map[string]bool{}
	for i, r := range rules {
		at := func(f string) string { return fmt.Sprintf("rules[%d].%s", i, f) }
		switch {
		case strings.TrimSpace(r.ID) == "":
			errs = append(errs, FieldError{Field: at("id"), Message: "is required"})
		case seen[r.ID]:
			errs = append(errs, FieldError{Field: at("id"), Message: "is used twice"})
		case len(r.ID) > 100:
			errs = append(errs, FieldError{Field: at("id"), Message: "is longer than 100 characters"})
		}
		seen[r.ID] = true
		if r.TeamID == "" {
			errs = append(errs, FieldError{Field: at("team_id"), Message: "is required"})
		} else if !knownTeam(r.TeamID) {
			errs = append(errs, FieldError{Field: at("team_id"), Message: "unknown team"})
		}
		if r.Category != "" && !knownCategory(r.Category) {
			errs = append(errs, FieldError{Field: at("category"), Message: "unknown category"})
		}
		if r.Urgency != "" && !Urgencies.Has(r.Urgency) {
			errs = append(errs, FieldError{Field: at("urgency"), Message: "unknown urgency"})
		}
		if len(r.Neighbourhood) > 100 {
			errs = append(errs, FieldError{Field: at("neighbourhood"), Message: "is longer than 100 characters"})
		}
	}
	if len(errs) > 0 {
		return Invalid(errs...)
	}
	return nil
}
