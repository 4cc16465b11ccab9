package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/adapters/auth"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb/kurrenttest"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// testPrincipals are the callers of the end-to-end tests; the token of each
// is "tok-" + id.
var testPrincipals = []struct {
	id, role, team, org string
}{
	{"anna", "professional", "team-a", "gemeente"},
	{"bob", "professional", "team-b", "gemeente"},
	{"carla", "buurtsteun", "", "buurtsteun"},
	{"dirk", "buurtsteun", "", "buurtsteun"},
	{"eva", "partner", "", "school-x"},
	{"femke", "partner", "", "housing-y"},
	{"gert", "coordinator", "", "gemeente"},
	{"hanna", "privacy_officer", "", "gemeente"},
	{"ivo", "admin", "", "gemeente"},
}

// otherNetworkPrincipals are in the network "west" (the others in the
// server's default network); the token of each is "tok-" + id.
var otherNetworkPrincipals = []struct {
	id, role, team, org string
}{
	{"wim", "professional", "team-w", "gemeente-west"},
	{"wanda", "privacy_officer", "", "gemeente-west"},
	{"walter", "coordinator", "", "gemeente-west"},
}

// server is a running buurtsignaal serve on a loopback port.
type server struct {
	t       testing.TB
	base    string
	dataDir string
	stderr  *syncBuffer
	stop    func()
	log     eventlog.Store // the server's event log, to read what answers do not show
	// client sends do's requests: through Prism's validating proxy under
	// make test-api (startPrism), else straight to the server.
	client *http.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeTokens(t testing.TB, dir string) string {
	t.Helper()
	var entries []auth.TokenEntry
	for _, p := range testPrincipals {
		entries = append(entries, auth.NewTokenEntry("tok-"+p.id, p.id, "Test "+p.id, p.role, p.team, p.org))
	}
	// A second network, to show that one network never sees another's data.
	for _, p := range otherNetworkPrincipals {
		e := auth.NewTokenEntry("tok-"+p.id, p.id, "Test "+p.id, p.role, p.team, p.org)
		e.Network = "west"
		entries = append(entries, e)
	}
	data, err := auth.EncodeTokens(entries)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startServer boots the real binary's serve on :0 with a temporary embedded
// store, and stops it (checking a clean shutdown) at the end of the test.
func startServer(t testing.TB, dataDir string, extraEnv map[string]string) *server {
	t.Helper()
	return startServerWith(t, dataDir, extraEnv, nil)
}

// startServerWith is startServer with an injected clock (nil: real time).
func startServerWith(t testing.TB, dataDir string, extraEnv map[string]string, now func() time.Time) *server {
	t.Helper()
	return startServerHooks(t, dataDir, extraEnv, hooks{now: now})
}

// startServerHooks is startServer with test hooks.
func startServerHooks(t testing.TB, dataDir string, extraEnv map[string]string, h hooks) *server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	tokens := writeTokens(t, t.TempDir())
	env := map[string]string{
		"BUURTSIGNAAL_DATA_DIR": dataDir, "BUURTSIGNAAL_ADDR": "127.0.0.1:0", "BUURTSIGNAAL_TOKENS_FILE": tokens,
		"BUURTSIGNAAL_REPLICA": "test", "BUURTSIGNAAL_LOG_LEVEL": "debug",
		"BUURTSIGNAAL_RATE_LIMIT": "0", // tests that need the limit set it
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	h.ready = ready
	var log eventlog.Store
	h.log = func(l eventlog.Store) { log = l }
	errc := make(chan error, 1)
	stderr := &syncBuffer{}
	go func() {
		errc <- serve(ctx, nil, io.Discard, stderr, func(k string) string { return env[k] }, h)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start")
	}
	s := &server{t: t, base: "http://" + addr, dataDir: dataDir, stderr: stderr, log: log, client: http.DefaultClient}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("serve returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("server did not stop")
			}
		})
	}
	t.Cleanup(s.stop)
	startPrism(t, s)
	return s
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (a answer) str(key string) string {
	v, _ := a.body[key].(string)
	return v
}

func (a answer) num(key string) int {
	v, _ := a.body[key].(float64)
	return int(v)
}

