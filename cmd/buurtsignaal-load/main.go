// Command buurtsignaal-load drives a Buurtsignaal server over HTTP with a
// realistic mix of work for a fixed duration and concurrency, and prints per
// operation: count, errors, req/s, p50, p99, p99.9 (HDR-style histogram), and
// a summary line.
//
// By default it starts the server itself (-bin, a built buurtsignaal binary)
// on a loopback port with a temporary data directory and its own tokens file,
// so it creates its own principals and data. With -url it drives a server
// that is already running; that server must have been started with the tokens
// file written by -write-tokens. Only loopback addresses are accepted.
//
//	buurtsignaal-load -bin bin/buurtsignaal -duration 10s -concurrency 64 -mix full
//	buurtsignaal-load -mix raise       # raise-signal commands only
//	buurtsignaal-load -mix caseload    # audited caseload reads only
//	buurtsignaal-load -replicas 3      # three servers on one KurrentDB (the in-repo
//	                                   # protocol server, or -store), clients spread
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/auth"
)

type options struct {
	bin, url, mix, writeTokens, pprofAddr string
	duration                              time.Duration
	concurrency, maxRequests, crashRounds int
	seed                                  uint64
	replicas                              int
	store                                 string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/buurtsignaal", "buurtsignaal binary to start (ignored with -url)")
	flag.StringVar(&o.url, "url", "", "base URL of a running server on loopback (started with -write-tokens' file)")
	flag.StringVar(&o.writeTokens, "write-tokens", "", "write the load principals' tokens file here and exit")
	flag.StringVar(&o.mix, "mix", "full", "full, raise, caseload or detail")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to drive load (bounded at 10m)")
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent clients")
	flag.IntVar(&o.maxRequests, "max-requests", 5_000_000, "stop after this many requests")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed")
	flag.IntVar(&o.crashRounds, "crash-rounds", 0, "instead of a load run: the server crash test, this many SIGKILLs (needs -bin)")
	flag.StringVar(&o.pprofAddr, "pprof-addr", "", "loopback address for the started server's profiler (see serve --pprof-addr)")
	flag.IntVar(&o.replicas, "replicas", 0, "start this many servers (-bin) on one KurrentDB and spread the clients over them")
	flag.StringVar(&o.store, "store", "", "with -replicas: the KurrentDB connection string (default: the in-repo protocol server, in this process)")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "buurtsignaal-load:", err)
		os.Exit(1)
	}
}

// principals of the load run; each token is "load-" + id.
var principals = []struct{ id, role, team, org string }{
	{"vol1", "buurtsteun", "", "buurtsteun"}, {"vol2", "buurtsteun", "", "buurtsteun"},
	{"par1", "partner", "", "load-school"}, {"pro1", "professional", "team-1", "gemeente"},
	{"pro2", "professional", "team-1", "gemeente"}, {"pro3", "professional", "team-2", "gemeente"},
	{"coo1", "coordinator", "", "gemeente"}, {"pri1", "privacy_officer", "", "gemeente"}, {"adm1", "admin", "", "gemeente"},
}

func tokensFile() ([]byte, error) {
	var entries []auth.TokenEntry
	for _, p := range principals {
		entries = append(entries, auth.NewTokenEntry("load-"+p.id, p.id, "Load "+p.id, p.role, p.team, p.org))
	}
	return auth.EncodeTokens(entries)
}

func run(ctx context.Context, o options, out io.Writer) error {
	tokens, err := tokensFile()
	if err != nil {
		return err
	}
	if o.writeTokens != "" {
		return os.WriteFile(o.writeTokens, tokens, 0o600)
	}
	o.duration = min(o.duration, 10*time.Minute)
	if o.crashRounds > 0 {
		return crashTest(ctx, o, tokens, out)
	}
	base, more := o.url, []string(nil)
	if o.replicas > 0 {
		d, err := startDeployment(ctx, o.bin, o.replicas, o.store, tokens)
		if err != nil {
			return err
		}
		defer d.stop()
		bases := d.bases()
		base, more = bases[0], bases[1:]
	}
	if base == "" {
		var stop func()
		base, stop, err = startServer(ctx, o.bin, o.pprofAddr, tokens)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := loopbackOnly(base); err != nil {
		return err
	}
	d := newDriver(base, o, more...)
	if err := d.setup(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	d.drive(ctx)
	d.report(out)
	return nil
}

func loopbackOnly(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("refusing to load %s: not a loopback address", u.Hostname())
		}
	}
	return nil
}

