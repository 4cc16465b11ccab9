package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/buurtsignaal/buurtsignaal/adapters/console"
	"github.com/buurtsignaal/buurtsignaal/adapters/httpapi"
)

// newConsole builds the web console over the API: the token form when a
// tokens file is configured, the OIDC sign-in when an issuer and its client
// (the audience) are.
func newConsole(ctx context.Context, cfg Config, api http.Handler, authn httpapi.Authenticator, log *slog.Logger, now func() time.Time) (*console.Console, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %w", cfg.Timezone, err)
	}
	opts := console.Options{API: api, Auth: authn, TokenForm: cfg.Tokens != "", Log: log, Now: now, Location: loc}
	if cfg.OIDCIssuer != "" && cfg.OIDCAudience != "" {
		o, err := console.NewOIDCClient(ctx, cfg.OIDCIssuer, cfg.OIDCAudience, cfg.OIDCClientSecret, cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		opts.OIDC = o
	}
	return console.New(opts)
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
