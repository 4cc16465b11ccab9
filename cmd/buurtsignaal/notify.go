package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs"
	"github.com/buurtsignaal/buurtsignaal/adapters/httpapi"
	"github.com/buurtsignaal/buurtsignaal/adapters/loglease"
	"github.com/buurtsignaal/buurtsignaal/adapters/logoutbox"
	"github.com/buurtsignaal/buurtsignaal/adapters/notify"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// notifier builds the notifier with its outbox and channels. On the
// embedded store (one process per data directory) the outbox is local
// (<data-dir>/outbox), derived state not part of backups: a restored server
// starts a new one at the log's head. On KurrentDB every replica runs a
// notifier: the lease "notifier" in the cluster lets one deliver at a time,
// and the outbox lives in the cluster (streams outbox-notifier-<n>), so the
// replica that takes over resumes where the last one stopped and any
// replica lists and retries the dead letters.
func (s *system) notifier() (*notify.Notifier, error) {
	var (
		outbox domain.Outbox
		lease  domain.Lease
	)
	if s.pebble != nil {
		local, err := notify.OpenOutbox(filepath.Join(s.cfg.DataDir, "outbox"), s.fs)
		if err != nil {
			return nil, err
		}
		outbox = local
	} else {
		if s.cfg.Replica == "" || strings.Contains(s.cfg.Replica, "/") {
			return nil, fmt.Errorf("replica name %q: the notifier's lease needs a name without '/'", s.cfg.Replica)
		}
		outbox = logoutbox.Open(s.store, "notifier", logoutbox.Options{Replica: s.cfg.Replica, Now: s.now, Log: s.log})
		lease = loglease.New(s.store, "notifier", loglease.Options{Replica: s.cfg.Replica, Log: s.log})
		if s.cfg.NotifySecretFile == "" {
			s.log.Warn("notifications on a cluster: give every replica the same --notify-secret-file, or receivers reject the webhooks of the replica that takes over")
		}
	}
	s.closers = append(s.closers, outbox.Close)
	secret, err := loadOrCreateSecret(s.fs, notifySecretFile(s.cfg))
	if err != nil {
		return nil, fmt.Errorf("notification secret: %w", err)
	}
	m := notify.NewMetrics(s.metrics, outbox.Count)
	n := &notify.Notifier{
		Outbox: outbox, Lease: lease, Store: s.store, Reg: s.reg, Runner: s.runner, Cases: s.cases, Reviews: s.reviews, Targets: s.targets,
		Webhook:      &notify.Webhook{Attempts: s.cfg.NotifyAttempts, Retried: m.RetriedFunc("webhook")},
		Secret:       secret,
		Now:          s.now,
		Log:          s.log,
		Metrics:      m,
		ScanEvery:    s.cfg.NotifyScanInterval,
		LapsingShare: float64(s.cfg.NotifyLapsingPercent) / 100,
	}
	if s.cfg.SMTPAddr != "" {
		mailer := &notify.Mailer{Addr: s.cfg.SMTPAddr, From: s.cfg.SMTPFrom, Username: s.cfg.SMTPUsername, Password: s.cfg.SMTPPassword,
			Attempts: s.cfg.NotifyAttempts, Retried: m.RetriedFunc("email")}
		if s.cfg.SMTPCAFile != "" {
			pem, err := os.ReadFile(s.cfg.SMTPCAFile)
			if err != nil {
				return nil, fmt.Errorf("smtp CA file: %w", err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, errors.New("smtp CA file: no PEM certificate in it")
			}
			mailer.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
		n.Mailer = mailer
	}
	return n, nil
}

// notifications is the API's view of the notifier (nil when off).
func notifications(n *notify.Notifier) httpapi.Notifications {
	if n == nil {
		return nil
	}
	return n
}

func notifySecretFile(cfg Config) string {
	if cfg.NotifySecretFile != "" {
		return cfg.NotifySecretFile
	}
	return filepath.Join(cfg.DataDir, "notify-secret")
}

// loadOrCreateSecret reads a hex secret of 32 bytes from the file at path
// on fsys, creating the file (mode 0600) when it does not exist. It is
// durable before it is used, since receivers hold keys derived from it:
// written whole to a temporary file, synced, linked into place (a process
// starting at the same time keeps the one that was first) and its
// directory synced; the directory of a secret found there is synced too,
// as the process that made it may have crashed before it did.
func loadOrCreateSecret(fsys vfs.FS, path string) ([]byte, error) {
	data, err := readFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		if err := durablefs.MkdirAll(fsys, fsys.PathDir(path)); err != nil {
			return nil, err
		}
		if err := durablefs.CreateFile(fsys, path, []byte(hex.EncodeToString(secret)+"\n")); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		data, err = readFile(fsys, path)
	} else if err == nil {
		err = durablefs.SyncDir(fsys, fsys.PathDir(path))
	}
	if err != nil {
		return nil, err
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(secret) < 16 {
		return nil, errors.New("the file must hold at least 16 bytes in hex")
	}
	return secret, nil
}

// readFile reads the whole file at path on fsys.
func readFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
