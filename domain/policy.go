package domain

// Action is something a principal asks to do. Every route of the API maps to
// exactly one action, and Authorize is the one place that decides who may do
// it: deny by default.
type Action string

const (
	ActRaise                Action = "raise"
	ActWithdraw             Action = "withdraw"
	ActHandover             Action = "handover"
	ActAccept               Action = "accept"
	ActDecline              Action = "decline"
	ActAssign               Action = "assign"
	ActFollowUp             Action = "follow_up"
	ActRefer                Action = "refer"
	ActAnswerReferral       Action = "answer_referral"
	ActReadReferrals        Action = "read_referrals"
	ActFeedback             Action = "feedback"
	ActClose                Action = "close"
	ActReopen               Action = "reopen"
	ActReadCase             Action = "read_case"
	ActCaseload             Action = "caseload"
	ActMySignals            Action = "my_signals"
	ActListOrganisations    Action = "list_organisations"
	ActListTeams            Action = "list_teams"
	ActRegisterOrganisation Action = "register_organisation"
	ActMonitor              Action = "monitor"
	ActSearchSubjects       Action = "search_subjects"
	ActAudit                Action = "audit"
	ActExport               Action = "export"
	ActErase                Action = "erase"
	ActReadRouting          Action = "read_routing"
	ActManageRouting        Action = "manage_routing"
	ActReadNotifications    Action = "read_notifications"
	ActManageNotifications  Action = "manage_notifications"
	ActDeadLetters          Action = "dead_letters"
	ActReadNetwork          Action = "read_network"
	ActManageNetwork        Action = "manage_network"
	// Added for the console (issue 19): the network's signals without a
	// team, the directory of the network's principals (display names and
	// roles), the names of subjects in an access log (an audited read).
	ActListUnrouted   Action = "list_unrouted"
	ActListPrincipals Action = "list_principals"
	ActSubjectNames   Action = "subject_names"
)

// Basis is why an access was allowed, recorded in the audit trail.
type Basis string

const (
	BasisRole       Basis = "role"        // the role alone allows it (no case object)
	BasisTeam       Basis = "team"        // member of the signal's team
	BasisSignaller  Basis = "signaller"   // the principal raised the signal
	BasisReferral   Basis = "referral"    // the referral is addressed to the principal's organisation
	BasisBreakGlass Basis = "break_glass" // outside the team, with a stated reason
)

// Target describes the object an action is on, as far as policy needs it.
// The zero Target is "no particular object".
type Target struct {
	Network      string // the object's network; empty for none
	Team         string // the team the signal is handed to or in care of
	RaisedBy     string // the signaller's principal id
	Organisation string // for referrals: the organisation it is addressed to
	// BreakGlassReason, when set on ActReadCase, asks to read outside the team.
	BreakGlassReason string
}

var errForbidden = &Error{Kind: KindForbidden, Code: "forbidden", Message: "you are not allowed to do this"}

func forbidden(msg string) error {
	return &Error{Kind: KindForbidden, Code: "forbidden", Message: msg}
}

// Authorize decides whether p may perform a on t, and on what basis. It
// returns a KindForbidden error otherwise.
func Authorize(p Principal, a Action, t Target) (Basis, error) {
	if t.Network != "" && t.Network != p.Network {
		return "", forbidden("the object belongs to another network")
	}
	has := p.HasRole
	switch a {
	case ActRaise:
		if has(RoleBuurtsteun) || has(RolePartner) || has(RoleProfessional) {
			return BasisRole, nil
		}
	case ActWithdraw:
		// The signaller, while still holding a role that may raise.
		if t.RaisedBy != "" && t.RaisedBy == p.ID && (has(RoleBuurtsteun) || has(RolePartner) || has(RoleProfessional)) {
			return BasisSignaller, nil
		}
		return "", forbidden("only the signaller may withdraw a signal")
	case ActHandover:
		switch {
		case has(RoleCoordinator), has(RoleProfessional):
			return BasisRole, nil
		case (has(RoleBuurtsteun) || has(RolePartner)) && t.RaisedBy != "" && t.RaisedBy == p.ID:
			return BasisSignaller, nil // volunteers and partners hand over what they raised
		}
	case ActAccept, ActDecline, ActFollowUp, ActRefer, ActFeedback, ActClose, ActReopen:
		if has(RoleProfessional) {
			if p.InTeam(t.Team) {
				return BasisTeam, nil
			}
			return "", forbidden("the signal is not with your team")
		}
	case ActAssign:
		if has(RoleProfessional) && p.InTeam(t.Team) {
			return BasisTeam, nil
		}
		if has(RoleCoordinator) {
			return BasisRole, nil
		}
		if has(RoleProfessional) {
			return "", forbidden("the signal is not with your team")
		}
	case ActAnswerReferral:
		if has(RolePartner) {
			if t.Organisation != "" && t.Organisation == p.Organisation {
				return BasisReferral, nil
			}
			return "", forbidden("the referral is addressed to another organisation")
		}
	case ActReadReferrals:
		if has(RolePartner) && p.Organisation != "" && (t.Organisation == "" || t.Organisation == p.Organisation) {
			return BasisReferral, nil
		}
		if has(RolePartner) {
			return "", forbidden("the referral is addressed to another organisation")
		}
	case ActReadCase:
		if has(RoleProfessional) {
			if p.InTeam(t.Team) {
				return BasisTeam, nil
			}
			if t.BreakGlassReason != "" {
				return BasisBreakGlass, nil
			}
			return "", forbidden("the signal is not with your team; state a break-glass reason to read it")
		}
	case ActCaseload:
		if has(RoleProfessional) {
			return BasisTeam, nil
		}
	case ActMySignals:
		if has(RoleBuurtsteun) || has(RolePartner) || has(RoleProfessional) {
			return BasisSignaller, nil
		}
	case ActListOrganisations, ActListTeams, ActReadNetwork:
		if len(p.Roles) > 0 {
			return BasisRole, nil
		}
	case ActRegisterOrganisation:
		if has(RoleAdmin) {
			return BasisRole, nil
		}
	case ActMonitor:
		if has(RoleCoordinator) {
			return BasisRole, nil
		}
	case ActReadRouting:
		if has(RoleCoordinator) || has(RoleAdmin) || has(RoleProfessional) {
			return BasisRole, nil
		}
	case ActManageRouting, ActReadNotifications, ActManageNotifications, ActManageNetwork:
		if has(RoleCoordinator) || has(RoleAdmin) {
			return BasisRole, nil
		}
	case ActDeadLetters:
		if has(RoleAdmin) {
			return BasisRole, nil
		}
	case ActListUnrouted:
		if has(RoleProfessional) || has(RoleCoordinator) {
			return BasisRole, nil
		}
	case ActListPrincipals:
		if has(RoleProfessional) || has(RoleCoordinator) || has(RolePrivacyOfficer) || has(RoleAdmin) {
			return BasisRole, nil
		}
	case ActSearchSubjects, ActAudit, ActExport, ActErase, ActSubjectNames:
		if has(RolePrivacyOfficer) {
			return BasisRole, nil
		}
	}
	return "", errForbidden
}
