package domain

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoute(t *testing.T) {
	rules := []RoutingRule{
		{ID: "acute-centrum", Neighbourhood: "centrum", Urgency: "acute", TeamID: "team-crisis"},
		{ID: "debt", Category: "debt", TeamID: "team-schuld"},
		{ID: "noord", Neighbourhood: "noord", TeamID: "team-noord"},
		{ID: "noord-debt-never", Neighbourhood: "noord", Category: "debt", TeamID: "team-unused"}, // shadowed by "debt"
	}
	tests := []struct {
		name          string
		neighbourhood string
		categories    []string
		urgency       string
		want          string // rule id; "" for none
	}{
		{"every field of the first rule", "centrum", []string{"loneliness"}, "acute", "acute-centrum"},
		{"neighbourhood ignores case", "Centrum", []string{"loneliness"}, "acute", "acute-centrum"},
		{"urgency must match", "centrum", []string{"loneliness"}, "high", ""},
		{"neighbourhood must match", "zuid", []string{"loneliness"}, "acute", ""},
		{"a category among several", "zuid", []string{"loneliness", "debt"}, "normal", "debt"},
		{"order: the first match wins", "noord", []string{"debt"}, "normal", "debt"},
		{"order: first rule before a later match", "centrum", []string{"debt"}, "acute", "acute-centrum"},
		{"an empty field matches anything", "noord", []string{"housing"}, "high", "noord"},
		{"nothing matches", "west", []string{"housing"}, "normal", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := Route(rules, Signal{Neighbourhood: tt.neighbourhood, Categories: tt.categories, Urgency: tt.urgency})
			if got := map[bool]string{true: r.ID, false: ""}[ok]; got != tt.want {
				t.Errorf("Route = %q, want %q", got, tt.want)
			}
		})
	}
	if _, ok := Route(nil, Signal{Neighbourhood: "centrum"}); ok {
		t.Error("no rules: a match")
	}
}

func TestValidateRoutingRules(t *testing.T) {
	known := func(team string) bool { return team == "team-a" }
	tests := []struct {
		name  string
		rules []RoutingRule
		want  []string // fields in error
	}{
		{"valid", []RoutingRule{{ID: "a", Category: "debt", Urgency: "acute", Neighbourhood: "centrum", TeamID: "team-a"}}, nil},
		{"empty list", nil, nil},
		{"id and team required", []RoutingRule{{}}, []string{"rules[0].id", "rules[0].team_id"}},
		{"duplicate id", []RoutingRule{{ID: "a", TeamID: "team-a"}, {ID: "a", TeamID: "team-a"}}, []string{"rules[1].id"}},
		{"unknown team, category, urgency", []RoutingRule{{ID: "a", TeamID: "team-x", Category: "fun", Urgency: "now"}},
			[]string{"rules[0].team_id", "rules[0].category", "rules[0].urgency"}},
		{"too many", make([]RoutingRule, MaxRoutingRules+1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRoutingRules(tt.rules, known, Categories.Has)
			var got []string
			if e := AsError(err); e != nil {
				for _, f := range e.Fields {
					got = append(got, f.Field)
				}
			}
			if tt.name == "too many" {
				if len(got) == 0 || got[0] != "rules" {
					t.Fatalf("fields %v, want rules first", got)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRouteOnRaise(t *testing.T) {
	rules := []RoutingRule{
		{ID: "acute", Urgency: "acute", TeamID: "team-crisis", OnRaise: true},
		{ID: "debt", Category: "debt", TeamID: "team-schuld"},
		{ID: "debt-auto", Category: "debt", TeamID: "team-unused", OnRaise: true}, // shadowed by "debt"
		{ID: "noord", Neighbourhood: "noord", TeamID: "team-noord", OnRaise: true},
	}
	raised := func(neighbourhood, urgency string, categories ...string) Signal {
		return Signal{Status: StatusRaised, Neighbourhood: neighbourhood, Urgency: urgency, Categories: categories}
	}
	tests := []struct {
		name   string
		rules  []RoutingRule
		signal Signal
		want   SignalHandedOver
		ok     bool
	}{
		{"the first match is on_raise", rules, raised("centrum", "acute", "debt"), SignalHandedOver{TeamID: "team-crisis", RuleID: "acute"}, true},
		{"the first match is not on_raise: a later on_raise rule does not apply", rules, raised("centrum", "high", "debt"), SignalHandedOver{}, false},
		{"an on_raise rule further down", rules, raised("noord", "normal", "health"), SignalHandedOver{TeamID: "team-noord", RuleID: "noord"}, true},
		{"no rule matches", rules, raised("zuid", "normal", "health"), SignalHandedOver{}, false},
		{"no rules", nil, raised("noord", "acute"), SignalHandedOver{}, false},
		{"a signal that is no longer raised", rules, Signal{Status: StatusHandedOver, Urgency: "acute"}, SignalHandedOver{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RouteOnRaise(tc.rules, tc.signal)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("handover (-want +got):\n%s", diff)
			}
		})
	}
}
