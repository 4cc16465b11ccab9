package httpapi

import (
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// The OpenAPI document is generated from the route table (routes.go) and
// the request and answer types, so it cannot drift from the router. It is
// OpenAPI 3.0.3, the version client generators read (oapi-codegen among
// them); nothing here needs 3.1. Redocly CLI lints it with its recommended
// rules and Prism's validating proxy holds the server to it in the
// end-to-end tests (make test-api).

// operationIDs names every operation for client generators: a verb and
// what it acts on. TestOperationIDs fails on a route without one.
var operationIDs = map[string]string{
	"POST /v1/signals":                               "raiseSignal",
	"POST /v1/signals/{id}/withdraw":                 "withdrawSignal",
	"POST /v1/signals/{id}/handover":                 "handOverSignal",
	"POST /v1/signals/{id}/accept":                   "acceptHandover",
	"POST /v1/signals/{id}/decline":                  "declineHandover",
	"POST /v1/signals/{id}/assign":                   "assignCase",
	"POST /v1/signals/{id}/follow-ups":               "recordFollowUp",
	"POST /v1/signals/{id}/referrals":                "referResident",
	"POST /v1/referrals/{id}/accept":                 "acceptReferral",
	"POST /v1/referrals/{id}/decline":                "declineReferral",
	"POST /v1/referrals/{id}/complete":               "completeReferral",
	"POST /v1/signals/{id}/feedback":                 "giveFeedback",
	"POST /v1/signals/{id}/close":                    "closeCase",
	"POST /v1/signals/{id}/reopen":                   "reopenCase",
	"POST /v1/organisations":                         "registerOrganisation",
	"GET /v1/signals/{id}":                           "getSignal",
	"GET /v1/signals/{id}/history":                   "getSignalHistory",
	"GET /v1/caseload":                               "getCaseload",
	"GET /v1/my/signals":                             "listMySignals",
	"GET /v1/referrals":                              "listReferrals",
	"GET /v1/referrals/{id}":                         "getReferral",
	"GET /v1/organisations":                          "listOrganisations",
	"GET /v1/teams":                                  "listTeams",
	"GET /v1/monitor/response":                       "getResponseFigures",
	"POST /v1/subjects/search":                       "searchSubjects",
	"GET /v1/subjects/{id}/export":                   "exportSubject",
	"POST /v1/subjects/{id}/erasure":                 "eraseSubject",
	"GET /v1/audit/subjects/{id}":                    "getSubjectAccessLog",
	"GET /v1/audit/actors/{id}":                      "getActorAccessLog",
	"GET /v1/audit/break-glass":                      "listBreakGlassReads",
	"GET /v1/audit/verify":                           "verifyAuditChains",
	"GET /v1/audit/flags":                            "listAccessFlags",
	"GET /v1/audit/reviews":                          "listAccessReviews",
	"POST /v1/audit/reviews":                         "recordAccessReview",
	"GET /v1/audit/report":                           "getAccessReport",
	"GET /v1/categories":                             "getCategories",
	"PUT /v1/categories":                             "setCategories",
	"GET /v1/norms":                                  "getNorms",
	"PUT /v1/norms":                                  "setNorms",
	"GET /v1/feedback-texts":                         "getFeedbackTexts",
	"PUT /v1/feedback-texts":                         "setFeedbackTexts",
	"GET /v1/neighbourhoods":                         "getNeighbourhoods",
	"PUT /v1/neighbourhoods":                         "setNeighbourhoods",
	"GET /v1/routing-rules":                          "getRoutingRules",
	"PUT /v1/routing-rules":                          "setRoutingRules",
	"GET /v1/notification-targets":                   "getNotificationTargets",
	"PUT /v1/notification-targets":                   "setNotificationTargets",
	"GET /v1/notifications/dead-letters":             "listDeadLetters",
	"POST /v1/notifications/dead-letters/{id}/retry": "retryDeadLetter",
	"GET /v1/monitor/overdue":                        "listOverdueSignals",
	"GET /v1/signals/unrouted":                       "listUnroutedSignals",
	"GET /v1/principals":                             "listPrincipals",
	"GET /v1/subjects/names":                         "getSubjectNames",
	"GET /v1/monitor/signals":                        "listMonitoredSignals",
	"GET /v1/monitor/signals/{id}":                   "getMonitoredSignal",
	"GET /v1/caseload/counts":                        "getCaseloadCounts",
	"GET /healthz":                                   "getHealth",
	"GET /readyz":                                    "getReadiness",
	"GET /metrics":                                   "getMetrics",
	"GET /openapi.json":                              "getOpenAPIDocument",
}

// operationID is the route's name in operationIDs, or a name made from its
// action, method and path (which TestOperationIDs refuses).
func operationID(method, pattern string) string {
	if id, ok := operationIDs[method+" "+pattern]; ok {
		return id
	}
	return strings.ToLower(method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_").Replace(pattern)
}

// configIDPattern is the form of an id of a network's own configuration
// (a category): the set itself is the network's (GET /v1/categories).
const configIDPattern = `^[a-z0-9][a-z0-9_-]{0,49}$`

// enums are the closed sets of codes the document names: a field takes one
// with the tag openapi:"enum=<name>", or by its JSON name (enumByName).
var enums = map[string][]string{
	"urgency":           domain.Urgencies.Values(),
	"consent":           domain.Consents.Values(),
	"follow_up_kind":    domain.FollowUpKinds.Values(),
	"follow_up_outcome": domain.FollowUpOutcomes.Values(),
	"feedback_code":     domain.FeedbackCodes.Values(),
	"close_outcome":     domain.CloseOutcomes.Values(),
	"organisation_kind": domain.OrganisationKind.Values(),
	"status":            {string(domain.StatusRaised), string(domain.StatusHandedOver), string(domain.StatusInCare), string(domain.StatusClosed), string(domain.StatusWithdrawn)},
	"referral_status":   {string(domain.RefOpen), string(domain.RefAccepted), string(domain.RefDeclined), string(domain.RefCompleted)},
	"response_state":    {string(domain.StateWaiting), string(domain.StateOnTime), string(domain.StateLate), string(domain.StateLate3x), string(domain.StateAnsweredLate)},
	"role":              roleNames(false),
	"actor_role":        roleNames(true),
	"notification_kind": slices.Clone(domain.NotificationKinds),
	"channel":           {"webhook", "email"},
	"subscriber":        {"team", "organisation", "principal", "coordinators", "privacy_officers"},
	"language":          {"nl", "en"},
	"overdue_state":     {string(domain.StateLate), string(domain.StateLate3x), "unrouted"},
	"review_rule":       slices.Clone(reviewRules),
	"review_state":      {"open", "overdue", "reviewed"},
	"judgement":         domain.Judgements.Values(),
}

func roleNames(withSystem bool) []string {
	var out []string
	for _, r := range domain.Roles {
		out = append(out, string(r))
	}
	if withSystem {
		out = append(out, domain.SystemRole)
	}
	return out
}

// byName are the schema options of fields by their JSON name, where the
// name alone says what the field holds; a field's own openapi tag adds to
// them or overrides them.
var byName = map[string]string{
	"urgency":        "enum=urgency",
	"categories":     "format=config-id",
	"category":       "format=config-id",
	"consent":        "enum=consent",
	"response_state": "enum=response_state",
	"roles":          "enum=role",
	"actor_role":     "enum=actor_role",
	"kinds":          "enum=notification_kind",
	"channel":        "enum=channel",
	"subscriber":     "enum=subscriber",
	"language":       "enum=language",
	"birth_date":     "format=date",
	"next_due":       "format=date",
	"email":          "format=email",
	"url":            "format=uri",
}

// examples are the request bodies' examples, by body type.
var examples = map[reflect.Type]any{
	reflect.TypeOf(raiseBody{}): map[string]any{
		"subject":       map[string]any{"name": "Johanna de Vries", "birth_date": "1941-03-14", "address": "Dorpsstraat 1, Beesd", "phone": "0612345678"},
		"neighbourhood": "centrum", "categories": []any{"loneliness", "malnutrition"}, "urgency": "high",
		"description": "Mevrouw eet slecht en zit veel alleen sinds haar man overleed.", "consent": "informed",
	},
	reflect.TypeOf(reasonBody{}):       map[string]any{"reason": "Mevrouw heeft zelf hulp gevonden."},
	reflect.TypeOf(handoverBody{}):     map[string]any{"team_id": "basisteam-beesd", "note": "Graag deze week contact."},
	reflect.TypeOf(assignBody{}):       map[string]any{"professional_id": "anna"},
	reflect.TypeOf(followUpBody{}):     map[string]any{"kind": "home_visit", "outcome": "reached", "note": "Koffie gedronken, maaltijdservice besproken.", "next_due": "2026-12-15"},
	reflect.TypeOf(referralBody{}):     map[string]any{"organisation_id": "zonnebloem-beesd", "service": "Bezoekdienst", "reason": "Eenzaamheid: wekelijks bezoek."},
	reflect.TypeOf(noteBody{}):         map[string]any{"note": "Vrijwilliger gekoppeld."},
	reflect.TypeOf(feedbackBody{}):     map[string]any{"code": "in_progress"},
	reflect.TypeOf(closeBody{}):        map[string]any{"outcome": "resolved", "note": "Maaltijdservice loopt."},
	reflect.TypeOf(organisationBody{}): map[string]any{"id": "zonnebloem-beesd", "name": "De Zonnebloem Beesd", "kind": "elderly", "services": []any{map[string]any{"name": "Bezoekdienst", "description": "Wekelijks bezoek door een vrijwilliger", "volunteer": true}}},
	reflect.TypeOf(searchBody{}):       map[string]any{"name": "Johanna de Vries", "birth_date": "1941-03-14"},
	reflect.TypeOf(erasureBody{}):      map[string]any{"reason": "Verzoek van betrokkene (AVG art. 17)", "request_ref": "AVG-2026-014"},
	reflect.TypeOf(categoriesBody{}): map[string]any{"categories": []any{
		map[string]any{"id": "loneliness", "label_nl": "Eenzaamheid", "label_en": "Loneliness"},
		map[string]any{"id": "mantelzorg", "label_nl": "Overbelaste mantelzorger", "label_en": "Overburdened carer", "description": "Een mantelzorger die het niet meer volhoudt",
			"norms": map[string]any{"normal": map[string]any{"working_days": 5}}},
		map[string]any{"id": "other", "label_nl": "Anders", "label_en": "Other", "retired": true}}},
	reflect.TypeOf(normsBody{}): map[string]any{"norms": map[string]any{"by_urgency": map[string]any{"acute": map[string]any{"hours": 24}, "high": map[string]any{"working_days": 3},
		"normal": map[string]any{"working_days": 10}}, "feedback_working_days": 10}},
	reflect.TypeOf(feedbackTextsBody{}):  map[string]any{"texts": map[string]any{"received": map[string]any{"nl": "We hebben uw signaal ontvangen.", "en": "We received your signal."}}},
	reflect.TypeOf(neighbourhoodsBody{}): map[string]any{"neighbourhoods": []any{map[string]any{"id": "centrum", "name": "Centrum"}, map[string]any{"id": "noord", "name": "Beesd-Noord"}}},
	reflect.TypeOf(routingRulesBody{}):   map[string]any{"rules": []any{map[string]any{"id": "acuut-beesd", "neighbourhood": "centrum", "urgency": "acute", "team_id": "basisteam-beesd", "on_raise": true}}},
	reflect.TypeOf(notificationTargetsBody{}): map[string]any{"targets": []any{map[string]any{"id": "team-beesd-hook", "subscriber": "team", "subscriber_id": "basisteam-beesd",
		"channel": "webhook", "url": "https://zorg.example.nl/buurtsignaal", "language": "nl", "kinds": []any{"handed_over", "norm_lapsed"}}}},
}

// problems are the error answers of an operation, besides the 500 every
// one may give ("default").
func problems(rt route) []int {
	out := []int{http.StatusUnauthorized, http.StatusForbidden}
	hasBody := rt.body != nil
	if hasBody {
		out = append(out, http.StatusBadRequest)
	}
	if strings.Contains(rt.pattern, "{id}") {
		out = append(out, http.StatusNotFound)
	}
	if rt.method != http.MethodGet && !noReplay[rt.method+" "+rt.pattern] {
		out = append(out, http.StatusConflict)
	}
	if hasBody {
		out = append(out, http.StatusRequestEntityTooLarge)
	}
	// Every GET reads min_position, and every command Idempotency-Key and
	// If-Match: a bad value is 422 even where there is no body.
	out = append(out, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable)
	slices.Sort(out)
	return out
}

// OpenAPI returns the OpenAPI 3.0.3 document of the API, generated from
// the route table and the request and answer types.
func (s *Server) OpenAPI() map[string]any {
	b := &schemas{components: map[string]any{}, names: map[schemaKey]string{}}
	for _, rt := range s.routes {
		b.answer(reflect.TypeOf(rt.answer))
	}
	paths := map[string]any{}
	add := func(path, method string, op map[string]any) {
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		item[strings.ToLower(method)] = op
	}
	problemRef := func(status int) map[string]any {
		return map[string]any{"$ref": "#/components/responses/" + problemName(status)}
	}
	responses := map[string]any{"Problem": problemResponse("an internal error (its details are only in the server's log)")}
	for _, st := range []int{400, 401, 403, 404, 409, 413, 422, 429, 503} {
		r := problemResponse(problemText[st])
		if st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable {
			r["headers"] = map[string]any{"Retry-After": map[string]any{"description": "seconds to wait before trying again", "schema": map[string]any{"type": "integer", "minimum": 0}}}
		}
		responses[problemName(st)] = r
	}
	etag := map[string]any{"description": `the stream's version, quoted ("3"): send it back as If-Match`, "schema": map[string]any{"type": "string"}}
	for _, rt := range s.routes {
		params := []any{}
		for _, m := range pathParam.FindAllStringSubmatch(rt.pattern, -1) {
			sch := map[string]any{"type": "string", "format": "uuid"}
			desc := "the object's id"
			if strings.HasPrefix(rt.pattern, "/v1/audit/actors/") {
				sch, desc = map[string]any{"type": "string"}, "a principal's id (from the identity provider or the tokens file)"
			}
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "description": desc, "schema": sch})
		}
		if rt.method == http.MethodGet {
			params = append(params, map[string]any{"name": "min_position", "in": "query", "description": "answer only once the projections reflect this log position (a command's position); 503 when they do not within 2 s",
				"schema": map[string]any{"type": "integer", "format": "int64", "minimum": 0}})
			if isList(rt.pattern) {
				params = append(params,
					map[string]any{"name": "limit", "in": "query", "description": "items per page (default 50)", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 500}},
					map[string]any{"name": "cursor", "in": "query", "description": "the next_cursor of the previous page", "schema": map[string]any{"type": "string"}})
			}
			params = append(params, queryParams[rt.pattern]...)
			if rt.action == domain.ActReadCase {
				params = append(params, map[string]any{"name": "X-Break-Glass-Reason", "in": "header", "description": "why a professional reads a case outside their teams (recorded, and flagged for review)",
					"schema": map[string]any{"type": "string", "maxLength": maxText}})
			}
		} else {
			if !noReplay[rt.method+" "+rt.pattern] {
				params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "description": "a retry with the same key answers as the first time and writes nothing (at most 128 printable characters)",
					"schema": map[string]any{"type": "string", "minLength": 1, "maxLength": 128, "pattern": `^[!-~]+$`}})
			}
			if takesIfMatch(rt) {
				params = append(params, map[string]any{"name": "If-Match", "in": "header", "description": `the version read, quoted ("3"): 409 when it changed since`,
					"schema": map[string]any{"type": "string", "pattern": `^"[0-9]+"$`}})
			}
		}
		answer := b.answer(reflect.TypeOf(rt.answer))
		if rt.method == http.MethodGet && rt.pattern == "/v1/organisations" {
			b.components["HSDSOrganizationList"] = hsdsOrganizationList
			answer = map[string]any{"anyOf": []any{answer, ref("HSDSOrganizationList")}}
		}
		ok := map[string]any{"description": "ok", "content": map[string]any{"application/json": map[string]any{"schema": answer}}}
		if csvRoutes[rt.pattern] && rt.method == http.MethodGet {
			ok["content"].(map[string]any)["text/csv"] = map[string]any{"schema": map[string]any{"type": "string",
				"description": "format=csv or Accept: text/csv: a header line and a line per signal (or per group of figures); cells starting with = + - @ are prefixed with '"}}
		}
		if htmlRoutes[rt.pattern] && rt.method == http.MethodGet {
			ok["content"].(map[string]any)["text/html"] = map[string]any{"schema": map[string]any{"type": "string",
				"description": "format=html, or Accept preferring text/html: a printable page of the same figures"}}
		}
		if _, isCommand := rt.answer.(commandAnswer); isCommand || rt.action == domain.ActReadCase && !strings.HasSuffix(rt.pattern, "/history") ||
			rt.method == http.MethodGet && (rt.pattern == "/v1/routing-rules" || rt.pattern == "/v1/notification-targets") {
			ok["headers"] = map[string]any{"ETag": etag}
		}
		resp := map[string]any{strconv.Itoa(rt.status): ok, "default": map[string]any{"$ref": "#/components/responses/Problem"}}
		for _, st := range problems(rt) {
			resp[strconv.Itoa(st)] = problemRef(st)
		}
		op := map[string]any{
			"summary": rt.summary, "operationId": operationID(rt.method, rt.pattern), "tags": []any{tagOf(rt.pattern)},
			"parameters": params, "x-action": string(rt.action), "responses": resp,
		}
		if rt.body != nil {
			sch := b.request(reflect.TypeOf(rt.body))
			mt := map[string]any{"schema": sch}
			if ex, ok := examples[reflect.TypeOf(rt.body)]; ok {
				mt["example"] = ex
			}
			// A body of optional fields only may be left out.
			_, needed := b.resolve(sch)["required"]
			op["requestBody"] = map[string]any{"required": needed, "content": map[string]any{"application/json": mt}}
		}
		add(rt.pattern, rt.method, op)
	}
	opsOp := func(pattern, summary string, ok map[string]any, extra map[string]any) {
		resp := map[string]any{"200": ok}
		for k, v := range extra {
			resp[k] = v
		}
		resp["default"] = map[string]any{"$ref": "#/components/responses/Problem"}
		add(pattern, http.MethodGet, map[string]any{"summary": summary, "operationId": operationID(http.MethodGet, pattern), "tags": []any{"operations"}, "security": []any{}, "responses": resp})
	}
	statusBody := func(v string) map[string]any {
		return map[string]any{"description": "ok", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
			"type": "object", "required": []any{"status"}, "additionalProperties": false, "properties": map[string]any{"status": map[string]any{"type": "string", "enum": []any{v}}}}}}}
	}
	opsOp("/healthz", "The process is up (no token)", statusBody("ok"), nil)
	opsOp("/readyz", "The event store answers and the projections follow the log (no token)", statusBody("ready"), map[string]any{"503": problemRef(http.StatusServiceUnavailable)})
	if s.Metrics != nil {
		opsOp("/metrics", "Prometheus metrics (no token)", map[string]any{"description": "the metrics in Prometheus' text format",
			"content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}, nil)
	}
	opsOp("/openapi.json", "This document (no token)", map[string]any{"description": "the OpenAPI document",
		"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}, nil)
	b.answer(reflect.TypeOf(Problem{}))
	server := map[string]any{"url": "/", "description": "this server"}
	if s.PublicURL != "" {
		server = map[string]any{"url": strings.TrimSuffix(s.PublicURL, "/"), "description": "this deployment (--public-url)"}
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Buurtsignaal API",
			"version":     "1",
			"description": "Signals, handovers, referrals, follow-ups and feedback of a community care network; response monitoring; the access log of every read of personal data. Errors are application/problem+json (RFC 9457).",
			"license":     map[string]any{"name": "EUPL-1.2", "url": "https://interoperable-europe.ec.europa.eu/collection/eupl/eupl-text-eupl-12"},
			"contact":     map[string]any{"name": "Buurtsignaal"},
		},
		"servers":  []any{server},
		"paths":    paths,
		"tags":     apiTags(),
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "an OIDC ID token, or a token of the tokens file"}},
			"schemas":         b.components,
			"responses":       responses,
		},
	}
}

