// Package console is the web console at /console: server-rendered pages for
// professionals, coordinators, privacy officers, volunteers and partners, in
// Dutch (default) and English.
//
// The console is a client of the HTTP API, in process: every page and form
// becomes a request to the /v1 handler with the signed-in user's own bearer
// token, so the console has exactly the API's policy, validation and audit
// (a case page is one audited read, as the API's GET is). It holds no state:
// sessions travel sealed in their cookies.
//
// Stack: html/template pages embedded in the binary, one stylesheet and a
// vendored htmx 2 (static/htmx.min.js, 0BSD; never fetched at build or run
// time), which boosts links and forms; every page also works without
// JavaScript. No build step.
//
// Sign-in: the OIDC authorization-code flow with PKCE when an issuer and a
// client are configured (the ID token is the session's bearer token), and a
// token form for the embedded default (tokens file). A session (its id, the
// bearer token, the CSRF token, its end and its idle deadline) is sealed
// with AES-256-GCM into its cookie under a key that every replica shares
// (SessionSealer: created once, wrapped by the master key, kept in the event
// log), so a session made on one replica works on every other and survives
// restarts; nothing is kept per replica. Each request checks the token
// again, so a token that was withdrawn or expired ends the session. A
// session ends at SessionTTL (and never outlives its token), after
// IdleTimeout without a request, or when signed out: signing out records
// the session's end in the log (Options.Ended), so every replica refuses a
// copy of the cookie too. The cookie is HttpOnly, SameSite=Strict, Secure
// (except over plain HTTP on a loopback address, for `make run` and tests)
// and carries Max-Age, never an Expires from the server's clock.
//
// CSRF: every form carries the session's token, checked in constant time,
// and a POST whose Origin names another host is refused. The sign-in form,
// before any session, uses a double-submit cookie.
//
// Privacy: personal data appears only in the body of an audited page.
// URLs hold ids, never names (the subject search is a POST); page titles
// are generic; every page is sent with Cache-Control: no-store; htmx's
// history cache is off, so no page is kept in the browser's storage.
package console

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/clientaddr"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the console.
type Options struct {
	// API is the /v1 handler the console calls in process.
	API http.Handler
	// Auth checks the token of the sign-in form and of OIDC sign-ins.
	Auth domain.Authenticator
	// OIDC enables the authorization-code flow; nil: the token form only.
	OIDC *OIDCClient
	// TokenForm offers the token form (the embedded default, tokens file).
	TokenForm bool
	Log       *slog.Logger
	Now       func() time.Time
	// SessionTTL is a session's absolute limit (default 8 hours, and never
	// longer than its token's life); IdleTimeout ends a session that made
	// no request for that long (default 15 minutes).
	SessionTTL  time.Duration
	IdleTimeout time.Duration
	// Sealer seals sessions into their cookies: the same key on every
	// replica (see SessionSealer). Nil: a key of this process only, so
	// sessions end with it (for tests of the console alone).
	Sealer cipher.AEAD
	// Ended records signed-out sessions and answers whether a session was
	// signed out, on every replica. Nil: only the browser forgets a
	// signed-out session (for tests of the console alone).
	Ended    SessionEnds
	Location *time.Location // times are shown in it (default Europe/Amsterdam)
	// PublicURL is the address browsers use (the load balancer's): the
	// origin a form must come from, whether cookies are Secure, and the base
	// of the OIDC callback. Empty: taken from each request (tests only: it
	// trusts the Host header).
	PublicURL string
	// ClientAddr is the address of a request's client, for the sign-in
	// limits (nil: the peer's).
	ClientAddr func(*http.Request) string
	// SignInRate and SignInBurst bound sign-in attempts per client address
	// (default one every 2 seconds, bursts of 10); MaxFailedSignIns failed
	// sign-ins from one address within FailedSignInWindow (default 10 in
	// 15 minutes) refuse further attempts from it until the window passes.
	SignInRate         rate.Limit
	SignInBurst        int
	MaxFailedSignIns   int
	FailedSignInWindow time.Duration
}

// Console serves /console.
type Console struct {
	Options
	pages   map[string]*template.Template
	router  chi.Router
	signIns *signInGuard
	// crossOrigin is net/http's cross-origin protection (Sec-Fetch-Site,
	// then Origin), trusting the public URL's origin.
	crossOrigin *http.CrossOriginProtection
}

