package httpapi

import (
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// route is one endpoint under /v1: the router and the OpenAPI document are
// both built from this table, so they cannot drift apart.
type route struct {
	method  string
	pattern string
	action  domain.Action
	summary string
	body    any // request body example type, nil for none
	answer  any // answer type
	status  int // success status
	handler handlerFunc
}

func (s *Server) routeTable() []route {
	cmd := func(path string, a domain.Action, summary string, body any, h handlerFunc) route {
		return route{http.MethodPost, path, a, summary, body, commandAnswer{}, http.StatusOK, h}
	}
	return []route{
		{http.MethodPost, "/v1/signals", domain.ActRaise, "Raise a signal", raiseBody{}, commandAnswer{}, http.StatusCreated, s.raise},
		cmd("/v1/signals/{id}/withdraw", domain.ActWithdraw, "Withdraw a signal before handover", reasonBody{}, s.withdraw()),
		cmd("/v1/signals/{id}/handover", domain.ActHandover, "Hand a signal over to a basisteam", handoverBody{}, s.handover()),
		cmd("/v1/signals/{id}/accept", domain.ActAccept, "Accept a handover", nil, s.accept()),
		cmd("/v1/signals/{id}/decline", domain.ActDecline, "Decline a handover", reasonBody{}, s.decline()),
		cmd("/v1/signals/{id}/assign", domain.ActAssign, "Assign the case to a professional", assignBody{}, s.assign()),
		cmd("/v1/signals/{id}/follow-ups", domain.ActFollowUp, "Record a follow-up", followUpBody{}, s.followUp()),
		{http.MethodPost, "/v1/signals/{id}/referrals", domain.ActRefer, "Refer the resident to a partner organisation", referralBody{}, commandAnswer{}, http.StatusCreated, s.refer()},
		cmd("/v1/referrals/{id}/accept", domain.ActAnswerReferral, "Accept a referral", noteBody{}, s.answerReferral(domain.RefAccepted)),
		cmd("/v1/referrals/{id}/decline", domain.ActAnswerReferral, "Decline a referral", noteBody{}, s.answerReferral(domain.RefDeclined)),
		cmd("/v1/referrals/{id}/complete", domain.ActAnswerReferral, "Complete a referral", noteBody{}, s.answerReferral(domain.RefCompleted)),
		cmd("/v1/signals/{id}/feedback", domain.ActFeedback, "Give the signaller feedback (terugkoppeling)", feedbackBody{}, s.feedback()),
		cmd("/v1/signals/{id}/close", domain.ActClose, "Close the case", closeBody{}, s.closeCase()),
		cmd("/v1/signals/{id}/reopen", domain.ActReopen, "Reopen a closed case", reasonBody{}, s.reopen()),
		{http.MethodPost, "/v1/organisations", domain.ActRegisterOrganisation, "Register an organisation and its services", organisationBody{}, commandAnswer{}, http.StatusCreated, s.registerOrganisation},

		{http.MethodGet, "/v1/signals/{id}", domain.ActReadCase, "Read a case (audited; X-Break-Glass-Reason outside the team)", nil, signalView{}, http.StatusOK, s.getSignal},
		{http.MethodGet, "/v1/signals/{id}/history", domain.ActReadCase, "Read a case's event history (audited)", nil, historyView{}, http.StatusOK, s.getHistory},
		{http.MethodGet, "/v1/caseload", domain.ActCaseload, "The open cases of my teams, what is due first (audited)", nil, caseloadPage{}, http.StatusOK, s.caseload},
		{http.MethodGet, "/v1/my/signals", domain.ActMySignals, "The status and feedback of my own signals", nil, mySignalsPage{}, http.StatusOK, s.mySignals},
		{http.MethodGet, "/v1/referrals", domain.ActReadReferrals, "The referrals addressed to my organisation (the minimum: no personal data or notes)", nil, partnerReferralsPage{}, http.StatusOK, s.referrals},
		{http.MethodGet, "/v1/referrals/{id}", domain.ActReadReferrals, "One referral addressed to my organisation (the minimum)", nil, partnerReferral{}, http.StatusOK, s.referral},
		{http.MethodGet, "/v1/organisations", domain.ActListOrganisations, "The sociale kaart plus", nil, organisationsPage{}, http.StatusOK, s.organisations},
		{http.MethodGet, "/v1/teams", domain.ActListTeams, "The teams of my network a handover may name", nil, teamsAnswer{}, http.StatusOK, s.teams},
		{http.MethodGet, "/v1/monitor/response", domain.ActMonitor, "Response figures (no personal data)", nil, responseReport{}, http.StatusOK, s.monitorResponse},
		{http.MethodPost, "/v1/subjects/search", domain.ActSearchSubjects, "Find subject ids by name and birth date (blind index; audited)", searchBody{}, searchAnswer{}, http.StatusOK, s.searchSubjects},
		{http.MethodGet, "/v1/subjects/{id}/export", domain.ActExport, "Export all data of a subject and its access log (GDPR art. 15; audited)", nil, exportDocument{}, http.StatusOK, s.exportSubject},
		{http.MethodPost, "/v1/subjects/{id}/erasure", domain.ActErase, "Erase a subject (crypto-shredding)", erasureBody{}, commandAnswer{}, http.StatusOK, s.eraseSubject},
		{http.MethodGet, "/v1/audit/subjects/{id}", domain.ActAudit, "Who accessed this subject's data (audited)", nil, auditPage{}, http.StatusOK, s.auditSubject()},
		{http.MethodGet, "/v1/audit/actors/{id}", domain.ActAudit, "What this actor accessed (audited)", nil, auditPage{}, http.StatusOK, s.auditActor()},
		{http.MethodGet, "/v1/audit/break-glass", domain.ActAudit, "Break-glass reads for review (audited)", nil, auditPage{}, http.StatusOK, s.auditBreakGlass()},
		{http.MethodGet, "/v1/audit/flags", domain.ActAudit, "Flags the access monitoring rules raised on the access log, for review (ids, codes and times; audited)", nil, reviewPage{}, http.StatusOK, s.reviewList(true)},
		{http.MethodGet, "/v1/audit/reviews", domain.ActAudit, "Items to review (break-glass reads and flags), open, overdue or reviewed, with the judgements (audited)", nil, reviewPage{}, http.StatusOK, s.reviewList(false)},
		{http.MethodPost, "/v1/audit/reviews", domain.ActAudit, "Record a judgement of an item to review (justified, not_justified, follow_up), with a note sealed like other free text", reviewBody{}, commandAnswer{}, http.StatusOK, s.recordReview},
		{http.MethodGet, "/v1/audit/report", domain.ActAudit, "The periodic access report of my network: reads, break-glass reads, flags per rule, reviews done and overdue (JSON; printable HTML with format=html; audited)", nil, auditReport{}, http.StatusOK, s.auditReportQuery},
		{http.MethodGet, "/v1/audit/verify", domain.ActAudit, "Recompute the audit hash chains and report the head digest", nil, VerifyReport{}, http.StatusOK, s.auditVerify},
		{http.MethodGet, "/v1/categories", domain.ActReadNetwork, "My network's categories (labels, norms per urgency, retired ones too); ETag is their version", nil, categoriesView{}, http.StatusOK, s.categories()},
		{http.MethodPut, "/v1/categories", domain.ActManageNetwork, "Replace the categories (retire, never leave one out; If-Match: the version read)", categoriesBody{}, commandAnswer{}, http.StatusOK, s.putCategories()},
		{http.MethodGet, "/v1/norms", domain.ActReadNetwork, "My network's response norms per urgency and feedback norm; ETag is their version", nil, normsView{}, http.StatusOK, s.norms()},
		{http.MethodPut, "/v1/norms", domain.ActManageNetwork, "Replace the norms (they apply to signals raised after; If-Match: the version read)", normsBody{}, commandAnswer{}, http.StatusOK, s.putNorms()},
		{http.MethodGet, "/v1/feedback-texts", domain.ActReadNetwork, "What a signaller reads for each feedback code, Dutch and English; ETag is their version", nil, feedbackTextsView{}, http.StatusOK, s.feedbackTexts()},
		{http.MethodPut, "/v1/feedback-texts", domain.ActManageNetwork, "Replace the feedback texts (feedback given before keeps its text; If-Match: the version read)", feedbackTextsBody{}, commandAnswer{}, http.StatusOK, s.putFeedbackTexts()},
		{http.MethodGet, "/v1/neighbourhoods", domain.ActReadNetwork, "My network's neighbourhoods; ETag is their version", nil, neighbourhoodsView{}, http.StatusOK, s.neighbourhoods()},
		{http.MethodPut, "/v1/neighbourhoods", domain.ActManageNetwork, "Replace the neighbourhoods (retire, never leave one out; If-Match: the version read)", neighbourhoodsBody{}, commandAnswer{}, http.StatusOK, s.putNeighbourhoods()},
		{http.MethodGet, "/v1/routing-rules", domain.ActReadRouting, "The ordered routing rules of my network (neighbourhood, category, urgency -> team); ETag is their version", nil, routingRulesView{}, http.StatusOK, s.routingRules()},
		{http.MethodPut, "/v1/routing-rules", domain.ActManageRouting, "Replace the routing rules (If-Match: the version read; 409 when stale)", routingRulesBody{}, commandAnswer{}, http.StatusOK, s.putRoutingRules()},
		{http.MethodGet, "/v1/notification-targets", domain.ActReadNotifications, "Who hears about what, and how (webhook or e-mail); webhook targets carry their signing key; ETag is the version", nil, notificationTargetsView{}, http.StatusOK, s.notificationTargets()},
		{http.MethodPut, "/v1/notification-targets", domain.ActManageNotifications, "Replace the notification targets (If-Match: the version read; 409 when stale)", notificationTargetsBody{}, commandAnswer{}, http.StatusOK, s.putNotificationTargets()},
		{http.MethodGet, "/v1/notifications/dead-letters", domain.ActDeadLetters, "Notifications whose delivery failed after every retry", nil, deadLettersPage{}, http.StatusOK, s.deadLetters},
		{http.MethodPost, "/v1/notifications/dead-letters/{id}/retry", domain.ActDeadLetters, "Queue a dead letter again (same idempotency key)", nil, retryAnswer{}, http.StatusAccepted, s.retryDeadLetter},
		{http.MethodGet, "/v1/monitor/overdue", domain.ActMonitor, "Overdue signals (no personal data)", nil, overduePage{}, http.StatusOK, s.monitorOverdue},
		// Added for the web console (queries_console.go).
		{http.MethodGet, "/v1/signals/unrouted", domain.ActListUnrouted, "The network's raised signals still without a team, to hand over (no personal data)", nil, unroutedPage{}, http.StatusOK, s.unrouted},
		{http.MethodGet, "/v1/principals", domain.ActListPrincipals, "The principals of my network: id, display name, roles, teams (staff only)", nil, principalsAnswer{}, http.StatusOK, s.principals},
		{http.MethodGet, "/v1/subjects/names", domain.ActSubjectNames, "The names of the subjects an access log names (?id=, at most 100; audited)", nil, subjectNamesAnswer{}, http.StatusOK, s.subjectNames},
		{http.MethodGet, "/v1/monitor/signals", domain.ActMonitor, "Every signal of my network, filtered and paged (ids, codes and times only; format=csv: the whole list as CSV)", nil, signalListPage{}, http.StatusOK, s.monitorSignals},
		{http.MethodGet, "/v1/monitor/signals/{id}", domain.ActMonitor, "What a coordinator sees of one signal (no personal data)", nil, monitorSignal{}, http.StatusOK, s.monitorSignal},
		{http.MethodGet, "/v1/caseload/counts", domain.ActCaseload, "How many cases each caseload filter holds (all, mine, unassigned, overdue, per team)", nil, caseloadCounts{}, http.StatusOK, s.caseloadCounts},
	}
}

// Routes lists "METHOD /pattern" of every /v1 route, for tests.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, r := range s.routes {
		out[i] = r.method + " " + r.pattern
	}
	return out
}

