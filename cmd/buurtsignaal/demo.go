package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/buurtsignaal/buurtsignaal/adapters/auth"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app/demo"
)

func demoToken(id string) string { return "demo-" + id }

// writeDemoTokens writes the demo tokens file (hashes only) and returns the
// tokens by principal id.
func writeDemoTokens(cfg Config) (map[string]string, error) {
	tokens := map[string]string{}
	var entries []auth.TokenEntry
	for _, p := range demo.Principals {
		tokens[p.ID] = demoToken(p.ID)
		entries = append(entries, auth.NewTokenEntry(tokens[p.ID], p.ID, p.Name, p.Role, p.Team, p.Org))
	}
	data, err := auth.EncodeTokens(entries)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg.Tokens, data, 0o600); err != nil {
		return nil, fmt.Errorf("demo tokens: %w", err)
	}
	return tokens, nil
}

func demoPrincipal(sys *system, id string) domain.Principal {
	for _, p := range sys.tokens.Principals() {
		if p.ID == id {
			return p
		}
	}
	panic("demo principal missing: " + id)
}

// seedDemo seeds an empty store with the demo (demo.Seed).
func seedDemo(ctx context.Context, sys *system) error {
	if sys.runner.Position() > 0 {
		return nil // seeded before
	}
	if err := demo.Seed(ctx, sys.app, func(id string) domain.Principal { return demoPrincipal(sys, id) }, sys.now, sys.location(), sys.runner.WaitFor); err != nil {
		return err
	}
	sys.log.Info("demo seeded")
	return nil
}

func printDemo(w io.Writer, addr string, tokens map[string]string) {
	fmt.Fprintf(w, "\nBuurtsignaal demo is running on http://%s (embedded store, demo data).\n", addr)
	fmt.Fprintf(w, "\nWeb console: http://%s/console  (sign in with a demo token:\n", addr)
	fmt.Fprintf(w, "  professional %s, coordinator %s, privacy officer %s, buurtsteun %s, partner %s)\n\n",
		tokens["anna"], tokens["gert"], tokens["hanna"], tokens["carla"], tokens["eva"])
	fmt.Fprintln(w, "Demo tokens are for this local demo only. With curl, per role:")
	lines := []struct{ id, what, path string }{
		{"anna", "professional: caseload of basisteam-beesd", "/v1/caseload"},
		{"carla", "buurtsteun: status of my signals", "/v1/my/signals"},
		{"eva", "partner: the sociale kaart plus", "/v1/organisations"},
		{"gert", "coordinator: response monitoring", "/v1/monitor/response"},
		{"gert", "coordinator: overdue signals", "/v1/monitor/overdue"},
		{"hanna", "privacy officer: verify the audit chains", "/v1/audit/verify"},
		{"hanna", "privacy officer: break-glass reads to review", "/v1/audit/break-glass"},
		{"hanna", "privacy officer: what anna accessed", "/v1/audit/actors/anna"},
		{"ivo", "admin: organisations", "/v1/organisations"},
	}
	for _, l := range lines {
		if tok, ok := tokens[l.id]; ok {
			fmt.Fprintf(w, "  # %s\n  curl -s -H 'Authorization: Bearer %s' http://%s%s\n", l.what, tok, addr, l.path)
		}
	}
	fmt.Fprintf(w, "  # raise a signal as buurtsteun\n  curl -s -X POST -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"subject\":{\"name\":\"Test Persoon\"},\"neighbourhood\":\"beesd-centrum\",\"categories\":[\"loneliness\"],\"urgency\":\"normal\",\"description\":\"Voorbeeld\",\"consent\":\"informed\"}' http://%s/v1/signals\n", tokens["carla"], addr)
	fmt.Fprintf(w, "  OpenAPI: http://%s/openapi.json   metrics: http://%s/metrics\n\n", addr, addr)
}
