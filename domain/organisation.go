package domain

import "unicode/utf8"

// Service is one offer of an organisation on the sociale kaart plus.
type Service struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Volunteer   bool   `json:"volunteer" openapi:"optional"` // false when left out
}

// RegisterOrganisation adds an organisation and its services to the network.
type RegisterOrganisation struct {
	ID       string
	Name     string
	Kind     string
	Services []Service
}

// Action is the policy action of the command.
func (RegisterOrganisation) Action() Action { return ActRegisterOrganisation }

// DecideOrganisation registers an organisation that does not exist yet
// (exists is whether its stream has events). It returns KindForbidden,
// KindConflict for an existing organisation, or KindInvalid.
func DecideOrganisation(exists bool, actor Principal, c RegisterOrganisation) ([]Event, error) {
	if _, err := Authorize(actor, c.Action(), Target{}); err != nil {
		return nil, err
	}
	var errs []FieldError
	if c.ID == "" || len(c.ID) > 100 {
		errs = append(errs, FieldError{"id", "an id of at most 100 characters is required"})
	}
	if c.Name == "" || utf8.RuneCountInString(c.Name) > 200 {
		errs = append(errs, FieldError{"name", "a name of at most 200 characters is required"})
	}
	if !OrganisationKind.has(c.Kind) {
		errs = append(errs, FieldError{"kind", "must be one of the organisation kinds"})
	}
	seen := map[string]bool{}
	for _, s := range c.Services {
		if s.Name == "" || seen[s.Name] {
			errs = append(errs, FieldError{"services", "each service needs a unique name"})
			break
		}
		seen[s.Name] = true
	}
	if len(errs) > 0 {
		return nil, Invalid(errs...)
	}
	if exists {
		return nil, conflict("organisation_exists", "the organisation already exists")
	}
	events := []Event{OrganisationRegistered{OrganisationID: c.ID, Network: actor.Network, Name: c.Name, Kind: c.Kind}}
	for _, s := range c.Services {
		events = append(events, ServiceOffered{Name: s.Name, Description: s.Description, Volunteer: s.Volunteer})
	}
	return events, nil
}
