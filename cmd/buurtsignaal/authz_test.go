package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// matrixRoles are the matrix columns and the principal acting in each.
var matrixRoles = []struct{ role, who string }{
	{"buurtsteun", "carla"}, {"partner", "eva"}, {"professional", "anna"},
	{"coordinator", "gert"}, {"privacy_officer", "hanna"}, {"admin", "ivo"},
}

type matrixLine struct {
	method, route, fixture string
	own, other             []int // per role; 0 for "-"
}

func readMatrix(t *testing.T) []matrixLine {
	t.Helper()
	f, err := os.Open("testdata/authz.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []matrixLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 3+len(matrixRoles) {
			t.Fatalf("authz.txt:%d: %d columns", n, len(fs))
		}
		l := matrixLine{method: fs[0], route: fs[1], fixture: fs[2]}
		for _, cell := range fs[3:] {
			own, other, ok := strings.Cut(cell, "/")
			if !ok {
				t.Fatalf("authz.txt:%d: cell %q", n, cell)
			}
			l.own = append(l.own, status(t, own))
			l.other = append(l.other, status(t, other))
		}
		out = append(out, l)
	}
	return out
}

func status(t *testing.T, s string) int {
	if s == "-" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("status %q", s)
	}
	return n
}

// principalOf returns the test principal's role, team and organisation.
func principalOf(who string) (role, team, org string) {
	for _, p := range testPrincipals {
		if p.id == who {
			return p.role, p.team, p.org
		}
	}
	panic(who)
}

// fixtures builds objects in a given state through the API itself.
type fixtures struct {
	s   *server
	n   int
	pos int // the position of the last fixture command
}

// signal returns a signal in state, "own" to who when own is set.
func (f *fixtures) signal(state, who string, own bool) (signalID, referralID string) {
	s := f.s
	s.t.Helper()
	f.n++
	role, team, org := principalOf(who)
	raiser, teamID, member, refOrg, partner := "dirk", "team-b", "bob", "housing-y", "femke"
	if own {
		raiser, teamID, member, refOrg, partner = "carla", "team-a", "anna", "school-x", "eva"
		if role == "buurtsteun" || role == "partner" || role == "professional" {
			raiser = who
		}
		if team != "" {
			teamID = team
		}
		if role == "partner" {
			refOrg = org
		}
	}
	step := func(a answer) answer {
		f.pos = a.num("position")
		return a
	}
	id := step(s.must(201, s.do("POST", "/v1/signals", raiser, raiseBody(fmt.Sprintf("Matrix Persoon %d", f.n))), "fixture raise")).str("id")
	sig := "/v1/signals/" + id
	if state == "raised" {
		return id, ""
	}
	step(s.must(200, s.do("POST", sig+"/handover", "gert", map[string]any{"team_id": teamID}), "fixture handover"))
	if state == "handed_over" {
		return id, ""
	}
	step(s.must(200, s.do("POST", sig+"/accept", member, nil), "fixture accept"))
	switch state {
	case "in_care":
		return id, ""
	case "closed":
		step(s.must(200, s.do("POST", sig+"/close", member, map[string]any{"outcome": "resolved"}), "fixture close"))
		return id, ""
	}
	ref := step(s.must(201, s.do("POST", sig+"/referrals", member, map[string]any{"organisation_id": refOrg, "reason": "matrix"}), "fixture referral")).str("referral_id")
	if state == "referral_accepted" {
		step(s.must(200, s.do("POST", "/v1/referrals/"+ref+"/accept", partner, nil), "fixture referral accept"))
	}
	return id, ref
}

var bodies = map[string]any{
	"POST /v1/signals":                 nil, // raiseBody, built per call
	"PUT /v1/routing-rules":            map[string]any{"rules": []any{map[string]any{"id": "matrix", "team_id": "team-a"}}},
	"PUT /v1/categories":               map[string]any{"categories": defaultCategories()},
	"PUT /v1/norms":                    map[string]any{"norms": domain.DefaultNorms()},
	"PUT /v1/feedback-texts":           map[string]any{"texts": domain.DefaultFeedbackTexts()},
	"PUT /v1/neighbourhoods":           map[string]any{"neighbourhoods": []any{}},
	"PUT /v1/notification-targets":     map[string]any{"targets": []any{map[string]any{"id": "matrix", "subscriber": "team", "subscriber_id": "team-a", "channel": "webhook", "url": "https://hooks.example/matrix"}}},
	"POST /v1/signals/{id}/withdraw":   map[string]any{"reason": "matrix"},
	"POST /v1/signals/{id}/handover":   map[string]any{"team_id": "team-a"},
	"POST /v1/signals/{id}/decline":    map[string]any{"reason": "matrix"},
	"POST /v1/signals/{id}/assign":     map[string]any{"professional_id": "someone-new"},
	"POST /v1/signals/{id}/follow-ups": map[string]any{"kind": "phone_call", "outcome": "reached"},
	"POST /v1/signals/{id}/referrals":  map[string]any{"organisation_id": "school-x", "reason": "matrix"},
	"POST /v1/signals/{id}/feedback":   map[string]any{"code": "received"},
	"POST /v1/signals/{id}/close":      map[string]any{"outcome": "resolved"},
	"POST /v1/signals/{id}/reopen":     map[string]any{"reason": "matrix"},
	"POST /v1/subjects/search":         map[string]any{"name": "Matrix Persoon 1"},
	"POST /v1/organisations":           map[string]any{"id": "matrix-org", "name": "Matrix", "kind": "other"},
	"POST /v1/subjects/{id}/erasure":   map[string]any{"reason": "matrix", "request_ref": "REQ-1"},
}

