package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is every setting of `buurtsignaal serve`. Each field has an
// environment variable (env tag) and a flag (flag tag) that overrides it; the
// README's reference table is generated from these tags.
type Config struct {
	Addr     string `env:"BUURTSIGNAAL_ADDR" envDefault:"127.0.0.1:8080" flag:"addr" help:"listen address"`
	DataDir  string `env:"BUURTSIGNAAL_DATA_DIR" envDefault:"./data" flag:"data-dir" help:"data directory of the embedded store and the key store"`
	Store    string `env:"BUURTSIGNAAL_STORE" flag:"store" help:"event store: empty for the embedded store, or a kurrentdb:// / esdb:// connection string"`
	Replica  string `env:"BUURTSIGNAAL_REPLICA" flag:"replica" help:"this replica's name, used in its audit stream names (default: the host name)"`
	Network  string `env:"BUURTSIGNAAL_NETWORK" envDefault:"default" flag:"network" help:"the network of principals that name none"`
	Tokens   string `env:"BUURTSIGNAAL_TOKENS_FILE" flag:"tokens-file" help:"tokens file (API.md format) for the embedded default and tests"`
	Teams    string `env:"BUURTSIGNAAL_TEAMS" flag:"teams" help:"comma-separated known teams (default: every team of the tokens file)"`
	Demo     bool   `env:"BUURTSIGNAAL_DEMO" flag:"demo" help:"seed a demo network and write a demo tokens file when the store is empty"`
	Timezone string `env:"BUURTSIGNAAL_TIMEZONE" envDefault:"Europe/Amsterdam" flag:"timezone" help:"time zone of working days"`
	Holidays string `env:"BUURTSIGNAAL_HOLIDAYS" flag:"holidays" help:"extra holidays, comma-separated YYYY-MM-DD (Dutch national holidays are built in)"`

	MasterKeyFile string `env:"BUURTSIGNAAL_MASTER_KEY_FILE" flag:"master-key-file" help:"master key file (created if missing; default <data-dir>/master-key.json)"`
	MasterKey     string `env:"BUURTSIGNAAL_MASTER_KEY" help:"master keyset, base64 (instead of a file)"`

	OIDCIssuer       string `env:"BUURTSIGNAAL_OIDC_ISSUER" flag:"oidc-issuer" help:"OIDC issuer URL; enables bearer JWTs"`
	OIDCAudience     string `env:"BUURTSIGNAAL_OIDC_AUDIENCE" flag:"oidc-audience" help:"OIDC audience (client id)"`
	OIDCClientSecret string `env:"BUURTSIGNAAL_OIDC_CLIENT_SECRET" help:"client secret of the console's sign-in (authorization-code flow with PKCE; empty for a public client)"`
	OIDCRoles        string `env:"BUURTSIGNAAL_OIDC_ROLES_CLAIM" envDefault:"roles" flag:"oidc-roles-claim" help:"claim holding roles"`
	OIDCTeams        string `env:"BUURTSIGNAAL_OIDC_TEAMS_CLAIM" envDefault:"teams" flag:"oidc-teams-claim" help:"claim holding team ids"`
	OIDCOrg          string `env:"BUURTSIGNAAL_OIDC_ORGANISATION_CLAIM" envDefault:"organisation" flag:"oidc-organisation-claim" help:"claim holding the organisation id"`

	RetentionWithdrawn time.Duration `env:"BUURTSIGNAAL_RETENTION_WITHDRAWN" envDefault:"4392h" flag:"retention-withdrawn" help:"keep personal data of withdrawn signals this long"`
	RetentionDeclined  time.Duration `env:"BUURTSIGNAAL_RETENTION_DECLINED" envDefault:"4392h" flag:"retention-declined" help:"keep personal data of declined signals (back with buurtsteun) this long"`
	RetentionClosed    time.Duration `env:"BUURTSIGNAAL_RETENTION_CLOSED" envDefault:"17520h" flag:"retention-closed" help:"keep personal data of closed cases this long after closing"`
	RetentionEvery     time.Duration `env:"BUURTSIGNAAL_RETENTION_INTERVAL" envDefault:"1h" flag:"retention-interval" help:"how often the server runs the retention sweep (0: never)"`

	ErasedFile       string        `env:"BUURTSIGNAAL_ERASED_FILE" flag:"erased-file" help:"erased-subjects file, kept outside backups so no restore rolls an erasure back (default <data-dir>.erased-subjects, beside the data directory; in production on other storage than the data)"`
	BackupDir        string        `env:"BUURTSIGNAAL_BACKUP_DIR" flag:"backup-dir" help:"directory of backups: backup and restore use it by default and the server reports the age of the newest"`
	BackupRetention  time.Duration `env:"BUURTSIGNAAL_BACKUP_RETENTION" envDefault:"840h" flag:"backup-retention" help:"backup --prune deletes backups older than this (35 days)"`
	ScavengeInterval time.Duration `env:"BUURTSIGNAAL_SCAVENGE_INTERVAL" envDefault:"0" flag:"scavenge-interval" help:"with a KurrentDB store: start a scavenge of every node this often when subjects were erased since the last one (0: never; turn it on for one replica)"`

	NoMFA bool `env:"BUURTSIGNAAL_NO_MFA" flag:"no-mfa" help:"do not require a multi-factor sign-in (OIDC amr) for privacy officer endpoints"`

	ReviewTerm int `env:"BUURTSIGNAAL_REVIEW_TERM" envDefault:"5" flag:"review-term" help:"working days (the network's calendar) a privacy officer has to review a break-glass read or a flag before it counts as overdue"`
	SuppressK  int `env:"BUURTSIGNAAL_SUPPRESS_K" envDefault:"5" flag:"suppress-k" help:"small-cell suppression in monitoring: no figure that describes fewer than k signals (and more than none) is published, nor one that would give it back by subtraction (never below 3)"`

	PprofAddr string `env:"BUURTSIGNAAL_PPROF_ADDR" flag:"pprof-addr" help:"serve Go's profiler (net/http/pprof) on this loopback address; off when empty"`

	RateLimit int `env:"BUURTSIGNAAL_RATE_LIMIT" envDefault:"20" flag:"rate-limit" help:"requests a second each principal may make on average (0: no limit); over it: 429 with Retry-After"`
	RateBurst int `env:"BUURTSIGNAAL_RATE_BURST" envDefault:"60" flag:"rate-burst" help:"requests a principal may make at once before the rate limit applies"`

	ReadHeaderTimeout time.Duration `env:"BUURTSIGNAAL_READ_HEADER_TIMEOUT" envDefault:"5s" flag:"read-header-timeout" help:"time to read a request's headers"`
	ReadTimeout       time.Duration `env:"BUURTSIGNAAL_READ_TIMEOUT" envDefault:"15s" flag:"read-timeout" help:"time to read a whole request"`
	WriteTimeout      time.Duration `env:"BUURTSIGNAAL_WRITE_TIMEOUT" envDefault:"30s" flag:"write-timeout" help:"time to answer a request, from the end of its headers"`
	IdleTimeout       time.Duration `env:"BUURTSIGNAAL_IDLE_TIMEOUT" envDefault:"120s" flag:"idle-timeout" help:"how long an idle keep-alive connection stays open"`

	TrustedProxies string `env:"BUURTSIGNAAL_TRUSTED_PROXIES" flag:"trusted-proxies" help:"comma-separated addresses or CIDR prefixes of load balancers whose X-Forwarded-For names the client (access records, sign-in limits)"`

	SessionLifetime    time.Duration `env:"BUURTSIGNAAL_SESSION_LIFETIME" envDefault:"8h" flag:"session-lifetime" help:"a console session ends this long after sign-in (and never outlives its token)"`
	SessionIdleTimeout time.Duration `env:"BUURTSIGNAAL_SESSION_IDLE_TIMEOUT" envDefault:"15m" flag:"session-idle-timeout" help:"a console session ends after this long without a request"`

	PublicURL            string        `env:"BUURTSIGNAAL_PUBLIC_URL" flag:"public-url" help:"the address browsers and receivers use (the load balancer's): links in notifications, the console's origin, Secure cookies and the OIDC callback (default http://<addr>)"`
	NoNotify             bool          `env:"BUURTSIGNAAL_NO_NOTIFY" flag:"no-notify" help:"this replica never sends notifications (on KurrentDB every replica may run the notifier: a lease in the cluster lets one send at a time)"`
	NotifySecretFile     string        `env:"BUURTSIGNAAL_NOTIFY_SECRET_FILE" flag:"notify-secret-file" help:"secret from which each webhook target's signing key is derived (created if missing; default <data-dir>/notify-secret)"`
	NotifyScanInterval   time.Duration `env:"BUURTSIGNAAL_NOTIFY_SCAN_INTERVAL" envDefault:"1m" flag:"notify-scan-interval" help:"how often the notifier looks for response norms about to lapse or lapsed"`
	NotifyLapsingPercent int           `env:"BUURTSIGNAAL_NOTIFY_LAPSING_PERCENT" envDefault:"80" flag:"notify-lapsing-percent" help:"a norm is about to lapse (norm_lapsing) when this share of it, in percent, has passed"`
	NotifyAttempts       int           `env:"BUURTSIGNAAL_NOTIFY_ATTEMPTS" envDefault:"5" flag:"notify-attempts" help:"tries per notification (exponential backoff with jitter) before it goes to the dead letters"`
	SMTPAddr             string        `env:"BUURTSIGNAAL_SMTP_ADDR" flag:"smtp-addr" help:"host:port of the SMTP relay for e-mail notifications (STARTTLS required); e-mail is off when empty"`
	SMTPFrom             string        `env:"BUURTSIGNAAL_SMTP_FROM" envDefault:"buurtsignaal@localhost" flag:"smtp-from" help:"sender address of e-mail notifications"`
	SMTPUsername         string        `env:"BUURTSIGNAAL_SMTP_USERNAME" flag:"smtp-username" help:"SMTP AUTH PLAIN user name (after STARTTLS)"`
	SMTPPassword         string        `env:"BUURTSIGNAAL_SMTP_PASSWORD" help:"SMTP AUTH PLAIN password"`
	SMTPCAFile           string        `env:"BUURTSIGNAAL_SMTP_CA_FILE" flag:"smtp-ca-file" help:"PEM certificates to trust for the relay's STARTTLS (default: the system's)"`

	ReadyInterval time.Duration `env:"BUURTSIGNAAL_READY_INTERVAL" envDefault:"2s" flag:"ready-interval" help:"how often the server probes the event store and its projections for GET /readyz and buurtsignaal_ready"`
	ReadyMaxLag   time.Duration `env:"BUURTSIGNAAL_READY_MAX_LAG" envDefault:"30s" flag:"ready-max-lag" help:"not ready while the projections have not applied what the log held this long ago (a stalled or refused subscription)"`

	LogLevel        string        `env:"BUURTSIGNAAL_LOG_LEVEL" envDefault:"info" flag:"log-level" help:"debug, info, warn or error"`
	ShutdownTimeout time.Duration `env:"BUURTSIGNAAL_SHUTDOWN_TIMEOUT" envDefault:"15s" flag:"shutdown-timeout" help:"how long shutdown waits for in-flight requests"`
}

