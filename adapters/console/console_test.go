package console

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// TestEveryTextIsTranslated: every key a template passes to tr, and every
// key the code translates, has a Dutch and an English text.
func TestEveryTextIsTranslated(t *testing.T) {
	check := func(where, k string) {
		t.Helper()
		if tx, ok := texts[k]; !ok || tx[0] == "" || tx[1] == "" {
			t.Errorf("%s: %q has no Dutch and English text", where, k)
		}
	}
	key := regexp.MustCompile(`tr \S+ "([a-z_0-9]+)"`)
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v", err)
	}
	for _, f := range files {
		src, _ := fs.ReadFile(templateFS, f)
		for _, m := range key.FindAllStringSubmatch(string(src), -1) {
			check(f, m[1])
		}
		// Keys a template builds: col_<field>, <group>_col, consent_<code>.
		if strings.Contains(string(src), `printf "%s_col"`) {
			for _, g := range []string{"by_team", "by_neighbourhood", "by_category", "by_source"} {
				check(f, g)
				check(f, g+"_col")
			}
		}
	}
	goKey := regexp.MustCompile(`(?:translate\([a-zA-Z.()]+, |c\.t\(r, |Key: )"([a-z_0-9]+)"[^+ ]`)
	gofiles, _ := filepath.Glob("*.go")
	for _, f := range gofiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, _ := os.ReadFile(f)
		for _, m := range goKey.FindAllStringSubmatch(string(src), -1) {
			check(f, m[1])
		}
	}
	for _, e := range []configEditor{routingEditor, targetsEditor} {
		check(e.title, e.title)
		for _, f := range e.fields {
			check(e.title, "col_"+f)
		}
	}
	for _, f := range caseloadFilters {
		check("caseload", "filter_"+f.count)
	}
	for _, c := range domain.Consents {
		check("raise", "consent_"+c)
	}
	for _, k := range []string{"problem_validation", "problem_transition", "problem_stale", "problem_reused", "problem_mfa", "problem_erased",
		"problem_org_exists", "problem_busy", "problem_forbidden", "problem_too_large", "signal", "unrouted", "erase_confirm_title"} {
		check("code", k)
	}
	for rule := range ruleTexts {
		if tx := ruleTexts[rule]; tx[0] == "" || tx[1] == "" {
			t.Errorf("rule %s has no Dutch and English text", rule)
		}
	}
	if _, err := New(Options{}); err != nil {
		t.Fatalf("the templates do not parse: %v", err)
	}
}

// TestLabels: every code a user can see has words in Dutch and in English.
// It fails when the domain gains a code (a category, an event type, an
// action, a role...) that the console cannot name.
func TestLabels(t *testing.T) {
	sets := map[string][]string{
		"urgency":           domain.Urgencies.Values(),
		"category":          domain.Categories.Values(),
		"consent":           domain.Consents.Values(),
		"follow_up_kind":    domain.FollowUpKinds.Values(),
		"follow_up_outcome": domain.FollowUpOutcomes.Values(),
		"close_outcome":     domain.CloseOutcomes.Values(),
		"feedback":          domain.FeedbackCodes.Values(),
		"org_kind":          domain.OrganisationKind.Values(),
		"status": {string(domain.StatusRaised), string(domain.StatusHandedOver), string(domain.StatusInCare),
			string(domain.StatusClosed), string(domain.StatusWithdrawn)},
		"state": {string(domain.StateWaiting), string(domain.StateOnTime), string(domain.StateLate), string(domain.StateLate3x),
			string(domain.StateAnsweredLate), "unrouted"},
		"referral_status": {string(domain.RefOpen), string(domain.RefAccepted), string(domain.RefDeclined), string(domain.RefCompleted)},
		"event":           signalEvents(t),
		"basis": {string(domain.BasisRole), string(domain.BasisTeam), string(domain.BasisSignaller), string(domain.BasisReferral),
			string(domain.BasisBreakGlass)},
		"notify_kind": domain.NotificationKinds,
		"subscriber":  {domain.SubscribeTeam, domain.SubscribeOrganisation, domain.SubscribePrincipal, domain.SubscribeCoordinators, domain.SubscribePrivacyOfficers},
		"channel":     {domain.ChannelWebhook, domain.ChannelEmail},
		"language":    {"nl", "en"},
		"outcome":     {"allowed", "denied"},
		"purpose":     {"care", "break_glass", "privacy_audit", "privacy_request"},
		// Access records: the reads' own actions and, for denied attempts,
		// every action of the policy.
		// (TestLabelsCoverEveryView checks the reads' actions the API
		// records.)
		"action":       append([]string{"read", "list", "search", "export", "audit_read", "audit_verify", "audit_report", "read_referral"}, declaredActions(t)...),
		"rule":         reviewRules,
		"review_state": append([]string{"open", "overdue", "reviewed"}, domain.Judgements.Values()...),
	}
	for _, r := range domain.Roles {
		sets["role"] = append(sets["role"], string(r))
		sets["source"] = append(sets["source"], string(r))
	}
	sets["role"] = append(sets["role"], domain.SystemRole)
	for set, codes := range sets {
		if len(codes) == 0 {
			t.Errorf("%s: no codes", set)
		}
		for _, code := range codes {
			for _, lang := range []string{"nl", "en"} {
				if l, ok := Label(lang, set, code); !ok || l == "" {
					t.Errorf("%s %q has no %s label", set, code, lang)
				}
			}
		}
	}
	// Every event sentence names its actor once.
	for typ, l := range labels["event"] {
		if strings.Count(l[0], "%s") != 1 || strings.Count(l[1], "%s") != 1 {
			t.Errorf("event %s: a sentence needs one %%s for its actor: %q", typ, l)
		}
	}
	people := map[string]person{"anna": {ID: "anna", Name: "Anna de Vries", Roles: []string{"professional"}}}
	for _, tt := range []struct {
		lang string
		e    map[string]any
		want string
	}{
		{"nl", map[string]any{"type": "HandoverAccepted", "actor_id": "anna", "actor_role": "professional"}, "Anna de Vries (professional) heeft de overdracht geaccepteerd."},
		{"en", map[string]any{"type": "SignalRaised", "actor_id": "carla", "actor_role": "buurtsteun"}, "carla (buurtsteun volunteer) raised the signal."},
		{"nl", map[string]any{"type": "SignalHandedOver", "actor_id": "system:routing", "actor_role": "system"}, "De routeringsregels heeft het signaal overgedragen aan een team."},
	} {
		if got := eventSentence(tt.lang, people, tt.e); got != tt.want {
			t.Errorf("sentence %v: %q, want %q", tt.e, got, tt.want)
		}
	}
}