// TestAuthorizationMatrix drives every route x role x own/other object from
// testdata/authz.txt through the real server; a route of the router that the
// matrix lacks fails it.
func TestAuthorizationMatrix(t *testing.T) {
	s := startServer(t, "", nil)
	for _, org := range []string{"school-x", "housing-y"} {
		s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": org, "name": org, "kind": "school"}), "register "+org)
	}
	lines := readMatrix(t)
	var listed []string
	for _, l := range lines {
		listed = append(listed, l.method+" "+l.route)
	}
	for _, r := range routesOf(t, s) {
		if !slices.Contains(listed, r) {
			t.Errorf("route %s is missing from testdata/authz.txt", r)
		}
	}
	for _, r := range listed {
		if !slices.Contains(routesOf(t, s), r) {
			t.Errorf("testdata/authz.txt names %s, which the router does not have", r)
		}
	}
	f := &fixtures{s: s}
	for _, l := range lines {
		for i, mr := range matrixRoles {
			for _, own := range []bool{true, false} {
				want := l.own[i]
				if !own {
					want = l.other[i]
				}
				if want == 0 {
					continue
				}
				path := l.route
				switch l.fixture {
				case "none":
				case "subject":
					raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Matrix Subject")), "subject fixture")
					f.pos = raised.num("position")
					path = strings.Replace(path, "{id}", s.subjectOf(raised.str("id")), 1)
				case "actor":
					path = strings.Replace(path, "{id}", "anna", 1)
				case "review_item":
				case "unknown":
					path = strings.Replace(path, "{id}", uuid.NewString(), 1)
				default:
					sig, ref := f.signal(l.fixture, mr.who, own)
					if strings.HasPrefix(l.route, "/v1/referrals/") {
						sig = ref
					}
					path = strings.Replace(path, "{id}", sig, 1)
				}
				body := bodies[l.method+" "+l.route]
				if l.route == "/v1/signals" && l.method == "POST" {
					body = raiseBody("Matrix Raise")
				}
				if l.route == "/v1/signals/{id}/handover" && mr.role == "professional" {
					body = map[string]any{"team_id": "team-a"}
				}
				if l.fixture == "review_item" {
					body = map[string]any{"item": reviewItemOf(t, s), "judgement": "justified"}
				}
				if l.route == "/v1/signals/{id}/assign" { // a professional of the fixture's team
					body = map[string]any{"professional_id": map[bool]string{true: "anna", false: "bob"}[own]}
				}
				if l.method == "GET" && f.pos > 0 {
					path += "?min_position=" + strconv.Itoa(f.pos) // read your writes
				}
				got := s.do(l.method, path, mr.who, body)
				if got.status != want {
					t.Errorf("%s %s as %s (own=%t): status %d, want %d: %s", l.method, l.route, mr.role, own, got.status, want, got.raw)
				}
			}
		}
	}
}

func routesOf(t *testing.T, s *server) []string {
	t.Helper()
	doc := s.must(200, s.do("GET", "/openapi.json", "", nil), "openapi")
	paths, _ := doc.body["paths"].(map[string]any)
	var out []string
	for p, ops := range paths {
		if !strings.HasPrefix(p, "/v1/") {
			continue
		}
		for m := range ops.(map[string]any) {
			out = append(out, strings.ToUpper(m)+" "+p)
		}
	}
	slices.Sort(out)
	return out
}

// TestEveryRouteRefusesBadTokensAndOtherMethods: on every /v1 route a
// missing, malformed or unknown token is a 401 problem with a Bearer
// challenge, and every method the route does not have is refused (405, or
// 401 first when there is no valid token), never a success; none of it
// writes to the log.
func TestEveryRouteRefusesBadTokensAndOtherMethods(t *testing.T) {
	var head func(context.Context) (uint64, error)
	s := startServerHooks(t, "", nil, hooks{head: func(h func(context.Context) (uint64, error)) { head = h }})
	signal := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Route Persoon")), "raise")
	id := signal.str("id")
	routes := routesOf(t, s)
	byPath := map[string][]string{}
	for _, r := range routes {
		m, p, _ := strings.Cut(r, " ")
		byPath[p] = append(byPath[p], m)
	}
	before, _ := head(context.Background())
	send := func(method, path, auth string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.base+strings.ReplaceAll(path, "{id}", id), strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for path, methods := range byPath {
		for _, m := range methods {
			for _, auth := range []string{"", "tok-anna", "Basic dG9rLWFubmE=", "Bearer ", "Bearer not-a-token", "Bearer tok-anna-but-longer", "Bearer tok-ANNA"} {
				resp := send(m, path, auth)
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" ||
					!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %s with Authorization %q: %d %q, want a 401 problem with a Bearer challenge", m, path, auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
			}
		}
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(methods, m) {
				continue
			}
			for _, who := range []string{"anna", "ivo", "hanna"} {
				if resp := send(m, path, "Bearer tok-"+who); resp.StatusCode != http.StatusMethodNotAllowed {
					t.Errorf("%s %s as %s: %d, want 405", m, path, who, resp.StatusCode)
				}
			}
		}
	}
	if after, _ := head(context.Background()); after != before {
		t.Fatalf("refused requests moved the log from %d to %d", before, after)
	}
	// A signaller's own view never shows the resident's personal data.
	mine := s.must(200, s.do("GET", "/v1/my/signals", "carla", nil), "my signals")
	for _, secret := range []string{"Route Persoon", secretDesc, "Dorpsstraat", "0612345678", "1941-03-12"} {
		if strings.Contains(string(mine.raw), secret) {
			t.Errorf("/v1/my/signals shows %q", secret)
		}
	}
}

// defaultCategories is the default list as a request body sends it.
func defaultCategories() []domain.Category { return domain.DefaultCategories() }
