package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"pgregory.net/rapid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Free text, codes and dates of valid bodies.
func apiText(t *rapid.T, label string) string {
	return rapid.OneOf(rapid.StringMatching(`[A-Za-zÀ-ÿ0-9 .,'-]{1,60}`), rapid.StringN(1, 200, -1)).Draw(t, label)
}

// apiTokens makes drawn tokens unique across the run (organisation ids).
var apiTokens atomic.Int64

func apiToken(t *rapid.T, label string) string {
	return rapid.StringMatching(`[a-z0-9]{1,20}`).Draw(t, label) + "-" + strconv.FormatInt(apiTokens.Add(1), 10)
}

func apiDate(t *rapid.T, label string) string {
	d := time.Date(rapid.IntRange(1900, 2040).Draw(t, label+" year"), time.January, 1, 0, 0, 0, 0, time.UTC)
	return d.AddDate(0, 0, rapid.IntRange(0, 365).Draw(t, label+" day")).Format(time.DateOnly)
}

func pick[S ~[]string](t *rapid.T, label string, s S) string {
	return rapid.SampledFrom([]string(s)).Draw(t, label)
}

func subset[S ~[]string](t *rapid.T, label string, s S) []any {
	var out []any
	for _, v := range rapid.SliceOfNDistinct(rapid.SampledFrom([]string(s)), 1, 3, rapid.ID[string]).Draw(t, label) {
		out = append(out, v)
	}
	return out
}

// apiKeep are optional fields the run never leaves out: a routing rule
// always names apiNeighbourhood, so that no rule hands the fixtures' signals
// over as they are raised.
var apiKeep = map[string][]string{
	"PUT /v1/routing-rules": {"neighbourhood"},
	// Every code's text in both languages, every urgency's norm in hours or
	// working days: a list without them is refused whole (the codes and
	// urgencies are a map's keys, which the schema leaves optional).
	"PUT /v1/feedback-texts": append([]string{"nl", "en"}, domain.FeedbackCodes...),
	"PUT /v1/norms":          append([]string{"hours", "working_days"}, domain.Urgencies...),
	"PUT /v1/categories":     {"hours", "working_days"},
}

// apiNeighbourhood is the neighbourhood of the raises the run draws, which
// on_raise routing rules may name; fixtures are raised in "centrum".
const apiNeighbourhood = "eigenschapwijk"

