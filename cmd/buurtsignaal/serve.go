package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tink-crypto/tink-go/v2/tink"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/buurtsignaal/buurtsignaal/adapters/audit"
	"github.com/buurtsignaal/buurtsignaal/adapters/auth"
	"github.com/buurtsignaal/buurtsignaal/adapters/console"
	"github.com/buurtsignaal/buurtsignaal/adapters/hsds"
	"github.com/buurtsignaal/buurtsignaal/adapters/httpapi"
	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb"
	"github.com/buurtsignaal/buurtsignaal/adapters/metrics"
	"github.com/buurtsignaal/buurtsignaal/adapters/notify"
	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/adapters/readstore"
	"github.com/buurtsignaal/buurtsignaal/adapters/tracing"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// system is everything serve and the admin commands wire together.
type system struct {
	cfg      Config
	log      *slog.Logger
	store    eventlog.Store
	pebble   *pebblestore.Store // the embedded store, nil on KurrentDB
	keys     domain.KeyStore    // the cluster's with a KurrentDB store, else the local one
	index    domain.BlindIndex
	reg      *domain.Registry
	runner   *projections.Runner
	cases    *projections.Cases
	subjects *projections.Subjects
	orgs     *projections.Organisations
	audit    *projections.AuditTrail
	reviews  *projections.Reviews
	targets  *projections.NotificationTargets
	sessions *projections.EndedSessions
	master   console.MasterKey
	app      *app.Service
	metrics  *prometheus.Registry
	tokens   *auth.TokensFile
	now      func() time.Time
	closers  []func() error

	// readStore holds the read models' history and checkpoints; rebuild
	// makes startProjections clear them and replay the whole log.
	readStore *readstore.Store
	rebuild   bool

	// sweepTotal and sweepDone count the retention sweep's subjects, for
	// its progress.
	sweepTotal, sweepDone atomic.Uint64
	// backupTotal and backupDone count the bytes a backup checks.
	backupTotal, backupDone atomic.Uint64
	tracer                  trace.TracerProvider // nil: no spans
}

func (s *system) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}

// openSystem opens the stores and builds projections, the app service and
// metrics. now is the clock (nil: time.Now).
func openSystem(ctx context.Context, cfg Config, log *slog.Logger, now func() time.Time) (_ *system, err error) {
	return openSystemTraced(ctx, cfg, log, now, nil)
}