// startServer starts the binary on a free loopback port with a temp data dir.
func startServer(ctx context.Context, bin, pprofAddr string, tokens []byte) (string, func(), error) {
	dir, err := os.MkdirTemp("", "buurtsignaal-load-")
	if err != nil {
		return "", nil, err
	}
	base, cmd, err := startServerIn(ctx, bin, dir, pprofAddr, tokens)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(dir)
	}
	return base, stop, nil
}

// startServerIn starts the binary on a free loopback port with its data in
// dir/data and the tokens in dir, and waits until it is ready.
func startServerIn(ctx context.Context, bin, dir, pprofAddr string, tokens []byte) (string, *exec.Cmd, error) {
	tokPath := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokPath, tokens, 0o600); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--tokens-file", tokPath,
		"--replica", "load", "--log-level", "warn", "--retention-interval", "0", "--rate-limit", "0", "--pprof-addr", pprofAddr)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", bin, err)
	}
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, cmd, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return "", nil, errors.New("server did not become ready")
}

type opStats struct {
	hist   histogram
	count  uint64
	errors uint64
}

type driver struct {
	base   string
	o      options
	client *http.Client
	lb     *balancer

	mu     sync.Mutex
	raised []string // raised, not handed over
	handed []string // handed over to team-1
	inCare []string // in care of team-1
	acked  []string // every raise the server acknowledged

	workers [][]*namedStats // per worker, per operation; merged in report
	elapsed time.Duration
	total   atomic.Uint64
}

type namedStats struct {
	name string
	s    opStats
}

// newDriver drives the server at base, or the replicas at bases spread
// round robin (see balancer).
func newDriver(base string, o options, more ...string) *driver {
	tr := &http.Transport{MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency * 2, IdleConnTimeout: 30 * time.Second}
	return &driver{base: base, o: o, client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		lb: newBalancer(append([]string{base}, more...))}
}

func (d *driver) call(ctx context.Context, method, path, who string, body any, headers ...string) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := d.lb.do(ctx, func(base string) (*http.Response, error) {
		if seeker, ok := rd.(io.Seeker); ok {
			_, _ = seeker.Seek(0, io.SeekStart)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer load-"+who)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return d.client.Do(req)
	})
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, nil
}

func (d *driver) setup(ctx context.Context) error {
	st, _, err := d.call(ctx, "POST", "/v1/organisations", "adm1", map[string]any{"id": "load-school", "name": "Load School", "kind": "school"})
	if err != nil || (st != 201 && st != 409) {
		return fmt.Errorf("register organisation: %d %v", st, err)
	}
	// A starting caseload, so reads have something to read.
	for i := 0; i < 200; i++ {
		id, _, err := d.raise(ctx, rand.New(rand.NewPCG(uint64(i), 9)))
		if err != nil {
			return err
		}
		if st, _, err := d.call(ctx, "POST", "/v1/signals/"+id+"/handover", "coo1", map[string]any{"team_id": "team-1"}); err != nil || st != 200 {
			return fmt.Errorf("handover: %d %v", st, err)
		}
		if st, _, err := d.call(ctx, "POST", "/v1/signals/"+id+"/accept", "pro1", nil); err != nil || st != 200 {
			return fmt.Errorf("accept: %d %v", st, err)
		}
		d.inCare = append(d.inCare, id)
	}
	return nil
}

var (
	firstNames = []string{"Johanna", "Kees", "Sem", "Willem", "Anouk", "Fatima", "Mohamed", "Lotte", "Daan", "Emma"}
	lastNames  = []string{"de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos"}
	hoods      = []string{"centrum", "noord", "oost", "zuid", "west"}
	cats       = []string{"loneliness", "malnutrition", "bullying", "debt", "safety", "health", "housing", "other"}
)

