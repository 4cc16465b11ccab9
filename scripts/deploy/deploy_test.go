package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	pemlib "encoding/pem"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// exported collects the metric names the server's code declares (string
// literals "buurtsignaal_..." in non-test Go files).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	lit := regexp.MustCompile(`"(buurtsignaal_[a-z0-9_]+)"`)
	for _, dir := range []string{"../../adapters", "../../cmd", "../../projections"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			for _, m := range lit.FindAllStringSubmatch(string(src), -1) {
				names[m[1]] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in the code: %v", len(names), names)
	}
	return names
}

var metricRef = regexp.MustCompile(`\b(buurtsignaal_[a-z0-9_]+)`)

// checkExpr fails for a metric in expr the server does not export
// (histogram series are name_bucket, name_count, name_sum).
func checkExpr(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.TrimSpace(expr) == "" {
		t.Errorf("%s: unbalanced or empty expression %q", where, expr)
	}
	for _, m := range metricRef.FindAllString(expr, -1) {
		base := m
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if names[strings.TrimSuffix(m, suf)] {
				base = strings.TrimSuffix(m, suf)
			}
		}
		if !names[base] {
			t.Errorf("%s: %s is not a metric the server exports", where, m)
		}
	}
}

func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatal(err)
	}
	names := exported(t)
	var alerts []string
	duration := regexp.MustCompile(`^[0-9]+[smhd]$`)
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || (r.For != "" && !duration.MatchString(r.For)) {
				t.Errorf("%s: rule %q has no name or a bad for: %q", g.Name, r.Alert, r.For)
			}
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
			checkExpr(t, r.Alert, r.Expr, names)
		}
	}
	// The list: unanswered acute signals, overdue growth, projection
	// lag, audit append failures, fsync latency, disk space.
	for _, want := range []string{"AcuteSignalUnanswered", "OverdueSignalsGrowing", "ProjectionLagging", "AuditWriteFailures", "DurableAppendSlow", "DataDiskAlmostFull"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 8 {
		t.Fatalf("dashboard %q (uid %q) has %d panels", d.Title, d.UID, len(d.Panels))
	}
	names := exported(t)
	used := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, p.Title, q.Expr, names)
			for _, m := range metricRef.FindAllString(q.Expr, -1) {
				used[m] = true
			}
		}
	}
	for _, want := range []string{"buurtsignaal_signals_overdue", "buurtsignaal_projection_lag_seconds", "buurtsignaal_audit_failures_total"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
		f := strings.Fields(l)
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		case "ADD":
			t.Errorf("ADD %s: use COPY (ADD fetches URLs and unpacks archives)", strings.Join(f[1:], " "))
		}
	}
	if len(froms) < 2 {
		t.Errorf("%d stages, want a multi-stage build", len(froms))
	}
	for _, img := range froms {
		name, _, _ := strings.Cut(img, "/")
		if img != "scratch" && (!strings.Contains(img, ":") || strings.HasSuffix(img, ":latest")) {
			t.Errorf("base image %s is not pinned to a tag", img)
		}
		if strings.Contains(name, ".") && strings.Contains(img, "/") {
			t.Errorf("base image %s names a registry host", img)
		}
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("the final stage must run as a non-root user, USER = %v", users)
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{"CGO_ENABLED=0", `VOLUME ["/data"]`, "BUURTSIGNAAL_DATA_DIR=/data", "ca-certificates.crt"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile("buurtsignaal.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	section := ""
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Errorf("not a key=value line: %q", l)
			}
			keys[section+"."+k] = v
		}
	}
	for k, want := range map[string]string{
		"Service.ExecStart": "/usr/local/bin/buurtsignaal serve", "Service.NoNewPrivileges": "yes",
		"Service.ProtectSystem": "strict", "Service.ProtectHome": "yes", "Service.PrivateTmp": "yes",
		"Service.PrivateDevices": "yes", "Service.DynamicUser": "yes", "Service.CapabilityBoundingSet": "",
		"Service.RestrictSUIDSGID": "yes", "Service.MemoryDenyWriteExecute": "yes", "Service.UMask": "0077",
		"Service.KillSignal": "SIGTERM", "Install.WantedBy": "multi-user.target",
	} {
		if got, ok := keys[k]; !ok || got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// haproxyConfig reads haproxy.cfg into its sections ("global", "defaults",
// "frontend buurtsignaal", ...), each a list of directive lines.
func haproxyConfig(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string][]string{}
	current := ""
	for i, l := range strings.Split(string(raw), "\n") {
		if c := strings.IndexByte(l, '#'); c >= 0 {
			l = l[:c]
		}
		if strings.TrimSpace(l) == "" {
			continue
		}
		indented := l[0] == ' ' || l[0] == '\t'
		l = strings.Join(strings.Fields(l), " ")
		if !indented {
			head := strings.Fields(l)[0]
			if !slices.Contains([]string{"global", "defaults", "frontend", "backend"}, head) {
				t.Errorf("haproxy.cfg line %d: %q is not a section this kit uses", i+1, l)
			}
			current = l
			sections[current] = nil
			continue
		}
		if current == "" {
			t.Errorf("haproxy.cfg line %d: a directive outside any section", i+1)
		}
		sections[current] = append(sections[current], l)
	}
	return sections
}

