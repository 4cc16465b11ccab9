package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
)

// Request bodies of the commands (API.md). Field names are the contract.
type (
	subjectBody struct {
		Name      string `json:"name"`
		BirthDate string `json:"birth_date,omitempty"`
		Address   string `json:"address,omitempty"`
		Phone     string `json:"phone,omitempty"`
	}
	raiseBody struct {
		Subject       subjectBody `json:"subject"`
		Neighbourhood string      `json:"neighbourhood"`
		Categories    []string    `json:"categories"`
		Urgency       string      `json:"urgency"`
		Description   string      `json:"description"`
		Consent       string      `json:"consent"`
	}
	reasonBody struct {
		Reason string `json:"reason"`
	}
	handoverBody struct {
		// TeamID may be left out: the routing rules then choose the team.
		TeamID string `json:"team_id" openapi:"optional"`
		Note   string `json:"note,omitempty"`
	}
	assignBody struct {
		ProfessionalID string `json:"professional_id"`
	}
	followUpBody struct {
		Kind    string `json:"kind" openapi:"enum=follow_up_kind"`
		Outcome string `json:"outcome" openapi:"enum=follow_up_outcome"`
		Note    string `json:"note,omitempty"`
		NextDue string `json:"next_due,omitempty"`
	}
	referralBody struct {
		OrganisationID string `json:"organisation_id"`
		Service        string `json:"service,omitempty"`
		Reason         string `json:"reason"`
	}
	noteBody struct {
		Note string `json:"note,omitempty"`
	}
	feedbackBody struct {
		Code string `json:"code" openapi:"enum=feedback_code"`
	}
	closeBody struct {
		Outcome string `json:"outcome" openapi:"enum=close_outcome"`
		Note    string `json:"note,omitempty"`
	}
	organisationBody struct {
		ID       string           `json:"id"`
		Name     string           `json:"name"`
		Kind     string           `json:"kind" openapi:"enum=organisation_kind"`
		Services []domain.Service `json:"services,omitempty"`
	}
)

// commandAnswer is the answer to every command.
type commandAnswer struct {
	ID               string      `json:"id"`
	Version          int         `json:"version"`
	Position         uint64      `json:"position"`
	Status           string      `json:"status,omitempty"`
	SubjectID        *uuid.UUID  `json:"subject_id,omitempty"`
	MatchedSignalIDs []uuid.UUID `json:"matched_signal_ids,omitempty"`
	ReferralID       *uuid.UUID  `json:"referral_id,omitempty"`
}

const (
	maxText = 4000 // description, notes and reasons
	maxName = 200
)

// appRequest reads the command headers, Idempotency-Key and If-Match, and
// writes the request's canonical form from body, the decoded request body
// (nil for none): the method, the path and the body encoded again, so that
// the same request sent with other white space, field order or escapes has
// the same fingerprint and another one has another.
func appRequest(r *http.Request, body any) (app.Request, error) {
	p := principal(r.Context())
	req := app.Request{Actor: p, RequestID: requestID(r.Context()), CorrelationID: r.Header.Get("X-Correlation-ID")}
	req.Canonical = append([]byte(r.Method+" "+r.URL.Path+"\n"), mustJSON(body)...)
	if req.CorrelationID == "" || len(req.CorrelationID) > 64 || !printableASCII(req.CorrelationID) {
		req.CorrelationID = req.RequestID
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if len(k) > 128 || !printableASCII(k) {
			return req, domain.Invalid(domain.FieldError{Field: "Idempotency-Key", Message: "must be 1 to 128 printable characters"})
		}
		req.IdempotencyKey = k
	}
	if m := r.Header.Get("If-Match"); m != "" {
		v, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(strings.TrimSpace(m), "W/"), `"`))
		if err != nil || v < 0 {
			return req, domain.Invalid(domain.FieldError{Field: "If-Match", Message: `must be a version in quotes, such as "3"`})
		}
		req.IfMatch, req.HasIfMatch = v, true
	}
	return req, nil
}