// openSystemTraced is openSystem whose store, projection catch-up and
// whatever else serve wires get their spans from tp (nil: none).
func openSystemTraced(ctx context.Context, cfg Config, log *slog.Logger, now func() time.Time, tp trace.TracerProvider) (_ *system, err error) {
	if now == nil {
		now = time.Now
	}
	s := &system{cfg: cfg, log: log, now: now, metrics: metrics.NewRegistry(), reg: domain.NewRegistry(), tracer: tp}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := privateFiles(cfg.DataDir, erasedFile(cfg), cfg.MasterKeyFile, cfg.NotifySecretFile, cfg.BackupDir); err != nil {
		return nil, fmt.Errorf("data files: %w", err)
	}
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, store.Close)
	s.pebble, _ = store.(*pebblestore.Store)
	s.store = tracing.InstrumentStore(metrics.InstrumentStore(store, s.metrics), tp)

	if err := moveErasedFile(cfg, log); err != nil {
		return nil, fmt.Errorf("erased subjects: %w", err)
	}
	master, err := masterKey(cfg)
	if err != nil {
		return nil, err
	}
	s.master = master
	if s.keys, err = openKeys(ctx, cfg, master, log); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.keys.Close)
	// Erasures recorded but not applied here (a restored backup, a crash
	// between recording and shredding) are applied before anything reads.
	if n, err := applyErasures(ctx, s.keys, erasedFile(cfg)); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("applied recorded erasures", "subjects", n)
	}
	s.index = s.keys.BlindIndex()

	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %w", cfg.Timezone, err)
	}
	var holidays []string
	for y := now().Year() - 3; y <= now().Year()+3; y++ {
		holidays = append(holidays, domain.DutchHolidays(y)...)
	}
	holidays = append(holidays, splitList(cfg.Holidays)...)
	cal := domain.NewCalendar(loc, holidays)
	s.cases = projections.NewCases(domain.DefaultNorms(), cal)
	s.subjects = projections.NewSubjects()
	s.orgs = projections.NewOrganisations()
	s.audit = projections.NewAuditTrail()
	s.targets = projections.NewNotificationTargets()
	s.sessions = projections.NewEndedSessions()
	s.reviews = projections.NewReviews(domain.DefaultFlagRules(), cal, cfg.ReviewTerm)
	s.runner = projections.NewRunner(s.store, s.reg, s.cases, s.subjects, s.orgs, s.audit, s.targets, s.sessions, s.reviews)
	// The read models' history and checkpoints: derived, per replica, on
	// either store (startProjections opens them).
	if s.readStore, err = readstore.Open(filepath.Join(cfg.DataDir, "readmodels"), readstore.Options{}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.readStore.Close)

	if cfg.Tokens != "" {
		s.tokens, err = auth.LoadTokensFile(cfg.Tokens, cfg.Network)
		if err != nil {
			return nil, fmt.Errorf("tokens file: %w", err)
		}
	}
	lookup := &projections.Lookup{Runner: s.runner, Cases: s.cases, Subjects: s.subjects, Orgs: s.orgs}
	if teams := splitList(cfg.Teams); len(teams) > 0 {
		lookup.Teams = map[string][]string{cfg.Network: teams}
	} else if s.tokens != nil {
		lookup.Teams = map[string][]string{}
		for _, p := range s.tokens.Principals() {
			lookup.Teams[p.Network] = append(lookup.Teams[p.Network], p.Teams...)
		}
	}
	if s.tokens != nil {
		lookup.Principals = map[string]map[string]domain.Principal{}
		for _, p := range s.tokens.Principals() {
			if lookup.Principals[p.Network] == nil {
				lookup.Principals[p.Network] = map[string]domain.Principal{}
			}
			lookup.Principals[p.Network][p.ID] = p
		}
	}
	s.app = &app.Service{Log: s.store, Cipher: s.keys, Index: s.index, Subjects: s.keys, Lookup: lookup, Reg: s.reg, Now: now, NewID: uuid.New}
	s.metrics.MustRegister(&metrics.Monitor{Runner: s.runner, Cases: s.cases, Now: now, Head: s.store.Head, K: cfg.SuppressK, Reviews: s.reviews})
	storage := &metrics.Storage{Dirs: map[string]string{"readmodels": filepath.Join(cfg.DataDir, "readmodels")}, Root: cfg.DataDir, Keys: s.keys.Count}
	if cfg.Store == "" {
		storage.Dirs["events"] = filepath.Join(cfg.DataDir, "events")
		storage.Dirs["keys"] = filepath.Join(cfg.DataDir, "keys")
	}
	s.metrics.MustRegister(storage)
	return s, nil
}

// erasedFile is the erased-subjects file of cfg.
//
// Its default is beside the data directory, not in it
// (<data-dir>.erased-subjects): no restore of the data directory may roll it
// back. The server warns at start while the default is in use: in
// production it belongs on other storage than the data.
func erasedFile(cfg Config) string {
	if cfg.ErasedFile != "" {
		return cfg.ErasedFile
	}
	return filepath.Clean(cfg.DataDir) + ".erased-subjects"
}