// hsdsOrganizationList is the answer of GET /v1/organisations?format=hsds:
// Open Referral HSDS 3.0's organization list (adapters/hsds writes it; its
// tests validate it against HSDS's rules), here with its required fields.
var hsdsOrganizationList = map[string]any{
	"type":        "object",
	"description": "Open Referral HSDS 3.0 organization list (format=hsds): the network's whole sociale kaart on one page; see the HSDS 3.0 specification for the organization and service objects",
	"required":    []any{"total_items", "total_pages", "page_number", "size", "first_page", "last_page", "empty", "contents"},
	"properties": map[string]any{
		"total_items": map[string]any{"type": "integer"}, "total_pages": map[string]any{"type": "integer"}, "page_number": map[string]any{"type": "integer"},
		"size": map[string]any{"type": "integer"}, "first_page": map[string]any{"type": "boolean"}, "last_page": map[string]any{"type": "boolean"},
		"empty": map[string]any{"type": "boolean"},
		"contents": map[string]any{"type": "array", "items": map[string]any{"type": "object", "required": []any{"id", "name", "description"},
			"properties": map[string]any{"id": map[string]any{"type": "string", "format": "uuid"}, "name": map[string]any{"type": "string"}, "description": map[string]any{"type": "string"}}}},
	},
}