var pathParam = regexp.MustCompile(`\{(\w+)\}`)

// queryParams are the query parameters GET routes read besides
// min_position, limit and cursor.
var queryParams = func() map[string][]any {
	q := func(name string, schema map[string]any) map[string]any {
		return map[string]any{"name": name, "in": "query", "schema": schema}
	}
	str := map[string]any{"type": "string"}
	// A period's ends: a time, or a date (to: the whole day).
	period := []any{
		q("from", map[string]any{"type": "string", "anyOf": []any{map[string]any{"format": "date-time"}, map[string]any{"format": "date"}}}),
		q("to", map[string]any{"type": "string", "anyOf": []any{map[string]any{"format": "date-time"}, map[string]any{"format": "date"}}}),
	}
	csvFormat := q("format", map[string]any{"type": "string", "enum": []string{"csv"}, "description": "csv: the answer as CSV (text/csv), as Accept: text/csv does; aggregated figures under the small-cell rule"})
	monitor := append(slices.Clone(period), q("team_id", str), q("neighbourhood", str),
		q("category", map[string]any{"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,49}$"}))
	return map[string][]any{
		"/v1/caseload": {q("team_id", str), q("assignee", map[string]any{"type": "string", "enum": []string{"me", "none"}}),
			q("overdue", map[string]any{"type": "string", "enum": []string{"true", "false"}})},
		"/v1/subjects/names": {q("id", map[string]any{"type": "array", "maxItems": maxSubjectNames, "items": map[string]any{"type": "string", "format": "uuid"}})},
		"/v1/monitor/response": append(slices.Clone(monitor), csvFormat,
			q("per", map[string]any{"type": "string", "enum": []string{"month", "week"}, "description": "with format=csv: the figures of each calendar month or week of the period (at most 36)"})),
		"/v1/monitor/signals": append(slices.Clone(monitor),
			q("status", map[string]any{"type": "string", "enum": enums["status"]}),
			q("urgency", map[string]any{"type": "string", "enum": enums["urgency"]}),
			q("no_team", map[string]any{"type": "string", "enum": []string{"true", "false"}, "description": "true: only the signals without a team"}),
			q("late", map[string]any{"type": "string", "enum": []string{"true", "false"}, "description": "true: only the signals without a first response past their norm"}),
			q("sort", map[string]any{"type": "string", "enum": signalSorts, "description": "raise order, newest first (default) or oldest first"}),
			csvFormat),
		"/v1/monitor/overdue":     monitor,
		"/v1/audit/subjects/{id}": period,
		"/v1/audit/actors/{id}":   period,
		"/v1/audit/break-glass":   period,
		"/v1/audit/flags": append(slices.Clone(period), q("rule", map[string]any{"type": "string", "enum": reviewRules[1:]}),
			q("state", map[string]any{"type": "string", "enum": reviewStates})),
		"/v1/audit/reviews": append(slices.Clone(period), q("rule", map[string]any{"type": "string", "enum": reviewRules}),
			q("state", map[string]any{"type": "string", "enum": reviewStates})),
		"/v1/audit/report": append(slices.Clone(period), q("format", map[string]any{"type": "string", "enum": []string{"json", "html"},
			"description": "html: a printable page (text/html) instead of JSON"})),
		"/v1/subjects/{id}/export": {q("request_ref", map[string]any{"type": "string", "maxLength": 100})},
		"/v1/organisations":        {q("format", map[string]any{"type": "string", "enum": []string{"hsds"}, "description": "hsds: the whole sociale kaart as Open Referral HSDS 3.0 JSON (an organization list, on one page)"})},
	}
}()

// noReplay are the POST routes that take no Idempotency-Key: a query sent
// as POST, answered afresh each time, and a retry that takes no body.
var noReplay = map[string]bool{"POST /v1/subjects/search": true, "POST /v1/notifications/dead-letters/{id}/retry": true}

// takesIfMatch reports whether a route checks If-Match: the commands on a
// signal (a referral's answer is one on its signal) and the replacement of
// a configuration.
func takesIfMatch(rt route) bool {
	return rt.method == http.MethodPut || strings.HasPrefix(rt.pattern, "/v1/signals/{id}/") || strings.HasPrefix(rt.pattern, "/v1/referrals/{id}/")
}