// example draws a valid body for an operation, with every optional field;
// ok is false when the run has no example for it (the body is then drawn
// from the schema alone).
func (p *apiRun) example(t *rapid.T, op apiOp) (map[string]any, bool) {
	reason := func() map[string]any { return map[string]any{"reason": apiText(t, "reason")} }
	note := func() map[string]any { return map[string]any{"note": apiText(t, "note")} }
	team := func() string { return pick(t, "team", []string{"team-a", "team-b"}) }
	switch op.method + " " + op.pattern {
	case "POST /v1/signals":
		return map[string]any{
			"subject": map[string]any{"name": apiText(t, "name"), "birth_date": apiDate(t, "birth"), "address": apiText(t, "address"),
				"phone": rapid.StringMatching(`0[0-9]{9}`).Draw(t, "phone")},
			"neighbourhood": pick(t, "neighbourhood", []string{apiNeighbourhood, "centrum", "noord"}), "categories": subset(t, "categories", domain.Categories),
			"urgency": pick(t, "urgency", domain.Urgencies), "description": apiText(t, "description"), "consent": pick(t, "consent", domain.Consents),
		}, true
	case "POST /v1/signals/{id}/withdraw", "POST /v1/signals/{id}/decline", "POST /v1/signals/{id}/reopen":
		return reason(), true
	case "POST /v1/signals/{id}/handover":
		return map[string]any{"team_id": team(), "note": apiText(t, "note")}, true
	case "POST /v1/signals/{id}/assign":
		return map[string]any{"professional_id": pick(t, "professional", []string{"anna", "bob", "someone-new"})}, true
	case "POST /v1/signals/{id}/follow-ups":
		return map[string]any{"kind": pick(t, "kind", domain.FollowUpKinds), "outcome": pick(t, "outcome", domain.FollowUpOutcomes),
			"note": apiText(t, "note"), "next_due": apiDate(t, "next due")}, true
	case "POST /v1/signals/{id}/referrals":
		return map[string]any{"organisation_id": "school-x", "service": "Maatschappelijk werk", "reason": apiText(t, "reason")}, true
	case "POST /v1/referrals/{id}/accept", "POST /v1/referrals/{id}/decline", "POST /v1/referrals/{id}/complete":
		return note(), true
	case "POST /v1/signals/{id}/feedback":
		return map[string]any{"code": pick(t, "code", domain.FeedbackCodes)}, true
	case "POST /v1/signals/{id}/close":
		return map[string]any{"outcome": pick(t, "outcome", domain.CloseOutcomes), "note": apiText(t, "note")}, true
	case "POST /v1/organisations":
		return map[string]any{"id": apiToken(t, "org id"), "name": apiText(t, "org name"), "kind": pick(t, "org kind", domain.OrganisationKind),
			"services": []any{map[string]any{"name": apiText(t, "service"), "description": apiText(t, "service description"), "volunteer": rapid.Bool().Draw(t, "volunteer")}}}, true
	case "POST /v1/subjects/search":
		return map[string]any{"name": apiText(t, "name"), "birth_date": apiDate(t, "birth")}, true
	case "POST /v1/subjects/{id}/erasure":
		return map[string]any{"reason": apiText(t, "reason"), "request_ref": apiToken(t, "request ref")}, true
	case "PUT /v1/routing-rules":
		var rules []any
		for i := range rapid.IntRange(0, 3).Draw(t, "rules") {
			rule := map[string]any{"id": fmt.Sprintf("rule-%d", i), "team_id": team(), "neighbourhood": apiNeighbourhood,
				"category": pick(t, "category", domain.Categories), "urgency": pick(t, "urgency", domain.Urgencies), "on_raise": rapid.Bool().Draw(t, "on raise")}
			rules = append(rules, rule)
		}
		return map[string]any{"rules": orEmpty(rules)}, true
	case "PUT /v1/notification-targets":
		var targets []any
		for i := range rapid.IntRange(0, 3).Draw(t, "targets") {
			targets = append(targets, map[string]any{"id": fmt.Sprintf("target-%d", i), "subscriber": "team", "subscriber_id": team(),
				"channel": "webhook", "url": p.hook, "language": pick(t, "language", []string{"nl", "en"}), "kinds": subset(t, "kinds", domain.NotificationKinds)})
		}
		return map[string]any{"targets": orEmpty(targets)}, true
	case "PUT /v1/categories":
		// The whole list: a category is never removed, only retired; the
		// fixtures' and the drawn raises' categories stay active.
		var current struct {
			Categories []map[string]any `json:"categories"`
		}
		p.getAs(t, "/v1/categories", &current)
		list := current.Categories
		for _, c := range list {
			if !slices.Contains(domain.Categories, c["id"].(string)) {
				c["retired"] = rapid.Bool().Draw(t, "retired")
			}
			if rapid.Bool().Draw(t, "category norm") {
				c["norms"] = map[string]any{pick(t, "category urgency", domain.Urgencies): apiNorm(t)}
			}
		}
		if rapid.Bool().Draw(t, "new category") {
			list = append(list, map[string]any{"id": apiToken(t, "category id"), "label_nl": apiLabel(t, "label nl"), "label_en": apiLabel(t, "label en"),
				"description": apiText(t, "description")})
		}
		return map[string]any{"categories": list}, true
	case "PUT /v1/neighbourhoods":
		var current struct {
			Neighbourhoods []map[string]any `json:"neighbourhoods"`
		}
		p.getAs(t, "/v1/neighbourhoods", &current)
		list := current.Neighbourhoods
		for _, id := range []string{"centrum", apiNeighbourhood, "noord"} {
			if !slices.ContainsFunc(list, func(h map[string]any) bool { return h["id"] == id }) {
				list = append(list, map[string]any{"id": id, "name": id})
			}
		}
		for _, h := range list {
			if id := h["id"].(string); id != "centrum" && id != apiNeighbourhood && id != "noord" {
				h["retired"] = rapid.Bool().Draw(t, "retired")
			} else {
				delete(h, "retired")
			}
		}
		if rapid.Bool().Draw(t, "new neighbourhood") {
			list = append(list, map[string]any{"id": apiToken(t, "neighbourhood id"), "name": apiLabel(t, "neighbourhood name")})
		}
		return map[string]any{"neighbourhoods": list}, true
	case "PUT /v1/norms":
		byUrgency := map[string]any{}
		for _, u := range domain.Urgencies {
			byUrgency[u] = apiNorm(t)
		}
		return map[string]any{"norms": map[string]any{"by_urgency": byUrgency, "feedback_working_days": rapid.IntRange(1, 20).Draw(t, "feedback days")}}, true
	case "POST /v1/audit/reviews":
		return map[string]any{"item": p.reviewItem(t), "judgement": pick(t, "judgement", domain.Judgements.Values()),
			"note": apiText(t, "note")}, true
	case "PUT /v1/feedback-texts":
		texts := map[string]any{}
		for _, code := range domain.FeedbackCodes {
			texts[code] = map[string]any{"nl": apiLabel(t, "text nl"), "en": apiLabel(t, "text en")}
		}
		return map[string]any{"texts": texts}, true
	}
	return nil, false
}

