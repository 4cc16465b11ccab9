// Package demo is the seeded demo of `buurtsignaal serve --demo`: the
// principals of a demo network and a month of its work, written through the
// application's use cases (domain/app) like any other client's, so the demo
// shows what the product does and nothing the product cannot. The command
// wires it: it writes the principals' tokens and seeds an empty store.
package demo

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
)

// Principal is one person of the demo network.
type Principal struct {
	ID, Name, Role, Team, Org string
}

// Principals are the demo network's people: a village in West Betuwe with
// two basisteam teams. The command gives each a fixed token, printed: for a
// local demo only, never for real data.
var Principals = []Principal{
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

// Seed fills an empty store with a realistic demo through svc's use
// cases, as the principals principal returns (by the ids of Principals):
// organisations, neighbourhoods, routing rules, and a month of signals in
// every state of the lifecycle (raised weeks, days and hours before now, so
// the response monitor's chart and figures have something to show):
// waiting for a team and declined once, overdue, answered late, in care
// with a follow-up due today and a referral, matched with a second signal
// about the same resident, closed, withdrawn, and handed over at once by a
// routing rule. loc is the network's time zone (for follow-up dates);
// wait returns once the read models hold the log up to a position (the
// seed reads its own writes: a referral is answered once the read models
// know it). It returns the first error; the caller seeds an empty store
// only.
func Seed(ctx context.Context, svc *app.Service, principal func(id string) domain.Principal, now func() time.Time, loc *time.Location,
	wait func(ctx context.Context, pos uint64) error) error {
	req := func(id string) app.Request {
		return app.Request{Actor: principal(id), RequestID: "demo", CorrelationID: "demo"}
	}
	// ago runs commands as if it were some time ago.
	ago := func(d time.Duration) *app.Service {
		a := *svc
		a.Now = func() time.Time { return now().Add(-d) }
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
		if err == nil {
			check(wait(ctx, res.Position))
		}
		return res.ReferralID
	}
	date := func(d time.Duration) string { return now().Add(d).In(loc).Format("2006-01-02") }

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
	return nil
}
