package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The console tour: every page of the console, for every role, in both
// languages and at a desktop's and a phone's width, on the demo network
// (seeded on an injected clock). TestConsoleAxe audits each page with
// axe-core and the console's own checks; TestConsoleScreenshots (make
// screenshots) saves a picture of each.

// tourRoles are the demo principals of the tour, in its order: the
// privacy officer last, so the access logs hold the others' reads.
var tourRoles = []string{"", "anna", "bram", "gert", "carla", "eva", "ivo", "hanna"}

// tourWidths are the viewport widths of the tour: a desktop and a phone.
var tourWidths = []int64{1280, 375}

// demoNames are the residents of the demo: never in a URL, a title or the
// browser's storage.
var demoNames = []string{"Johanna Pieterse", "Kees van Dam", "Sem de Groot", "Willem Hendriks", "Piet Kramer", "Anouk Willems",
	"Lotte Vermeulen", "Fatima El Amrani"}

// tourStop is one page of the tour: a GET path, or actions that end on the
// page (the answer to a form), and what shows it has loaded.
type tourStop struct {
	name string
	path string
	act  []chromedp.Action
	wait string
}

// tourVisit is a page as the tour shows it to its visitor.
type tourVisit struct {
	lang, role, page string
	width            int64
}

func (v tourVisit) String() string {
	role := v.role
	if role == "" {
		role = "signed-out"
	}
	return fmt.Sprintf("%s/%s/%s/%d", v.lang, role, v.page, v.width)
}

// demoCall calls the API as a demo principal.
func demoCall(t *testing.T, s *server, who, method, path string, body any) map[string]any {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+demoToken(who))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("%s %s as %s: %d %v", method, path, who, resp.StatusCode, out)
	}
	return out
}

// tourIDs are the ids of demo objects the tour's pages name.
type tourIDs struct {
	inCare, handedOver, matched, closed, otherTeam, unrouted, late, subject string
}

func findDemoIDs(t *testing.T, s *server) tourIDs {
	t.Helper()
	var ids tourIDs
	for _, it := range demoCall(t, s, "anna", "GET", "/v1/caseload?limit=500", nil)["items"].([]any) {
		m := it.(map[string]any)
		switch {
		case m["subject_name"] == "Kees van Dam":
			ids.handedOver = m["id"].(string)
		case m["subject_name"] == "Sem de Groot" && m["assignee_id"] == "anna":
			ids.inCare = m["id"].(string)
		case m["subject_name"] == "Sem de Groot":
			ids.matched = m["id"].(string)
		}
	}
	// The closed case is Geldermalsen's: bram's, and another team's to anna.
	for _, it := range demoCall(t, s, "gert", "GET", "/v1/monitor/overdue?limit=500", nil)["items"].([]any) {
		m := it.(map[string]any)
		if m["state"] == "late" || m["state"] == "late_3x" {
			ids.late = m["id"].(string)
		}
	}
	for _, it := range demoCall(t, s, "gert", "GET", "/v1/signals/unrouted?limit=500", nil)["items"].([]any) {
		m := it.(map[string]any)
		if m["declined"] != true {
			ids.unrouted = m["id"].(string)
		}
	}
	search := demoCall(t, s, "hanna", "POST", "/v1/subjects/search", map[string]any{"name": "Willem Hendriks", "birth_date": "1968-11-30"})
	willem := search["subject_ids"].([]any)[0].(string)
	export := demoCall(t, s, "hanna", "GET", "/v1/subjects/"+willem+"/export", nil)
	ids.closed = export["signals"].([]any)[0].(map[string]any)["id"].(string)
	ids.otherTeam = ids.closed
	search = demoCall(t, s, "hanna", "POST", "/v1/subjects/search", map[string]any{"name": "Sem de Groot", "birth_date": "2014-05-20"})
	ids.subject = search["subject_ids"].([]any)[0].(string)
	for k, v := range map[string]string{"in care": ids.inCare, "handed over": ids.handedOver, "matched": ids.matched, "closed": ids.closed,
		"late": ids.late, "unrouted": ids.unrouted, "subject": ids.subject} {
		if v == "" {
			t.Fatalf("the demo has no %s signal for the tour", k)
		}
	}
	return ids
}

