// Package httpapi is the HTTP adapter: the /v1 API of API.md on chi, with
// authentication, problem+json errors, idempotency and optimistic
// concurrency headers, read-your-writes (min_position), audit of every read
// of personal data, Prometheus metrics, and the OpenAPI document.
//
// Handlers are thin: decode and validate, authorize through domain.Authorize,
// call the app service or read projections, encode.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/clientaddr"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// Deps are what the server needs; cmd/buurtsignaal wires them.
type Deps struct {
	Log      *slog.Logger
	Auth     domain.Authenticator
	App      *app.Service
	Runner   *projections.Runner
	Cases    *projections.Cases
	Subjects *projections.Subjects
	Orgs     *projections.Organisations
	// Reader is the one door to personal data: it authorizes, records
	// every access (fail closed) and opens sealed data only after.
	// Handlers hold neither the auditor nor the cipher.
	Reader  *app.Reader
	Audit   *projections.AuditTrail
	Reviews *projections.Reviews
	Verify  VerifyFunc
	// RequireMFA makes privacy officer endpoints demand a multi-factor
	// sign-in (the OIDC amr claim); on by default in serve.
	RequireMFA bool
	Metrics    *prometheus.Registry
	Now        func() time.Time
	// Ready reports whether the store is open and projections caught up.
	Ready func() bool
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
	// WaitTimeout bounds how long a GET waits for min_position (default 2 s).
	WaitTimeout time.Duration
	// RateLimit is the requests a second each principal may make on
	// average, RateBurst how many at once; 0 turns the limit off.
	RateLimit float64
	RateBurst int
	// Notifications is the notifier's admin side (nil: notifications off).
	Notifications Notifications
	// ClientAddr is the address of a request's client, recorded in access
	// records (nil: the peer's; see adapters/internal/clientaddr for the
	// load balancer's X-Forwarded-For).
	ClientAddr func(*http.Request) string
	// Directory lists the principals of a network (nil: the identity
	// provider keeps them; GET /v1/principals then lists only the caller).
	Directory func(network string) []domain.Principal
	// Location is the network's time zone, where a follow-up's day ends
	// (nil: UTC).
	Location *time.Location
	// PublicURL is the address clients use (--public-url): the OpenAPI
	// document's server (empty: "/", this server).
	PublicURL string
	// Tracer gives requests, commands and min_position waits their spans
	// (nil: none; see tracing.go).
	Tracer trace.TracerProvider
	// HSDSExport writes a network's organisations as Open Referral HSDS
	// 3.0 JSON, for GET /v1/organisations?format=hsds (nil: not offered).
	HSDSExport func(network string, orgs []domain.RegisterOrganisation) any
	// SuppressK is the k of small-cell suppression in monitoring (0: the
	// default 5; never below 3; see domain.Suppress).
	SuppressK int
	// ReviewTermDays is the review term in working days (0: the default),
	// as the Reviews read model counts it.
	ReviewTermDays int
}

// Server is the HTTP API.
type Server struct {
	Deps
	log     *slog.Logger
	router  chi.Router
	metrics *httpMetrics
	routes  []route
	limiter *limiter // nil: no rate limit
	reports reportCache
}

// New builds the server and its router.
func New(d Deps) *Server {
	if d.MaxBodyBytes == 0 {
		d.MaxBodyBytes = 64 << 10
	}
	if d.WaitTimeout == 0 {
		d.WaitTimeout = 2 * time.Second
	}
	if d.Reader == nil {
		d.Reader = app.NewReader(NopAuditor{}, nil) // records nothing, opens nothing
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.ClientAddr == nil {
		d.ClientAddr = (*clientaddr.Resolver)(nil).Of
	}
	s := &Server{Deps: d, log: d.Log, metrics: newHTTPMetrics(d.Metrics)}
	if d.RateLimit > 0 {
		s.limiter = newLimiter(d.RateLimit, d.RateBurst, d.Now)
	}
	s.routes = s.routeTable()
	s.router = s.buildRouter()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Router exposes the chi router (tests walk it against the OpenAPI document).
func (s *Server) Router() chi.Router { return s.router }

func (s *Server) buildRouter() chi.Router {
	r := chi.NewRouter()
	r.Use(s.withRequestID, s.traceRequests, s.recoverer, s.instrument)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.handle(func(w http.ResponseWriter, _ *http.Request) error {
		if s.Ready != nil && !s.Ready() {
			return &domain.Error{Kind: domain.KindUnavailable, Code: "not_ready", Message: "the store is not open or projections are catching up"}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	}))
	if s.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{}))
	}
	r.Get("/openapi.json", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.OpenAPI()) })
	r.Route("/v1", func(v1 chi.Router) {
		v1.Use(s.authenticate, s.rateLimit, s.checkAccessHeaders)
		for _, rt := range s.routes {
			h := rt.handler
			if rt.method == http.MethodGet {
				h = s.readYourWrites(h)
			} else {
				h = s.traceCommand(rt, h)
			}
			v1.Method(rt.method, strings.TrimPrefix(rt.pattern, "/v1"), s.handle(h))
		}
	})
	r.NotFound(s.handle(func(http.ResponseWriter, *http.Request) error {
		return &domain.Error{Kind: domain.KindNotFound, Code: "no_route", Message: "no such endpoint"}
	}))
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Method Not Allowed","status":405}` + "\n"))
	})
	return r
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyPrincipal
	keyClientRequestID
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// principal returns the authenticated caller; routes under /v1 always have one.
func principal(ctx context.Context) domain.Principal {
	p, _ := ctx.Value(keyPrincipal).(domain.Principal)
	return p
}

