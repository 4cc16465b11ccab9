// Package app runs commands: it loads a signal's stream, seals personal data
// under the subject's key, calls the pure domain.Decide, and appends the
// events with the expected version. It is the write side behind the HTTP
// adapter, and uses only ports (the event log, the cipher, the blind index,
// and lookups that projections answer).
//
// Idempotency (draft-ietf-httpapi-idempotency-key-header): with an
// Idempotency-Key the event ids (and a new signal's id) are derived from the
// principal, the key and the stream, so a retried command finds its own
// events in the stream and answers as the first time, writing nothing. The
// events also carry a keyed fingerprint of the request's canonical form
// (Request.Canonical): the same key with another request is refused with
// ErrKeyReused and writes nothing.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// Lookup answers what the write side needs from projections. Answers may lag
// the log slightly; the domain rules that matter are checked on the stream.
// The ctx-taking lookups catch up with the log before answering "no", so a
// command may name what the previous command created.
type Lookup interface {
	OpenSignalsOfSubject(subject uuid.UUID) []uuid.UUID
	// SignalOfReferral answers an error (KindUnavailable) when it cannot
	// tell, rather than "no".
	SignalOfReferral(ctx context.Context, referral uuid.UUID) (uuid.UUID, bool, error)
	OrganisationExists(ctx context.Context, network, id string) bool
	KnownTeam(network, team string) bool
	// TeamsOf lists the teams the configuration knows in the network; open
	// is true when it names none and every team is accepted.
	TeamsOf(network string) (teams []string, open bool)
	// Professional reports whether the principal is a professional of the
	// team in the network; known is false when the configuration does not
	// list principals (OIDC): then nothing can be checked.
	Professional(network, team, principal string) (member, known bool)
}

// Service runs commands.
type Service struct {
	Log      eventlog.Store
	Cipher   domain.Cipher
	Index    domain.BlindIndex
	Subjects domain.SubjectIndex
	Lookup   Lookup
	Reg      *domain.Registry
	Now      func() time.Time
	NewID    func() uuid.UUID
}

// Request carries who asks and how.
type Request struct {
	Actor          domain.Principal
	IdempotencyKey string
	IfMatch        int // expected version (number of events); 0 when not given
	HasIfMatch     bool
	RequestID      string
	CorrelationID  string
	OnBehalfOf     string
	// Canonical is the request's canonical form (method, path and the
	// decoded body re-encoded), fingerprinted with an Idempotency-Key.
	Canonical []byte
}

// ErrKeyReused answers a request whose Idempotency-Key an earlier, other
// request of the same principal used (another body, another command).
var ErrKeyReused = &domain.Error{Kind: domain.KindInvalid, Code: "idempotency_key_reused",
	Message: "this Idempotency-Key was used for another request: use a new key for a new request"}

// Result is the answer to a command.
type Result struct {
	ID         string
	Version    int
	Position   uint64
	Status     domain.Status
	SubjectID  uuid.UUID
	Matched    []uuid.UUID
	ReferralID uuid.UUID
	Replayed   bool // an idempotent retry: nothing was written
}

// SubjectData is the personal data of a subject, sealed as one JSON document.
type SubjectData struct {
	Name      string `json:"name"`
	BirthDate string `json:"birth_date,omitempty"`
	Address   string `json:"address,omitempty"`
	Phone     string `json:"phone,omitempty"`
}

// LogValue keeps personal data out of structured logs.
func (SubjectData) LogValue() slog.Value { return slog.StringValue("[personal data]") }

// GoString keeps personal data out of %#v.
func (SubjectData) GoString() string { return "[personal data]" }

// String keeps personal data out of fmt output.
func (SubjectData) String() string { return "[personal data]" }

var idNamespace = uuid.MustParse("6f1b8a52-3c1e-4d0a-9a55-8d2f6b1e9c41")

// derive returns the id of the i-th event of an idempotent command.
func derive(actor, key, scope string, i int) uuid.UUID {
	return uuid.NewSHA1(idNamespace, []byte(actor+"\x00"+key+"\x00"+scope+"\x00"+strconv.Itoa(i)))
}

func (s *Service) eventIDs(req Request, scope string, n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		if req.IdempotencyKey != "" {
			ids[i] = derive(req.Actor.ID, req.IdempotencyKey, scope, i)
		} else {
			ids[i] = s.NewID()
		}
	}
	return ids
}

