// Package hsds reads and writes the sociale kaart (organisations and their
// services) as Open Referral's Human Services Data Specification (HSDS)
// 3.0 JSON, so a network loads the directory it already keeps elsewhere,
// and exports its own to the tools that speak HSDS.
//
// The mapping:
//
//   - an organisation is an HSDS organization whose id is a name-based
//     UUID of the network and its Buurtsignaal id; that id is kept in
//     organization_identifiers (identifier_type "buurtsignaal-id"), and its
//     kind is an attribute whose taxonomy term comes from the taxonomy
//     "buurtsignaal:organisation-kind" (code: the kind);
//   - a service is an HSDS service (status active) of that organization,
//     with a name-based UUID of the organization and its name, and an
//     attribute of the taxonomy "buurtsignaal:provider" (code volunteer)
//     when volunteers give it;
//   - a list is HSDS's paginated list (organization_list: total_items,
//     page_number, contents, ...), the whole directory on one page.
//
// Import takes such a list, a bare array of organizations, or one
// organization. An organization without a buurtsignaal-id identifier gets
// its HSDS id as its id; without a kind attribute its kind is "other";
// services that are not active are left out.
package hsds

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Taxonomies and identifier type of the mapping.
const (
	IdentifierType   = "buurtsignaal-id"
	KindTaxonomy     = "buurtsignaal:organisation-kind"
	ProviderTaxonomy = "buurtsignaal:provider"
)

// space is the namespace of the name-based UUIDs.
var space = uuid.MustParse("5d3b0c3e-8a51-4f6e-b1f2-7c9d0e4a2b61")

// Page is HSDS 3.0's paginated list of organizations.
type Page struct {
	TotalItems int            `json:"total_items"`
	TotalPages int            `json:"total_pages"`
	PageNumber int            `json:"page_number"`
	Size       int            `json:"size"`
	FirstPage  bool           `json:"first_page"`
	LastPage   bool           `json:"last_page"`
	Empty      bool           `json:"empty"`
	Contents   []Organization `json:"contents"`
}

// Organization is an HSDS 3.0 organization with its services.
type Organization struct {
	ID                      string                   `json:"id"`
	Name                    string                   `json:"name"`
	Description             string                   `json:"description"`
	OrganizationIdentifiers []OrganizationIdentifier `json:"organization_identifiers,omitempty"`
	Attributes              []Attribute              `json:"attributes,omitempty"`
	Services                []Service                `json:"services,omitempty"`
}

// OrganizationIdentifier is an identifier of an organization in another
// system.
type OrganizationIdentifier struct {
	ID               string `json:"id"`
	OrganizationID   string `json:"organization_id,omitempty"`
	IdentifierScheme string `json:"identifier_scheme,omitempty"`
	IdentifierType   string `json:"identifier_type"`
	Identifier       string `json:"identifier"`
}

// Service is an HSDS 3.0 service.
type Service struct {
	ID             string      `json:"id"`
	OrganizationID string      `json:"organization_id,omitempty"`
	Name           string      `json:"name"`
	Description    string      `json:"description,omitempty"`
	Status         string      `json:"status"`
	Attributes     []Attribute `json:"attributes,omitempty"`
}

// Attribute links an organization or service to a taxonomy term.
type Attribute struct {
	ID             string        `json:"id"`
	LinkID         string        `json:"link_id,omitempty"`
	LinkType       string        `json:"link_type,omitempty"`
	LinkEntity     string        `json:"link_entity,omitempty"`
	TaxonomyTermID string        `json:"taxonomy_term_id,omitempty"`
	Value          string        `json:"value,omitempty"`
	TaxonomyTerm   *TaxonomyTerm `json:"taxonomy_term,omitempty"`
}