func (s *server) do(method, path, who string, body any, headers ...string) answer {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if who != "" {
		req.Header.Set("Authorization", "Bearer tok-"+who)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// subjectOf reads the subject of a signal from the log: volunteers and
// partners are not told it, so tests that raise as them look it up here.
func (s *server) subjectOf(signal string) string {
	s.t.Helper()
	recs, err := s.log.ReadStream(context.Background(), "signal-"+signal, eventlog.Forwards, 0, 1)
	if err != nil || len(recs) != 1 {
		s.t.Fatalf("read signal %s: %v", signal, err)
	}
	var raised struct {
		SubjectID string `json:"subject_id"`
	}
	if err := json.Unmarshal(recs[0].Data, &raised); err != nil || raised.SubjectID == "" {
		s.t.Fatalf("signal %s: no subject in %s", signal, recs[0].Data)
	}
	return raised.SubjectID
}

// must checks the status and, for errors, the problem+json shape.
func (s *server) must(want int, a answer, what string) answer {
	s.t.Helper()
	if a.status != want {
		s.t.Fatalf("%s: status %d, want %d: %s", what, a.status, want, a.raw)
	}
	if want >= 400 {
		if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
			s.t.Fatalf("%s: content type %q, want application/problem+json", what, ct)
		}
		if a.num("status") != want || a.str("title") == "" {
			s.t.Fatalf("%s: not a problem document: %s", what, a.raw)
		}
	}
	return a
}

const (
	secretName = "Johanna Testpersoon-Geheim"
	secretDesc = "Mevrouw eet slecht en zit alleen, unieke-beschrijving-7731"
	secretNote = "huisbezoek-notitie-unieke-tekst-4410"
)

func raiseBody(name string) map[string]any {
	return map[string]any{
		"subject":       map[string]any{"name": name, "birth_date": "1941-03-12", "address": "Dorpsstraat 7", "phone": "0612345678"},
		"neighbourhood": "centrum", "categories": []string{"loneliness", "malnutrition"}, "urgency": "high",
		"description": secretDesc, "consent": "informed",
	}
}

func TestLifecycleEndToEnd(t *testing.T) {
	walkLifecycle(t, startServer(t, "", nil))
}

// TestLifecycleEndToEndOnKurrentDB walks the same lifecycle with the server
// on the KurrentDB adapter, against the in-repo protocol test server.
func TestLifecycleEndToEndOnKurrentDB(t *testing.T) {
	srv := kurrenttest.Start(t)
	walkLifecycle(t, startServer(t, "", map[string]string{"BUURTSIGNAAL_STORE": srv.URL()}))
}

// walkLifecycle takes a signal from raised to closed through the API, with
// every invalid step, wrong role, wrong team, stale If-Match and repeated
// Idempotency-Key on the way.
func walkLifecycle(t *testing.T, s *server) {
	s.must(201, s.do("POST", "/v1/organisations", "ivo", map[string]any{"id": "school-x", "name": "School X", "kind": "school",
		"services": []map[string]any{{"name": "Maatschappelijk werk"}}}), "register organisation")
	s.must(403, s.do("POST", "/v1/organisations", "anna", map[string]any{"id": "x", "name": "X", "kind": "school"}), "non-admin registers organisation")

	raised := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(secretName)), "raise")
	id := raised.str("id")
	if raised.str("status") != "raised" || raised.num("version") != 1 || s.subjectOf(raised.str("id")) == "" {
		t.Fatalf("raise answer: %s", raised.raw)
	}
	if got := raised.header.Get("ETag"); got != `"1"` {
		t.Fatalf("ETag %q", got)
	}
	sig := "/v1/signals/" + id

	s.must(422, s.do("POST", sig+"/handover", "carla", map[string]any{"team_id": "no-such-team"}), "unknown team")
	s.must(403, s.do("POST", sig+"/handover", "dirk", map[string]any{"team_id": "team-a"}), "other buurtsteun hands over")
	h := s.must(200, s.do("POST", sig+"/handover", "carla", map[string]any{"team_id": "team-a", "note": secretNote}), "handover")
	if h.str("status") != "handed_over" || h.num("version") != 2 {
		t.Fatalf("handover answer: %s", h.raw)
	}
	s.must(409, s.do("POST", sig+"/withdraw", "carla", map[string]any{"reason": "toch niet"}), "withdraw after handover")
	s.must(403, s.do("POST", sig+"/accept", "bob", nil), "other team accepts")
	s.must(403, s.do("POST", sig+"/accept", "carla", nil), "buurtsteun accepts")
	s.must(409, s.do("POST", sig+"/accept", "anna", nil, "If-Match", `"1"`), "stale If-Match")
	acc := s.must(200, s.do("POST", sig+"/accept", "anna", nil, "If-Match", `"2"`, "Idempotency-Key", "acc-1"), "accept")
	if acc.str("status") != "in_care" || acc.num("version") != 3 {
		t.Fatalf("accept answer: %s", acc.raw)
	}
	again := s.must(200, s.do("POST", sig+"/accept", "anna", nil, "If-Match", `"2"`, "Idempotency-Key", "acc-1"), "repeated accept")
	if diff := cmp.Diff(acc.body, again.body); diff != "" {
		t.Fatalf("idempotent replay differs (-first +again):\n%s", diff)
	}
	s.must(409, s.do("POST", sig+"/accept", "anna", nil), "accept twice without key")

	s.must(200, s.do("POST", sig+"/assign", "anna", map[string]any{"professional_id": "anna"}), "assign")
	s.must(422, s.do("POST", sig+"/follow-ups", "anna", map[string]any{"kind": "visit", "outcome": "reached"}), "bad follow-up kind")
	s.must(400, s.do("POST", sig+"/follow-ups", "anna", map[string]any{"kind": "home_visit", "outcome": "reached", "extra": 1}), "unknown field")
	s.must(400, s.do("POST", sig+"/follow-ups", "anna", `{"kind": "home_visit",`), "broken JSON")
	s.must(200, s.do("POST", sig+"/follow-ups", "anna", map[string]any{"kind": "home_visit", "outcome": "reached", "note": secretNote, "next_due": "2030-01-02"}), "follow-up")
	s.must(422, s.do("POST", sig+"/referrals", "anna", map[string]any{"organisation_id": "unknown-org", "reason": "x"}), "referral to unknown organisation")
	ref := s.must(201, s.do("POST", sig+"/referrals", "anna", map[string]any{"organisation_id": "school-x", "service": "Maatschappelijk werk", "reason": secretNote}), "referral")
	refID := ref.str("referral_id")
	if refID == "" {
		t.Fatalf("referral answer: %s", ref.raw)
	}
	s.must(403, s.do("POST", "/v1/referrals/"+refID+"/accept", "femke", nil), "other organisation answers referral")
	s.must(409, s.do("POST", "/v1/referrals/"+refID+"/complete", "eva", nil), "complete before accept")
	s.must(200, s.do("POST", "/v1/referrals/"+refID+"/accept", "eva", map[string]any{"note": "we nemen contact op"}), "partner accepts referral")
	s.must(409, s.do("POST", "/v1/referrals/"+refID+"/accept", "eva", nil), "accept referral twice")
	s.must(200, s.do("POST", "/v1/referrals/"+refID+"/complete", "eva", nil), "partner completes referral")
	s.must(404, s.do("POST", "/v1/referrals/00000000-0000-0000-0000-000000000001/accept", "eva", nil), "unknown referral")
	s.must(200, s.do("POST", sig+"/feedback", "anna", map[string]any{"code": "in_progress"}), "feedback")
	closed := s.must(200, s.do("POST", sig+"/close", "anna", map[string]any{"outcome": "resolved"}), "close")
	if closed.str("status") != "closed" {
		t.Fatalf("close answer: %s", closed.raw)
	}
	s.must(409, s.do("POST", sig+"/follow-ups", "anna", map[string]any{"kind": "phone_call", "outcome": "reached"}), "follow-up on closed case")
	s.must(200, s.do("POST", sig+"/reopen", "anna", map[string]any{"reason": "nieuwe zorgen"}), "reopen")
	last := s.must(200, s.do("POST", sig+"/close", "anna", map[string]any{"outcome": "referred"}), "close again")

	pos := fmt.Sprint(last.num("position"))
	got := s.must(200, s.do("GET", sig+"?min_position="+pos, "anna", nil), "read case")
	if got.str("status") != "closed" || got.header.Get("ETag") != fmt.Sprintf(`"%d"`, last.num("version")) {
		t.Fatalf("case: %s", got.raw)
	}
	subject, _ := got.body["subject"].(map[string]any)
	if subject["name"] != secretName || got.str("description") != secretDesc {
		t.Fatalf("case does not show the decrypted personal data to its team: %s", got.raw)
	}
	s.must(403, s.do("GET", sig, "bob", nil), "other team reads case")
	bg := s.must(200, s.do("GET", sig, "bob", nil, "X-Break-Glass-Reason", "waarneming tijdens vakantie"), "break-glass read")
	if bg.str("id") != id {
		t.Fatalf("break-glass: %s", bg.raw)
	}
	s.must(403, s.do("GET", sig, "gert", nil), "coordinator reads case")
	hist := s.must(200, s.do("GET", sig+"/history", "anna", nil), "history")
	events, _ := hist.body["events"].([]any)
	if len(events) != last.num("version") {
		t.Fatalf("history has %d events, want %d", len(events), last.num("version"))
	}
	mine := s.must(200, s.do("GET", "/v1/my/signals?min_position="+pos, "carla", nil, "Accept-Language", "en"), "my signals")
	if !strings.Contains(string(mine.raw), "The basisteam is working on your signal.") || strings.Contains(string(mine.raw), secretName) {
		t.Fatalf("my signals: %s", mine.raw)
	}
	s.must(403, s.do("GET", "/v1/monitor/response", "anna", nil), "professional monitors")
	mon := s.must(200, s.do("GET", "/v1/monitor/response?min_position="+pos, "gert", nil), "monitor")
	// One signal: below k (5), so suppressed, never shown as 0.
	if v, ok := mon.body["total"]; !ok || v != nil || mon.body["suppressed"] != true || mon.num("suppress_k") != 5 {
		t.Fatalf("monitor: %s", mon.raw)
	}
	s.must(401, s.do("GET", "/v1/caseload", "", nil), "no token")
	s.must(401, s.do("GET", "/v1/caseload", "nobody", nil), "unknown token")

	s.stop()
	assertNoPlaintext(t, s.dataDir, secretName, secretDesc, secretNote, "Dorpsstraat 7", "0612345678")
	for _, secret := range []string{secretName, secretDesc, secretNote} {
		if strings.Contains(s.stderr.String(), secret) {
			t.Fatalf("the log holds personal data")
		}
	}
}