// apiLabel draws a text that is not blank.
func apiLabel(t *rapid.T, label string) string {
	return rapid.StringMatching(`[A-Za-zÀ-ÿ0-9][A-Za-zÀ-ÿ0-9 .,'-]{0,59}`).Draw(t, label)
}

// apiNorm draws a response norm: hours or working days.
func apiNorm(t *rapid.T) map[string]any {
	if rapid.Bool().Draw(t, "norm in hours") {
		return map[string]any{"hours": rapid.IntRange(1, 72).Draw(t, "hours")}
	}
	return map[string]any{"working_days": rapid.IntRange(1, 20).Draw(t, "working days")}
}

func orEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// fromSchema draws a value of a JSON schema (for operations without an
// example: shaped right, probably refused for its values).
func fromSchema(t *rapid.T, sch map[string]any, label string) any {
	switch sch["type"] {
	case "object":
		out := map[string]any{}
		props, _ := sch["properties"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(props)) {
			out[name] = fromSchema(t, props[name].(map[string]any), label+"."+name)
		}
		return out
	case "array":
		items, _ := sch["items"].(map[string]any)
		var out []any
		for range rapid.IntRange(0, 2).Draw(t, label+" length") {
			out = append(out, fromSchema(t, items, label+"[]"))
		}
		return orEmpty(out)
	case "integer":
		return rapid.IntRange(0, 1000).Draw(t, label)
	case "number":
		return rapid.Float64Range(0, 1000).Draw(t, label)
	case "boolean":
		return rapid.Bool().Draw(t, label)
	}
	return apiText(t, label)
}

// wrongType returns a value of another JSON type than v.
func wrongType(t *rapid.T, v any) any {
	switch v.(type) {
	case string:
		return rapid.SampledFrom([]any{12345, true, []any{"x"}, map[string]any{"x": 1}}).Draw(t, "instead of a string")
	case float64, int:
		return "12"
	case bool:
		return rapid.SampledFrom([]any{"true", 1}).Draw(t, "instead of a boolean")
	case []any:
		return rapid.SampledFrom([]any{"list", map[string]any{"0": "x"}, 3}).Draw(t, "instead of a list")
	case map[string]any:
		return rapid.SampledFrom([]any{"object", []any{1}, false}).Draw(t, "instead of an object")
	}
	return "x"
}