func primaryRole(p domain.Principal) string {
	if len(p.Roles) == 0 {
		return ""
	}
	return string(p.Roles[0])
}

// fingerprint is the keyed digest of the request kept with its events when it
// has an Idempotency-Key (empty without one).
func (s *Service) fingerprint(req Request) string {
	if req.IdempotencyKey == "" {
		return ""
	}
	return s.Index.Fingerprint(req.Canonical)
}

func (s *Service) encode(req Request, ids []uuid.UUID, events []domain.Event, now time.Time) ([]eventlog.EventData, error) {
	out := make([]eventlog.EventData, len(events))
	fp := s.fingerprint(req)
	for i, e := range events {
		data, err := domain.Encode(e)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		out[i] = eventlog.EventData{ID: ids[i], Type: e.EventType(), Data: data, Metadata: eventlog.Metadata{
			OccurredAt: now, ActorID: req.Actor.ID, ActorRole: primaryRole(req.Actor), OnBehalfOf: req.OnBehalfOf,
			CorrelationID: req.CorrelationID, CausationID: req.RequestID, RequestID: req.RequestID,
			Network: req.Actor.Network, SchemaVersion: domain.VersionOf(e), IdempotencyFingerprint: fp,
		}}
	}
	return out, nil
}

// notBefore is now, or the time of the stream's last event when the clock
// is behind it (stepped back by NTP): a signal's events never go back in
// time, so its first response is never before it was raised and no
// response time is negative.
func notBefore(now time.Time, recs []eventlog.RecordedEvent) time.Time {
	if n := len(recs); n > 0 {
		if last := recs[n-1].Metadata.OccurredAt.UTC(); now.Before(last) {
			return last
		}
	}
	return now
}

