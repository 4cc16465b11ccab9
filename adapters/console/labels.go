package console

import (
	"fmt"
	"strings"
	"time"
)

// Labels turn every code a user sees into words, in Dutch and English. The
// sets follow the API's code sets; TestLabels fails when a code of the
// domain has no label in either language, and TestLabelsCoverEveryView (in
// cmd/buurtsignaal) when a route of the API has no words as a view of the
// access log.
var labels = map[string]map[string][2]string{
	"urgency": {
		"normal": {"normaal", "normal"},
		"high":   {"hoog", "high"},
		"acute":  {"acuut", "acute"},
	},
	"category": {
		"loneliness":   {"eenzaamheid", "loneliness"},
		"malnutrition": {"ondervoeding", "malnutrition"},
		"bullying":     {"pesten", "bullying"},
		"debt":         {"schulden", "debt"},
		"safety":       {"veiligheid", "safety"},
		"health":       {"gezondheid", "health"},
		"housing":      {"wonen", "housing"},
		"other":        {"anders", "other"},
	},
	"status": {
		"raised":      {"Gemeld", "Raised"},
		"handed_over": {"Overgedragen", "Handed over"},
		"in_care":     {"In zorg", "In care"},
		"closed":      {"Afgesloten", "Closed"},
		"withdrawn":   {"Ingetrokken", "Withdrawn"},
	},
	// Response states against the norm, and the overdue list's unrouted.
	"state": {
		"waiting":       {"wacht op reactie (binnen de norm)", "waiting (within the norm)"},
		"on_time":       {"op tijd beantwoord", "answered on time"},
		"late":          {"te laat", "late"},
		"late_3x":       {"driemaal te laat", "three times late"},
		"answered_late": {"te laat beantwoord", "answered late"},
		"unrouted":      {"nog zonder team", "still without a team"},
	},
	"consent": {
		"informed":       {"de bewoner weet ervan", "the resident knows"},
		"not_informed":   {"de bewoner weet het niet", "the resident does not know"},
		"vital_interest": {"vitaal belang", "vital interest"},
	},
	"follow_up_kind": {
		"contact_attempt": {"contactpoging", "contact attempt"},
		"phone_call":      {"telefoongesprek", "phone call"},
		"home_visit":      {"huisbezoek", "home visit"},
		"meeting":         {"overleg", "meeting"},
		"other":           {"anders", "other"},
	},
	"follow_up_outcome": {
		"reached":       {"bereikt", "reached"},
		"not_reached":   {"niet bereikt", "not reached"},
		"declined_help": {"wil geen hulp", "declined help"},
		"other":         {"anders", "other"},
	},
	"close_outcome": {
		"resolved":       {"opgelost", "resolved"},
		"referred":       {"doorverwezen", "referred"},
		"no_care_needed": {"geen zorg nodig", "no care needed"},
		"unreachable":    {"onbereikbaar", "unreachable"},
		"declined_help":  {"wil geen hulp", "declined help"},
	},
	"feedback": {
		"received":    {"ontvangen", "received"},
		"in_progress": {"in behandeling", "in progress"},
		"referred":    {"doorverwezen", "referred"},
		"closed":      {"afgerond", "closed"},
	},
	"referral_status": {
		"open":      {"open", "open"},
		"accepted":  {"geaccepteerd", "accepted"},
		"declined":  {"geweigerd", "declined"},
		"completed": {"afgerond", "completed"},
	},
	"org_kind": {
		"professional": {"professionele organisatie", "professional organisation"},
		"volunteer":    {"vrijwilligersorganisatie", "volunteer organisation"},
		"school":       {"school", "school"},
		"sports":       {"sportclub", "sports club"},
		"elderly":      {"ouderenvereniging", "elderly association"},
		"housing":      {"woningcorporatie", "housing corporation"},
		"health":       {"zorg en gezondheid", "health care"},
		"other":        {"anders", "other"},
	},
	"role": {
		"buurtsteun":      {"buurtsteun", "buurtsteun volunteer"},
		"partner":         {"partnerorganisatie", "partner organisation"},
		"professional":    {"professional", "professional"},
		"coordinator":     {"coördinator", "coordinator"},
		"privacy_officer": {"privacyfunctionaris", "privacy officer"},
		"admin":           {"beheerder", "administrator"},
		"system":          {"systeem", "system"},
	},
	// The timeline: what happened, as a sentence about its actor (%s).
	"event": {
		"SignalRaised":           {"%s heeft het signaal gemeld.", "%s raised the signal."},
		"SignalWithdrawn":        {"%s heeft het signaal ingetrokken.", "%s withdrew the signal."},
		"SignalHandedOver":       {"%s heeft het signaal overgedragen aan een team.", "%s handed the signal over to a team."},
		"HandoverAccepted":       {"%s heeft de overdracht geaccepteerd.", "%s accepted the handover."},
		"HandoverDeclined":       {"%s heeft de overdracht geweigerd; het signaal ging terug.", "%s declined the handover; the signal went back."},
		"CaseAssigned":           {"%s heeft de casus toegewezen.", "%s assigned the case."},
		"FollowUpRecorded":       {"%s heeft een vervolgactie vastgelegd.", "%s recorded a follow-up."},
		"ReferralMade":           {"%s heeft de bewoner doorverwezen.", "%s referred the resident."},
		"ReferralAccepted":       {"%s heeft de verwijzing geaccepteerd.", "%s accepted the referral."},
		"ReferralDeclined":       {"%s heeft de verwijzing geweigerd.", "%s declined the referral."},
		"ReferralCompleted":      {"%s heeft de verwijzing afgerond.", "%s completed the referral."},
		"FeedbackGiven":          {"%s heeft de melder teruggekoppeld.", "%s gave the signaller feedback."},
		"SignalsMatched":         {"%s vond een ander signaal over dezelfde bewoner.", "%s found another signal about the same resident."},
		"CaseClosed":             {"%s heeft de casus afgesloten.", "%s closed the case."},
		"CaseReopened":           {"%s heeft de casus heropend.", "%s reopened the case."},
		"SubjectRegistered":      {"%s heeft de betrokkene vastgelegd.", "%s registered the subject."},
		"SubjectSignalled":       {"%s meldde een signaal over de betrokkene.", "%s raised a signal about the subject."},
		"SubjectErased":          {"%s heeft de gegevens van de betrokkene gewist.", "%s erased the subject's data."},
		"SubjectExported":        {"%s heeft de gegevens van de betrokkene geëxporteerd.", "%s exported the subject's data."},
		"RecordAccessed":         {"%s heeft gegevens ingezien.", "%s accessed data."},
		"AccessDenied":           {"%s werd de toegang geweigerd.", "%s was denied access."},
		"OrganisationRegistered": {"%s heeft een organisatie vastgelegd.", "%s registered an organisation."},
		"ServiceOffered":         {"%s heeft een dienst toegevoegd.", "%s added a service."},
		"ServiceWithdrawn":       {"%s heeft een dienst ingetrokken.", "%s withdrew a service."},
		"RoutingRulesSet":        {"%s heeft de routeringsregels opgeslagen.", "%s saved the routing rules."},
		"NotificationTargetsSet": {"%s heeft de meldingsontvangers opgeslagen.", "%s saved the notification targets."},
		"SessionKeyCreated":      {"%s heeft de sessiesleutel gemaakt.", "%s created the session key."},
		"SessionEnded":           {"%s is uitgelogd.", "%s signed out."},
	},
	// Access log: the action of a record (reads, and for denied attempts
	// the action that was refused).
	"action": {
		"read":                  {"inzien", "read"},
		"read_referral":         {"verwijzing inzien", "read a referral"},
		"list":                  {"lijst inzien", "list"},
		"search":                {"zoeken", "search"},
		"export":                {"exporteren", "export"},
		"audit_read":            {"toegangslog inzien", "read the access log"},
		"audit_verify":          {"keten controleren", "verify the chain"},
		"audit_report":          {"toegangsrapportage inzien", "read the access report"},
		"raise":                 {"melden", "raise"},
		"withdraw":              {"intrekken", "withdraw"},
		"handover":              {"overdragen", "hand over"},
		"accept":                {"accepteren", "accept"},
		"decline":               {"weigeren", "decline"},
		"assign":                {"toewijzen", "assign"},
		"follow_up":             {"vervolgactie", "follow-up"},
		"refer":                 {"doorverwijzen", "refer"},
		"answer_referral":       {"verwijzing beantwoorden", "answer a referral"},
		"read_referrals":        {"verwijzingen inzien", "read referrals"},
		"feedback":              {"terugkoppelen", "give feedback"},
		"close":                 {"afsluiten", "close"},
		"reopen":                {"heropenen", "reopen"},
		"read_case":             {"casus inzien", "read a case"},
		"caseload":              {"caseload inzien", "read the caseload"},
		"my_signals":            {"eigen signalen inzien", "read own signals"},
		"list_organisations":    {"organisaties inzien", "list organisations"},
		"list_teams":            {"teams inzien", "list teams"},
		"register_organisation": {"organisatie vastleggen", "register an organisation"},
		"monitor":               {"responsmonitor inzien", "read the response monitor"},
		"search_subjects":       {"betrokkene zoeken", "find a subject"},
		"audit":                 {"toegangslog inzien", "read the access log"},
		"erase":                 {"wissen", "erase"},
		"read_routing":          {"routeringsregels inzien", "read the routing rules"},
		"manage_routing":        {"routeringsregels beheren", "manage the routing rules"},
		"read_network":          {"instellingen van het netwerk lezen", "read the network's settings"},
		"manage_network":        {"instellingen van het netwerk beheren", "manage the network's settings"},
		"read_notifications":    {"meldingsontvangers inzien", "read the notification targets"},
		"manage_notifications":  {"meldingsontvangers beheren", "manage the notification targets"},
		"dead_letters":          {"mislukte meldingen", "failed notifications"},
		"list_unrouted":         {"signalen zonder team inzien", "list signals without a team"},
		"list_principals":       {"medewerkers inzien", "list staff"},
		"subject_names":         {"namen van betrokkenen inzien", "read subjects' names"},
	},
	"rule": {
		"break_glass":         {"doorbraak", "break-glass read"},
		"outside_team":        {"buiten het eigen team", "outside the own team"},
		"many_subjects":       {"ongewoon veel betrokkenen op een dag", "unusually many subjects in a day"},
		"after_hours":         {"buiten werktijd", "outside working hours"},
		"after_closed":        {"lang na afsluiten", "long after closing"},
		"repeated_denials":    {"herhaald geweigerd", "repeated denials"},
		"export_search_burst": {"reeks exports of zoekopdrachten", "burst of exports or searches"},
	},
	"review_state": {
		"open":          {"open", "open"},
		"overdue":       {"te laat", "overdue"},
		"reviewed":      {"beoordeeld", "reviewed"},
		"justified":     {"terecht", "justified"},
		"not_justified": {"niet terecht", "not justified"},
		"follow_up":     {"vervolg nodig", "needs follow-up"},
	},
	"basis": {
		"role":        {"rol", "role"},
		"team":        {"lid van het team", "member of the team"},
		"signaller":   {"melder", "signaller"},
		"referral":    {"verwijzing aan de organisatie", "referral to the organisation"},
		"break_glass": {"doorbraak met reden", "break-glass with a reason"},
	},
	"purpose": {
		"care":            {"zorg", "care"},
		"break_glass":     {"doorbraak", "break-glass"},
		"privacy_audit":   {"privacytoezicht", "privacy audit"},
		"privacy_request": {"verzoek van de betrokkene", "request of the subject"},
	},
	"outcome": {
		"allowed": {"toegestaan", "allowed"},
		"denied":  {"geweigerd", "denied"},
	},
	// The view of an access record: the API route it came through.
	"view": {
		"/v1/signals":                               {"signalen", "signals"},
		"/v1/signals/{id}":                          {"casus", "case"},
		"/v1/signals/{id}/history":                  {"tijdlijn van de casus", "case timeline"},
		"/v1/signals/{id}/withdraw":                 {"signaal intrekken", "withdraw a signal"},
		"/v1/signals/{id}/handover":                 {"signaal overdragen", "hand a signal over"},
		"/v1/signals/{id}/accept":                   {"overdracht accepteren", "accept a handover"},
		"/v1/signals/{id}/decline":                  {"overdracht weigeren", "decline a handover"},
		"/v1/signals/{id}/assign":                   {"casus toewijzen", "assign a case"},
		"/v1/signals/{id}/follow-ups":               {"vervolgactie", "follow-up"},
		"/v1/signals/{id}/referrals":                {"doorverwijzing", "referral"},
		"/v1/signals/{id}/feedback":                 {"terugkoppeling", "feedback"},
		"/v1/signals/{id}/close":                    {"casus afsluiten", "close a case"},
		"/v1/signals/{id}/reopen":                   {"casus heropenen", "reopen a case"},
		"/v1/signals/unrouted":                      {"signalen zonder team", "signals without a team"},
		"/v1/referrals":                             {"verwijzingen", "referrals"},
		"/v1/referrals/{id}":                        {"verwijzing", "referral"},
		"/v1/referrals/{id}/accept":                 {"verwijzing accepteren", "accept a referral"},
		"/v1/referrals/{id}/decline":                {"verwijzing weigeren", "decline a referral"},
		"/v1/referrals/{id}/complete":               {"verwijzing afronden", "complete a referral"},
		"/v1/organisations":                         {"sociale kaart", "sociale kaart"},
		"/v1/teams":                                 {"teams", "teams"},
		"/v1/principals":                            {"medewerkers", "staff"},
		"/v1/caseload":                              {"caseload", "caseload"},
		"/v1/caseload/counts":                       {"aantallen in de caseload", "caseload counts"},
		"/v1/my/signals":                            {"mijn signalen", "my signals"},
		"/v1/monitor/response":                      {"responsmonitor", "response monitor"},
		"/v1/monitor/overdue":                       {"te late signalen", "overdue signals"},
		"/v1/monitor/signals":                       {"lijst van signalen", "list of signals"},
		"/v1/monitor/signals/{id}":                  {"signaal in de monitor", "signal in the monitor"},
		"/v1/subjects/search":                       {"betrokkene zoeken", "subject search"},
		"/v1/subjects/names":                        {"namen van betrokkenen", "subjects' names"},
		"/v1/subjects/{id}/export":                  {"export (AVG art. 15)", "export (GDPR art. 15)"},
		"/v1/subjects/{id}/erasure":                 {"wissen", "erasure"},
		"/v1/audit/subjects/{id}":                   {"toegangslog van een betrokkene", "a subject's access log"},
		"/v1/audit/actors/{id}":                     {"toegangslog van een medewerker", "a staff member's access log"},
		"/v1/audit/break-glass":                     {"doorbraken", "break-glass reads"},
		"/v1/audit/verify":                          {"ketencontrole", "chain verification"},
		"/v1/routing-rules":                         {"routeringsregels", "routing rules"},
		"/v1/categories":                            {"categorieën", "categories"},
		"/v1/norms":                                 {"reactienormen", "response norms"},
		"/v1/feedback-texts":                        {"teksten van terugkoppeling", "feedback texts"},
		"/v1/neighbourhoods":                        {"wijken", "neighbourhoods"},
		"/v1/notification-targets":                  {"meldingsontvangers", "notification targets"},
		"/v1/audit/flags":                           {"signaleringen uit het toegangslog", "flags from the access log"},
		"/v1/audit/reviews":                         {"te beoordelen inzage", "access to review"},
		"/v1/audit/report":                          {"toegangsrapportage", "access report"},
		"/v1/notifications/dead-letters":            {"mislukte meldingen", "failed notifications"},
		"/v1/notifications/dead-letters/{id}/retry": {"melding opnieuw versturen", "send a notification again"},
		"unmatched":                                 {"onbekende route", "unknown route"},
	},
	"subscriber": {
		"team":             {"team", "team"},
		"organisation":     {"organisatie", "organisation"},
		"principal":        {"persoon", "person"},
		"coordinators":     {"de coördinatoren", "the coordinators"},
		"privacy_officers": {"de privacyfunctionarissen", "the privacy officers"},
	},
	"channel": {
		"webhook": {"webhook", "webhook"},
		"email":   {"e-mail", "e-mail"},
	},
	"notify_kind": {
		"handed_over":    {"overgedragen", "handed over"},
		"matched":        {"gekoppeld signaal", "matched signal"},
		"norm_lapsing":   {"norm verloopt bijna", "norm about to lapse"},
		"norm_lapsed":    {"norm verlopen", "norm lapsed"},
		"norm_escalated": {"driemaal de norm", "three times the norm"},
		"referral_made":  {"doorverwijzing", "referral"},
		"feedback_given": {"terugkoppeling", "feedback"},
		"unrouted":       {"nog zonder team", "still without a team"},
		"review_overdue": {"beoordeling te laat", "review overdue"},
	},
	"language": {
		"nl": {"Nederlands", "Dutch"},
		"en": {"Engels", "English"},
	},
	"source": {}, // filled from "role" in init: a signal's source is its signaller's role
}