// moveErasedFile moves the erased-subjects file of earlier versions, inside
// the data directory, to erasedFile(cfg): its ids are appended there
// (synced) before the old file is removed, so a crash in between loses none.
func moveErasedFile(cfg Config, log *slog.Logger) error {
	old := filepath.Join(cfg.DataDir, "erased-subjects")
	ids, err := keystore.ReadErased(old)
	if err != nil || ids == nil {
		if _, serr := os.Stat(old); serr != nil {
			return nil // none there
		}
		if err != nil {
			return err
		}
	}
	to := erasedFile(cfg)
	for _, id := range ids {
		if err := keystore.RecordErased(to, id); err != nil {
			return err
		}
	}
	if err := os.Remove(old); err != nil {
		return err
	}
	log.Info("moved the erased-subjects file out of the data directory", "to", to, "subjects", len(ids))
	return nil
}

func openStore(ctx context.Context, cfg Config, log *slog.Logger) (eventlog.Store, error) {
	switch strings.SplitN(cfg.Store, "://", 2)[0] {
	case "kurrentdb", "kurrent", "esdb", "esdb+discover", "kurrentdb+discover", "kurrent+discover":
		st, err := kurrentdb.Open(ctx, cfg.Store, kurrentdb.Options{Log: log})
		if err != nil {
			return nil, fmt.Errorf("kurrentdb store: %w", err)
		}
		return st, nil
	}
	if cfg.Store == "" {
		st, err := pebblestore.Open(filepath.Join(cfg.DataDir, "events"), pebblestore.Options{})
		if err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("store %q: unsupported scheme", redactURL(cfg.Store))
}

// redactURL keeps credentials of a connection string out of messages.
func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "***" + s[i:]
		}
	}
	return s
}

func masterKey(cfg Config) (tink.AEAD, error) {
	if cfg.MasterKey != "" {
		return keystore.MasterKeyFromEnv(cfg.MasterKey)
	}
	path := cfg.MasterKeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, "master-key.json")
	}
	return keystore.LoadOrCreateMasterKey(path)
}

// startProjections opens the read models (resuming from their checkpoints,
// or from the start for those cleared), runs the projection runner in the
// background and waits until it has applied the log as it was.
func (s *system) startProjections(ctx context.Context) (wait func() error, err error) {
	cleared, err := s.runner.Open(ctx, s.readStore, s.rebuild)
	if err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	if len(cleared) > 0 {
		s.log.Info("rebuilding read models from the log", "read_models", cleared)
	}
	ctx, cancel := context.WithCancel(ctx)
	// The catch-up's span: from the start to the head the log had.
	spanCtx, span := tracing.Tracer(s.tracer).Start(ctx, "projections.catch_up")
	defer span.End()
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		runErr = s.runner.Run(ctx)
		if runErr != nil && ctx.Err() == nil {
			// Readiness goes off with it; say why, once, loudly.
			s.log.Error("projections stopped", "err", runErr)
		}
	}()
	head, err := s.store.Head(spanCtx)
	if err == nil {
		err = s.runner.WaitFor(ctx, head)
	}
	span.SetAttributes(attribute.Int64("eventlog.position", int64(head)), attribute.Int64("projections.applied", int64(s.runner.Applied())))
	tracing.Fail(span, err)
	stop := func() error {
		cancel()
		wg.Wait()
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			return runErr
		}
		return nil
	}
	if err != nil {
		_ = stop()
		return nil, fmt.Errorf("projections: %w", err)
	}
	return stop, nil
}

// hooks let tests observe and steer serve: ready receives the bound address
// once the server accepts connections (tests use :0); now replaces the clock.
type hooks struct {
	ready chan<- string
	now   func() time.Time
	// auditor wraps the audit log (tests count records and inject failures).
	auditor func(domain.Auditor) domain.Auditor
	// head receives the log's head function once the server is ready.
	head func(func(context.Context) (uint64, error))
	// log receives the event log once the server is ready (tests read it).
	log func(eventlog.Store)
	// tracer replaces the tracer provider of the OTEL_* variables.
	tracer trace.TracerProvider
}

