package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

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

// seedDemo fills an empty store with a realistic demo: organisations,
// routing rules, and a month of signals in every state of the lifecycle
// (raised weeks, days and hours ago, so the response monitor's chart and
// figures have something to show): waiting for a team and declined once,
// overdue, answered late, in care with a follow-up due today and a
// referral, matched with a second signal about the same resident, closed,
// withdrawn, and handed over at once by a routing rule.
func seedDemo(ctx context.Context, sys *system) error {
	if sys.runner.Position() > 0 {
		return nil // seeded before
	}
	req := func(id string) app.Request {
		return app.Request{Actor: demoPrincipal(sys, id), RequestID: "demo", CorrelationID: "demo"}
	}
	// ago runs commands as if it were some time ago.
	ago := func(d time.Duration) *app.Service {
		a := *sys.app
		a.Now = func() time.Time { return sys.now().Add(-d) }
		return &a
	}
	const day = 24 * time.Hour
	orgs := []domain.RegisterOrganisation{
		{ID: "obs-de-regenboog", Name: "OBS De Regenboog", Kind: "school", Services: []domain.Service{{Name: "Schoolmaatschappelijk werk", Description: "Gesprekken met ouders en kind"}}},
		{ID: "woonstichting-west", Name: "Woonstichting West", Kind: "housing", Services: []domain.Service{{Name: "Huurachterstand", Description: "Betalingsregeling bij huurschuld"}}},
		{ID: "ouderenbond-beesd", Name: "Ouderenbond Beesd", Kind: "elderly", Services: []domain.Service{{Name: "Maatjesproject", Description: "Wekelijks bezoek van een vrijwilliger", Volunteer: true}}},
		{ID: "vv-beesd", Name: "Voetbalvereniging Beesd", Kind: "sports"},
	}
	for _, o := range orgs {
		if _, err := ago(30*day).RegisterOrganisation(ctx, req("ivo"), o); err != nil {
			return err
		}
	}
	// The network's neighbourhoods: a closed list, so no free text is kept
	// where it stays in clear.
	if _, err := ago(30*day).SetNeighbourhoods(ctx, req("gert"), []domain.Neighbourhood{
		{ID: "beesd-centrum", Name: "Beesd-Centrum"}, {ID: "beesd-noord", Name: "Beesd-Noord"},
		{ID: "geldermalsen-oost", Name: "Geldermalsen-Oost"},
	}); err != nil {
		return err
	}
	// Acute signals go to Beesd's team as they are raised; Geldermalsen's
	// neighbourhoods to its own team; everything else, when its signaller
	// lets the rules choose, to Beesd.
	if _, err := ago(30*day).SetRoutingRules(ctx, req("gert"), []domain.RoutingRule{
		{ID: "acuut", Urgency: "acute", TeamID: "basisteam-beesd", OnRaise: true},
		{ID: "geldermalsen-oost", Neighbourhood: "geldermalsen-oost", TeamID: "basisteam-geldermalsen"},
		{ID: "overig", TeamID: "basisteam-beesd"},
	}); err != nil {
		return err
	}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	raise := func(when time.Duration, by, name, birth, neighbourhood, urgency, desc string, cats ...string) uuid.UUID {
		res, err := ago(when).Raise(ctx, req(by), app.RaiseInput{
			Subject:       app.SubjectData{Name: name, BirthDate: birth, Address: "Dorpsstraat 1, Beesd"},
			Neighbourhood: neighbourhood, Categories: cats, Urgency: urgency, Consent: "informed", Description: desc,
		})
		check(err)
		if err != nil {
			return uuid.Nil
		}
		return uuid.MustParse(res.ID)
	}
	step := func(when time.Duration, by string, id uuid.UUID, cmd domain.Command) {
		_, err := ago(when).Execute(ctx, req(by), id, func(domain.Signal, app.Sealer) (domain.Command, error) { return cmd, nil })
		check(err)
	}
	sealed := func(when time.Duration, by string, id uuid.UUID, text string, cmd func(domain.Sealed) domain.Command) {
		_, err := ago(when).Execute(ctx, req(by), id, func(_ domain.Signal, seal app.Sealer) (domain.Command, error) {
			s, err := seal(text)
			return cmd(s), err
		})
		check(err)
	}
	handover := func(when time.Duration, by string, id uuid.UUID, team string) {
		_, err := ago(when).HandOver(ctx, req(by), id, team, "")
		check(err)
	}
	refer := func(when time.Duration, by string, id uuid.UUID, org, service, reason string) uuid.UUID {
		res, err := ago(when).Refer(ctx, req(by), id, org, service, reason)
		check(err)
		return res.ReferralID
	}
	date := func(d time.Duration) string { return sys.now().Add(d).In(sys.location()).Format("2006-01-02") }

	// Closed: raised three weeks ago, referred, answered, closed.
	id := raise(20*day, "femke", "Willem Hendriks", "1968-11-30", "geldermalsen-oost", "normal", "Huurachterstand van drie maanden.", "debt", "housing")
	handover(20*day, "femke", id, "basisteam-geldermalsen")
	step(19*day, "bram", id, domain.AcceptHandover{})
	step(18*day, "bram", id, domain.RecordFollowUp{FollowUpID: uuid.New(), Kind: "phone_call", Outcome: "reached"})
	ref := refer(18*day, "bram", id, "woonstichting-west", "Huurachterstand", "Betalingsregeling nodig")
	if ref != uuid.Nil {
		_, err := ago(17*day).AnswerReferral(ctx, req("femke"), ref, domain.RefAccepted, "")
		check(err)
	}
	step(12*day, "bram", id, domain.GiveFeedback{Code: "closed"})
	step(12*day, "bram", id, domain.CloseCase{Outcome: "resolved"})
	// Withdrawn by its signaller.
	id = raise(15*day, "carla", "Piet Kramer", "1950-02-02", "beesd-noord", "normal", "Dubbele melding, al bekend bij de huisarts.", "health")
	sealed(14*day, "carla", id, "Dubbele melding", func(s domain.Sealed) domain.Command { return domain.WithdrawSignal{Reason: s} })
	// Answered late: accepted after its norm of three working days.
	id = raise(13*day, "dirk", "Lotte Vermeulen", "1947-06-15", "beesd-noord", "high", "Valt vaak, woont alleen.", "health", "loneliness")
	handover(13*day, "dirk", id, "basisteam-beesd")
	step(7*day, "anna", id, domain.AcceptHandover{})
	step(7*day, "anna", id, domain.AssignCase{ProfessionalID: "anna"})
	step(6*day, "anna", id, domain.RecordFollowUp{FollowUpID: uuid.New(), Kind: "home_visit", Outcome: "reached", NextDue: date(3 * day)})
	// In care, with a follow-up due today and a referral the partner has
	// yet to answer.
	sem := raise(9*day, "eva", "Sem de Groot", "2014-05-20", "beesd-centrum", "high", "Leerling wordt structureel gepest en verzuimt.", "bullying")
	handover(9*day, "gert", sem, "basisteam-beesd")
	step(8*day, "anna", sem, domain.AcceptHandover{})
	step(8*day, "anna", sem, domain.AssignCase{ProfessionalID: "anna"})
	step(5*day, "anna", sem, domain.RecordFollowUp{FollowUpID: uuid.New(), Kind: "home_visit", Outcome: "reached", NextDue: date(0)})
	step(5*day, "anna", sem, domain.GiveFeedback{Code: "in_progress"})
	refer(5*day, "anna", sem, "obs-de-regenboog", "Schoolmaatschappelijk werk", "Gesprekken met ouders en kind")
	// Declined by a team, back without one, waiting for a new handover.
	id = raise(7*day, "femke", "Fatima El Amrani", "1979-01-25", "geldermalsen-oost", "normal", "Schimmel in de woning, kinderen vaak ziek.", "housing", "health")
	handover(7*day, "femke", id, "basisteam-geldermalsen")
	sealed(6*day, "bram", id, "Hoort bij de woningcorporatie; eerst daar melden", func(s domain.Sealed) domain.Command { return domain.DeclineHandover{Reason: s} })
	// Handed over, not accepted: late.
	id = raise(6*day, "dirk", "Kees van Dam", "1956-07-01", "beesd-noord", "high", "Post stapelt zich op, meneer reageert niet op aanbellen.", "debt")
	handover(6*day, "dirk", id, "basisteam-beesd")
	// Raised, still without a team a working day on.
	raise(4*day, "carla", "Johanna Pieterse", "1941-03-12", "beesd-centrum", "normal", "Mevrouw komt de deur niet meer uit en lijkt te vermageren.", "loneliness", "malnutrition")
	// A second signal about Sem: matched with the first; in care,
	// unassigned, its follow-up's day passed.
	id = raise(3*day, "dirk", "Sem de Groot", "2014-05-20", "beesd-centrum", "normal", "Zit vaak alleen op het schoolplein.", "bullying", "loneliness")
	handover(3*day, "dirk", id, "basisteam-beesd")
	step(2*day, "anna", id, domain.AcceptHandover{})
	step(2*day, "anna", id, domain.RecordFollowUp{FollowUpID: uuid.New(), Kind: "contact_attempt", Outcome: "not_reached", NextDue: date(-1 * day)})
	// Acute: handed over at once by the routing rule "acuut".
	raise(2*time.Hour, "dirk", "Anouk Willems", "1989-09-09", "beesd-centrum", "acute", "Zorgen over veiligheid thuis.", "safety")
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
	fmt.Fprintf(w, "  # raise a signal as buurtsteun\n  curl -s -X POST -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"subject\":{\"name\":\"Test Persoon\"},\"neighbourhood\":\"beesd-centrum\",\"categories\":[\"loneliness\"],\"urgency\":\"normal\",\"description\":\"Voorbeeld\",\"consent\":\"informed\"}' http://%s/v1/signals\n", tokens["carla"], addr)
	fmt.Fprintf(w, "  OpenAPI: http://%s/openapi.json   metrics: http://%s/metrics\n\n", addr, addr)
}