// raise raises a signal about a made-up resident and returns its id and the
// resident's name.
func (d *driver) raise(ctx context.Context, rng *rand.Rand) (id, name string, err error) {
	who := []string{"vol1", "vol2", "par1"}[rng.IntN(3)]
	name = fmt.Sprintf("%s %s %d", firstNames[rng.IntN(10)], lastNames[rng.IntN(10)], rng.IntN(1_000_000))
	body := map[string]any{
		"subject": map[string]any{"name": name,
			"birth_date": fmt.Sprintf("19%02d-%02d-%02d", 30+rng.IntN(70), 1+rng.IntN(12), 1+rng.IntN(28))},
		"neighbourhood": hoods[rng.IntN(len(hoods))], "categories": []string{cats[rng.IntN(len(cats))]},
		"urgency": []string{"normal", "normal", "high", "acute"}[rng.IntN(4)], "consent": "informed",
		"description": "Buurtbewoner maakt zich zorgen; al enige weken geen contact meer gehad met deze bewoner en de post stapelt zich op.",
	}
	st, m, err := d.call(ctx, "POST", "/v1/signals", who, body)
	if err != nil {
		return "", "", err
	}
	if st != 201 {
		return "", "", fmt.Errorf("raise: status %d", st)
	}
	id, _ = m["id"].(string)
	return id, name, nil
}

func (d *driver) take(list *[]string, rng *rand.Rand) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(*list) == 0 {
		return "", false
	}
	i := rng.IntN(len(*list))
	id := (*list)[i]
	(*list)[i] = (*list)[len(*list)-1]
	*list = (*list)[:len(*list)-1]
	return id, true
}

func (d *driver) put(list *[]string, id string) {
	d.mu.Lock()
	*list = append(*list, id)
	d.mu.Unlock()
}

func (d *driver) peek(list *[]string, rng *rand.Rand) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(*list) == 0 {
		return "", false
	}
	return (*list)[rng.IntN(len(*list))], true
}

type op struct {
	name   string
	weight int
	do     func(ctx context.Context, rng *rand.Rand) (ok bool, skipped bool)
}

func (d *driver) ops() []op {
	expect := func(want int) func(int, map[string]any, error) bool {
		return func(st int, _ map[string]any, err error) bool { return err == nil && st == want }
	}
	ok200 := expect(200)
	all := []op{
		{"raise", 20, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			id, _, err := d.raise(ctx, rng)
			if err == nil {
				d.put(&d.raised, id)
				d.put(&d.acked, id)
			}
			return err == nil, false
		}},
		{"handover", 10, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			id, ok := d.take(&d.raised, rng)
			if !ok {
				return false, true
			}
			good := ok200(d.call(ctx, "POST", "/v1/signals/"+id+"/handover", "coo1", map[string]any{"team_id": "team-1"}))
			if good {
				d.put(&d.handed, id)
			}
			return good, false
		}},
		{"accept", 10, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			id, ok := d.take(&d.handed, rng)
			if !ok {
				return false, true
			}
			good := ok200(d.call(ctx, "POST", "/v1/signals/"+id+"/accept", "pro1", nil))
			if good {
				d.put(&d.inCare, id)
			}
			return good, false
		}},
		{"follow_up", 10, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			id, ok := d.peek(&d.inCare, rng)
			if !ok {
				return false, true
			}
			st, _, err := d.call(ctx, "POST", "/v1/signals/"+id+"/follow-ups", "pro2", map[string]any{"kind": "phone_call", "outcome": "reached", "note": "Gebeld, afspraak gemaakt voor huisbezoek."})
			return err == nil && (st == 200 || st == 409), false
		}},
		{"referral", 5, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			id, ok := d.peek(&d.inCare, rng)
			if !ok {
				return false, true
			}
			st, _, err := d.call(ctx, "POST", "/v1/signals/"+id+"/referrals", "pro1", map[string]any{"organisation_id": "load-school", "reason": "Doorverwijzing voor ondersteuning."})
			return err == nil && (st == 201 || st == 409), false
		}},
		{"close", 4, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			id, ok := d.take(&d.inCare, rng)
			if !ok {
				return false, true
			}
			return ok200(d.call(ctx, "POST", "/v1/signals/"+id+"/close", "pro1", map[string]any{"outcome": "resolved"})), false
		}},
		{"caseload", 20, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			return ok200(d.call(ctx, "GET", "/v1/caseload?limit=50", []string{"pro1", "pro2"}[rng.IntN(2)], nil)), false
		}},
		{"case_detail", 15, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			id, ok := d.peek(&d.inCare, rng)
			if !ok {
				return false, true
			}
			st, _, err := d.call(ctx, "GET", "/v1/signals/"+id, "pro1", nil)
			return err == nil && (st == 200 || st == 404), false
		}},
		{"monitor", 3, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			return ok200(d.call(ctx, "GET", "/v1/monitor/response", "coo1", nil)), false
		}},
		{"audit", 2, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			return ok200(d.call(ctx, "GET", "/v1/audit/actors/pro1?limit=20", "pri1", nil)), false
		}},
		{"audit_flags", 1, func(ctx context.Context, rng *rand.Rand) (bool, bool) {
			return ok200(d.call(ctx, "GET", "/v1/audit/flags?limit=50", "pri1", nil)), false
		}},
	}
	switch d.o.mix {
	case "raise":
		return all[:1]
	case "caseload":
		return []op{all[6]}
	case "detail":
		return []op{all[7]}
	}
	return all
}