// load reads and decodes a whole stream. A missing stream gives no events.
func (s *Service) load(ctx context.Context, stream string) ([]eventlog.RecordedEvent, []domain.Event, error) {
	var recs []eventlog.RecordedEvent
	var from uint64
	for {
		page, err := s.Log.ReadStream(ctx, stream, eventlog.Forwards, from, 1000)
		if errors.Is(err, eventlog.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		recs = append(recs, page...)
		if len(page) < 1000 {
			break
		}
		from = page[len(page)-1].Revision + 1
	}
	events := make([]domain.Event, len(recs))
	for i, r := range recs {
		e, err := s.Reg.DecodeVersion(r.Type, r.Metadata.SchemaVersion, r.Data)
		if err != nil {
			return nil, nil, err
		}
		events[i] = e
	}
	return recs, events, nil
}

// replay answers an idempotent retry: the events whose ids the key derives
// are in the stream already. ok is false when they are not. It returns
// ErrKeyReused when they are there but were written by another request
// (events written before fingerprints were kept replay as before).
func (s *Service) replay(req Request, scope string, recs []eventlog.RecordedEvent, events []domain.Event) (Result, domain.Signal, bool, error) {
	if req.IdempotencyKey == "" {
		return Result{}, domain.Signal{}, false, nil
	}
	first := derive(req.Actor.ID, req.IdempotencyKey, scope, 0)
	start := -1
	for i, r := range recs {
		if r.ID == first {
			start = i
			break
		}
	}
	if start < 0 {
		return Result{}, domain.Signal{}, false, nil
	}
	if fp := recs[start].Metadata.IdempotencyFingerprint; fp != "" && fp != s.fingerprint(req) {
		return Result{}, domain.Signal{}, false, ErrKeyReused
	}
	end := start
	for end+1 < len(recs) && recs[end+1].ID == derive(req.Actor.ID, req.IdempotencyKey, scope, end+1-start) {
		end++
	}
	var st domain.Signal
	for _, e := range events[:end+1] {
		st = domain.Evolve(st, e)
	}
	return Result{Version: end + 1, Position: recs[end].Position, Status: st.Status, Replayed: true}, st, true, nil
}

// ErrStale is the answer to an If-Match that is not the current version.
var ErrStale = &domain.Error{Kind: domain.KindConflict, Code: "stale_version", Message: "the signal has changed since you read it (If-Match does not match its version)"}

var errSignalNotFound = &domain.Error{Kind: domain.KindNotFound, Code: "signal_not_found", Message: "the signal does not exist"}

// Sealer seals free text under the signal's subject key; empty text stays empty.
type Sealer func(text string) (domain.Sealed, error)

// Execute runs a command on an existing signal. build makes the command once
// the signal is loaded, sealing its free text with the subject's key. It
// returns the domain's error kinds, ErrStale, and the log's errors.
func (s *Service) Execute(ctx context.Context, req Request, signalID uuid.UUID, build func(st domain.Signal, seal Sealer) (domain.Command, error)) (Result, error) {
	stream := eventlog.StreamName(domain.SignalCategory, signalID.String())
	for attempt := 0; ; attempt++ {
		recs, events, err := s.load(ctx, stream)
		if err != nil {
			return Result{}, err
		}
		if len(recs) == 0 {
			return Result{}, errSignalNotFound
		}
		if res, _, ok, err := s.replay(req, stream, recs, events); err != nil {
			return Result{}, err
		} else if ok {
			res.ID = signalID.String()
			return res, nil
		}
		var st domain.Signal
		for _, e := range events {
			st = domain.Evolve(st, e)
		}
		if req.HasIfMatch && req.IfMatch != len(recs) {
			return Result{}, ErrStale
		}
		seal := func(text string) (domain.Sealed, error) {
			if text == "" {
				return nil, nil
			}
			return s.Cipher.Seal(ctx, st.SubjectID, []byte(text))
		}
		cmd, err := build(st, seal)
		if err != nil {
			return Result{}, err
		}
		now := notBefore(s.Now().UTC(), recs)
		out, err := domain.Decide(st, req.Actor, cmd, now)
		if err != nil {
			return Result{}, err
		}
		data, err := s.encode(req, s.eventIDs(req, stream, len(out)), out, now)
		if err != nil {
			return Result{}, err
		}
		ar, err := s.Log.Append(ctx, stream, eventlog.Revision(uint64(len(recs)-1)), data...)
		if errors.Is(err, eventlog.ErrWrongExpectedVersion) {
			if req.HasIfMatch {
				return Result{}, ErrStale
			}
			if attempt < 3 {
				continue // a concurrent command won: decide again on the new state
			}
		}
		if err != nil {
			return Result{}, err
		}
		for _, e := range out {
			st = domain.Evolve(st, e)
		}
		res := Result{ID: signalID.String(), Version: st.Version, Position: ar.Position, Status: st.Status}
		if r, ok := cmd.(domain.MakeReferral); ok {
			res.ReferralID = r.ReferralID
		}
		return res, nil
	}
}

// ReferralID returns the id for a new referral: derived from the idempotency
// key when there is one, so a retry names the same referral.
func (s *Service) ReferralID(req Request, signalID uuid.UUID) uuid.UUID {
	if req.IdempotencyKey != "" {
		return derive(req.Actor.ID, req.IdempotencyKey, "referral-"+signalID.String(), 0)
	}
	return s.NewID()
}

// FollowUpID is like ReferralID for follow-ups.
func (s *Service) FollowUpID(req Request, signalID uuid.UUID) uuid.UUID {
	if req.IdempotencyKey != "" {
		return derive(req.Actor.ID, req.IdempotencyKey, "follow-up-"+signalID.String(), 0)
	}
	return s.NewID()
}

var errReferralNotFound = &domain.Error{Kind: domain.KindNotFound, Code: "referral_not_found", Message: "the referral does not exist"}

// AnswerReferral runs a partner's answer to a referral. It returns
// KindNotFound for an unknown referral, and Execute's errors.
func (s *Service) AnswerReferral(ctx context.Context, req Request, referralID uuid.UUID, answer domain.ReferralStatus, note string) (Result, error) {
	signalID, ok, err := s.Lookup.SignalOfReferral(ctx, referralID)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{}, errReferralNotFound
	}
	res, err := s.Execute(ctx, req, signalID, func(_ domain.Signal, seal Sealer) (domain.Command, error) {
		n, err := seal(note)
		return domain.AnswerReferral{ReferralID: referralID, Answer: answer, Note: n}, err
	})
	res.ReferralID = referralID
	return res, err
}