func pathUUID(r *http.Request, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, name))
	if err != nil {
		return uuid.Nil, &domain.Error{Kind: domain.KindNotFound, Code: "not_found", Message: "no such " + name}
	}
	return id, nil
}

func (s *Server) answer(w http.ResponseWriter, status int, res app.Result) error {
	a := commandAnswer{ID: res.ID, Version: res.Version, Position: res.Position, Status: string(res.Status), MatchedSignalIDs: res.Matched}
	if res.SubjectID != uuid.Nil {
		a.SubjectID = &res.SubjectID
	}
	if res.ReferralID != uuid.Nil {
		a.ReferralID = &res.ReferralID
	}
	if status == http.StatusCreated && a.MatchedSignalIDs == nil {
		a.MatchedSignalIDs = []uuid.UUID{}
	}
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(res.Version)))
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, a)
	return nil
}

func (s *Server) raise(w http.ResponseWriter, r *http.Request) error {
	var b raiseBody
	if err := s.decode(w, r, &b); err != nil {
		return err
	}
	var f fields
	f.required("subject.name", b.Subject.Name)
	f.maxLen("subject.name", b.Subject.Name, maxName)
	if b.Subject.BirthDate != "" && !domain.ValidDate(b.Subject.BirthDate) {
		f.add("subject.birth_date", "must be a date YYYY-MM-DD")
	}
	f.maxLen("subject.address", b.Subject.Address, maxName)
	f.maxLen("subject.phone", b.Subject.Phone, 40)
	// Categories and the neighbourhood are checked against the network's
	// configuration by the app; here only their bounds.
	f.required("neighbourhood", b.Neighbourhood)
	f.maxLen("neighbourhood", b.Neighbourhood, 100)
	if len(b.Categories) == 0 {
		f.add("categories", "at least one category is required")
	} else if len(b.Categories) > domain.MaxConfigItems {
		f.add("categories", "has too many entries")
	}
	if !domain.Urgencies.Has(b.Urgency) {
		f.add("urgency", "must be one of: "+strings.Join(domain.Urgencies, ", "))
	}
	if !domain.Consents.Has(b.Consent) {
		f.add("consent", "must be one of: "+strings.Join(domain.Consents, ", "))
	}
	f.required("description", b.Description)
	f.maxLen("description", b.Description, maxText)
	if err := f.err(); err != nil {
		return err
	}
	req, err := appRequest(r, &b)
	if err != nil {
		return err
	}
	res, err := s.App.Raise(r.Context(), req, app.RaiseInput{
		Subject:       app.SubjectData{Name: strings.TrimSpace(b.Subject.Name), BirthDate: b.Subject.BirthDate, Address: b.Subject.Address, Phone: b.Subject.Phone},
		Neighbourhood: b.Neighbourhood, Categories: b.Categories, Urgency: b.Urgency, Consent: b.Consent, Description: b.Description,
	})
	if err != nil {
		return err
	}
	if !req.Actor.HasRole(domain.RoleProfessional) {
		// A volunteer or partner learns nothing about other signals, nor
		// whether the resident was known: no match and no subject id; the
		// rest of the answer is the same for a known and a new resident.
		res.Matched, res.SubjectID = nil, uuid.Nil
	}
	w.Header().Set("Location", "/v1/signals/"+res.ID)
	return s.answer(w, http.StatusCreated, res)
}

// command is the shape of every command on an object in the path: decode
// the body (none is an empty one), validate it, read the command headers,
// run, answer with status.
func command[B any](s *Server, status int, validate func(*B, *fields), run func(r *http.Request, req app.Request, id uuid.UUID, b *B) (app.Result, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return err
		}
		var b B
		if r.ContentLength != 0 {
			if err := s.decode(w, r, &b); err != nil {
				return err
			}
		}
		var f fields
		validate(&b, &f)
		if err := f.err(); err != nil {
			return err
		}
		req, err := appRequest(r, &b)
		if err != nil {
			return err
		}
		res, err := run(r, req, id, &b)
		if err != nil {
			return err
		}
		return s.answer(w, status, res)
	}
}

