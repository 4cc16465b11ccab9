package domain

import (
	"log/slog"
	"slices"
)

// Role is what a principal may do; see Policy for the rules.
type Role string

const (
	RoleBuurtsteun     Role = "buurtsteun"
	RolePartner        Role = "partner"
	RoleProfessional   Role = "professional"
	RoleCoordinator    Role = "coordinator"
	RolePrivacyOfficer Role = "privacy_officer"
	RoleAdmin          Role = "admin"
)

// Roles lists every role in a fixed order.
var Roles = []Role{RoleBuurtsteun, RolePartner, RoleProfessional, RoleCoordinator, RolePrivacyOfficer, RoleAdmin}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// DefaultNetwork is the network of a deployment that configures none.
const DefaultNetwork = "default"

// Principal is an authenticated caller, from the tokens file or an OIDC token.
// Ids are opaque strings from the identity provider or configuration.
type Principal struct {
	ID           string
	Name         string // display name; never logged
	Roles        []Role
	Teams        []string
	Organisation string
	Network      string
	// MFA is true when the identity provider says the caller used more than one
	// factor (OIDC amr claim). Tokens-file principals count as MFA.
	MFA bool
}

// HasRole reports whether the principal holds role r.
func (p Principal) HasRole(r Role) bool { return slices.Contains(p.Roles, r) }

// InTeam reports whether the principal belongs to team t.
func (p Principal) InTeam(t string) bool { return t != "" && slices.Contains(p.Teams, t) }

// LogValue keeps the display name out of structured logs: a principal logs
// as its id and roles.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", p.ID), slog.Any("roles", p.Roles))
}

// String keeps the display name out of fmt output.
func (p Principal) String() string { return p.ID }

// GoString keeps the display name out of %#v.
func (p Principal) GoString() string { return "Principal(" + p.ID + ")" }