// serve runs the API until ctx ends.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, h hooks) error {
	cfg, _, err := loadConfig("serve", args, getenv, output(stderr))
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	if cfg.Replica == "" {
		cfg.Replica, _ = os.Hostname()
	}
	var demoTokens map[string]string
	if cfg.Demo && cfg.Tokens == "" {
		cfg.Tokens = filepath.Join(cfg.DataDir, "demo-tokens.json")
		if demoTokens, err = writeDemoTokens(cfg); err != nil {
			return err
		}
	}
	tp, stopTracing := h.tracer, func(context.Context) error { return nil }
	if tp == nil {
		if tp, stopTracing, err = tracing.FromEnv(ctx, getenv, version, cfg.Replica); err != nil {
			return err
		}
	}
	defer func() {
		// Flush what is left, within the shutdown's time.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("trace export at shutdown", "err", err)
		}
	}()
	sys, err := openSystemTraced(ctx, cfg, log, h.now, tp)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sys.Close(); cerr != nil {
			log.Error("close", "err", cerr)
		}
	}()
	start := time.Now()
	stopProjections, err := sys.startProjections(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = stopProjections() }()
	log.Info("projections caught up", "position", sys.runner.Position(), "events", sys.runner.Applied(), "seconds", time.Since(start).Seconds())
	if n, err := sys.completeErasures(ctx); err != nil {
		return fmt.Errorf("erased subjects: %w", err)
	} else if n > 0 {
		log.Info("recorded erasures that were cut short", "subjects", n)
	}

	if cfg.Demo {
		if err := seedDemo(ctx, sys); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go sys.retentionLoop(bg)
	ready := newReadiness(sys.store.Head, sys.runner.Position, sys.runner.CaughtUp, sys.runner.Err,
		cfg.ReadyInterval, cfg.ReadyMaxLag, log, sys.metrics)
	readyDone := make(chan struct{})
	go func() { defer close(readyDone); ready.run(bg) }()
	defer func() { stopBackground(); <-readyDone }()
	go sys.scavengeLoop(bg)
	authn, err := authenticator(ctx, cfg, sys.tokens)
	if err != nil {
		return err
	}
	auditLog := audit.New(sys.store, sys.keys, cfg.Replica, sys.now)
	defer auditLog.Close()
	var auditor domain.Auditor = auditLog
	if h.auditor != nil {
		auditor = h.auditor(auditLog)
	}
	auditor = tracing.InstrumentAuditor(metrics.InstrumentAuditor(auditor, sys.metrics), tp)
	var notifier *notify.Notifier
	if !cfg.NoNotify {
		if notifier, err = sys.notifier(); err != nil {
			return err
		}
		notifier.Tracer = tp
	}
	clientAddr, err := httpapi.ClientAddrs(splitList(cfg.TrustedProxies))
	if err != nil {
		return err
	}
	api := httpapi.New(httpapi.Deps{
		Log: log, Auth: authn, App: sys.app, Runner: sys.runner, Cases: sys.cases, Subjects: sys.subjects,
		Orgs: sys.orgs, Cipher: sys.keys, Auditor: auditor, Audit: sys.audit, Reviews: sys.reviews, ReviewTermDays: cfg.ReviewTerm, Metrics: sys.metrics, Now: sys.now,
		RequireMFA: !cfg.NoMFA, SuppressK: cfg.SuppressK, Verify: sys.verify, RateLimit: float64(cfg.RateLimit), RateBurst: cfg.RateBurst,
		Ready:         ready.Ready,
		Notifications: notifications(notifier),
		ClientAddr:    clientAddr,
		Directory:     directory(sys.tokens),
		Location:      sys.location(),
		PublicURL:     cfg.PublicURL,
		Tracer:        tp,
		HSDSExport:    func(network string, orgs []domain.RegisterOrganisation) any { return hsds.Export(network, orgs) },
	})
	if sys.pebble != nil {
		stopAdmin, err := sys.serveAdmin(ctx, adminSocket(cfg), log)
		if err != nil {
			return err
		}
		defer stopAdmin()
	}
	if cfg.BackupDir != "" {
		sys.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "buurtsignaal_backup_age_seconds", Help: "Age of the newest backup in the backup directory (+Inf when there is none).",
		}, func() float64 {
			if t, ok := newestBackup(cfg.BackupDir); ok {
				return time.Since(t).Seconds()
			}
			return math.Inf(1)
		}))
	}
	if cfg.PprofAddr != "" {
		_, stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	addr := ln.Addr().String()
	publicURL := strings.TrimSuffix(cfg.PublicURL, "/")
	if publicURL == "" {
		publicURL = "http://" + addr
	}
	cons, err := newConsole(ctx, sys, api, authn, publicURL, clientAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           withConsole(api, cons),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if notifier != nil {
		notifier.BaseURL = publicURL
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := notifier.Run(bg); err != nil && bg.Err() == nil {
				log.Error("notifier stopped", "err", err)
			}
		}()
		defer func() { stopBackground(); <-done }() // before the outbox closes
	}
	if cfg.ErasedFile == "" {
		log.Warn("the erased-subjects file is at its default, beside the data directory: in production keep it on other storage than the data (--erased-file), so that losing or restoring the data cannot lose it", "file", erasedFile(cfg))
	}
	log.Info("serving", "addr", addr, "replica", cfg.Replica, "store", storeKind(cfg))
	if cfg.Demo {
		printDemo(stdout, addr, demoTokens)
	}
	if h.ready != nil {
		if h.head != nil {
			h.head(sys.store.Head)
		}
		if h.log != nil {
			h.log(sys.store)
		}
		h.ready <- addr
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	<-errc
	log.Info("stopped")
	return nil
}

func storeKind(cfg Config) string {
	if cfg.Store == "" {
		return "embedded"
	}
	return strings.SplitN(cfg.Store, "://", 2)[0]
}

func authenticator(ctx context.Context, cfg Config, tokens *auth.TokensFile) (domain.Authenticator, error) {
	var chain []auth.Authenticator
	if tokens != nil {
		chain = append(chain, tokens)
	}
	if cfg.OIDCIssuer != "" {
		o, err := auth.NewOIDC(ctx, auth.OIDCConfig{
			Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, RolesClaim: cfg.OIDCRoles,
			TeamsClaim: cfg.OIDCTeams, OrganisationClaim: cfg.OIDCOrg, DefaultNetwork: cfg.Network,
		})
		if err != nil {
			return nil, fmt.Errorf("oidc: %w", err)
		}
		chain = append(chain, o)
	}
	if len(chain) == 0 {
		return nil, errors.New("no authentication configured: give --tokens-file, --oidc-issuer or --demo")
	}
	return auth.Chain(chain...), nil
}

// rebuild clears the read models, replays the whole log into them and
// reports what it built.
func rebuild(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	start := time.Now()
	cfg, _, err := loadConfig("rebuild", args, getenv, output(stderr))
	if err != nil {
		return err
	}
	if serverHolds(cfg) {
		return heldByServer("rebuild", cfg, "stop it first")
	}
	sys, stop, err := openCaughtUp(ctx, "rebuild", cfg, stderr)
	if err != nil {
		return err
	}
	defer sys.Close()
	if err := stop(); err != nil {
		return err
	}
	// A server that opens the rebuilt store should not pay for its
	// compactions while it serves.
	if err := sys.readStore.Compact(ctx); err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(stdout, "rebuilt projections: %d events to position %d in %.2fs; %d signals\n",
		sys.runner.Applied(), sys.runner.Position(), secs, sys.cases.Len())
	return nil
}

// openCaughtUp opens the system of cfg for an admin command, which must
// exist, and replays the log into its projections, reporting progress;
// stop ends the projection runner.
func openCaughtUp(ctx context.Context, name string, cfg Config, stderr io.Writer) (*system, func() error, error) {
	if err := requireStore(name, cfg); err != nil {
		return nil, nil, err
	}
	if err := requireMasterKey(name, cfg); err != nil {
		return nil, nil, err
	}
	log := newLogger(stderr, cfg.LogLevel)
	sys, err := openSystem(ctx, cfg, log, nil)
	if err != nil {
		return nil, nil, explainLocked(name, cfg, err)
	}
	sys.rebuild = name == "rebuild"
	head, err := sys.store.Head(ctx)
	if err != nil {
		_ = sys.Close()
		return nil, nil, err
	}
	var stop func() error
	err = withProgress(ctx, stderr, log, name+": replaying the log", "log positions", func() uint64 { return head }, sys.runner.Position, func(ctx context.Context) error {
		stop, err = sys.startProjections(ctx)
		return err
	})
	if err != nil {
		_ = sys.Close()
		return nil, nil, err
	}
	return sys, stop, nil
}

// verify recomputes every audit chain in the log.
func (s *system) verify(ctx context.Context) (httpapi.VerifyReport, error) {
	rep, err := audit.Verify(ctx, s.store)
	if err != nil {
		return httpapi.VerifyReport{}, err
	}
	return httpapi.VerifyReport{OK: rep.OK, Streams: rep.Streams, Records: rep.Records, Head: rep.Head, Problems: rep.Problems}, nil
}

// verifyCmd is `buurtsignaal verify`: it recomputes the audit chains and
// prints the head digest; it fails when a chain is broken.
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, _, err := loadConfig("verify", args, getenv, output(stderr))
	if err != nil {
		return err
	}
	if err := requireStore("verify", cfg); err != nil {
		return err
	}
	var rep audit.Report
	if serverHolds(cfg) {
		// The server verifies its own log, asked over its admin socket.
		fmt.Fprintf(stderr, "verify: the data directory %s is held by a running server: asking it over its admin socket\n", cfg.DataDir)
		if err := askAdmin(ctx, adminSocket(cfg), http.MethodGet, "/verify", &rep); err != nil {
			return err
		}
	} else {
		store, err := openStore(ctx, cfg, newLogger(stderr, cfg.LogLevel))
		if err != nil {
			return explainLocked("verify", cfg, err)
		}
		defer store.Close()
		if rep, err = audit.Verify(ctx, store); err != nil {
			return err
		}
	}
	// One value is the head digest (the one to keep outside the system, as
	// GET /v1/audit/verify's head); each chain's line names its last
	// record's digest, from which the head digest is computed.
	for _, h := range rep.Heads {
		fmt.Fprintf(stdout, "%s\t%d records\tlast record %s\n", h.Stream, h.Records, h.Digest)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	fmt.Fprintf(stdout, "audit streams: %d, records: %d, head digest: %s, ok: %t\n", rep.Streams, rep.Records, rep.Head, rep.OK)
	if !rep.OK {
		return fmt.Errorf("audit chains broken: %d problems", len(rep.Problems))
	}
	return nil
}

func (s *system) retention() projections.Retention {
	r := projections.DefaultRetention()
	r.Withdrawn, r.Declined, r.Closed = s.cfg.RetentionWithdrawn, s.cfg.RetentionDeclined, s.cfg.RetentionClosed
	return r
}

// sweep finds the subjects past retention and, with apply, erases each one
// (crypto-shredding, recorded as SubjectErased with basis "retention").
func (s *system) sweep(ctx context.Context, apply bool) ([]uuid.UUID, error) {
	now := s.now().UTC()
	var ids []uuid.UUID
	s.runner.Read(func() { ids = projections.Expired(s.cases, s.subjects, now, s.retention()) })
	s.sweepTotal.Store(uint64(len(ids)))
	s.sweepDone.Store(0)
	if !apply {
		return ids, nil
	}
	actor := domain.Principal{ID: "system:retention", Roles: []domain.Role{domain.RolePrivacyOfficer}, Network: s.cfg.Network}
	// A few erasures at a time: concurrent shreds share the key store's purge.
	var (
		mu     sync.Mutex
		erased []uuid.UUID
		errs   []error
		wg     sync.WaitGroup
	)
	work := make(chan uuid.UUID)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				req := app.Request{Actor: actor, RequestID: "retention-" + now.Format("20060102T150405"), IdempotencyKey: "retention-" + id.String()}
				_, err := s.app.EraseSubject(ctx, req, id, "retention "+now.Format(time.DateOnly), "retention", true)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					erased = append(erased, id)
				}
				mu.Unlock()
				s.sweepDone.Add(1)
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return erased, fmt.Errorf("retention: erase: %w", errors.Join(errs...))
	}
	return erased, nil
}

