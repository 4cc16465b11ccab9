package console

import (
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxFormBytes bounds what the console reads of a form post.
const maxFormBytes = 64 << 10

// origin is the scheme and host browsers use for the console: the
// configured public URL's, or (without one) the request's.
func (c *Console) origin(r *http.Request) (scheme, host string) {
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err == nil && u.Host != "" {
			return u.Scheme, u.Host
		}
	}
	scheme = "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme, r.Host
}

// sameOrigin refuses a cross-origin POST with net/http's
// CrossOriginProtection: the browser's Sec-Fetch-Site, or where it sent
// none, the Origin header against the console's origin (the public URL's
// host, not the Host header a load balancer may rewrite, which is why the
// check sees the request with the console's host). Where it falls back to
// Origin, net/http compares hosts alone; the scheme must match too. A POST
// with neither header (a non-browser client) is let through to the
// session's CSRF token, which every form still carries.
func (c *Console) sameOrigin(r *http.Request) bool {
	scheme, host := c.origin(r)
	seen := r.WithContext(r.Context()) // a shallow copy, with the console's host
	seen.Host = host
	if c.crossOrigin.Check(seen) != nil {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && r.Header.Get("Sec-Fetch-Site") == "" {
		u, err := url.Parse(o)
		return err == nil && u.Scheme == scheme && u.Host == host
	}
	return true
}

// secure reports whether cookies are Secure: always, except when the
// console's origin is plain HTTP on a loopback address (make run, tests).
func (c *Console) secure(r *http.Request) bool {
	scheme, host := c.origin(r)
	if scheme == "https" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return !(host == "localhost" || ip != nil && ip.IsLoopback())
}

// signInGuard limits sign-in attempts per client address: a token bucket,
// and a count of failed sign-ins that refuses the address once it reaches
// the maximum within the window. Each replica counts for itself (see the
// README: with N replicas behind a load balancer an address may try N
// times as often).
type signInGuard struct {
	every    rate.Limit
	burst    int
	maxFail  int
	window   time.Duration
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	fails    map[string][]time.Time
	swept    time.Time
}

func newSignInGuard(every rate.Limit, burst, maxFail int, window time.Duration) *signInGuard {
	return &signInGuard{every: every, burst: burst, maxFail: maxFail, window: window,
		limiters: map[string]*rate.Limiter{}, fails: map[string][]time.Time{}}
}

// allow reports whether addr may try to sign in now.
func (g *signInGuard) allow(addr string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweep(now)
	if len(g.recent(addr, now)) >= g.maxFail {
		return false
	}
	l := g.limiters[addr]
	if l == nil {
		l = rate.NewLimiter(g.every, g.burst)
		g.limiters[addr] = l
	}
	return l.AllowN(now, 1)
}

// failed counts a failed sign-in from addr.
func (g *signInGuard) failed(addr string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fails[addr] = append(g.recent(addr, now), now)
}

// recent are addr's failures within the window; the caller holds mu.
func (g *signInGuard) recent(addr string, now time.Time) []time.Time {
	f := g.fails[addr]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= g.window {
		i++
	}
	return f[i:]
}

// sweep forgets quiet addresses now and then; the caller holds mu.
func (g *signInGuard) sweep(now time.Time) {
	if now.Sub(g.swept) < time.Minute {
		return
	}
	g.swept = now
	for a, l := range g.limiters {
		if l.TokensAt(now) >= float64(g.burst) {
			delete(g.limiters, a)
		}
	}
	for a := range g.fails {
		if len(g.recent(a, now)) == 0 {
			delete(g.fails, a)
		}
	}
}
