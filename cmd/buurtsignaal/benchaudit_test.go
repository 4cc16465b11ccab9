package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

// drive sends GETs from 64 clients for d and reports req/s and p99.
func drive(t testing.TB, url, token string, d time.Duration) (rps float64, p99 time.Duration, errs int) {
	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < 64; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						bad++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad++
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	if len(lat) > 0 {
		p99 = lat[len(lat)*99/100]
	}
	return float64(len(lat)) / secs, p99, errs
}

// TestBenchAudit is `make bench-audit`: audited GET /v1/caseload (a page of
// 50 cases with personal data, one durable access record per request)
// against a no-op chi handler, both over loopback HTTP with 64 clients, in
// one run. It runs only with BUURTSIGNAAL_BENCH_AUDIT=1.
func TestBenchAudit(t *testing.T) {
	if os.Getenv("BUURTSIGNAAL_BENCH_AUDIT") != "1" {
		t.Skip("set BUURTSIGNAAL_BENCH_AUDIT=1 (make bench-audit)")
	}
	d := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil {
		d = v
	}
	r := chi.NewRouter()
	r.Get("/v1/noop", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[]}`))
	})
	noopSrv := httptest.NewServer(r)
	defer noopSrv.Close()
	noop, _, _ := drive(t, noopSrv.URL+"/v1/noop", "x", d)

	s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_LOG_LEVEL": "warn", "BUURTSIGNAAL_RATE_LIMIT": "0"}, nil)
	for i := 0; i < 200; i++ {
		id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody(fmt.Sprintf("Bewoner %d", i))), "raise").str("id")
		s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "gert", map[string]any{"team_id": "team-a"}), "handover")
		if i%2 == 0 {
			s.must(200, s.do("POST", "/v1/signals/"+id+"/accept", "anna", nil), "accept")
		}
	}
	audited, p99, errs := drive(t, s.base+"/v1/caseload?limit=50", "tok-anna", d)
	if errs > 0 {
		t.Errorf("%d failed requests", errs)
	}
	fmt.Printf("noop: %.0f req/s\naudited_caseload: %.0f req/s\nratio: %.2f\np99_ms: %.2f\n", noop, audited, audited/noop, float64(p99.Microseconds())/1000)
}