func (d *driver) drive(ctx context.Context) {
	ops := d.ops()
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	ctx, cancel := context.WithTimeout(ctx, d.o.duration)
	defer cancel()
	d.workers = make([][]*namedStats, d.o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < d.o.concurrency; w++ {
		stats := make([]*namedStats, len(ops))
		for i, o := range ops {
			stats[i] = &namedStats{name: o.name}
		}
		d.workers[w] = stats
		wg.Add(1)
		go func(rng *rand.Rand, stats []*namedStats) {
			defer wg.Done()
			for ctx.Err() == nil && d.total.Add(1) <= uint64(d.o.maxRequests) {
				n := rng.IntN(total)
				i := 0
				for n >= ops[i].weight {
					n -= ops[i].weight
					i++
				}
				t0 := time.Now()
				ok, skipped := ops[i].do(ctx, rng)
				if skipped {
					continue
				}
				if ctx.Err() != nil && !ok {
					return // cut off by the end of the run
				}
				st := &stats[i].s
				st.count++
				st.hist.record(time.Since(t0))
				if !ok {
					st.errors++
				}
			}
		}(rand.New(rand.NewPCG(d.o.seed, uint64(w))), stats)
	}
	wg.Wait()
	d.elapsed = time.Since(start)
}

func ms(t time.Duration) float64 { return float64(t.Microseconds()) / 1000 }

func (d *driver) report(out io.Writer) {
	merged := map[string]*opStats{}
	var names []string
	for _, ws := range d.workers {
		for _, s := range ws {
			m := merged[s.name]
			if m == nil {
				m = &opStats{}
				merged[s.name] = m
				names = append(names, s.name)
			}
			m.count += s.s.count
			m.errors += s.s.errors
			m.hist.merge(&s.s.hist)
		}
	}
	order := []string{"raise", "handover", "accept", "follow_up", "referral", "close", "caseload", "case_detail", "monitor", "audit", "audit_flags"}
	sort.SliceStable(names, func(i, j int) bool { return slices.Index(order, names[i]) < slices.Index(order, names[j]) })
	secs := d.elapsed.Seconds()
	fmt.Fprintf(out, "%-12s %9s %7s %10s %9s %9s %9s\n", "operation", "count", "errors", "req/s", "p50_ms", "p99_ms", "p99.9_ms")
	var all opStats
	for _, n := range names {
		m := merged[n]
		all.count += m.count
		all.errors += m.errors
		all.hist.merge(&m.hist)
		fmt.Fprintf(out, "%-12s %9d %7d %10.0f %9.2f %9.2f %9.2f\n", n, m.count, m.errors, float64(m.count)/secs,
			ms(m.hist.quantile(0.5)), ms(m.hist.quantile(0.99)), ms(m.hist.quantile(0.999)))
	}
	if len(d.lb.bases) > 1 {
		fmt.Fprintf(out, "replicas: %d (requests refused by one and sent to another: %d)\n", len(d.lb.bases), d.lb.switched.Load())
	}
	fmt.Fprintf(out, "summary: mix=%s concurrency=%d duration=%.1fs requests=%d errors=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f p99.9_ms=%.2f\n",
		d.o.mix, d.o.concurrency, secs, all.count, all.errors, float64(all.count)/secs,
		ms(all.hist.quantile(0.5)), ms(all.hist.quantile(0.99)), ms(all.hist.quantile(0.999)))
}