// TaxonomyTerm is a term of a taxonomy.
type TaxonomyTerm struct {
	ID          string `json:"id"`
	Code        string `json:"code,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Taxonomy    string `json:"taxonomy,omitempty"`
}

func id(parts ...string) string {
	return uuid.NewSHA1(space, []byte(strings.Join(parts, "\x00"))).String()
}

func term(taxonomy, code, description string) *TaxonomyTerm {
	return &TaxonomyTerm{ID: id("term", taxonomy, code), Code: code, Name: code, Description: description, Taxonomy: taxonomy}
}

func attribute(linkID, entity string, t *TaxonomyTerm) Attribute {
	return Attribute{ID: id("attribute", linkID, t.Taxonomy, t.Code), LinkID: linkID, LinkEntity: entity, LinkType: "classification",
		TaxonomyTermID: t.ID, TaxonomyTerm: t}
}

// Export writes the organisations of network as one HSDS page.
func Export(network string, orgs []domain.RegisterOrganisation) Page {
	p := Page{TotalItems: len(orgs), TotalPages: 1, PageNumber: 1, Size: len(orgs), FirstPage: true, LastPage: true, Empty: len(orgs) == 0,
		Contents: make([]Organization, 0, len(orgs))}
	for _, o := range orgs {
		oid := id("organization", network, o.ID)
		ho := Organization{ID: oid, Name: o.Name, Description: "",
			OrganizationIdentifiers: []OrganizationIdentifier{{ID: id("identifier", oid), OrganizationID: oid, IdentifierType: IdentifierType, Identifier: o.ID}},
			Attributes:              []Attribute{attribute(oid, "organization", term(KindTaxonomy, o.Kind, "the kind of organisation in Buurtsignaal"))},
		}
		for _, s := range o.Services {
			sid := id("service", oid, s.Name)
			hs := Service{ID: sid, OrganizationID: oid, Name: s.Name, Description: s.Description, Status: "active"}
			if s.Volunteer {
				hs.Attributes = []Attribute{attribute(sid, "service", term(ProviderTaxonomy, "volunteer", "given by volunteers"))}
			}
			ho.Services = append(ho.Services, hs)
		}
		p.Contents = append(p.Contents, ho)
	}
	return p
}

// Import reads organisations from HSDS JSON: a page (contents), an array
// of organizations or one organization. It refuses what the sociale kaart
// cannot hold (an organization without an id or name, an unknown kind).
func Import(data []byte) ([]domain.RegisterOrganisation, error) {
	var orgs []Organization
	trimmed := strings.TrimSpace(string(data))
	switch {
	case strings.HasPrefix(trimmed, "["):
		if err := json.Unmarshal(data, &orgs); err != nil {
			return nil, fmt.Errorf("hsds: an array of organizations: %w", err)
		}
	default:
		var probe struct {
			Contents json.RawMessage `json:"contents"`
		}
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("hsds: %w", err)
		}
		if probe.Contents != nil {
			if err := json.Unmarshal(probe.Contents, &orgs); err != nil {
				return nil, fmt.Errorf("hsds: the page's contents: %w", err)
			}
		} else {
			var o Organization
			if err := json.Unmarshal(data, &o); err != nil {
				return nil, fmt.Errorf("hsds: an organization: %w", err)
			}
			orgs = []Organization{o}
		}
	}
	out := make([]domain.RegisterOrganisation, 0, len(orgs))
	for i, o := range orgs {
		if o.ID == "" || strings.TrimSpace(o.Name) == "" {
			return nil, fmt.Errorf("hsds: organization %d has no id or no name", i+1)
		}
		r := domain.RegisterOrganisation{ID: strings.ToLower(o.ID), Name: o.Name, Kind: "other"}
		for _, oi := range o.OrganizationIdentifiers {
			if oi.IdentifierType == IdentifierType && oi.Identifier != "" {
				r.ID = oi.Identifier
			}
		}
		for _, a := range o.Attributes {
			if a.TaxonomyTerm != nil && a.TaxonomyTerm.Taxonomy == KindTaxonomy {
				if !domain.OrganisationKind.Has(a.TaxonomyTerm.Code) {
					return nil, fmt.Errorf("hsds: organization %q: kind %q is not one of %s", o.Name, a.TaxonomyTerm.Code, strings.Join(domain.OrganisationKind.Values(), ", "))
				}
				r.Kind = a.TaxonomyTerm.Code
			}
		}
		for _, s := range o.Services {
			if s.Status != "" && s.Status != "active" || strings.TrimSpace(s.Name) == "" {
				continue
			}
			sv := domain.Service{Name: s.Name, Description: s.Description}
			for _, a := range s.Attributes {
				if a.TaxonomyTerm != nil && a.TaxonomyTerm.Taxonomy == ProviderTaxonomy && a.TaxonomyTerm.Code == "volunteer" {
					sv.Volunteer = true
				}
			}
			r.Services = append(r.Services, sv)
		}
		out = append(out, r)
	}
	return out, nil
}