// tourStops are the pages of each role.
func tourStops(ids tourIDs, day time.Time) map[string][]tourStop {
	submit := func(sel string) chromedp.Action { return chromedp.Click(sel, chromedp.ByQuery) }
	return map[string][]tourStop{
		"": {{name: "login", path: "/console/login", wait: "#token"}, {name: "not-found", path: "/console/nowhere", wait: "main h1"}},
		"anna": {
			{name: "caseload", path: "/console/caseload", wait: "table.caseload"},
			{name: "caseload-overdue", path: "/console/caseload?f=overdue", wait: "main h1"},
			{name: "case-in-care", path: "/console/cases/" + ids.inCare, wait: "#close"},
			{name: "case-handed-over", path: "/console/cases/" + ids.handedOver, wait: "#accept"},
			{name: "case-matched", path: "/console/cases/" + ids.matched, wait: ".notice .matched"},
			{name: "case-form-error", path: "/console/cases/" + ids.handedOver, wait: "#err-decline-reason",
				act: []chromedp.Action{chromedp.SetValue("#decline-reason", " ", chromedp.ByQuery), submit(`form[action$="/decline"] button`)}},
			{name: "break-glass-form", path: "/console/cases/" + ids.otherTeam, wait: "#breakglass-reason"},
			{name: "unrouted", path: "/console/unrouted", wait: "table.unrouted"},
			{name: "routing", path: "/console/routing", wait: "table.config"},
			{name: "raise", path: "/console/signals/new", wait: "#raise-name"},
			{name: "my", path: "/console/my", wait: "main h1"},
			{name: "organisations", path: "/console/organisations", wait: "table.organisations"},
		},
		"bram": {
			{name: "caseload", path: "/console/caseload", wait: "main h1"},
			{name: "case-closed", path: "/console/cases/" + ids.closed, wait: "#reopen-reason"},
		},
		"gert": {
			{name: "monitor", path: "/console/monitor", wait: "svg.chart"},
			{name: "monitor-filter-error", path: "/console/monitor?from=" + day.Format(time.DateOnly) + "&to=" + day.AddDate(0, 0, -7).Format(time.DateOnly), wait: "#err-m-from"},
			{name: "signal-late", path: "/console/monitor/signals/" + ids.late, wait: "#assign-professional_id"},
			{name: "signal-unrouted", path: "/console/monitor/signals/" + ids.unrouted, wait: "#handover-team_id"},
			{name: "unrouted", path: "/console/unrouted", wait: "table.unrouted"},
			{name: "routing", path: "/console/routing", wait: "#save"},
			{name: "targets", path: "/console/targets", wait: "#save"},
			{name: "signals", path: "/console/monitor/signals", wait: "#signals"},
			{name: "signals-filter-error", path: "/console/monitor/signals?from=" + day.Format(time.DateOnly) + "&to=" + day.AddDate(0, 0, -7).Format(time.DateOnly), wait: "#err-s-from"},
			{name: "categories", path: "/console/categories", wait: "#config-help"},
			{name: "norms", path: "/console/norms", wait: "#norms-high"},
			{name: "norms-error", path: "/console/norms", wait: "#err-norms-high", act: []chromedp.Action{
				chromedp.SetValue("#norms-high", "soon", chromedp.ByQuery), submit(`form[action="/console/norms"] button[type=submit]`)}},
			{name: "feedback-texts", path: "/console/feedback-texts", wait: "#preview"},
			{name: "feedback-texts-preview", path: "/console/feedback-texts", wait: "#preview td[data-code=received][lang=nl]", act: []chromedp.Action{
				chromedp.SetValue("#text-received-nl", "Wij hebben uw signaal.", chromedp.ByQuery), submit(`button[name=preview]`)}},
		},
		"carla": {
			{name: "raise", path: "/console/signals/new", wait: "#raise-name"},
			{name: "raise-errors", path: "/console/signals/new", wait: "#err-raise-consent", act: []chromedp.Action{submit(`form[action="/console/signals"] button[type=submit]`)}},
			{name: "my", path: "/console/my", wait: "table.my"},
			{name: "organisations", path: "/console/organisations", wait: "table.organisations"},
		},
		"eva": {
			{name: "referrals", path: "/console/referrals", wait: "table.referrals"},
			{name: "my", path: "/console/my", wait: "table.my"},
		},
		"ivo": {
			{name: "notifications", path: "/console/notifications", wait: "main h1"},
			{name: "organisations", path: "/console/organisations", wait: "#org-id"},
			{name: "targets", path: "/console/targets", wait: "#save"},
		},
		"hanna": {
			{name: "privacy", path: "/console/privacy", wait: "#search-name"},
			{name: "search-results", path: "/console/privacy", wait: "#results", act: []chromedp.Action{
				chromedp.SendKeys("#search-name", "Sem de Groot", chromedp.ByQuery), chromedp.SetValue("#search-birth_date", "2014-05-20", chromedp.ByQuery),
				submit(`form[action="/console/privacy/search"] button`)}},
			{name: "subject", path: "/console/privacy/subjects/" + ids.subject, wait: "table.audit"},
			{name: "erase-confirm", path: "/console/privacy/subjects/" + ids.subject, wait: "#erase-who", act: []chromedp.Action{
				chromedp.SendKeys("#erase-reason", "verzoek van de betrokkene", chromedp.ByQuery), chromedp.SendKeys("#erase-request_ref", "AVG-2026-1", chromedp.ByQuery),
				submit(`form[action$="/erasure"] button`)}},
			{name: "actor", path: "/console/privacy/actor?id=anna", wait: "table.audit"},
			{name: "break-glass", path: "/console/privacy/break-glass", wait: "table.audit"},
			{name: "verify", path: "/console/privacy/verify", wait: "#chain.ok"},
			{name: "reviews", path: "/console/privacy/reviews", wait: "#reviews"},
			{name: "flags", path: "/console/privacy/reviews?flags=1", wait: "#reviews"},
			{name: "reviews-filter-error", path: "/console/privacy/reviews?from=2026-13-01", wait: "#err-f-from"},
			{name: "report", path: "/console/privacy/report", wait: "#reviews-done"},
		},
	}
}

