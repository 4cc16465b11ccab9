package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// consoleClient is a browser-like HTTP client of the console: a cookie
// jar, redirects followed, forms posted with the page's CSRF token.
type consoleClient struct {
	t    *testing.T
	s    *server
	hc   *http.Client
	page string // the last page's HTML
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func newConsoleClient(t *testing.T, s *server) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, s: s, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (c *consoleClient) keep(resp *http.Response, err error) *http.Response {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.page = string(body)
	if m := csrfField.FindStringSubmatch(c.page); m != nil {
		c.csrf = m[1]
	}
	return resp
}

func (c *consoleClient) get(path string) *http.Response {
	c.t.Helper()
	return c.keep(c.hc.Get(c.s.base + path))
}

// post sends a form with the current CSRF token (unless the form names one).
func (c *consoleClient) post(path string, form url.Values, headers ...string) *http.Response {
	c.t.Helper()
	if !form.Has("csrf") {
		form.Set("csrf", c.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, c.s.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.s.base)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return c.keep(c.hc.Do(req))
}

func (c *consoleClient) signIn(token string) {
	c.t.Helper()
	c.get("/console/login")
	resp := c.post("/console/login", url.Values{"token": {token}})
	if resp.StatusCode != 200 || !strings.Contains(c.page, `class="logout"`) {
		c.t.Fatalf("sign in as %s: %d at %s\n%.1500s", token, resp.StatusCode, resp.Request.URL, c.page)
	}
}

func (c *consoleClient) must(want int, resp *http.Response, what string, contains ...string) {
	c.t.Helper()
	if resp.StatusCode != want {
		c.t.Fatalf("%s: status %d, want %d\n%.2000s", what, resp.StatusCode, want, c.page)
	}
	for _, s := range contains {
		if !strings.Contains(c.page, s) {
			c.t.Fatalf("%s: the page lacks %q\n%.3000s", what, s, c.page)
		}
	}
}

// TestConsoleSessionsAndForms checks the console's session cookie and
// headers, CSRF, sign-in failures, and the volunteer's, partner's,
// coordinator's and privacy officer's forms over plain HTTP.
func TestConsoleSessionsAndForms(t *testing.T) {
	s := startServer(t, "", nil)
	c := newConsoleClient(t, s)
	resp := c.get("/console/caseload")
	c.must(200, resp, "signed out: to the sign-in form", `id="token"`)
	if resp.Request.URL.Path != "/console/login" {
		t.Errorf("signed out, /console/caseload ends at %s", resp.Request.URL)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	c.must(401, c.post("/console/login", url.Values{"token": {"tok-nobody"}}), "unknown token", "Dit token is onbekend")
	c.must(403, c.post("/console/login", url.Values{"token": {"tok-carla"}, "csrf": {"0000"}}), "sign-in without the form's token")

	// The session cookie: HttpOnly, SameSite=Strict, path /console.
	c.get("/console/login")
	form := url.Values{"token": {"tok-carla"}, "csrf": {c.csrf}}
	req, _ := http.NewRequest(http.MethodPost, s.base+"/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	noFollow := &http.Client{Jar: c.hc.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	raw, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw.Body.Close()
	cookie := raw.Header.Get("Set-Cookie")
	for _, want := range []string{"bs_session=", "HttpOnly", "SameSite=Strict", "Path=/console"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}

	// A volunteer raises a signal, answering the consent question.
	c.get("/console/signals/new")
	c.must(200, c.get("/console/signals/new"), "raise form", "Weet de bewoner van dit signaal?")
	c.must(403, c.post("/console/signals", url.Values{"name": {"X"}, "csrf": {"bad"}}), "raise without CSRF")
	c.must(403, c.post("/console/signals", url.Values{"name": {"X"}}, "Origin", "http://evil.example"), "raise from another origin")
	bad := c.post("/console/signals", url.Values{"name": {"Vorm Persoon"}, "neighbourhood": {"centrum"}, "categories": {"loneliness"},
		"urgency": {"high"}, "description": {"eet slecht"}, "idem": {"k1"}})
	c.must(422, bad, "raise without consent", "consent", `value="Vorm Persoon"`)
	c.must(200, c.post("/console/signals", url.Values{"name": {"Vorm Persoon"}, "birth_date": {"1950-01-02"}, "neighbourhood": {"centrum"},
		"categories": {"loneliness", "debt"}, "urgency": {"high"}, "description": {"eet slecht"}, "consent": {"informed"}, "idem": {"k2"}}),
		"raise", "Uw signaal is ontvangen. Dank u wel.")
	if strings.Contains(c.page, "Vorm Persoon") {
		t.Error("the signaller's list shows the resident's name")
	}
	mine := s.must(200, s.do("GET", "/v1/my/signals", "carla", nil), "my signals")
	items, _ := mine.body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("my signals: %s", mine.raw)
	}
	id := items[0].(map[string]any)["id"].(string)

	// The basisteam works it; the partner answers the referral in the console.
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")
	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school"}), "org")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")
	s.must(201, s.do("POST", "/v1/signals/"+id+"/referrals", "anna", map[string]any{"organisation_id": "school-x", "service": "huiswerkklas", "reason": "x"}), "refer")
	fb := s.must(200, s.do("POST", "/v1/signals/"+id+"/feedback", "anna", map[string]any{"code": "referred"}), "feedback")
	c.must(200, c.get(fmt.Sprintf("/console/my?p=%d", fb.num("position"))), "my signals", "De bewoner is doorverwezen")
	c.must(200, c.post("/console/logout", url.Values{}), "sign out", `id="token"`)
	c.must(200, c.get("/console/my"), "signed out again", `id="token"`)

	p := newConsoleClient(t, s)
	p.signIn("tok-eva")
	p.must(200, p.get("/console/referrals"), "partner referrals", "huiswerkklas")
	ref := regexp.MustCompile(`/console/referrals/([0-9a-f-]{36})/accept`).FindStringSubmatch(p.page)
	if ref == nil {
		t.Fatalf("no accept form:\n%s", p.page)
	}
	p.must(200, p.post("/console/referrals/"+ref[1]+"/accept", url.Values{"note": {"welkom"}}), "accept referral", "Opgeslagen.", "/console/referrals/"+ref[1]+"/complete")

	// The coordinator's routing page; a professional's case page.
	g := newConsoleClient(t, s)
	g.signIn("tok-gert")
	g.must(200, g.get("/console/monitor"), "monitor", "<svg")
	// The coordinator keeps the routing rules and notification targets in
	// the console: rows in the order of their position, a row without one
	// removed, the version checked.
	g.must(200, g.get("/console/routing"), "routing page", `id="config-version">0<`)
	rules := url.Values{"version": {"0"}, "position": {"2", "1"}, "id": {"rest", "acute"}, "neighbourhood": {"", ""},
		"category": {"", ""}, "urgency": {"", "acute"}, "team_id": {"team-b", "team-a"}}
	g.must(200, g.post("/console/routing", rules), "save rules", "Opgeslagen.", `id="config-version">1<`)
	got := s.must(200, s.do("GET", "/v1/routing-rules", "gert", nil), "rules")
	if !regexp.MustCompile(`"id":"acute".*"id":"rest"`).Match(got.raw) {
		t.Errorf("rules not in the order of their positions: %s", got.raw)
	}
	g.must(409, g.post("/console/routing", rules), "a stale save", `value="rest"`)
	g.must(422, g.post("/console/routing", url.Values{"version": {"1"}, "position": {"1"}, "id": {"x"}, "team_id": {"team-zz"}}), "an unknown team", "team_id")
	g.must(200, g.post("/console/routing", url.Values{"version": {"1"}, "position": {"", "1"}, "id": {"rest", "acute"}, "neighbourhood": {"", ""},
		"category": {"", ""}, "urgency": {"", "acute"}, "team_id": {"team-b", "team-a"}}), "remove a rule", `id="config-version">2<`)
	if got := s.must(200, s.do("GET", "/v1/routing-rules", "gert", nil), "rules").raw; strings.Contains(string(got), `"rest"`) {
		t.Errorf("the removed rule is still there: %s", got)
	}
	g.must(200, g.post("/console/targets", url.Values{"version": {"0"}, "position": {"1"}, "id": {"team-a-hook"}, "subscriber": {"team"},
		"subscriber_id": {"team-a"}, "channel": {"webhook"}, "url": {"https://hooks.example/team-a"}, "email": {""}, "language": {""},
		"kinds": {"handed_over, matched"}}), "save targets", "Opgeslagen.", "handed_over, matched")
	if !regexp.MustCompile(`<code>whsec_(?:[A-Za-z0-9/]|&#43;){43}=</code>`).MatchString(g.page) {
		t.Error("the webhook's signing key (Standard Webhooks' whsec_ form) is not shown to the coordinator")
	}
	a := newConsoleClient(t, s)
	a.signIn("tok-anna")
	a.must(200, a.get("/console/cases/"+id), "case page", "Vorm Persoon", "huiswerkklas")
	a.must(200, a.post("/console/cases/"+id+"/follow-up", url.Values{"kind": {"phone_call"}, "outcome": {"reached"}, "note": {"gebeld"}, "idem": {"f1"}}),
		"follow-up", "Opgeslagen.", "gebeld")
	a.must(422, a.post("/console/cases/"+id+"/follow-up", url.Values{"kind": {"carrier-pigeon"}, "outcome": {"reached"}, "idem": {"f2"}}),
		"a bad follow-up", "kind")
	b := newConsoleClient(t, s)
	b.signIn("tok-bob") // team-b: break glass
	b.must(403, b.get("/console/cases/"+id), "another team's case", "break-glass")
	if strings.Contains(b.page, "Vorm Persoon") {
		t.Error("the break-glass form shows personal data")
	}
	b.must(200, b.post("/console/cases/"+id+"/break-glass", url.Values{"reason": {"nachtdienst, bewoner belt"}}), "break glass", "Vorm Persoon")

	// The privacy officer: review the break-glass read, export, erase.
	h := newConsoleClient(t, s)
	h.signIn("tok-hanna")
	h.must(200, h.get("/console/privacy/break-glass"), "break-glass review", "nachtdienst, bewoner belt")
	subj := s.must(200, s.do("GET", "/v1/signals/"+id, "anna", nil), "subject id").str("subject_id")
	h.must(200, h.get("/console/privacy/subjects/"+subj+"?action=read"), "subject log", `data-actor="bob"`, "Test bob (professional)", "doorbraak met reden")
	exp := h.get("/console/privacy/subjects/" + subj + "/export")
	if exp.StatusCode != 200 || !strings.Contains(exp.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(h.page, "Vorm Persoon") {
		t.Fatalf("export: %d %q", exp.StatusCode, exp.Header.Get("Content-Disposition"))
	}
	// Erasure asks for confirmation, showing whom it erases.
	h.must(422, h.post("/console/privacy/subjects/"+subj+"/erasure", url.Values{"reason": {""}, "request_ref": {"AVG-1"}}), "erase without a reason",
		`aria-describedby="err-erase-reason"`, "Vul dit veld in.")
	h.must(200, h.post("/console/privacy/subjects/"+subj+"/erasure", url.Values{"reason": {"verzoek"}, "request_ref": {"AVG-1"}}), "erase, first step",
		`id="erase-who">Vorm Persoon (geboren ma 2 jan 1950)`, `name="confirming" value="yes"`)
	h.must(422, h.post("/console/privacy/subjects/"+subj+"/erasure", url.Values{"reason": {"verzoek"}, "request_ref": {"AVG-1"}, "confirming": {"yes"}}),
		"erase unconfirmed", `aria-describedby="err-erase-confirm"`)
	h.must(200, h.post("/console/privacy/subjects/"+subj+"/erasure", url.Values{"reason": {"verzoek"}, "request_ref": {"AVG-1"}, "confirming": {"yes"}, "confirm": {"yes"}}),
		"erase", "De gegevens zijn gewist.")
	a.must(200, a.get("/console/cases/"+id), "case after erasure", "gewist")
	if strings.Contains(a.page, "Vorm Persoon") {
		t.Error("the erased subject's name still shows")
	}
	h.must(200, h.get("/console/privacy/verify"), "verify", `id="chain" class="ok"`)
	// Long access logs come in pages that keep the filters.
	for range 60 {
		s.must(200, s.do("GET", "/v1/signals/"+id+"/history", "anna", nil), "read")
	}
	h.must(200, h.get("/console/privacy/actor?id=anna&from=2000-01-01"), "actor log", `rel="next"`)
	next := regexp.MustCompile(`href="(/console/privacy/actor\?[^"]+)" rel="next"`).FindStringSubmatch(h.page)
	if next == nil || !strings.Contains(next[1], "from=2000-01-01") || !strings.Contains(next[1], "cursor=") {
		t.Fatalf("next page link: %v", next)
	}
	first := strings.Count(h.page, `class="actor"`)
	h.must(200, h.get(strings.ReplaceAll(next[1], "&amp;", "&")), "actor log, page 2", `data-actor="anna"`)
	if first != 50 || strings.Count(h.page, `class="actor"`) < 10 {
		t.Errorf("pages of %d and %d records", first, strings.Count(h.page, `class="actor"`))
	}
	h.must(403, h.get("/console/monitor"), "a privacy officer has no monitor")
	h.must(403, h.get("/console/signals/new"), "nor raises signals", "niet voor uw rol")
	a.must(403, a.get("/console/privacy"), "a professional has no privacy pages", "niet voor uw rol")
}

// TestConsoleSignallersHandOverAndWithdraw: a volunteer and a partner hand
// over and withdraw what they raised from "my signals", choosing a team or
// letting the routing rules choose; a refusal shows on the same page.
func TestConsoleSignallersHandOverAndWithdraw(t *testing.T) {
	s := startServer(t, "", nil)
	for _, who := range []string{"carla", "eva"} {
		t.Run(who, func(t *testing.T) {
			first := s.must(201, s.do("POST", "/v1/signals", who, raiseBody("Console Een "+who)), "raise").str("id")
			second := s.must(201, s.do("POST", "/v1/signals", who, raiseBody("Console Twee "+who)), "raise")
			c := newConsoleClient(t, s)
			c.signIn("tok-" + who)
			c.must(200, c.get(fmt.Sprintf("/console/my?p=%d", second.num("position"))), "my signals",
				`action="/console/signals/`+first+`/handover"`, `<option value="team-a">team-a</option>`, `action="/console/signals/`+second.str("id")+`/withdraw"`)

			// No team and no routing rule that matches: refused on the page.
			c.must(422, c.post("/console/signals/"+first+"/handover", url.Values{"team_id": {""}, "idem": {"h0-" + who}}), "handover by rules without rules", "team_id")
			c.must(200, c.post("/console/signals/"+first+"/handover", url.Values{"team_id": {"team-a"}, "note": {"graag snel"}, "idem": {"h1-" + who}}), "handover", "Opgeslagen.")
			if !strings.Contains(c.page, `data-id="`+first+`"><th`) || !strings.Contains(c.page, `data-status="handed_over"`) {
				t.Errorf("the handed-over signal is not shown as handed over:\n%.3000s", c.page)
			}
			c.must(200, c.post("/console/signals/"+second.str("id")+"/withdraw", url.Values{"reason": {"vergissing"}, "idem": {"w1-" + who}}), "withdraw", `data-status="withdrawn"`)
			// Another signaller's signal is not theirs to hand over.
			other := s.must(201, s.do("POST", "/v1/signals", "dirk", raiseBody("Console Drie "+who)), "raise").str("id")
			c.must(403, c.post("/console/signals/"+other+"/handover", url.Values{"team_id": {"team-a"}, "idem": {"h2-" + who}}), "another's signal")
		})
	}
}

// TestConsoleWholeFlow: the signal flow through the console alone. A
// volunteer raises a signal; a professional finds it among the network's
// signals without a team and hands it over; the coordinator assigns the
// case from the overdue list's page of the signal; the caseload's filters
// count and select; an admin registers an organisation; a refused form
// answers in the page's language next to its fields.
func TestConsoleWholeFlow(t *testing.T) {
	s := startServer(t, "", nil)
	v := newConsoleClient(t, s)
	v.signIn("tok-carla")
	v.get("/console/signals/new")
	v.must(200, v.post("/console/signals", url.Values{"name": {"Stroom Persoon"}, "neighbourhood": {"centrum"}, "categories": {"debt"},
		"urgency": {"high"}, "description": {"rekeningen stapelen zich op"}, "consent": {"informed"}, "idem": {"flow-1"}}), "raise", "Uw signaal is ontvangen.")
	id := regexp.MustCompile(`data-id="([0-9a-f-]{36})"`).FindStringSubmatch(v.page)[1]

	// In English, a refused form speaks English, next to its fields.
	v.must(200, v.get("/console/language?lang=en&back=/console/signals/new"), "language", "Raise a signal")
	v.must(422, v.post("/console/signals", url.Values{"name": {"Stroom Persoon"}, "idem": {"flow-2"}}), "refused raise",
		`id="err-raise-neighbourhood"`, `aria-describedby="err-raise-neighbourhood"`, "Please fill in this field.", "Choose one of the options.", `href="#raise-consent"`)
	for _, english := range []string{"is required", "must be one of", "subject.", "a neighbourhood is required"} {
		if strings.Contains(v.page, english) {
			t.Errorf("the refused form shows the API's words %q", english)
		}
	}

	// A professional hands it over from the network's signals without a team.
	a := newConsoleClient(t, s)
	a.signIn("tok-anna")
	a.must(200, a.get("/console/unrouted"), "signals without a team", `data-id="`+id+`"`, "schulden", `name="from" value="unrouted"`)
	if strings.Contains(a.page, "Stroom Persoon") {
		t.Error("the list of signals without a team shows personal data")
	}
	a.must(200, a.post("/console/signals/"+id+"/handover", url.Values{"team_id": {"team-a"}, "from": {"unrouted"}, "idem": {"flow-3"}}),
		"handover from the list", "Opgeslagen.")
	if strings.Contains(a.page, `data-id="`+id+`"`) {
		t.Error("the handed-over signal is still without a team")
	}
	a.must(200, a.post("/console/cases/"+id+"/accept", url.Values{"idem": {"flow-4"}}), "accept", `data-status="in_care"`,
		"Test anna (professional) heeft de overdracht geaccepteerd.", "Test carla (buurtsteun) heeft het signaal gemeld.")

	// The caseload's filters, with their counts, kept in the URL.
	a.must(200, a.get("/console/caseload?f=unassigned"), "unassigned", `aria-current="page">Niet toegewezen <span class="count">(1)</span>`, "Stroom Persoon")
	a.must(200, a.get("/console/caseload?f=mine"), "mine", `aria-current="page">Van mij <span class="count">(0)</span>`)
	if strings.Contains(a.page, "Stroom Persoon") {
		t.Error("an unassigned case is in the filter mine")
	}

	// The coordinator assigns it from the signal's page.
	g := newConsoleClient(t, s)
	g.signIn("tok-gert")
	g.must(200, g.get("/console/monitor/signals/"+id), "the coordinator's page of the signal", `<option value="anna">Test anna</option>`, "In zorg")
	if strings.Contains(g.page, "Stroom Persoon") {
		t.Error("the coordinator's page shows personal data")
	}
	g.must(200, g.post("/console/monitor/signals/"+id+"/assign", url.Values{"professional_id": {"anna"}, "idem": {"flow-5"}}), "assign", "Opgeslagen.",
		"Test anna (professional)")
	a.must(200, a.get("/console/caseload?f=mine"), "mine after the assignment", "Stroom Persoon", `Van mij <span class="count">(1)</span>`)

	// An admin registers an organisation; a bad code is refused next to its field.
	i := newConsoleClient(t, s)
	i.signIn("tok-ivo")
	i.get("/console/organisations")
	i.must(422, i.post("/console/organisations", url.Values{"id": {"Bad Id!"}, "name": {"Buurthuis"}, "kind": {"other"}, "idem": {"flow-6"}}),
		"a bad organisation code", `id="err-org-id"`, "Gebruik alleen kleine letters", `value="Buurthuis"`)
	i.must(200, i.post("/console/organisations", url.Values{"id": {"buurthuis"}, "name": {"Buurthuis"}, "kind": {"other"}, "service": {"Koffieochtend"},
		"service_volunteer": {"true"}, "idem": {"flow-7"}}), "register an organisation", "Opgeslagen.", "Koffieochtend", "door vrijwilligers")
}