// signalEvents are the event types a case's timeline can show: those the
// domain's Evolve applies to a signal (read from signal.go, so a new one
// needs its sentence), each one the registry knows.
func signalEvents(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../../domain/signal.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg := domain.NewRegistry()
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "Evolve" || fn.Recv != nil {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if cc, ok := n.(*ast.CaseClause); ok {
				for _, e := range cc.List {
					if id, ok := e.(*ast.Ident); ok {
						if !reg.Known(id.Name) {
							t.Errorf("Evolve handles %s, which the registry does not know", id.Name)
						}
						out = append(out, id.Name)
					}
				}
			}
			return true
		})
		return false
	})
	if len(out) < 10 {
		t.Fatalf("found %d signal events in Evolve", len(out))
	}
	return out
}

// declaredActions reads the domain's Action constants from policy.go.
func declaredActions(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../../domain/policy.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Action" {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("found %d actions in policy.go", len(out))
	}
	return out
}

func TestDatesAndFigures(t *testing.T) {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	at := time.Date(2026, 12, 8, 14, 5, 0, 0, ams)
	for _, tt := range []struct{ got, want string }{
		{formatDateTime("nl", at), "di 8 dec 2026, 14:05"},
		{formatDateTime("en", at), "Tue 8 Dec 2026, 14:05"},
		{formatDate("nl", at.AddDate(0, 0, 5)), "zo 13 dec 2026"},
		{formatHours("nl", 0), "0 uur"},
		{formatHours("nl", 1.5), "1,5 uur"},
		{formatHours("en", 36), "36 h"},
		{hoursText("en", (*float64)(nil)), "–"},
		{formatPercent("nl", 0.8333), "83 %"},
	} {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
	c := &Console{Options: Options{Location: ams}}
	if got := c.when("nl", "2026-12-08T13:05:00Z"); got != "di 8 dec 2026, 14:05" {
		t.Errorf("when: %q", got)
	}
	if got := c.day("en", "2026-12-08"); got != "Tue 8 Dec 2026" {
		t.Errorf("day: %q", got)
	}
	// Waiting within the norm counts neither way; 0 hours is 0 hours.
	fresh := figures{Total: count{N: 1}, Waiting: count{N: 1}, Unanswered: count{N: 1}}
	if _, ok := fresh.Share(); ok || fresh.Decided().N != 0 || fresh.SharePct("nl") != "–" {
		t.Errorf("one fresh signal: share %v, decided %v", fresh.SharePct("nl"), fresh.Decided())
	}
	// A suppressed count shows as "<k", k the report's.
	for _, tc := range []struct {
		k    int
		want string
	}{{0, "<5"}, {5, "<5"}, {7, "<7"}} {
		rep := monitorReport{SuppressK: tc.k, figures: figures{Total: count{Hidden: true}}, ByTeam: []groupFigures{{}}}
		rep.ByTeam[0].Late = count{Hidden: true}
		rep.nameK()
		if got, group := rep.Total.String(), rep.ByTeam[0].Late.String(); got != tc.want || group != tc.want {
			t.Errorf("k %d: a suppressed count shows as %q, in a group %q, want %q", tc.k, got, group, tc.want)
		}
	}
	zero, share := 0.0, 2.0/3
	some := figures{Total: count{N: 3}, WithinNorm: count{N: 2}, Late: count{N: 1}, ShareWithin: &share, Median: &zero}
	if some.SharePct("nl") != "67 %" || hoursText("nl", some.Median) != "0 uur" {
		t.Errorf("share %s, median %s", some.SharePct("nl"), hoursText("nl", some.Median))
	}
}

// TestFieldMessages: the API's English field messages become the console's
// texts, tied to the form's inputs.
func TestFieldMessages(t *testing.T) {
	for _, tt := range []struct{ msg, rule string }{
		{"is required", "required"},
		{"a description is required", "required"},
		{"at least one category is required", "choose_one"},
		{"is longer than 200 characters", "too_long"},
		{"must be a date YYYY-MM-DD", "date"},
		{"must be one of: informed, not_informed, vital_interest", "choice"},
		{"must be informed, not_informed or vital_interest", "choice"},
		{"must be normal, high or acute", "choice"},
		{"must each be one of: loneliness, debt", "choice"},
		{"unknown team", "unknown_team"},
		{"unknown category", "choice"},
		{"unknown organisation", "unknown_organisation"},
		{"no routing rule matches this signal: name a team", "no_rule"},
		{"is used twice", "duplicate"},
		{"must be a plain e-mail address", "email"},
		{"must be 1 to 100 lower-case letters, digits, '.', '_' or '-'", "identifier"},
		{"must be an RFC 3339 time or a date YYYY-MM-DD", "date"},
		{"something nobody wrote yet", "invalid"},
	} {
		want := translateRule("nl", tt.rule)
		if tt.rule == "too_long" {
			want = strings.Replace(want, "%s", "200", 1)
		}
		if got := fieldMessage("nl", tt.msg); got != want {
			t.Errorf("%q: %q, want the %s text %q", tt.msg, got, tt.rule, want)
		}
	}
	for _, tt := range []struct{ form, field, want string }{
		{"raise", "subject.name", "raise-name"},
		{"raise", "consent", "raise-consent"},
		{"rules", "rules[2].team_id", "team_id-2"},
		{"handover-x", "team_id", "handover-x-team_id"},
	} {
		if got := inputID(tt.form, tt.field); got != tt.want {
			t.Errorf("inputID(%s, %s) = %s, want %s", tt.form, tt.field, got, tt.want)
		}
	}
	fe := newFormErrors("en", "raise", &problem{Status: 422, Code: "validation", Errors: []domain.FieldError{{Field: "consent", Message: "must be one of: informed"}}})
	if fe.ByID["raise-consent"] != "Choose one of the options." || fe.Errors[0].Label != "Does the resident know" {
		t.Errorf("form errors: %+v", fe)
	}
	p := page{Form: fe}
	if got := string(invalidAttrs(p, "raise-consent")); got != `aria-invalid="true" aria-describedby="err-raise-consent"` {
		t.Errorf("attributes: %s", got)
	}
	if got := string(fieldErrorHTML(p, "raise-consent")); !strings.Contains(got, `id="err-raise-consent"`) {
		t.Errorf("message: %s", got)
	}
}

func TestChart(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		series []seriesPoint
		want   chartData
	}{
		{"no points", nil, chartData{Width: 600, Height: 200}},
		{"one point", []seriesPoint{{At: day(1), Open: count{N: 2}, Overdue: count{N: 1}}}, chartData{Width: 600, Height: 200, Points: 1, Max: 2,
			OpenPath: "30.0,30.0", OverduePath: "30.0,100.0", First: day(1), Last: day(1), LastOpen: 2, LastO: 1,
			YTicks: []chartTick{{170, 0}, {100, 1}, {30, 2}}, XTicks: []chartXTick{{30, day(1)}}}},
		{"three points", []seriesPoint{{At: day(1)}, {At: day(2), Open: count{N: 4}, Overdue: count{N: 2}}, {At: day(3), Open: count{N: 2}}},
			chartData{Width: 600, Height: 200, Points: 3, Max: 4, OpenPath: "30.0,170.0 300.0,30.0 570.0,100.0",
				OverduePath: "30.0,170.0 300.0,100.0 570.0,170.0", First: day(1), Last: day(3), LastOpen: 2,
				YTicks: []chartTick{{170, 0}, {135, 1}, {100, 2}, {65, 3}, {30, 4}},
				XTicks: []chartXTick{{30, day(1)}, {300, day(2)}, {570, day(3)}}}},
		{"all zero", []seriesPoint{{At: day(1)}, {At: day(2)}}, chartData{Width: 600, Height: 200, Points: 2,
			OpenPath: "30.0,170.0 570.0,170.0", OverduePath: "30.0,170.0 570.0,170.0", First: day(1), Last: day(2),
			YTicks: []chartTick{{170, 0}, {30, 1}}, XTicks: []chartXTick{{30, day(1)}, {570, day(2)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Series = tt.series
			if diff := cmp.Diff(tt.want, chart(tt.series)); diff != "" {
				t.Errorf("chart (-want +got):\n%s", diff)
			}
		})
	}
}