func init() {
	labels["source"] = labels["role"]
}

// Label is the words for code in set, in lang ("nl" or "en"); ok is false
// when there are none (the code is then shown as it is).
func Label(lang, set, code string) (string, bool) {
	l, ok := labels[set][code]
	if !ok {
		return code, false
	}
	if lang == "en" {
		return l[1], true
	}
	return l[0], true
}

// label is Label for templates.
func label(lang, set string, code any) string {
	s := fmt.Sprint(code)
	if code == nil || s == "" {
		return ""
	}
	l, _ := Label(lang, set, s)
	return l
}

// labelList labels a list of codes, comma-separated.
func labelList(lang, set string, codes any) string {
	var parts []string
	switch v := codes.(type) {
	case []any:
		for _, c := range v {
			parts = append(parts, label(lang, set, c))
		}
	case []string:
		for _, c := range v {
			parts = append(parts, label(lang, set, c))
		}
	}
	return strings.Join(parts, ", ")
}

// Dates and times: one format, in the network's time zone.
//
//	di 8 dec 2026, 14:05    Tue 8 Dec 2026, 14:05
var (
	nlDays   = [7]string{"zo", "ma", "di", "wo", "do", "vr", "za"}
	nlMonths = [12]string{"jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"}
)

// formatDate writes a day: "di 8 dec 2026" or "Tue 8 Dec 2026".
func formatDate(lang string, t time.Time) string {
	if lang == "en" {
		return t.Format("Mon 2 Jan 2006")
	}
	return fmt.Sprintf("%s %d %s %d", nlDays[t.Weekday()], t.Day(), nlMonths[t.Month()-1], t.Year())
}

// formatDateTime writes a moment: "di 8 dec 2026, 14:05".
func formatDateTime(lang string, t time.Time) string {
	return formatDate(lang, t) + t.Format(", 15:04")
}

// formatHours writes a duration in hours: "0 uur", "1,5 uur", "36 h".
func formatHours(lang string, h float64) string {
	s := strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", h), "0"), ".")
	if lang == "en" {
		return s + " h"
	}
	return strings.Replace(s, ".", ",", 1) + " uur"
}

// formatPercent writes a share: "83 %" (nl) or "83%" (en).
func formatPercent(lang string, share float64) string {
	if lang == "en" {
		return fmt.Sprintf("%.0f%%", share*100)
	}
	return fmt.Sprintf("%.0f %%", share*100)
}