// completeErasures records SubjectErased for every subject of the
// erased-subjects file (written before a key is shredded) that the log does
// not show as erased: an erasure cut short between shredding the key and
// recording it. It returns how many it recorded.
func (s *system) completeErasures(ctx context.Context) (int, error) {
	ids, err := keystore.ReadErased(erasedFile(s.cfg))
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	open := map[uuid.UUID]string{} // subject -> network
	s.runner.Read(func() {
		for _, id := range ids {
			if sp, ok := s.subjects.Get(id); ok && !sp.Erased {
				open[id] = sp.Network
			}
		}
	})
	for id, network := range open {
		req := app.Request{Actor: domain.Principal{ID: "system:erasure", Roles: []domain.Role{domain.RolePrivacyOfficer}, Network: network},
			RequestID: "erasure-completed", IdempotencyKey: "erasure-completed-" + id.String()}
		if _, err := s.app.CompleteErasure(ctx, req, id); err != nil {
			return 0, err
		}
	}
	return len(open), nil
}

// retentionLoop runs the sweep on a schedule until ctx ends.
func (s *system) retentionLoop(ctx context.Context) {
	if s.cfg.RetentionEvery <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.RetentionEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ids, err := s.sweep(ctx, true)
			if err != nil {
				s.log.Error("retention sweep", "err", err, "erased", len(ids))
				continue
			}
			if len(ids) > 0 {
				s.log.Info("retention sweep", "erased", len(ids))
			}
		}
	}
}