// assertNoPlaintext reads every byte under dir and fails if any secret is
// there. The read models' directory must be among what it read.
func assertNoPlaintext(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	files, readModels := 0, 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if rel, _ := filepath.Rel(dir, path); strings.HasPrefix(rel, "readmodels"+string(filepath.Separator)) {
			readModels++
		}
		for i, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("secret %d found in clear in %s", i, filepath.Base(path))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 || readModels == 0 {
		t.Fatalf("%d files under the data directory, %d of the read models", files, readModels)
	}
}

// TestRateLimit: a principal over its limit gets 429 problem+json with
// Retry-After; another principal is not affected.
func TestRateLimit(t *testing.T) {
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_RATE_LIMIT": "1", "BUURTSIGNAAL_RATE_BURST": "3"}, nil)
	for i := 0; i < 3; i++ {
		s.must(200, s.do("GET", "/v1/my/signals", "carla", nil), "within the burst")
	}
	a := s.must(429, s.do("GET", "/v1/my/signals", "carla", nil), "over the limit")
	if a.header.Get("Retry-After") != "1" || a.header.Get("Content-Type") != "application/problem+json" || a.str("code") != "rate_limited" {
		t.Fatalf("429: headers %v body %s", a.header, a.raw)
	}
	s.must(200, s.do("GET", "/v1/my/signals", "dirk", nil), "another principal")
}

// TestSlowClientsAreCutOff: a client that never finishes its headers is
// disconnected after the read-header timeout.
func TestSlowClientsAreCutOff(t *testing.T) {
	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_READ_HEADER_TIMEOUT": "200ms"}, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil { // no blank line: headers never end
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the server kept the slow connection open: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %v, want about 200ms", d)
	}
}