// csvRoutes answer CSV too (format=csv or Accept: text/csv).
var csvRoutes = map[string]bool{"/v1/monitor/signals": true, "/v1/monitor/response": true}

// htmlRoutes answer a printable HTML page too (format=html, or an Accept
// that prefers text/html).
var htmlRoutes = map[string]bool{"/v1/audit/report": true}

// isList reports whether a GET route answers a page ({items, next_cursor})
// and takes limit and cursor.
func isList(pattern string) bool {
	switch pattern {
	case "/v1/caseload", "/v1/my/signals", "/v1/organisations", "/v1/monitor/overdue", "/v1/monitor/signals", "/v1/referrals",
		"/v1/audit/break-glass", "/v1/signals/unrouted":
		return true
	}
	return strings.HasPrefix(pattern, "/v1/audit/subjects/") || strings.HasPrefix(pattern, "/v1/audit/actors/")
}

var problemText = map[int]string{
	400: "malformed JSON, an unknown field, or a body of another shape",
	401: "no valid bearer token",
	403: "the role, team or organisation does not allow it",
	404: "no such object (or none the caller may know of)",
	409: "the lifecycle does not allow it, or If-Match is stale",
	413: "the body is larger than 64 KiB",
	422: "a field, query parameter or header is invalid (errors names each)",
	429: "over the rate limit: wait Retry-After seconds",
	503: "the store is unavailable, or the projections did not reach min_position in time: retry after Retry-After seconds",
}