// signalCommand runs the domain command built from the body on the signal
// in the path.
func signalCommand[B any](s *Server, validate func(*B, *fields), build func(*B, domain.Signal, app.Sealer) (domain.Command, error)) handlerFunc {
	return command(s, http.StatusOK, validate, func(r *http.Request, req app.Request, id uuid.UUID, b *B) (app.Result, error) {
		return s.App.Execute(r.Context(), req, id, func(st domain.Signal, seal app.Sealer) (domain.Command, error) {
			return build(b, st, seal)
		})
	})
}

func requireReason(b *reasonBody, f *fields) {
	f.required("reason", b.Reason)
	f.maxLen("reason", b.Reason, maxText)
}

func (s *Server) withdraw() handlerFunc {
	return signalCommand(s, requireReason, func(b *reasonBody, _ domain.Signal, seal app.Sealer) (domain.Command, error) {
		r, err := seal(b.Reason)
		return domain.WithdrawSignal{Reason: r}, err
	})
}

func (s *Server) handover() handlerFunc {
	return command(s, http.StatusOK, func(b *handoverBody, f *fields) {
		// Without team_id the network's routing rules choose the team.
		f.maxLen("team_id", b.TeamID, 100)
		f.maxLen("note", b.Note, maxText)
	}, func(r *http.Request, req app.Request, id uuid.UUID, b *handoverBody) (app.Result, error) {
		return s.App.HandOver(r.Context(), req, id, b.TeamID, b.Note)
	})
}

// emptyBody accepts no body or an empty JSON object.
type emptyBody struct{}

func (s *Server) accept() handlerFunc {
	return signalCommand(s, func(*emptyBody, *fields) {}, func(*emptyBody, domain.Signal, app.Sealer) (domain.Command, error) {
		return domain.AcceptHandover{}, nil
	})
}

func (s *Server) decline() handlerFunc {
	return signalCommand(s, requireReason, func(b *reasonBody, _ domain.Signal, seal app.Sealer) (domain.Command, error) {
		r, err := seal(b.Reason)
		return domain.DeclineHandover{Reason: r}, err
	})
}

func (s *Server) assign() handlerFunc {
	return command(s, http.StatusOK, func(b *assignBody, f *fields) {
		f.required("professional_id", b.ProfessionalID)
		f.maxLen("professional_id", b.ProfessionalID, 100)
	}, func(r *http.Request, req app.Request, id uuid.UUID, b *assignBody) (app.Result, error) {
		return s.App.Assign(r.Context(), req, id, b.ProfessionalID)
	})
}

func (s *Server) followUp() handlerFunc {
	return command(s, http.StatusOK, func(b *followUpBody, f *fields) {
		if !domain.FollowUpKinds.Has(b.Kind) {
			f.add("kind", "must be one of: "+strings.Join(domain.FollowUpKinds, ", "))
		}
		if !domain.FollowUpOutcomes.Has(b.Outcome) {
			f.add("outcome", "must be one of: "+strings.Join(domain.FollowUpOutcomes, ", "))
		}
		f.maxLen("note", b.Note, maxText)
		if b.NextDue != "" && !domain.ValidDate(b.NextDue) {
			f.add("next_due", "must be a date YYYY-MM-DD")
		}
	}, func(r *http.Request, req app.Request, id uuid.UUID, b *followUpBody) (app.Result, error) {
		fid := s.App.FollowUpID(req, id)
		return s.App.Execute(r.Context(), req, id, func(_ domain.Signal, seal app.Sealer) (domain.Command, error) {
			n, err := seal(b.Note)
			return domain.RecordFollowUp{FollowUpID: fid, Kind: b.Kind, Outcome: b.Outcome, Note: n, NextDue: b.NextDue}, err
		})
	})
}