// New builds the console.
func New(o Options) (*Console, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 15 * time.Minute
	}
	if o.Sealer == nil {
		var err error
		if o.Sealer, err = newSealer(randomKey()); err != nil {
			return nil, err
		}
	}
	if o.Location == nil {
		if o.Location, _ = time.LoadLocation("Europe/Amsterdam"); o.Location == nil {
			o.Location = time.UTC
		}
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	if o.ClientAddr == nil {
		o.ClientAddr = (*clientaddr.Resolver)(nil).Of
	}
	if o.SignInRate == 0 {
		o.SignInRate = rate.Every(2 * time.Second)
	}
	if o.SignInBurst == 0 {
		o.SignInBurst = 10
	}
	if o.MaxFailedSignIns == 0 {
		o.MaxFailedSignIns = 10
	}
	if o.FailedSignInWindow == 0 {
		o.FailedSignInWindow = 15 * time.Minute
	}
	c := &Console{Options: o, signIns: newSignInGuard(o.SignInRate, o.SignInBurst, o.MaxFailedSignIns, o.FailedSignInWindow),
		crossOrigin: http.NewCrossOriginProtection()}
	if u, err := url.Parse(o.PublicURL); o.PublicURL != "" && err == nil && u.Host != "" {
		if err := c.crossOrigin.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("console: the public URL's origin: %w", err)
		}
	}
	if err := c.parse(); err != nil {
		return nil, err
	}
	c.router = c.routes()
	return c, nil
}

// ServeHTTP implements http.Handler for paths under /console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // not no-referrer: with it Chromium sends "Origin: null" on form posts
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// Forms are small: nothing larger is read (413 from ParseForm).
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	c.router.ServeHTTP(w, r)
}

func (c *Console) routes() chi.Router {
	r := chi.NewRouter()
	static, _ := fs.Sub(staticFS, "static")
	r.Handle("/console/static/*", http.StripPrefix("/console/static/", http.FileServer(http.FS(static))))
	r.Get("/console", c.home)
	r.Get("/console/", c.home)
	r.Get("/console/login", c.loginForm)
	r.Post("/console/login", c.login)
	r.Get("/console/oidc/start", c.oidcStart)
	r.Get("/console/oidc/callback", c.oidcCallback)
	r.Group(func(r chi.Router) {
		r.Use(c.requireSession)
		r.Post("/console/logout", c.logout)
		r.Get("/console/language", c.switchLanguage)
		r.Get("/console/organisations", c.organisations)
		r.With(c.only(domain.RoleAdmin)).Post("/console/organisations", c.registerOrganisation)
		// Professionals.
		r.Get("/console/caseload", c.caseload)
		r.Get("/console/cases/{id}", c.casePage)
		r.Post("/console/cases/{id}/break-glass", c.breakGlass)
		r.Post("/console/cases/{id}/{action}", c.caseCommand)
		// Professionals and coordinators: the network's signals without a team.
		r.With(c.only(domain.RoleProfessional, domain.RoleCoordinator)).Get("/console/unrouted", c.unrouted)
		// Coordinators.
		r.Get("/console/monitor", c.monitor)
		r.Get("/console/monitor/signals/{id}", c.monitorSignal)
		r.Post("/console/monitor/signals/{id}/assign", c.coordinatorAssign)
		r.Get("/console/monitor/signals", c.signalList)
		r.Get("/console/monitor/signals.csv", c.signalListCSV)
		r.Get("/console/monitor/response.csv", c.responseCSV)
		r.Get("/console/categories", c.categories)
		r.Post("/console/categories", c.categories)
		r.Get("/console/norms", c.normsPage)
		r.Post("/console/norms", c.normsPage)
		r.Get("/console/feedback-texts", c.feedbackTexts)
		r.Post("/console/feedback-texts", c.feedbackTexts)
		r.Get("/console/routing", c.routing)
		r.Post("/console/routing", c.routing)
		r.Get("/console/targets", c.targets)
		r.Post("/console/targets", c.targets)
		// Admins: notifications that failed for good.
		r.Get("/console/notifications", c.deadLetters)
		r.Post("/console/notifications/{id}/retry", c.retryDeadLetter)
		// Privacy officers (the API decides every read; this spares others
		// forms they cannot use).
		r.With(c.only(domain.RolePrivacyOfficer)).Get("/console/privacy", c.privacyHome)
		r.Post("/console/privacy/search", c.search)
		r.Get("/console/privacy/subjects/{id}", c.subjectLog)
		r.Get("/console/privacy/subjects/{id}/export", c.export)
		r.Post("/console/privacy/subjects/{id}/erasure", c.erase)
		r.Get("/console/privacy/actor", c.actorLog)
		r.Get("/console/privacy/break-glass", c.breakGlassReview)
		r.Get("/console/privacy/verify", c.verify)
		r.Get("/console/privacy/reviews", c.reviews)
		r.Post("/console/privacy/reviews", c.judge)
		r.Get("/console/privacy/report", c.report)
		// Volunteers and partners (and professionals and coordinators for
		// handovers from the list of signals without a team).
		r.With(c.only(domain.RoleBuurtsteun, domain.RolePartner, domain.RoleProfessional)).Get("/console/signals/new", c.raiseForm)
		r.Post("/console/signals", c.raise)
		r.Get("/console/my", c.mySignals)
		r.Post("/console/signals/{id}/{action}", c.signallerCommand)
		r.Get("/console/referrals", c.referrals)
		r.Post("/console/referrals/{id}/{answer}", c.answerReferral)
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", nil, page{Error: c.t(r, "not_found")})
	})
	return r
}

