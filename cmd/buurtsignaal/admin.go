package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/audit"
	"github.com/buurtsignaal/buurtsignaal/adapters/backup"
)

// The admin socket: the commands that find the data directory held by a
// running server ask it there (backup, verify, retention, HSDS import).

// adminSocket is the server's backup trigger.
func adminSocket(cfg Config) string { return filepath.Join(cfg.DataDir, "admin.sock") }

// serveAdmin answers POST /backup?to=DIR on the admin socket until ctx ends.
func (s *system) serveAdmin(ctx context.Context, path string, log *slog.Logger) (stop func(), err error) {
	_ = os.Remove(path) // a stale socket of a previous run
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	// The commands that find the data directory held by this server ask it
	// here: verify its audit chains, run the retention sweep.
	mux.HandleFunc("GET /verify", func(w http.ResponseWriter, r *http.Request) {
		rep, err := audit.Verify(r.Context(), s.store)
		if err != nil {
			log.Error("verify failed", "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("POST /retention", func(w http.ResponseWriter, r *http.Request) {
		ids, err := s.sweep(r.Context(), r.URL.Query().Get("apply") == "true")
		ans := struct {
			IDs   []uuid.UUID `json:"ids"`
			Error string      `json:"error,omitempty"`
		}{IDs: ids}
		if err != nil {
			log.Error("retention sweep", "err", err, "erased", len(ids))
			ans.Error = err.Error()
		}
		_ = json.NewEncoder(w).Encode(ans)
	})
	s.adminHSDS(mux, log)
	mux.HandleFunc("POST /backup", func(w http.ResponseWriter, r *http.Request) {
		dir, m, err := s.backup(r.Context(), r.URL.Query().Get("to"))
		if err != nil {
			log.Error("backup failed", "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log.Info("backup written", "dir", dir, "head_position", m.HeadPosition)
		_ = json.NewEncoder(w).Encode(struct {
			Dir string `json:"dir"`
			backup.Manifest
		}{dir, m})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close(); _ = os.Remove(path) }, nil
}

var errNoServer = errors.New("no server on the admin socket")

// adminClient talks HTTP over the admin socket.
func adminClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
}

// askAdmin asks the running server over its admin socket and decodes its
// JSON answer into out; errNoServer when none runs.
func askAdmin(ctx context.Context, socket, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://admin"+path, nil)
	if err != nil {
		return err
	}
	return doAdmin(socket, req, out)
}

// askAdminBody posts body to the running server's admin socket.
func askAdminBody(ctx context.Context, socket, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://admin"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	return doAdmin(socket, req, out)
}

func doAdmin(socket string, req *http.Request, out any) error {
	resp, err := adminClient(socket).Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return errNoServer
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server (admin socket %s): %s", socket, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, out)
}

// askServer asks the running server for a backup; errNoServer when none runs.
func askServer(ctx context.Context, socket, to string) ([]byte, error) {
	client := adminClient(socket)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://admin/backup?to="+url.QueryEscape(to), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, errNoServer
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("backup by the server: %s", bytes.TrimSpace(body))
	}
	return body, nil
}