// loadConfig reads the environment (getenv), then the flags in args: the
// settings command name uses (commandFlags; all for serve), and its own,
// which extra adds. A flag it does not know, or a malformed value, is a
// usage error.
func loadConfig(name string, args []string, getenv func(string) string, extra ...func(*flag.FlagSet)) (Config, *flag.FlagSet, error) {
	var cfg Config
	environ := map[string]string{}
	t := reflect.TypeOf(cfg)
	for i := 0; i < t.NumField(); i++ {
		if k := t.Field(i).Tag.Get("env"); k != "" {
			if v := getenv(k); v != "" {
				environ[k] = v
			}
		}
	}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, nil, fmt.Errorf("environment: %w", err)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	v := reflect.ValueOf(&cfg).Elem()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fl := f.Tag.Get("flag")
		if fl == "" || !usesFlag(name, fl) {
			continue
		}
		help := f.Tag.Get("help") + " (env " + f.Tag.Get("env") + ")"
		switch p := v.Field(i).Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, fl, *p, help)
		case *bool:
			fs.BoolVar(p, fl, *p, help)
		case *time.Duration:
			fs.DurationVar(p, fl, *p, help)
		case *int:
			fs.IntVar(p, fl, *p, help)
		}
	}
	setUsage(fs, name)
	for _, add := range extra {
		add(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, fs, err
		}
		return cfg, fs, usageError{err}
	}
	return cfg, fs, nil
}

// output sends a flag set's messages (-h, errors) to w.
func output(w io.Writer) func(*flag.FlagSet) { return func(fs *flag.FlagSet) { fs.SetOutput(w) } }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