func problemName(status int) string {
	return strings.ReplaceAll(http.StatusText(status), " ", "")
}

func problemResponse(desc string) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}}
}

// tagOf groups an operation by what it is about.
func tagOf(pattern string) string {
	p := strings.TrimPrefix(pattern, "/v1/")
	switch {
	case strings.HasPrefix(p, "signals"), strings.HasPrefix(p, "caseload"), strings.HasPrefix(p, "my/"):
		return "signals"
	case strings.HasPrefix(p, "referrals"):
		return "referrals"
	case strings.HasPrefix(p, "organisations"), strings.HasPrefix(p, "teams"), strings.HasPrefix(p, "principals"):
		return "directory"
	case strings.HasPrefix(p, "monitor"):
		return "monitoring"
	case strings.HasPrefix(p, "subjects"), strings.HasPrefix(p, "audit"):
		return "privacy"
	}
	return "configuration"
}

func apiTags() []any {
	return []any{
		map[string]any{"name": "configuration", "description": "routing rules, notification targets and dead letters"},
		map[string]any{"name": "directory", "description": "the sociale kaart, teams and principals"},
		map[string]any{"name": "monitoring", "description": "response figures and overdue signals (no personal data)"},
		map[string]any{"name": "operations", "description": "health, readiness, metrics and this document (no token)"},
		map[string]any{"name": "privacy", "description": "the access log, subject search, export and erasure"},
		map[string]any{"name": "referrals", "description": "referrals as their partner organisation sees them"},
		map[string]any{"name": "signals", "description": "signals and cases"},
	}
}
