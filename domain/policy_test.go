package domain

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// allow is what Authorize should answer for one role and one action, for an
// object of the principal's own (own signal, own team, own organisation's
// referral) and for another's (another's signal, another team, another
// organisation). "" is deny. An object of another network is always denied.
type allow struct{ own, other Basis }

func both(b Basis) allow    { return allow{b, b} }
func ownOnly(b Basis) allow { return allow{own: b} }

// policyTable is the authorization matrix of the domain: every action, every
// role. Roles that are not named are denied.
var policyTable = map[Action]map[Role]allow{
	ActRaise:    {RoleBuurtsteun: both(BasisRole), RolePartner: both(BasisRole), RoleProfessional: both(BasisRole)},
	ActWithdraw: {RoleBuurtsteun: ownOnly(BasisSignaller), RolePartner: ownOnly(BasisSignaller), RoleProfessional: ownOnly(BasisSignaller)},
	ActHandover: {RoleBuurtsteun: ownOnly(BasisSignaller), RolePartner: ownOnly(BasisSignaller), RoleProfessional: both(BasisRole), RoleCoordinator: both(BasisRole)},
	ActAccept:   {RoleProfessional: ownOnly(BasisTeam)},
	ActDecline:  {RoleProfessional: ownOnly(BasisTeam)},
	ActAssign:   {RoleProfessional: ownOnly(BasisTeam), RoleCoordinator: both(BasisRole)},
	ActFollowUp: {RoleProfessional: ownOnly(BasisTeam)},
	ActRefer:    {RoleProfessional: ownOnly(BasisTeam)},
	ActFeedback: {RoleProfessional: ownOnly(BasisTeam)},
	ActClose:    {RoleProfessional: ownOnly(BasisTeam)},
	ActReopen:   {RoleProfessional: ownOnly(BasisTeam)},

	ActAnswerReferral: {RolePartner: ownOnly(BasisReferral)},
	ActReadReferrals:  {RolePartner: ownOnly(BasisReferral)},
	ActReadCase:       {RoleProfessional: ownOnly(BasisTeam)},
	ActCaseload:       {RoleProfessional: both(BasisTeam)},
	ActMySignals:      {RoleBuurtsteun: both(BasisSignaller), RolePartner: both(BasisSignaller), RoleProfessional: both(BasisSignaller)},

	ActListOrganisations: {RoleBuurtsteun: both(BasisRole), RolePartner: both(BasisRole), RoleProfessional: both(BasisRole),
		RoleCoordinator: both(BasisRole), RolePrivacyOfficer: both(BasisRole), RoleAdmin: both(BasisRole)},
	ActListTeams: {RoleBuurtsteun: both(BasisRole), RolePartner: both(BasisRole), RoleProfessional: both(BasisRole),
		RoleCoordinator: both(BasisRole), RolePrivacyOfficer: both(BasisRole), RoleAdmin: both(BasisRole)},
	ActReadNetwork: {RoleBuurtsteun: both(BasisRole), RolePartner: both(BasisRole), RoleProfessional: both(BasisRole),
		RoleCoordinator: both(BasisRole), RolePrivacyOfficer: both(BasisRole), RoleAdmin: both(BasisRole)},
	ActManageNetwork:        {RoleCoordinator: both(BasisRole), RoleAdmin: both(BasisRole)},
	ActRegisterOrganisation: {RoleAdmin: both(BasisRole)},
	ActMonitor:              {RoleCoordinator: both(BasisRole)},
	ActSearchSubjects:       {RolePrivacyOfficer: both(BasisRole)},
	ActAudit:                {RolePrivacyOfficer: both(BasisRole)},
	ActExport:               {RolePrivacyOfficer: both(BasisRole)},
	ActErase:                {RolePrivacyOfficer: both(BasisRole)},
	ActReadRouting:          {RoleCoordinator: both(BasisRole), RoleAdmin: both(BasisRole), RoleProfessional: both(BasisRole)},
	ActManageRouting:        {RoleCoordinator: both(BasisRole), RoleAdmin: both(BasisRole)},
	ActReadNotifications:    {RoleCoordinator: both(BasisRole), RoleAdmin: both(BasisRole)},
	ActManageNotifications:  {RoleCoordinator: both(BasisRole), RoleAdmin: both(BasisRole)},
	ActDeadLetters:          {RoleAdmin: both(BasisRole)},
	ActListUnrouted:         {RoleProfessional: both(BasisRole), RoleCoordinator: both(BasisRole)},
	ActListPrincipals: {RoleProfessional: both(BasisRole), RoleCoordinator: both(BasisRole), RolePrivacyOfficer: both(BasisRole),
		RoleAdmin: both(BasisRole)},
	ActSubjectNames: {RolePrivacyOfficer: both(BasisRole)},
}

