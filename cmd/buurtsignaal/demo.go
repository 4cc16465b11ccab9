package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/auth"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
)

// The demo network: a village in West Betuwe with two basisteam teams. Its
// tokens are fixed and printed: they are for a local demo only, never for
// real data.
var demoPrincipals = []struct {
	id, name, role, team, org string
}{
	{"anna", "Anna de Vries", "professional", "basisteam-beesd", "gemeente-west-betuwe"},
	{"bram", "Bram Jansen", "professional", "basisteam-geldermalsen", "gemeente-west-betuwe"},
	{"carla", "Carla Bakker", "buurtsteun", "", "buurtsteun-beesd"},
	{"dirk", "Dirk Visser", "buurtsteun", "", "buurtsteun-beesd"},
	{"eva", "Eva Smit", "partner", "", "obs-de-regenboog"},
	{"femke", "Femke Mulder", "partner", "", "woonstichting-west"},
	{"gert", "Gert Bos", "coordinator", "", "gemeente-west-betuwe"},
	{"hanna", "Hanna Meijer", "privacy_officer", "", "gemeente-west-betuwe"},
	{"ivo", "Ivo de Boer", "admin", "", "gemeente-west-betuwe"},
}

func demoToken(id string) string { return "demo-" + id }

// writeDemoTokens writes the demo tokens file (hashes only) and returns the
// tokens by principal id.
func writeDemoTokens(cfg Config) (map[string]string, error) {
	tokens := map[string]string{}
	var entries []auth.TokenEntry
	for _, p := range demoPrincipals {
		tokens[p.id] = demoToken(p.id)
		entries = append(entries, auth.NewTokenEntry(tokens[p.id], p.id, p.name, p.role, p.team, p.org))
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

// seedDemo fills an empty store with a realistic demo: organisations, and
// signals in every state of the lifecycle.
func seedDemo(ctx context.Context, sys *system) error {
	if sys.runner.Position() > 0 {
		return nil // seeded before
	}
	req := func(id string) app.Request {
		return app.Request{Actor: demoPrincipal(sys, id), RequestID: "demo", CorrelationID: "demo"}
	}
	orgs := []domain.RegisterOrganisation{
		{ID: "obs-de-regenboog", Name: "OBS De Regenboog", Kind: "school", Services: []domain.Service{{Name: "Schoolmaatschappelijk werk", Description: "Gesprekken met ouders en kind"}}},
		{ID: "woonstichting-west", Name: "Woonstichting West", Kind: "housing", Services: []domain.Service{{Name: "Huurachterstand", Description: "Betalingsregeling bij huurschuld"}}},
		{ID: "ouderenbond-beesd", Name: "Ouderenbond Beesd", Kind: "elderly", Services: []domain.Service{{Name: "Maatjesproject", Description: "Wekelijks bezoek van een vrijwilliger", Volunteer: true}}},
		{ID: "vv-beesd", Name: "Voetbalvereniging Beesd", Kind: "sports"},
	}
	for _, o := range orgs {
		if _, err := sys.app.RegisterOrganisation(ctx, req("ivo"), o); err != nil {
			return err
		}
	}
	raise := func(by, name, birth, neighbourhood, urgency, desc string, cats ...string) (uuid.UUID, error) {
		res, err := sys.app.Raise(ctx, req(by), app.RaiseInput{
			Subject:       app.SubjectData{Name: name, BirthDate: birth, Address: "Dorpsstraat 1, Beesd"},
			Neighbourhood: neighbourhood, Categories: cats, Urgency: urgency, Consent: "informed", Description: desc,
		})
		if err != nil {
			return uuid.Nil, err
		}
		return uuid.MustParse(res.ID), nil
	}
	step := func(by string, id uuid.UUID, cmd domain.Command) error {
		_, err := sys.app.Execute(ctx, req(by), id, func(domain.Signal, app.Sealer) (domain.Command, error) { return cmd, nil })
		return err
	}
	handover := func(by string, id uuid.UUID, team string) error {
		_, err := sys.app.HandOver(ctx, req(by), id, team, "")
		return err
	}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	// raised, waiting for a handover
	_, err := raise("carla", "Johanna Pieterse", "1941-03-12", "Beesd-centrum", "normal", "Mevrouw komt de deur niet meer uit en lijkt te vermageren.", "loneliness", "malnutrition")
	check(err)
	// handed over to a team, waiting for acceptance
	id, err := raise("dirk", "Kees van Dam", "1956-07-01", "Beesd-noord", "high", "Post stapelt zich op, meneer reageert niet op aanbellen.", "debt")
	check(err)
	check(handover("dirk", id, "basisteam-beesd"))
	// in care, with a follow-up and a referral
	id, err = raise("eva", "Sem de Groot", "2014-05-20", "Beesd-centrum", "high", "Leerling wordt structureel gepest en verzuimt.", "bullying")
	check(err)
	check(handover("gert", id, "basisteam-beesd"))
	check(step("anna", id, domain.AcceptHandover{}))
	check(step("anna", id, domain.AssignCase{ProfessionalID: "anna"}))
	check(step("anna", id, domain.RecordFollowUp{FollowUpID: uuid.New(), Kind: "home_visit", Outcome: "reached", NextDue: sys.now().AddDate(0, 0, 7).Format("2006-01-02")}))
	check(step("anna", id, domain.GiveFeedback{Code: "in_progress"}))
	// closed
	id, err = raise("femke", "Willem Hendriks", "1968-11-30", "Geldermalsen-oost", "normal", "Huurachterstand van drie maanden.", "debt", "housing")
	check(err)
	check(handover("gert", id, "basisteam-geldermalsen"))
	check(step("bram", id, domain.AcceptHandover{}))
	check(step("bram", id, domain.RecordFollowUp{FollowUpID: uuid.New(), Kind: "phone_call", Outcome: "reached"}))
	check(step("bram", id, domain.GiveFeedback{Code: "closed"}))
	check(step("bram", id, domain.CloseCase{Outcome: "resolved"}))
	// withdrawn
	id, err = raise("carla", "Piet Kramer", "1950-02-02", "Beesd-noord", "normal", "Dubbele melding, al bekend bij de huisarts.", "health")
	check(err)
	_, err = sys.app.Execute(ctx, req("carla"), id, func(_ domain.Signal, seal app.Sealer) (domain.Command, error) {
		r, err := seal("Dubbele melding")
		return domain.WithdrawSignal{Reason: r}, err
	})
	check(err)
	// acute, overdue soon
	_, err = raise("dirk", "Anouk Willems", "1989-09-09", "Beesd-centrum", "acute", "Zorgen over veiligheid thuis.", "safety")
	check(err)
	if len(errs) > 0 {
		return errs[0]
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
	fmt.Fprintf(w, "  # raise a signal as buurtsteun\n  curl -s -X POST -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"subject\":{\"name\":\"Test Persoon\"},\"neighbourhood\":\"Beesd-centrum\",\"categories\":[\"loneliness\"],\"urgency\":\"normal\",\"description\":\"Voorbeeld\",\"consent\":\"informed\"}' http://%s/v1/signals\n", tokens["carla"], addr)
	fmt.Fprintf(w, "  OpenAPI: http://%s/openapi.json   metrics: http://%s/metrics\n\n", addr, addr)
}