// withRequestID gives every request an id of the server's own: access
// records, logs and problem documents name it, and no client can choose or
// collide it. A client's own X-Request-ID (at most 64 printable ASCII
// characters; anything else is dropped) is kept apart, recorded with the
// access as its client request id, and echoed as X-Client-Request-ID.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-ID", id)
		ctx := context.WithValue(r.Context(), keyRequestID, id)
		if c := r.Header.Get("X-Request-ID"); c != "" && len(c) <= 64 && printableASCII(c) {
			w.Header().Set("X-Client-Request-ID", c)
			ctx = context.WithValue(ctx, keyClientRequestID, c)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func clientRequestID(ctx context.Context) string {
	id, _ := ctx.Value(keyClientRequestID).(string)
	return id
}

// maxOnBehalfOf bounds X-On-Behalf-Of.
const maxOnBehalfOf = 100

// checkAccessHeaders refuses, before anything is read or recorded, the
// headers that end up in access records when they are not what the record
// allows: X-Purpose must be one of domain.ClientPurposes, X-On-Behalf-Of at
// most 100 printable ASCII characters (a principal id; it is stored sealed).
func (s *Server) checkAccessHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f fields
		if p := r.Header.Get("X-Purpose"); p != "" && !domain.ClientPurposes.Has(p) {
			f.add("X-Purpose", "must be one of: "+strings.Join(domain.ClientPurposes.Values(), ", "))
		}
		if o := r.Header.Get("X-On-Behalf-Of"); o != "" && (len(o) > maxOnBehalfOf || !printableASCII(o)) {
			f.add("X-On-Behalf-Of", "must be a principal id of at most 100 printable characters")
		}
		if err := f.err(); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic", append(logAttrsOf(r), "panic", v)...)
				s.writeError(w, r, &domain.Error{Kind: domain.KindInternal, Code: "panic"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="buurtsignaal"`)
			s.writeError(w, r, &domain.Error{Kind: domain.KindUnauthenticated, Code: "no_token", Message: "a bearer token is required"})
			return
		}
		p, err := s.Auth.Authenticate(r.Context(), token)
		if err != nil {
			if domain.KindOf(err) != domain.KindUnauthenticated {
				s.writeError(w, r, err)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="buurtsignaal", error="invalid_token"`)
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyPrincipal, p)))
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// readYourWrites runs a GET handler once min_position is honoured: every
// GET route gets it from the router, so none can forget it, and a value
// that is not a non-negative integer is 422 on all of them alike.
func (s *Server) readYourWrites(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.waitMinPosition(r); err != nil {
			return err
		}
		return h(w, r)
	}
}

// waitMinPosition honours min_position: it waits up to WaitTimeout for the
// projections, else answers 503 with Retry-After.
func (s *Server) waitMinPosition(r *http.Request) error {
	v := r.URL.Query().Get("min_position")
	if v == "" {
		return nil
	}
	pos, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return domain.Invalid(domain.FieldError{Field: "min_position", Message: "must be a non-negative integer"})
	}
	ctx, span := s.tracer().Start(r.Context(), "projections.wait", trace.WithAttributes(attribute.Int64("eventlog.position", int64(pos))))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, s.WaitTimeout)
	defer cancel()
	err = s.Runner.WaitFor(ctx, pos)
	if err != nil {
		span.SetStatus(codes.Error, kindCode(err))
	}
	return err
}

// kindCode names an error by its kind and code, for a span's status: never
// its text.
func kindCode(err error) string {
	s := domain.KindOf(err).String()
	if e := domain.AsError(err); e != nil && e.Code != "" {
		s += " " + e.Code
	}
	return s
}

// ClientAddrs returns the resolver of client addresses behind the trusted
// proxies (addresses or CIDR prefixes of the deployment's load balancers),
// for Deps.ClientAddr and the console's sign-in limits.
func ClientAddrs(trustedProxies []string) (func(*http.Request) string, error) {
	r, err := clientaddr.New(trustedProxies)
	if err != nil {
		return nil, err
	}
	return r.Of, nil
}