// HandOver hands a signal to a team the configuration knows; without a
// team, to the team of the first routing rule of the network that matches
// the signal, recorded in the event. It returns KindInvalid for an unknown
// team or when no rule matches, and Execute's errors.
func (s *Service) HandOver(ctx context.Context, req Request, signalID uuid.UUID, team, note string) (Result, error) {
	return s.Execute(ctx, req, signalID, func(st domain.Signal, seal Sealer) (domain.Command, error) {
		var rule string
		if team == "" && st.Status == domain.StatusRaised {
			rules, _, err := s.RoutingRules(ctx, st.Network)
			if err != nil {
				return nil, err
			}
			r, ok := domain.Route(rules, st)
			if !ok {
				return nil, domain.Invalid(domain.FieldError{Field: "team_id", Message: "no routing rule matches this signal: name a team"})
			}
			team, rule = r.TeamID, r.ID
		}
		if team != "" && !s.Lookup.KnownTeam(req.Actor.Network, team) {
			return nil, domain.Invalid(domain.FieldError{Field: "team_id", Message: "unknown team"})
		}
		n, err := seal(note)
		return domain.HandOver{TeamID: team, Note: n, RuleID: rule}, err
	})
}

// Assign gives a case to a professional of its team. It returns KindInvalid
// for a principal the configuration knows not to be a professional of the
// team, and Execute's errors.
func (s *Service) Assign(ctx context.Context, req Request, signalID uuid.UUID, professional string) (Result, error) {
	return s.Execute(ctx, req, signalID, func(st domain.Signal, _ Sealer) (domain.Command, error) {
		if _, err := domain.Authorize(req.Actor, domain.ActAssign, st.Target()); err != nil {
			return nil, err // who may not assign learns nothing of the team
		}
		if member, known := s.Lookup.Professional(st.Network, st.Team, professional); known && !member {
			return nil, domain.Invalid(domain.FieldError{Field: "professional_id", Message: "is not a professional of the signal's team"})
		}
		return domain.AssignCase{ProfessionalID: professional}, nil
	})
}

// Refer makes a referral to a known organisation. It returns KindInvalid for
// an unknown organisation, and Execute's errors.
// The answer names the referral, also when it replays a retry.
func (s *Service) Refer(ctx context.Context, req Request, signalID uuid.UUID, org, service, reason string) (Result, error) {
	id := s.ReferralID(req, signalID)
	res, err := s.Execute(ctx, req, signalID, func(st domain.Signal, seal Sealer) (domain.Command, error) {
		if org != "" && !s.Lookup.OrganisationExists(ctx, req.Actor.Network, org) {
			return nil, domain.Invalid(domain.FieldError{Field: "organisation_id", Message: "unknown organisation"})
		}
		r, err := seal(reason)
		return domain.MakeReferral{ReferralID: id, OrganisationID: org, Service: service, Reason: r}, err
	})
	if err != nil {
		return Result{}, err
	}
	res.ReferralID = id
	return res, nil
}

// RegisterOrganisation adds an organisation to the sociale kaart plus.
func (s *Service) RegisterOrganisation(ctx context.Context, req Request, cmd domain.RegisterOrganisation) (Result, error) {
	stream := eventlog.StreamName(domain.OrganisationCategory, cmd.ID)
	var exists bool
	if cmd.ID != "" {
		recs, events, err := s.load(ctx, stream)
		if err != nil {
			return Result{}, err
		}
		if res, _, ok, err := s.replay(req, stream, recs, events); err != nil {
			return Result{}, err
		} else if ok {
			res.ID, res.Status = cmd.ID, ""
			return res, nil
		}
		exists = len(recs) > 0
	}
	now := s.Now().UTC()
	out, err := domain.DecideOrganisation(exists, req.Actor, cmd)
	if err != nil {
		return Result{}, err
	}
	data, err := s.encode(req, s.eventIDs(req, stream, len(out)), out, now)
	if err != nil {
		return Result{}, err
	}
	ar, err := s.Log.Append(ctx, stream, eventlog.NoStream(), data...)
	if errors.Is(err, eventlog.ErrWrongExpectedVersion) {
		return Result{}, &domain.Error{Kind: domain.KindConflict, Code: "organisation_exists", Message: "the organisation already exists"}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{ID: cmd.ID, Version: len(out), Position: ar.Position}, nil
}