// declaredActions reads the Action constants from policy.go, so an action
// added there without a line in the table fails the test.
func declaredActions(t *testing.T) []Action {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "policy.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Action
	for _, d := range f.Decls {
		g, isGen := d.(*ast.GenDecl)
		if !isGen || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, isIdent := vs.Type.(*ast.Ident); !isIdent || id.Name != "Action" {
				continue
			}
			for _, v := range vs.Values {
				lit, isLit := v.(*ast.BasicLit)
				if !isLit {
					t.Fatalf("Action constant with a value that is not a literal: %v", v)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, Action(s))
			}
		}
	}
	return out
}

type relation struct {
	name   string
	target func(p Principal) Target
	want   func(a allow) Basis
}

var relations = []relation{
	{"own", func(p Principal) Target {
		return Target{Network: p.Network, Team: "team-a", RaisedBy: p.ID, Organisation: p.Organisation}
	}, func(a allow) Basis { return a.own }},
	{"other team or organisation", func(p Principal) Target {
		return Target{Network: p.Network, Team: "team-b", RaisedBy: "someone-else", Organisation: "org-b"}
	}, func(a allow) Basis { return a.other }},
	{"other network", func(p Principal) Target {
		return Target{Network: "net-2", Team: "team-a", RaisedBy: p.ID, Organisation: p.Organisation}
	}, func(allow) Basis { return "" }},
}

func rolePrincipal(r Role) Principal {
	return Principal{ID: "u-" + string(r), Roles: []Role{r}, Teams: []string{"team-a"}, Organisation: "org-a", Network: "net"}
}

