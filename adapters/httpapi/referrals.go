package httpapi

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

// partnerReferral is the minimum a partner organisation sees of a referral
// addressed to it: what is asked and where it stands, never the resident's
// data, the reason or the case notes.
type partnerReferral struct {
	ID             uuid.UUID  `json:"id"`
	OrganisationID string     `json:"organisation_id"`
	Service        string     `json:"service,omitempty"`
	Status         string     `json:"status" openapi:"enum=referral_status"`
	Urgency        string     `json:"urgency"`
	Categories     []string   `json:"categories"`
	Neighbourhood  string     `json:"neighbourhood"`
	TeamID         string     `json:"team_id"`
	MadeAt         time.Time  `json:"made_at"`
	AnsweredAt     *time.Time `json:"answered_at,omitempty"`
	// Notes are the partner's own answers (accept, decline, complete), on
	// the single referral only: reading them is an audited read.
	Notes []noteView `json:"notes,omitempty"`
}

type partnerReferralsPage struct {
	Items      []partnerReferral `json:"items"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

func toPartnerReferral(r projections.ReferralOf) partnerReferral {
	return partnerReferral{ID: r.ID, OrganisationID: r.OrganisationID, Service: r.Service, Status: string(r.Status),
		Urgency: r.Case.Urgency, Categories: r.Case.Categories, Neighbourhood: r.Case.Neighbourhood, TeamID: r.Case.Team,
		MadeAt: r.MadeAt, AnsweredAt: optTime(r.AnsweredAt)}
}

// referrals lists the referrals addressed to the caller's organisation.
func (s *Server) referrals(w http.ResponseWriter, r *http.Request) error {
	p, err := s.query(r, domain.ActReadReferrals)
	if err != nil {
		return err
	}
	limit, after, err := keyPageParams(r)
	if err != nil {
		return err
	}
	out := partnerReferralsPage{Items: []partnerReferral{}}
	var next []byte
	s.Runner.Read(func() {
		var page []projections.ReferralOf
		page, next, err = s.Cases.ReferralsTo(p.Organisation, after, limit)
		for _, ref := range page {
			if ref.Case.Network == p.Network {
				out.Items = append(out.Items, toPartnerReferral(ref))
			}
		}
	})
	if err != nil {
		return err
	}
	out.NextCursor = keyCursor(next)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// referral shows one referral to the partner it is addressed to.
func (s *Server) referral(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.query(r, domain.ActReadReferrals); err != nil {
		return err // not a partner at all
	}
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	var ref projections.ReferralOf
	var found bool
	find := func() {
		sig, ok := s.Cases.SignalOfReferral(id)
		if !ok {
			return
		}
		c, _ := s.Cases.Get(sig)
		for _, rf := range c.Referrals {
			if rf.ID == id {
				ref, found = projections.ReferralOf{Referral: rf, Case: c}, true
			}
		}
	}
	if s.Runner.Read(find); !found && s.Runner.CatchUp(r.Context(), s.WaitTimeout) {
		s.Runner.Read(find) // made just now: read your own organisation's writes
	}
	if !found {
		return &domain.Error{Kind: domain.KindNotFound, Code: "referral_not_found", Message: "the referral does not exist"}
	}
	basis, err := s.authorizeRead(r, domain.ActReadReferrals, domain.Target{Network: ref.Case.Network, Organisation: ref.OrganisationID},
		[]uuid.UUID{ref.Case.SubjectID}, []uuid.UUID{ref.Case.ID})
	if err != nil {
		return err
	}
	// The partner's own notes are free text about the resident: the read
	// is recorded before they leave the server.
	a := s.access(r, "read_referral", basis)
	a.Subjects, a.Signals = []uuid.UUID{ref.Case.SubjectID}, []uuid.UUID{ref.Case.ID}
	d, err := s.Reader.Disclose(r.Context(), a)
	if err != nil {
		return err
	}
	v := toPartnerReferral(ref)
	o := &opener{ctx: r.Context(), d: d, subject: ref.Case.SubjectID}
	v.Notes = noteViews(o, ref.Notes)
	if o.err != nil {
		return o.err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
