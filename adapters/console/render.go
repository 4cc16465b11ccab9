package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// parse builds one template set per page: the layout plus the page.
func (c *Console) parse() error {
	funcs := template.FuncMap{
		"tr":    translate,
		"when":  c.when,
		"date":  func(t time.Time) string { return t.In(c.Location).Format("2006-01-02") },
		"join":  strings.Join,
		"pct":   func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
		"hours": hours,
		"has":   func(list []string, v string) bool { return contains(list, v) },
		"chart": chart,
		"newid": func() string { return uuid.NewString() },
		"list":  func(v ...string) []string { return v },
		"inc":   func(i int) int { return i + 1 },
		"dict": func(kv ...any) map[string]any {
			m := make(map[string]any, len(kv)/2)
			for i := 0; i+1 < len(kv); i += 2 {
				k, _ := kv[i].(string)
				m[k] = kv[i+1]
			}
			return m
		},
		"short": func(id string) string {
			if len(id) > 8 {
				return id[:8]
			}
			return id
		},
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue // the layout and partials (_*.html) go with every page
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return fmt.Errorf("console: template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (c *Console) when(t any) string {
	var tt time.Time
	switch v := t.(type) {
	case time.Time:
		tt = v
	case *time.Time:
		if v == nil {
			return "–"
		}
		tt = *v
	case string:
		p, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return v
		}
		tt = p
	}
	if tt.IsZero() {
		return "–"
	}
	return tt.In(c.Location).Format("2006-01-02 15:04")
}

func hours(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f h", *v)
}

// render writes a page; s may be nil (signed out).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, p page) {
	t := c.pages[name]
	if t == nil {
		c.Log.Error("console", "err", errNoTemplate, "template", name)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	p.Lang = c.lang(r)
	if p.Title == "" {
		p.Title = name
	}
	p.Title = translate(p.Lang, p.Title)
	if s != nil {
		p.Principal, p.CSRF = &s.principal, s.CSRF
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		c.Log.Error("console: render", "template", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// lang is the console's language: the bs_lang cookie, else Accept-Language,
// else Dutch.
func (c *Console) lang(r *http.Request) string {
	if ck, err := r.Cookie("bs_lang"); err == nil && (ck.Value == "nl" || ck.Value == "en") {
		return ck.Value
	}
	return domain.Language(r.Header.Get("Accept-Language"))
}

func (c *Console) t(r *http.Request, key string) string { return translate(c.lang(r), key) }

// chartData is the SVG chart of open and overdue signals over time.
type chartData struct {
	Width, Height   int
	OpenPath        string
	OverduePath     string
	Max             int
	First, Last     string
	YTicks          []chartTick
	Points          int
	LastOpen, LastO int
}

type chartTick struct {
	Y     float64
	Label int
}

// chart lays out a series (from the monitor report) as two polylines.
func chart(series []seriesPoint) chartData {
	const w, h, pad = 600, 200, 30
	d := chartData{Width: w, Height: h, Points: len(series)}
	if len(series) == 0 {
		return d
	}
	for _, p := range series {
		d.Max = max(d.Max, p.Open, p.Overdue)
	}
	top := max(d.Max, 1)
	x := func(i int) float64 {
		if len(series) == 1 {
			return pad
		}
		return pad + float64(i)*float64(w-2*pad)/float64(len(series)-1)
	}
	y := func(v int) float64 { return float64(h-pad) - float64(v)*float64(h-2*pad)/float64(top) }
	var open, over strings.Builder
	for i, p := range series {
		fmt.Fprintf(&open, "%.1f,%.1f ", x(i), y(p.Open))
		fmt.Fprintf(&over, "%.1f,%.1f ", x(i), y(p.Overdue))
	}
	d.OpenPath, d.OverduePath = strings.TrimSpace(open.String()), strings.TrimSpace(over.String())
	step := int(math.Max(1, math.Ceil(float64(top)/4)))
	for v := 0; v <= top; v += step {
		d.YTicks = append(d.YTicks, chartTick{Y: y(v), Label: v})
	}
	d.First, d.Last = series[0].At.Format("2006-01-02"), series[len(series)-1].At.Format("2006-01-02")
	d.LastOpen, d.LastO = series[len(series)-1].Open, series[len(series)-1].Overdue
	return d
}

type seriesPoint struct {
	At      time.Time `json:"at"`
	Open    int       `json:"open"`
	Overdue int       `json:"overdue"`
}

// translate looks a key up in the console's texts; unknown keys show as is.
func translate(lang, key string) string {
	if t, ok := texts[key]; ok {
		if lang == "en" {
			return t[1]
		}
		return t[0]
	}
	return key
}

// texts are the console's words: Dutch, English.
var texts = map[string][2]string{
	"app":                  {"Buurtsignaal", "Buurtsignaal"},
	"login":                {"Inloggen", "Sign in"},
	"token":                {"Toegangstoken", "Access token"},
	"login_oidc":           {"Inloggen met uw organisatie-account", "Sign in with your organisation account"},
	"login_failed":         {"Dit token is onbekend of verlopen.", "This token is unknown or has expired."},
	"too_many_sign_ins":    {"Te veel pogingen om in te loggen vanaf dit adres; probeer het later opnieuw.", "Too many sign-in attempts from this address; please try again later."},
	"unavailable":          {"Dat lukt nu niet; probeer het zo opnieuw.", "That is not possible right now; please try again shortly."},
	"logout":               {"Uitloggen", "Sign out"},
	"csrf":                 {"Het formulier is verlopen of komt niet van deze site. Laad de pagina opnieuw.", "The form has expired or did not come from this site. Reload the page."},
	"not_found":            {"Deze pagina bestaat niet.", "This page does not exist."},
	"forbidden":            {"Deze pagina is niet voor uw rol.", "This page is not for your role."},
	"error":                {"Er ging iets mis", "Something went wrong"},
	"caseload":             {"Mijn caseload", "My caseload"},
	"case":                 {"Casus", "Case"},
	"monitor":              {"Responsmonitor", "Response monitor"},
	"routing":              {"Routeringsregels", "Routing rules"},
	"privacy":              {"Privacy", "Privacy"},
	"subject":              {"Betrokkene", "Subject"},
	"actor":                {"Medewerker", "Staff member"},
	"verify":               {"Ketencontrole", "Chain verification"},
	"break_glass_review":   {"Doorbraken", "Break-glass reads"},
	"raise":                {"Signaal melden", "Raise a signal"},
	"my":                   {"Mijn signalen", "My signals"},
	"referrals":            {"Verwijzingen", "Referrals"},
	"due":                  {"Te doen", "Due"},
	"overdue":              {"te laat", "overdue"},
	"status":               {"Status", "Status"},
	"urgency":              {"Urgentie", "Urgency"},
	"categories":           {"Categorieën", "Categories"},
	"name":                 {"Naam", "Name"},
	"birth_date":           {"Geboortedatum", "Birth date"},
	"address":              {"Adres", "Address"},
	"phone":                {"Telefoon", "Phone"},
	"description":          {"Omschrijving", "Description"},
	"neighbourhood":        {"Wijk", "Neighbourhood"},
	"team":                 {"Team", "Team"},
	"assignee":             {"Toegewezen aan", "Assigned to"},
	"raised_at":            {"Gemeld op", "Raised at"},
	"response_due":         {"Reactie uiterlijk", "Response due"},
	"timeline":             {"Tijdlijn", "Timeline"},
	"follow_ups":           {"Vervolgacties", "Follow-ups"},
	"feedback":             {"Terugkoppeling", "Feedback"},
	"notes":                {"Notities", "Notes"},
	"accept":               {"Accepteren", "Accept"},
	"decline":              {"Weigeren", "Decline"},
	"assign":               {"Toewijzen", "Assign"},
	"follow_up":            {"Vervolgactie vastleggen", "Record a follow-up"},
	"refer":                {"Doorverwijzen", "Refer"},
	"give_feedback":        {"Terugkoppeling geven", "Give feedback"},
	"close":                {"Afsluiten", "Close"},
	"reopen":               {"Heropenen", "Reopen"},
	"reason":               {"Reden", "Reason"},
	"note":                 {"Notitie", "Note"},
	"kind":                 {"Soort", "Kind"},
	"outcome":              {"Uitkomst", "Outcome"},
	"next_due":             {"Volgende actie op", "Next due"},
	"organisation":         {"Organisatie", "Organisation"},
	"service":              {"Dienst", "Service"},
	"professional_id":      {"Professional (id)", "Professional (id)"},
	"code":                 {"Code", "Code"},
	"break_glass":          {"Doorbreken (buiten uw team)", "Break glass (outside your team)"},
	"break_glass_info":     {"Deze casus hoort niet bij uw team. U kunt hem alleen inzien met een reden; dat wordt vastgelegd en door de privacyfunctionaris beoordeeld.", "This case is not your team's. You may read it only with a reason, which is recorded and reviewed by the privacy officer."},
	"open_case":            {"Casus openen", "Open case"},
	"saved":                {"Opgeslagen.", "Saved."},
	"filter":               {"Filteren", "Filter"},
	"from":                 {"Van", "From"},
	"to":                   {"Tot", "To"},
	"total":                {"Totaal", "Total"},
	"within_norm":          {"Binnen de norm", "Within norm"},
	"median":               {"Mediaan eerste reactie", "Median first response"},
	"p90":                  {"P90 eerste reactie", "P90 first response"},
	"open":                 {"Open", "Open"},
	"overdue_list":         {"Te late signalen", "Overdue signals"},
	"age":                  {"Leeftijd", "Age"},
	"state":                {"Stand", "State"},
	"by_team":              {"Per team", "By team"},
	"by_neighbourhood":     {"Per wijk", "By neighbourhood"},
	"by_category":          {"Per categorie", "By category"},
	"chart":                {"Open en te late signalen in de tijd", "Open and overdue signals over time"},
	"search":               {"Zoeken", "Search"},
	"search_subject":       {"Betrokkene zoeken", "Find a subject"},
	"no_results":           {"Niets gevonden.", "Nothing found."},
	"access_log":           {"Toegangslog", "Access log"},
	"actor_log":            {"Toegangslog van een medewerker", "A staff member's access log"},
	"export":               {"Export downloaden (AVG art. 15)", "Download export (GDPR art. 15)"},
	"erase":                {"Wissen (crypto-shredding)", "Erase (crypto-shredding)"},
	"erase_confirm":        {"Ik begrijp dat dit niet ongedaan kan worden", "I understand this cannot be undone"},
	"request_ref":          {"Verzoekkenmerk", "Request reference"},
	"erased":               {"De gegevens van deze betrokkene zijn gewist.", "This subject's data has been erased."},
	"chain_ok":             {"Alle ketens kloppen.", "Every chain is intact."},
	"chain_broken":         {"De keten is verbroken!", "The chain is broken!"},
	"head":                 {"Kopdigest", "Head digest"},
	"records":              {"Records", "Records"},
	"streams":              {"Stromen", "Streams"},
	"action":               {"Handeling", "Action"},
	"view":                 {"Weergave", "View"},
	"basis":                {"Grondslag", "Basis"},
	"at":                   {"Tijdstip", "At"},
	"consent":              {"Weet de bewoner van dit signaal?", "Does the resident know about this signal?"},
	"consent_informed":     {"Ja, de bewoner weet ervan", "Yes, the resident knows"},
	"consent_not":          {"Nee, de bewoner weet het niet", "No, the resident does not know"},
	"consent_vital":        {"Nee, maar het is dringend nodig (vitaal belang)", "No, but it is urgently needed (vital interest)"},
	"signal_received":      {"Uw signaal is ontvangen. Dank u wel.", "Your signal has been received. Thank you."},
	"handover_or_withdraw": {"Overdragen of intrekken", "Hand over or withdraw"},
	"team_by_rules":        {"Laat de routeringsregels het team kiezen", "Let the routing rules choose the team"},
	"hand_over":            {"Overdragen", "Hand over"},
	"withdraw":             {"Intrekken", "Withdraw"},
	"send":                 {"Versturen", "Send"},
	"answer":               {"Beantwoorden", "Answer"},
	"complete":             {"Afronden", "Complete"},
	"rules":                {"Regels", "Rules"},
	"version":              {"Versie", "Version"},
	"none":                 {"Geen.", "None."},
	"language":             {"English", "Nederlands"},
	"skip":                 {"Naar de inhoud", "Skip to content"},
	"signed_in_as":         {"Ingelogd als", "Signed in as"},
	"actor_id":             {"Medewerker (id)", "Staff member (id)"},
	"show":                 {"Tonen", "Show"},
	"notifications":        {"Mislukte meldingen", "Failed notifications"},
	"targets":              {"Meldingsontvangers", "Notification targets"},
	"position":             {"Volgorde", "Order"},
	"position_help":        {"Rijen gaan op volgorde van dit nummer; een rij zonder nummer vervalt. Vul de lege rij in om er een toe te voegen.", "Rows go in the order of this number; a row without one is removed. Fill in the empty row to add one."},
	"save":                 {"Opslaan", "Save"},
	"next_page":            {"Volgende pagina", "Next page"},
	// Columns of the configuration tables, by field.
	"col_id":            {"Id", "Id"},
	"col_neighbourhood": {"Wijk", "Neighbourhood"},
	"col_category":      {"Categorie", "Category"},
	"col_urgency":       {"Urgentie", "Urgency"},
	"col_team_id":       {"Team", "Team"},
	"col_on_raise":      {"Direct bij melden", "On raise"},
	"true":              {"ja", "yes"},
	"col_subscriber":    {"Voor", "For"},
	"col_subscriber_id": {"Voor (id)", "For (id)"},
	"col_channel":       {"Kanaal", "Channel"},
	"col_url":           {"Webhook-URL", "Webhook URL"},
	"col_email":         {"E-mailadres", "E-mail address"},
	"col_language":      {"Taal", "Language"},
	"col_kinds":         {"Soorten (leeg: alle)", "Kinds (empty: all)"},
	"col_secret":        {"Ondertekeningssleutel", "Signing key"},
	"retry":             {"Opnieuw versturen", "Send again"},
	"target":            {"Ontvanger", "Target"},
	"channel":           {"Kanaal", "Channel"},
	"attempts":          {"Pogingen", "Attempts"},
	"failed_at":         {"Mislukt op", "Failed at"},
	// Statuses and response states, as the API names them.
	"raised":        {"Gemeld", "Raised"},
	"withdrawn":     {"Ingetrokken", "Withdrawn"},
	"handed_over":   {"Overgedragen", "Handed over"},
	"in_care":       {"In zorg", "In care"},
	"closed":        {"Afgesloten", "Closed"},
	"waiting":       {"Wacht op reactie", "Waiting"},
	"on_time":       {"Op tijd", "On time"},
	"late":          {"Te laat", "Late"},
	"late_3x":       {"Driemaal te laat", "Three times late"},
	"answered_late": {"Te laat beantwoord", "Answered late"},
	"unrouted":      {"Zonder team", "Without a team"},
	"accepted":      {"Geaccepteerd", "Accepted"},
	"declined":      {"Geweigerd", "Declined"},
	"completed":     {"Afgerond", "Completed"},
}
