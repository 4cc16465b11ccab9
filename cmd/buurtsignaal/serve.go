package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/backup"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/buurtsignaal/buurtsignaal/adapters/audit"
	"github.com/buurtsignaal/buurtsignaal/adapters/hsds"
	"github.com/buurtsignaal/buurtsignaal/adapters/httpapi"
	"github.com/buurtsignaal/buurtsignaal/adapters/metrics"
	"github.com/buurtsignaal/buurtsignaal/adapters/notify"
	"github.com/buurtsignaal/buurtsignaal/adapters/tracing"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

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
	// fs replaces the file system of everything the server writes (the
	// power-loss test gives a crashable one in memory).
	fs vfs.FS
	// sys receives the system once the server is ready.
	sys func(*system)
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
	sys, err := openSystemTraced(ctx, cfg, log, h.now, h.fs, tp)
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
		Orgs: sys.orgs, Reader: app.NewReader(auditor, sys.keys), Audit: sys.audit, Reviews: sys.reviews, ReviewTermDays: cfg.ReviewTerm, Metrics: sys.metrics, Now: sys.now,
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
			if t, ok := backup.Newest(sys.fs, cfg.BackupDir); ok {
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
		if h.sys != nil {
			h.sys(sys)
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