// consoleTour starts the demo on an injected clock and a browser, and calls
// visit on every page of every role, language and width.
func consoleTour(t *testing.T, visit func(b *browser, v tourVisit)) {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	start := clientFacingStart(t, time.Date(2026, 12, 8, 14, 5, 0, 0, ams)) // a Tuesday
	c := &clock{t: start}
	s := startServerWith(t, t.TempDir(), map[string]string{"BUURTSIGNAAL_DEMO": "true", "BUURTSIGNAAL_TOKENS_FILE": ""}, c.now)
	ids := findDemoIDs(t, s)
	// A break-glass read for the privacy officer to review.
	req, _ := http.NewRequest("GET", s.base+"/v1/signals/"+ids.inCare, nil)
	req.Header.Set("Authorization", "Bearer "+demoToken("bram"))
	req.Header.Set("X-Break-Glass-Reason", "Avonddienst: moeder belt over Sem")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("break-glass read: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	stops := tourStops(ids, start.In(ams))
	b := newBrowserFor(t, s.base, 12*time.Minute)
	u, _ := url.Parse(s.base)
	for _, role := range tourRoles {
		// One sign-in per role (the console limits sign-ins per address);
		// the language is the console's cookie.
		if role != "" {
			b.run("sign-in page", chromedp.EmulateViewport(tourWidths[0], 900), chromedp.Navigate(s.base+"/console/login"), chromedp.WaitVisible("#token", chromedp.ByQuery))
			b.signInAt(demoToken(role))
		}
		for _, lang := range []string{"nl", "en"} {
			b.run("language "+lang, chromedp.ActionFunc(func(ctx context.Context) error {
				return network.SetCookie("bs_lang", lang).WithDomain(u.Hostname()).WithPath("/console").WithHTTPOnly(true).Do(ctx)
			}))
			// Each page is loaded (or its form sent) once, then seen at
			// each width: the layout follows the viewport.
			for _, stop := range stops[role] {
				actions := []chromedp.Action{chromedp.EmulateViewport(tourWidths[0], 900), chromedp.Navigate(s.base + stop.path)}
				if stop.act != nil {
					actions = append(actions, chromedp.WaitReady("body", chromedp.ByQuery))
					actions = append(actions, stop.act...)
				}
				actions = append(actions, chromedp.WaitVisible(stop.wait, chromedp.ByQuery))
				for i, width := range tourWidths {
					v := tourVisit{lang: lang, role: role, page: stop.name, width: width}
					if i > 0 {
						actions = []chromedp.Action{chromedp.EmulateViewport(width, 900)}
					}
					b.run(v.String(), actions...)
					visit(b, v)
				}
			}
		}
		if role != "" {
			b.signOut()
		}
	}
}

// signInAt signs in on the sign-in page the browser is on.
func (b *browser) signInAt(token string) {
	b.t.Helper()
	b.run("sign in", chromedp.SendKeys("#token", token, chromedp.ByQuery), chromedp.Submit("#token", chromedp.ByQuery),
		chromedp.WaitVisible(".logout button", chromedp.ByQuery))
}

// axeSource is axe-core's script: BUURTSIGNAAL_AXE_JS, or the copy npm
// installs in scripts/axe (make test runs npm ci there). Where it is
// missing the test fails, or skips with the reason make test gives in
// BUURTSIGNAAL_SKIP_AXE when it could not install it.
func axeSource(t *testing.T) string {
	path := os.Getenv("BUURTSIGNAAL_AXE_JS")
	if path == "" {
		path = filepath.Join("..", "..", "scripts", "axe", "node_modules", "axe-core", "axe.min.js")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		if why := os.Getenv("BUURTSIGNAAL_SKIP_AXE"); why != "" {
			t.Skip(why)
		}
		t.Fatalf("the accessibility audit needs axe-core (%v): make test installs it with 'npm ci --prefix scripts/axe'; or set BUURTSIGNAAL_SKIP_AXE to a reason", err)
	}
	return string(src)
}

// axeRules are the rule sets the audit runs: WCAG 2.0 and 2.1, A and AA.
const axeRun = `axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}, resultTypes: ['violations']})
  .then(r => r.violations.map(v => ({id: v.id, impact: v.impact || '', help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + ': ' + (n.failureSummary || '').replace(/\s+/g, ' '))})))`

// pageChecks are the console's own checks of a page, beyond axe: one h1
// and headings in order, tables with captions and scoped headers, a skip
// link first, fields tied to their errors, nothing wider than the screen.
const pageChecks = `(() => {
  const out = [];
  const hs = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => +h.tagName[1]);
  if (hs.filter(l => l === 1).length !== 1) out.push('not exactly one h1');
  for (let i = 1; i < hs.length; i++) if (hs[i] > hs[i-1] + 1) out.push('heading h' + hs[i] + ' after h' + hs[i-1]);
  for (const tb of document.querySelectorAll('table')) {
    if (!tb.querySelector('caption') || !tb.querySelector('caption').textContent.trim()) out.push('a table without a caption');
    for (const th of tb.querySelectorAll('th')) if (!th.getAttribute('scope')) { out.push('a table header without scope: ' + th.textContent.trim().slice(0, 30)); break; }
  }
  const first = document.querySelector('a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])');
  if (!first || !first.classList.contains('skip') || first.getAttribute('href') !== '#main' || !document.getElementById('main')) out.push('the skip link is not first, or leads nowhere');
  for (const e of document.querySelectorAll('[aria-invalid="true"]')) {
    const d = e.getAttribute('aria-describedby');
    if (!d || !d.split(' ').every(id => document.getElementById(id))) out.push('an invalid field not tied to its message: ' + e.id);
  }
  if (document.querySelector('.error') && document.querySelector('.error').textContent.match(/must be one of|must be a date YYYY|is longer than \d+ characters|is required$|\bsubject\.\w|\w\[\d+\]\./m)) out.push('an error in the API\'s words or with JSON paths');
  for (const e of document.querySelectorAll('body *')) if (e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('table')) { out.push('wider than the screen: ' + e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className); break; }
  const raw = (document.querySelector('main').innerText.match(/\b[a-z]+_[a-z0-9_]+\b|\b(Signal|Case|Handover|FollowUp|Referral|Feedback|Subject)[A-Z][A-Za-z]+\b/g) || []).filter(w => !w.match(/^(demo|tok)_/));
  if (raw.length) out.push('a code shown raw: ' + raw[0]);
  if (document.querySelector('h1').textContent.match(/^[a-z]+(_[a-z]+)+$/) || document.title.match(/^[a-z]+(_[a-z]+)+ /)) out.push('a message key as the heading or title');
  if (document.documentElement.lang !== LANG) out.push('the page is not in its language: ' + document.documentElement.lang);
  if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push('the page is wider than the screen: ' + document.documentElement.scrollWidth + 'px');
  return out;
})()`

// focusCheck tabs to the skip link and the next element and checks that
// each shows a focus outline.
func focusCheck(b *browser) []string {
	var problems []string
	for i := range 2 {
		var res struct {
			Tag, Outline, Shadow string
			Skip                 bool
		}
		b.run("tab", chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(`(() => { const e = document.activeElement, s = getComputedStyle(e);
			return {tag: e.tagName + (e.id ? '#' + e.id : ''), outline: s.outlineStyle + ' ' + s.outlineWidth, shadow: s.boxShadow, skip: e.classList.contains('skip')}; })()`, &res))
		if i == 0 && !res.Skip {
			problems = append(problems, "the first Tab does not reach the skip link but "+res.Tag)
		}
		if strings.HasPrefix(res.Outline, "none") && (res.Shadow == "" || res.Shadow == "none") {
			problems = append(problems, "no visible focus on "+res.Tag)
		}
	}
	return problems
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// TestConsoleAxe audits every page of the console, for every role, in both
// languages, at 1280 and 375 pixels, with axe-core's WCAG 2.1 A and AA
// rules (zero violations) and the console's own checks; and it keeps the
// residents' names out of URLs, titles and the browser's storage.
func TestConsoleAxe(t *testing.T) {
	src := axeSource(t)
	started := time.Now()
	byRule := map[string]int{}
	examples := map[string][]string{}
	help := map[string]string{}
	var own []string
	pages := 0
	injected := false
	var inAxe time.Duration
	consoleTour(t, func(b *browser, v tourVisit) {
		if !injected { // axe in every document from now on
			b.run("inject axe", chromedp.ActionFunc(func(ctx context.Context) error {
				_, err := page.AddScriptToEvaluateOnNewDocument(src).Do(ctx)
				return err
			}), chromedp.Reload(), chromedp.WaitReady("body", chromedp.ByQuery))
			injected = true
		}
		pages++
		var vs []axeViolation
		t0 := time.Now()
		b.run("axe "+v.String(), chromedp.Evaluate(axeRun, &vs, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
		inAxe += time.Since(t0)
		for _, x := range vs {
			byRule[x.ID] += len(x.Nodes)
			help[x.ID] = x.Impact + ": " + x.Help
			if len(examples[x.ID]) < 4 {
				examples[x.ID] = append(examples[x.ID], v.String()+" "+strings.Join(x.Nodes[:min(2, len(x.Nodes))], " | "))
			}
		}
		var checks []string
		b.run("checks "+v.String(), chromedp.Evaluate(strings.Replace(pageChecks, "LANG", strconv.Quote(v.lang), 1), &checks))
		if v.width == tourWidths[0] {
			checks = append(checks, focusCheck(b)...)
		}
		for _, c := range checks {
			own = append(own, v.String()+": "+c)
		}
		b.checkPrivateChrome(demoNames...)
	})
	rules := make([]string, 0, len(byRule))
	for r := range byRule {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	t.Logf("axe-core: %d pages audited (roles x pages x 2 languages x 2 widths) in %s, %s of it in axe", pages, time.Since(started).Round(time.Second), inAxe.Round(time.Second))
	for _, r := range rules {
		t.Errorf("axe %s (%s): %d elements, e.g.\n  %s", r, help[r], byRule[r], strings.Join(examples[r], "\n  "))
	}
	// The console's own checks, by kind, with examples.
	kinds := map[string][]string{}
	for _, o := range own {
		page, what, _ := strings.Cut(o, ": ")
		kind, _, _ := strings.Cut(what, ": ")
		kinds[kind] = append(kinds[kind], page+": "+what)
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t.Errorf("check %q: %d pages, e.g.\n  %s", k, len(kinds[k]), strings.Join(kinds[k][:min(3, len(kinds[k]))], "\n  "))
	}
}

// TestConsoleScreenshots writes a PNG of every page of the tour, per role,
// language and width, into BUURTSIGNAAL_SCREENSHOTS (make screenshots:
// .screenshots/), so anyone can look at the console without signing in.
func TestConsoleScreenshots(t *testing.T) {
	dir := os.Getenv("BUURTSIGNAAL_SCREENSHOTS")
	if dir == "" {
		t.Skip("set BUURTSIGNAAL_SCREENSHOTS to a folder (make screenshots)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := 0
	consoleTour(t, func(b *browser, v tourVisit) {
		var png []byte
		b.run("screenshot "+v.String(), chromedp.FullScreenshot(&png, 100))
		role := v.role
		if role == "" {
			role = "signed-out"
		}
		name := fmt.Sprintf("%s-%s-%s-%d.png", role, v.page, v.lang, v.width)
		if err := os.WriteFile(filepath.Join(dir, url.PathEscape(name)), png, 0o644); err != nil {
			t.Fatal(err)
		}
		n++
	})
	t.Logf("%d screenshots in %s", n, dir)
}