func checkAuthorize(t *testing.T, p Principal, a Action, target Target, want Basis) {
	t.Helper()
	got, err := Authorize(p, a, target)
	if want == "" {
		e, isErr := err.(*Error)
		if !isErr || e.Kind != KindForbidden || e.Code != "forbidden" || e.Message == "" || got != "" {
			t.Fatalf("Authorize = %q, %v; want a forbidden *Error", got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("Authorize = %q, %v; want %q", got, err, want)
	}
}

// TestPolicyMatrix checks every action for every role on an object of its
// own, of another team or organisation, and of another network.
func TestPolicyMatrix(t *testing.T) {
	actions := declaredActions(t)
	if len(actions) != len(policyTable) {
		t.Fatalf("policy.go declares %d actions, the table has %d", len(actions), len(policyTable))
	}
	n := 0
	for _, a := range actions {
		row, found := policyTable[a]
		if !found {
			t.Fatalf("action %q has no line in the table", a)
		}
		for r := range row {
			if !r.Valid() {
				t.Fatalf("%s: unknown role %q", a, r)
			}
		}
		for _, r := range Roles {
			p := rolePrincipal(r)
			for _, rel := range relations {
				want := rel.want(row[r])
				t.Run(fmt.Sprintf("%s/%s/%s", a, r, rel.name), func(t *testing.T) {
					checkAuthorize(t, p, a, rel.target(p), want)
				})
				n++
			}
		}
	}
	if n != len(actions)*len(Roles)*len(relations) {
		t.Fatalf("%d cases", n)
	}
}

// TestPolicyEdges covers the rules the matrix cannot show: break-glass,
// principals without roles, teams or organisation, several roles, objects
// with no team.
func TestPolicyEdges(t *testing.T) {
	pro := rolePrincipal(RoleProfessional)
	partner := rolePrincipal(RolePartner)
	volunteer := rolePrincipal(RoleBuurtsteun)
	other := Target{Network: "net", Team: "team-b"}
	breakGlass := Target{Network: "net", Team: "team-b", BreakGlassReason: "acute danger"}
	tests := []struct {
		name   string
		p      Principal
		a      Action
		target Target
		want   Basis
	}{
		{"break-glass outside the team", pro, ActReadCase, breakGlass, BasisBreakGlass},
		{"break-glass inside the team is team", pro, ActReadCase, Target{Network: "net", Team: "team-a", BreakGlassReason: "x"}, BasisTeam},
		{"break-glass on a signal without a team", pro, ActReadCase, Target{Network: "net", BreakGlassReason: "x"}, BasisBreakGlass},
		{"break-glass into another network", pro, ActReadCase, Target{Network: "net-2", Team: "team-b", BreakGlassReason: "x"}, ""},
		{"break-glass by a volunteer", volunteer, ActReadCase, breakGlass, ""},
		{"break-glass by a coordinator", rolePrincipal(RoleCoordinator), ActReadCase, breakGlass, ""},
		{"break-glass by a privacy officer", rolePrincipal(RolePrivacyOfficer), ActReadCase, breakGlass, ""},
		{"break-glass does not open commands", pro, ActClose, breakGlass, ""},
		{"a signal without a team is no professional's", pro, ActAccept, Target{Network: "net"}, ""},
		{"an empty team name is no team", Principal{ID: "p", Roles: []Role{RoleProfessional}, Teams: []string{""}, Network: "net"}, ActAccept, Target{Network: "net"}, ""},
		{"a professional of two teams", Principal{ID: "p", Roles: []Role{RoleProfessional}, Teams: []string{"team-a", "team-b"}, Network: "net"}, ActClose, other, BasisTeam},
		{"a professional and coordinator assigns outside the team", Principal{ID: "p", Roles: []Role{RoleProfessional, RoleCoordinator}, Teams: []string{"team-a"}, Network: "net"}, ActAssign, other, BasisRole},
		{"a professional and coordinator assigns in the team", Principal{ID: "p", Roles: []Role{RoleProfessional, RoleCoordinator}, Teams: []string{"team-a"}, Network: "net"}, ActAssign, Target{Network: "net", Team: "team-a"}, BasisTeam},
		{"a professional and coordinator may not close outside the team", Principal{ID: "p", Roles: []Role{RoleProfessional, RoleCoordinator}, Teams: []string{"team-a"}, Network: "net"}, ActClose, other, ""},
		{"a volunteer and partner hands over its own signal", Principal{ID: "v", Roles: []Role{RolePartner, RoleBuurtsteun}, Network: "net"}, ActHandover, Target{Network: "net", RaisedBy: "v"}, BasisSignaller},
		{"no roles: list organisations", Principal{ID: "x", Network: "net"}, ActListOrganisations, Target{}, ""},
		{"no roles: withdraw a signal it raised", Principal{ID: "x", Network: "net"}, ActWithdraw, Target{Network: "net", RaisedBy: "x"}, ""},
		{"a coordinator withdraws a signal with its id", rolePrincipal(RoleCoordinator), ActWithdraw, Target{Network: "net", RaisedBy: "u-coordinator"}, ""},
		{"an admin withdraws a signal with its id", rolePrincipal(RoleAdmin), ActWithdraw, Target{Network: "net", RaisedBy: "u-admin"}, ""},
		{"withdraw a signal with no signaller", Principal{ID: "", Roles: []Role{RoleBuurtsteun}, Network: "net"}, ActWithdraw, Target{Network: "net"}, ""},
		{"unknown role", Principal{ID: "x", Roles: []Role{"superuser"}, Network: "net"}, ActAudit, Target{}, ""},
		{"unknown action", rolePrincipal(RoleAdmin), Action("delete_everything"), Target{}, ""},
		{"no object: the principal's network does not matter", Principal{ID: "x", Roles: []Role{RoleCoordinator}, Network: "net-9"}, ActMonitor, Target{}, BasisRole},
		{"a principal without a network and an object of one", Principal{ID: "x", Roles: []Role{RoleProfessional}, Teams: []string{"team-a"}}, ActReadCase, Target{Network: "net", Team: "team-a"}, ""},
		{"a referral addressed to no organisation", Principal{ID: "x", Roles: []Role{RolePartner}, Network: "net"}, ActAnswerReferral, Target{Network: "net"}, ""},
		{"a partner without an organisation lists referrals", Principal{ID: "x", Roles: []Role{RolePartner}, Network: "net"}, ActReadReferrals, Target{}, ""},
		{"a partner lists its organisation's referrals", partner, ActReadReferrals, Target{}, BasisReferral},
		{"a partner answers its organisation's referral", partner, ActAnswerReferral, Target{Network: "net", Organisation: "org-a", Team: "team-b"}, BasisReferral},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkAuthorize(t, tt.p, tt.a, tt.target, tt.want) })
	}
}
