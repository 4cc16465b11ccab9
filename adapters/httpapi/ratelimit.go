package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// limiter is a token bucket per principal (golang.org/x/time/rate): each
// principal may make rate requests a second on average and burst at once.
// Limiters of principals that have been idle long enough to be full again
// are dropped at the next sweep, so memory follows the active principals.
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu        sync.Mutex
	limiters  map[string]*rate.Limiter
	lastSweep time.Time
}

func newLimiter(r float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate.Limit(r), burst: max(burst, 1), now: now, limiters: map[string]*rate.Limiter{}}
}

// allow takes a token of key's bucket; when there is none it returns false
// and how long until there is one (taking nothing).
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		for k, lim := range l.limiters {
			if lim.TokensAt(now) >= float64(l.burst) {
				delete(l.limiters, k)
			}
		}
		l.lastSweep = now
	}
	lim := l.limiters[key]
	if lim == nil {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.limiters[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused request takes no token
		return false, d
	}
	return true, 0
}

// rateLimit answers 429 with Retry-After to a principal over its limit. It
// runs after authentication: the key is the principal, never an address.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principal(r.Context())
		if ok, wait := s.limiter.allow(p.Network + "\x00" + p.ID); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			s.writeError(w, r, &domain.Error{Kind: domain.KindTooMany, Code: "rate_limited",
				Message: "too many requests from you; wait as Retry-After says / te veel verzoeken; wacht zo lang als Retry-After aangeeft"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