// retentionCmd is `buurtsignaal retention --dry-run|--apply`.
func retentionCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var apply, dry bool
	cfg, _, err := loadConfig("retention", args, getenv, output(stderr), func(fs *flag.FlagSet) {
		fs.BoolVar(&apply, "apply", false, "erase the subjects past their retention")
		fs.BoolVar(&dry, "dry-run", false, "only list the subjects past their retention")
	})
	if err != nil {
		return err
	}
	if apply == dry {
		return usagef("retention: give exactly one of --dry-run or --apply")
	}
	var ids []uuid.UUID
	if serverHolds(cfg) {
		// The server sweeps its own projections, asked over its admin socket.
		fmt.Fprintf(stderr, "retention: the data directory %s is held by a running server: asking it over its admin socket\n", cfg.DataDir)
		var ans struct {
			IDs   []uuid.UUID `json:"ids"`
			Error string      `json:"error"`
		}
		if err = askAdmin(ctx, adminSocket(cfg), http.MethodPost, "/retention?apply="+strconv.FormatBool(apply), &ans); err == nil && ans.Error != "" {
			err = errors.New(ans.Error)
		}
		ids = ans.IDs
	} else {
		sys, stop, oerr := openCaughtUp(ctx, "retention", cfg, stderr)
		if oerr != nil {
			return oerr
		}
		defer sys.Close()
		defer func() { _ = stop() }()
		log := newLogger(stderr, cfg.LogLevel)
		err = withProgress(ctx, stderr, log, "retention: erasing", "subjects", sys.sweepTotal.Load, sys.sweepDone.Load, func(ctx context.Context) error {
			ids, err = sys.sweep(ctx, apply)
			return err
		})
	}
	for _, id := range ids {
		fmt.Fprintln(stdout, id)
	}
	verb := "would erase"
	if apply {
		verb = "erased"
	}
	fmt.Fprintf(stdout, "retention: %s %d subjects\n", verb, len(ids))
	return err
}