// page is what every template gets.
type page struct {
	Lang      string
	Title     string
	Principal *domain.Principal
	CSRF      string
	Flash     string
	Error     string
	// Form holds the errors of the form that was sent, by input id.
	Form *formErrors
	Data any
	// Path is the request's path, for the menu's current page and the
	// language switch.
	Path string
	// Categories are the signed-in user's network's category labels
	// (Dutch, English) by id, from /v1/categories: a network names its
	// own categories, retired ones included.
	Categories map[string][2]string
}

type ctxKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(ctxKey{}).(*session)
	return s
}

func randomID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requireSession finds the session of the cookie, or sends the browser to
// sign in; it checks CSRF on every POST.
func (c *Console) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if !c.sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.CSRF)) != 1 {
				c.render(w, r, http.StatusForbidden, "error", s, page{Error: c.t(r, "csrf")})
				return
			}
		}
		c.refresh(w, r, s) // the idle time starts again
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

// only answers 403 to principals without one of roles.
func (c *Console) only(roles ...domain.Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := sessionOf(r)
			for _, role := range roles {
				if s.principal.HasRole(role) {
					next.ServeHTTP(w, r)
					return
				}
			}
			c.render(w, r, http.StatusForbidden, "error", s, page{Error: c.t(r, "forbidden")})
		})
	}
}

// home sends each role to its first page.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	s := c.session(r)
	if s == nil {
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return
	}
	p := s.principal
	to := "/console/my"
	switch {
	case p.HasRole(domain.RoleProfessional):
		to = "/console/caseload"
	case p.HasRole(domain.RoleCoordinator):
		to = "/console/monitor"
	case p.HasRole(domain.RolePrivacyOfficer):
		to = "/console/privacy"
	case p.HasRole(domain.RolePartner):
		to = "/console/referrals"
	case p.HasRole(domain.RoleAdmin):
		to = "/console/notifications"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// apiAnswer is the API's answer to a console call.
type apiAnswer struct {
	Status int
	Header http.Header
	Body   []byte
}

// problem is the API's problem+json.
type problem struct {
	Title  string              `json:"title"`
	Detail string              `json:"detail"`
	Code   string              `json:"code"`
	Errors []domain.FieldError `json:"errors"`
	Status int                 `json:"status"`
}

// call sends one request to the API as the signed-in user. Headers come in
// name, value pairs.
func (c *Console) call(r *http.Request, method, path string, body any, headers ...string) apiAnswer {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	// The API's router must not see the console's routing context.
	ctx := context.WithValue(r.Context(), chi.RouteCtxKey, (*chi.Context)(nil))
	req, _ := http.NewRequestWithContext(ctx, method, path, rd)
	req.RemoteAddr = r.RemoteAddr // the audit log records the browser's address
	if s := sessionOf(r); s != nil {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept-Language", c.lang(r))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	c.API.ServeHTTP(rec, req)
	return apiAnswer{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}
}

// decode reads a successful answer into v, or returns the problem.
func (a apiAnswer) decode(v any) *problem {
	if a.Status >= 300 {
		p := &problem{Status: a.Status}
		if json.Unmarshal(a.Body, p) != nil || p.Title == "" {
			p.Title = http.StatusText(a.Status)
		}
		return p
	}
	if v != nil {
		if err := json.Unmarshal(a.Body, v); err != nil {
			return &problem{Status: http.StatusBadGateway, Title: "unreadable answer"}
		}
	}
	return nil
}

// recorder collects an in-process answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}

// failed shows a problem of the API on the page of the request.
func (c *Console) failed(w http.ResponseWriter, r *http.Request, p *problem) {
	status := p.Status
	if status < 400 {
		status = http.StatusBadGateway
	}
	c.render(w, r, status, "error", sessionOf(r), page{Error: problemText(c.lang(r), p), Form: newFormErrors(c.lang(r), "", p)})
}

// refused is the page of a form the API refused: its message in the page's
// language and its field errors by the form's input ids.
func (c *Console) refused(r *http.Request, form string, p *problem) page {
	return page{Error: problemText(c.lang(r), p), Form: newFormErrors(c.lang(r), form, p)}
}

var errNoTemplate = errors.New("console: no such template")
