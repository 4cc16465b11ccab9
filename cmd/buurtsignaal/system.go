package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tink-crypto/tink-go/v2/tink"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/buurtsignaal/buurtsignaal/adapters/auth"
	"github.com/buurtsignaal/buurtsignaal/adapters/backup"
	"github.com/buurtsignaal/buurtsignaal/adapters/console"
	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs"
	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/adapters/kurrentdb"
	"github.com/buurtsignaal/buurtsignaal/adapters/metrics"
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
	// fs holds every file the server writes: the stores, the files beside
	// them (erased-subjects file, master key, notification secret) and the
	// backups. vfs.Default in production; the power-loss test gives a
	// crashable one in memory.
	fs      vfs.FS
	closers []func() error

	// readStore holds the read models' history and checkpoints; rebuild
	// makes startProjections clear them and replay the whole log.
	readStore *readstore.Store
	rebuild   bool

	// sweepTotal and sweepDone count the retention sweep's subjects, for
	// its progress.
	sweepTotal, sweepDone atomic.Uint64
	// backupProgress counts the bytes a backup checks.
	backupProgress backup.Progress
	tracer         trace.TracerProvider // nil: no spans
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
// metrics. now is the clock (nil: time.Now); fsys is the file system of
// everything the server writes (nil: the operating system's).
func openSystem(ctx context.Context, cfg Config, log *slog.Logger, now func() time.Time, fsys vfs.FS) (_ *system, err error) {
	return openSystemTraced(ctx, cfg, log, now, fsys, nil)
}

// openSystemTraced is openSystem whose store, projection catch-up and
// whatever else serve wires get their spans from tp (nil: none).
func openSystemTraced(ctx context.Context, cfg Config, log *slog.Logger, now func() time.Time, fsys vfs.FS, tp trace.TracerProvider) (_ *system, err error) {
	if now == nil {
		now = time.Now
	}
	if fsys == nil {
		fsys = vfs.Default
	}
	s := &system{cfg: cfg, log: log, now: now, fs: fsys, metrics: metrics.NewRegistry(), reg: domain.NewRegistry(), tracer: tp}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	// The data directory's entry is synced too: the stores' directories in
	// it are, by Pebble, but a power cut would take the data directory with
	// them if its own entry were not.
	if err := durablefs.MkdirAll(fsys, cfg.DataDir); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := privateFiles(cfg.DataDir, erasedFile(cfg), cfg.MasterKeyFile, cfg.NotifySecretFile, cfg.BackupDir); err != nil {
		return nil, fmt.Errorf("data files: %w", err)
	}
	store, err := openStore(ctx, cfg, log, fsys)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, store.Close)
	s.pebble, _ = store.(*pebblestore.Store)
	s.store = tracing.InstrumentStore(metrics.InstrumentStore(store, s.metrics), tp)

	if err := moveErasedFile(fsys, cfg, log); err != nil {
		return nil, fmt.Errorf("erased subjects: %w", err)
	}
	master, err := masterKey(cfg, fsys)
	if err != nil {
		return nil, err
	}
	s.master = master
	if s.keys, err = openKeys(ctx, cfg, master, log, fsys); err != nil {
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

	cal, err := calendar(cfg, now())
	if err != nil {
		return nil, err
	}
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
	if s.readStore, err = readstore.Open(filepath.Join(cfg.DataDir, "readmodels"), readstore.Options{FS: fsys}); err != nil {
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

// calendar is the working-day calendar of cfg: its time zone, the Dutch
// holidays of the years around now and its own.
func calendar(cfg Config, now time.Time) (domain.Calendar, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return domain.Calendar{}, fmt.Errorf("timezone %q: %w", cfg.Timezone, err)
	}
	var holidays []string
	for y := now.Year() - 3; y <= now.Year()+3; y++ {
		holidays = append(holidays, domain.DutchHolidays(y)...)
	}
	holidays = append(holidays, splitList(cfg.Holidays)...)
	return domain.NewCalendar(loc, holidays), nil
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
func moveErasedFile(fsys vfs.FS, cfg Config, log *slog.Logger) error {
	old := filepath.Join(cfg.DataDir, "erased-subjects")
	ids, err := keystore.ReadErased(fsys, old)
	if err != nil || ids == nil {
		if _, serr := fsys.Stat(old); serr != nil {
			return nil // none there
		}
		if err != nil {
			return err
		}
	}
	to := erasedFile(cfg)
	for _, id := range ids {
		if err := keystore.RecordErased(fsys, to, id); err != nil {
			return err
		}
	}
	if err := errors.Join(fsys.Remove(old), durablefs.SyncDir(fsys, cfg.DataDir)); err != nil {
		return err
	}
	log.Info("moved the erased-subjects file out of the data directory", "to", to, "subjects", len(ids))
	return nil
}

func openStore(ctx context.Context, cfg Config, log *slog.Logger, fsys vfs.FS) (eventlog.Store, error) {
	switch strings.SplitN(cfg.Store, "://", 2)[0] {
	case "kurrentdb", "kurrent", "esdb", "esdb+discover", "kurrentdb+discover", "kurrent+discover":
		st, err := kurrentdb.Open(ctx, cfg.Store, kurrentdb.Options{Log: log})
		if err != nil {
			return nil, fmt.Errorf("kurrentdb store: %w", err)
		}
		return st, nil
	}
	if cfg.Store == "" {
		st, err := pebblestore.Open(filepath.Join(cfg.DataDir, "events"), pebblestore.Options{FS: fsys})
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

func masterKey(cfg Config, fsys vfs.FS) (tink.AEAD, error) {
	if cfg.MasterKey != "" {
		return keystore.MasterKeyFromEnv(cfg.MasterKey)
	}
	path := cfg.MasterKeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, "master-key.json")
	}
	return keystore.LoadOrCreateMasterKey(fsys, path)
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
