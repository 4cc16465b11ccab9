package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/auth"
	"github.com/buurtsignaal/buurtsignaal/adapters/console"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// newConsole builds the web console over the API: the token form when a
// tokens file is configured, the OIDC sign-in when an issuer and its client
// (the audience) are. Sessions are sealed under the deployment's session key
// (created once in the log, wrapped by the master key) and their ends are
// recorded in the log, so every replica serves every session.
func newConsole(ctx context.Context, sys *system, api http.Handler, authn domain.Authenticator, publicURL string, clientAddr func(*http.Request) string) (*console.Console, error) {
	cfg := sys.cfg
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %w", cfg.Timezone, err)
	}
	wrapped, err := sys.app.SessionKey(ctx, func() ([]byte, error) { return console.NewSessionKey(sys.master) })
	if err != nil {
		return nil, fmt.Errorf("console session key: %w", err)
	}
	sealer, err := console.SessionSealer(sys.master, wrapped)
	if err != nil {
		return nil, err
	}
	opts := console.Options{API: api, Auth: authn, TokenForm: cfg.Tokens != "", Log: sys.log, Now: sys.now, Location: loc,
		Sealer: sealer, Ended: sessionEnds{sys}, SessionTTL: cfg.SessionLifetime, IdleTimeout: cfg.SessionIdleTimeout,
		PublicURL: publicURL, ClientAddr: clientAddr}
	if cfg.OIDCIssuer != "" && cfg.OIDCAudience != "" {
		o, err := console.NewOIDCClient(ctx, cfg.OIDCIssuer, cfg.OIDCAudience, cfg.OIDCClientSecret, publicURL)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		opts.OIDC = o
	}
	return console.New(opts)
}

// directory lists the principals of a network from the tokens file, for
// GET /v1/principals (display names in the console); nil without one: with
// OIDC the identity provider holds the directory.
func directory(tokens *auth.TokensFile) func(network string) []domain.Principal {
	if tokens == nil {
		return nil
	}
	return func(network string) []domain.Principal {
		var out []domain.Principal
		for _, p := range tokens.Principals() {
			if p.Network == network {
				out = append(out, p)
			}
		}
		return out
	}
}

// location is the time zone of the network's working days.
func (s *system) location() *time.Location {
	loc, err := time.LoadLocation(s.cfg.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// sessionEnds gives the console the log's record of signed-out sessions.
type sessionEnds struct{ sys *system }

func (e sessionEnds) End(ctx context.Context, p domain.Principal, id string, until time.Time) error {
	return e.sys.app.EndSession(ctx, p, id, until)
}

func (e sessionEnds) Ended(id string) (ended bool) {
	e.sys.runner.Read(func() { ended = e.sys.sessions.Ended(id) })
	return ended
}

// withConsole serves /console from the console and everything else from
// the API.
func withConsole(api, cons http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/") {
			cons.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