func (s *Server) refer() handlerFunc {
	return command(s, http.StatusCreated, func(b *referralBody, f *fields) {
		f.required("organisation_id", b.OrganisationID)
		f.maxLen("organisation_id", b.OrganisationID, 100)
		f.maxLen("service", b.Service, maxName)
		f.required("reason", b.Reason)
		f.maxLen("reason", b.Reason, maxText)
	}, func(r *http.Request, req app.Request, id uuid.UUID, b *referralBody) (app.Result, error) {
		return s.App.Refer(r.Context(), req, id, b.OrganisationID, b.Service, b.Reason)
	})
}

func (s *Server) answerReferral(answer domain.ReferralStatus) handlerFunc {
	return command(s, http.StatusOK, func(b *noteBody, f *fields) {
		f.maxLen("note", b.Note, maxText)
	}, func(r *http.Request, req app.Request, id uuid.UUID, b *noteBody) (app.Result, error) {
		return s.App.AnswerReferral(r.Context(), req, id, answer, b.Note)
	})
}

func (s *Server) feedback() handlerFunc {
	return command(s, http.StatusOK, func(b *feedbackBody, f *fields) {
		if !domain.FeedbackCodes.Has(b.Code) {
			f.add("code", "must be one of: "+strings.Join(domain.FeedbackCodes, ", "))
		}
	}, func(r *http.Request, req app.Request, id uuid.UUID, b *feedbackBody) (app.Result, error) {
		return s.App.GiveFeedback(r.Context(), req, id, b.Code)
	})
}

func (s *Server) closeCase() handlerFunc {
	return signalCommand(s, func(b *closeBody, f *fields) {
		if !domain.CloseOutcomes.Has(b.Outcome) {
			f.add("outcome", "must be one of: "+strings.Join(domain.CloseOutcomes, ", "))
		}
		f.maxLen("note", b.Note, maxText)
	}, func(b *closeBody, _ domain.Signal, seal app.Sealer) (domain.Command, error) {
		n, err := seal(b.Note)
		return domain.CloseCase{Outcome: b.Outcome, Note: n}, err
	})
}

func (s *Server) reopen() handlerFunc {
	return signalCommand(s, requireReason, func(b *reasonBody, _ domain.Signal, seal app.Sealer) (domain.Command, error) {
		r, err := seal(b.Reason)
		return domain.ReopenCase{Reason: r}, err
	})
}

var orgID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)

func (s *Server) registerOrganisation(w http.ResponseWriter, r *http.Request) error {
	if _, err := domain.Authorize(principal(r.Context()), domain.ActRegisterOrganisation, domain.Target{}); err != nil {
		return err
	}
	var b organisationBody
	if err := s.decode(w, r, &b); err != nil {
		return err
	}
	var f fields
	if !orgID.MatchString(b.ID) {
		f.add("id", "must be 1 to 100 lower-case letters, digits, '.', '_' or '-'")
	}
	f.required("name", b.Name)
	f.maxLen("name", b.Name, maxName)
	if !domain.OrganisationKind.Has(b.Kind) {
		f.add("kind", "must be one of: "+strings.Join(domain.OrganisationKind, ", "))
	}
	if len(b.Services) > 100 {
		f.add("services", "has more than 100 entries")
	}
	for _, sv := range b.Services {
		f.required("services.name", sv.Name)
		f.maxLen("services.name", sv.Name, maxName)
		f.maxLen("services.description", sv.Description, maxText)
	}
	if err := f.err(); err != nil {
		return err
	}
	req, err := appRequest(r, &b)
	if err != nil {
		return err
	}
	res, err := s.App.RegisterOrganisation(r.Context(), req, domain.RegisterOrganisation{ID: b.ID, Name: b.Name, Kind: b.Kind, Services: b.Services})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/organisations/"+res.ID)
	return s.answer(w, http.StatusCreated, res)
}

// mustJSON encodes a decoded request body again; nil is "null". Bodies are
// plain structs of strings, numbers and lists, which always encode.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("httpapi: a request body does not encode: %v", err))
	}
	return b
}