// TestHAProxyConfig checks the load balancer of the three-replica example:
// round robin over three replicas with a readiness check on /readyz,
// retries only on connection failures, TLS on the front, and /metrics kept
// inside. Where haproxy is installed it also checks the file itself.
func TestHAProxyConfig(t *testing.T) {
	cfg := haproxyConfig(t)
	has := func(section string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !slices.Contains(cfg[section], w) {
				t.Errorf("%s lacks %q (has %q)", section, w, cfg[section])
			}
		}
	}
	has("defaults", "mode http", "option forwardfor", "retries 2", "option redispatch", "retry-on conn-failure empty-response")
	has("backend replicas", "balance roundrobin", "option httpchk GET /readyz", "http-check expect status 200")
	servers := 0
	for _, l := range cfg["backend replicas"] {
		if strings.HasPrefix(l, "server ") {
			servers++
		}
		if strings.Contains(l, "cookie") || strings.Contains(l, "stick") {
			t.Errorf("backend replicas: %q: the replicas are stateless, no stickiness", l)
		}
	}
	if servers != 3 {
		t.Errorf("backend replicas has %d servers, want 3", servers)
	}
	front := cfg["frontend buurtsignaal"]
	if !slices.ContainsFunc(front, func(l string) bool { return strings.HasPrefix(l, "bind :443 ssl ") }) {
		t.Error("the front does not end TLS on 443")
	}
	has("frontend buurtsignaal", "http-request deny if { path_beg /metrics /debug/ }", "default_backend replicas")
	for _, l := range cfg["defaults"] {
		if strings.HasPrefix(l, "retry-on") && (strings.Contains(l, "all-retryable-errors") || strings.Contains(l, "response-timeout") || strings.Contains(l, "5")) {
			t.Errorf("%q would send a request that reached a replica again", l)
		}
	}
	// HAProxy itself checks the file, with a certificate of the test's own
	// in place of the production one. make test installs Debian's haproxy
	// where it can; where it could not, it says so at the end.
	path, err := exec.LookPath("haproxy")
	if err != nil {
		if why := os.Getenv("BUURTSIGNAAL_SKIP_HAPROXY"); why != "" {
			t.Skip(why)
		}
		t.Fatal("haproxy is not installed: make test installs Debian's package haproxy where it can; or set BUURTSIGNAAL_SKIP_HAPROXY to a reason")
	}
	dir := t.TempDir()
	pem := filepath.Join(dir, "test.pem")
	if err := os.WriteFile(pem, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("haproxy.cfg")
	copied := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(copied, []byte(strings.ReplaceAll(string(raw), "/etc/haproxy/certs/buurtsignaal.pem", pem)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, "-c", "-f", copied).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c: %v\n%s", err, out)
	}
}

// selfSignedPEM is a certificate and its key for localhost, in one PEM.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pemlib.EncodeToMemory(&pemlib.Block{Type: "CERTIFICATE", Bytes: der}), pemlib.EncodeToMemory(&pemlib.Block{Type: "EC PRIVATE KEY", Bytes: kd})...)
}