// query parameters: a valid value ("" leaves it out) and, where the
// parameter has one, an invalid value.
func (p *apiRun) validParam(t *rapid.T, prm apiParam) string {
	if rapid.Bool().Draw(t, prm.name+" given") {
		return ""
	}
	switch {
	case prm.name == "min_position":
		return rapid.SampledFrom([]string{"0", strconv.FormatUint(p.headNow(t), 10)}).Draw(t, "min_position")
	case prm.name == "cursor": // only the server makes cursors
		return ""
	case prm.schema["type"] == "integer":
		lo, hi := bound(prm.schema, "minimum", 0), bound(prm.schema, "maximum", 1000)
		return strconv.Itoa(rapid.IntRange(lo, hi).Draw(t, prm.name))
	case dateLike(prm.schema):
		if rapid.Bool().Draw(t, prm.name+" at the edge") { // of what RFC 3339 can write
			return rapid.SampledFrom([]string{"9999-12-31", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z",
				"0000-01-01", "0000-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z"}).Draw(t, prm.name)
		}
		d := time.Date(rapid.IntRange(0, 9999).Draw(t, prm.name+" year"), time.Month(rapid.IntRange(1, 12).Draw(t, prm.name+" month")),
			rapid.IntRange(1, 28).Draw(t, prm.name+" day"), 0, 0, 0, 0, time.UTC)
		if !rapid.Bool().Draw(t, prm.name+" with time") {
			return d.Format(time.DateOnly)
		}
		zone := time.FixedZone("", rapid.IntRange(-14, 14).Draw(t, prm.name+" offset")*3600)
		return d.Add(time.Duration(rapid.IntRange(0, 86399).Draw(t, prm.name+" seconds")) * time.Second).In(zone).Format(time.RFC3339)
	case prm.schema["enum"] != nil:
		var vs []string
		for _, v := range asList(prm.schema["enum"]) {
			vs = append(vs, v.(string))
		}
		return pick(t, prm.name, vs)
	}
	if n, ok := prm.schema["maxLength"].(float64); ok {
		return rapid.StringMatching(fmt.Sprintf(`[A-Za-z0-9-]{1,%d}`, int(n))).Draw(t, prm.name)
	}
	return apiToken(t, prm.name)
}

// dateLike reports whether a parameter is a date or a time (or either).
func dateLike(sch map[string]any) bool {
	formats := []any{sch["format"]}
	for _, alt := range asList(sch["anyOf"]) {
		formats = append(formats, alt.(map[string]any)["format"])
	}
	return slices.Contains(formats, "date") || slices.Contains(formats, "date-time")
}

func bound(sch map[string]any, key string, def int) int {
	if v, ok := sch[key].(float64); ok {
		return int(v)
	}
	return def
}

// hasInvalid reports whether invalidParam can make a bad value of prm.
func hasInvalid(prm apiParam) bool {
	return prm.in == "header" || prm.name == "cursor" || prm.schema["type"] == "integer" ||
		dateLike(prm.schema) || prm.schema["enum"] != nil || prm.schema["maxLength"] != nil
}

func invalidParam(t *rapid.T, prm apiParam) (string, bool) {
	switch {
	case prm.name == "cursor":
		return rapid.SampledFrom([]string{"abc", "not a cursor", "o:1", "%%%", "bzotMQ"}).Draw(t, "bad cursor"), true
	case prm.schema["type"] == "integer":
		bad := []string{"abc", "1.5", "0x10", "99999999999999999999999", "-1", " 1"}
		if _, ok := prm.schema["maximum"]; ok {
			bad = append(bad, strconv.Itoa(bound(prm.schema, "maximum", 0)+1), strconv.Itoa(bound(prm.schema, "minimum", 0)-1))
		}
		return rapid.SampledFrom(bad).Draw(t, "bad "+prm.name), true
	case dateLike(prm.schema):
		return rapid.SampledFrom([]string{"2024-13-45", "yesterday", "20240101", "2024-02-30T25:00:00Z", "10000-01-01"}).Draw(t, "bad "+prm.name), true
	case prm.schema["enum"] != nil:
		return "not-one-of-them", true
	case prm.schema["maxLength"] != nil:
		return strings.Repeat("r", bound(prm.schema, "maxLength", 0)+1), true
	}
	return "", false
}
