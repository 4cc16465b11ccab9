package app

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// Raising a signal: the subject found or registered, the signal, its
// routing on raise, and the match recorded on the subject's stream.

// RaiseInput is a new signal in plaintext, validated at the edge.
type RaiseInput struct {
	Subject       SubjectData
	Neighbourhood string
	Categories    []string
	Urgency       string
	Consent       string
	Description   string
}

// Raise registers a new signal, and its subject when the blind index does not
// know the person yet; open signals about the same subject are matched. It
// returns the domain's error kinds and the log's errors.
func (s *Service) Raise(ctx context.Context, req Request, in RaiseInput) (Result, error) {
	if _, err := domain.Authorize(req.Actor, domain.ActRaise, domain.Target{}); err != nil {
		return Result{}, err
	}
	signalID := s.NewID()
	if req.IdempotencyKey != "" {
		signalID = derive(req.Actor.ID, req.IdempotencyKey, "raise", 0)
	}
	stream := eventlog.StreamName(domain.SignalCategory, signalID.String())
	if req.IdempotencyKey != "" {
		recs, events, err := s.load(ctx, stream)
		if err != nil {
			return Result{}, err
		}
		res, st, ok, err := s.replay(req, stream, recs, events)
		if err != nil {
			return Result{}, err
		}
		if ok {
			// The first attempt wrote its subject's index entry side by side
			// with the signal and may have failed on it alone: write it again
			// (a Put that is already there changes nothing).
			res.ID, res.SubjectID = signalID.String(), st.SubjectID
			if st.SubjectID == derive(req.Actor.ID, req.IdempotencyKey, "subject", 0) {
				token := s.Index.Token(in.Subject.Name, in.Subject.BirthDate)
				if err := s.Subjects.Put(ctx, req.Actor.Network, token, st.SubjectID); err != nil && !errors.Is(err, domain.ErrErased) {
					return Result{}, err
				}
				return res, nil
			}
			// A known subject: the first attempt recorded (or, cut short,
			// did not yet record) the signal on the subject's stream.
			sig, err := s.recordSignalled(ctx, req, st.SubjectID, signalID, s.Lookup.OpenSignalsOfSubject(st.SubjectID), s.Now().UTC())
			if err != nil {
				return Result{}, err
			}
			res.Matched, res.Position = sig.matched, max(res.Position, sig.position)
			return res, nil
		}
	}
	network := req.Actor.Network
	cfg, err := s.Network(ctx, network)
	if err != nil {
		return Result{}, err
	}
	if errs := cfg.CheckRaise(in.Neighbourhood, in.Categories); len(errs) > 0 {
		return Result{}, domain.Invalid(errs...)
	}
	token := s.Index.Token(in.Subject.Name, in.Subject.BirthDate)
	subjectID, known, err := s.Subjects.Find(ctx, network, token)
	if err != nil {
		return Result{}, err
	}
	if known {
		if erased, err := s.Cipher.Erased(ctx, subjectID); err != nil {
			return Result{}, err
		} else if erased {
			known = false
		}
	}
	if !known {
		subjectID = s.NewID()
		if req.IdempotencyKey != "" {
			subjectID = derive(req.Actor.ID, req.IdempotencyKey, "subject", 0)
		}
	}
	var matched []uuid.UUID
	if known {
		matched = s.Lookup.OpenSignalsOfSubject(subjectID)
	}
	desc, err := s.Cipher.Seal(ctx, subjectID, []byte(in.Description))
	if err != nil {
		return Result{}, err
	}
	now := s.Now().UTC()
	cmd := domain.RaiseSignal{SignalID: signalID, SubjectID: subjectID, Neighbourhood: in.Neighbourhood,
		Categories: in.Categories, Urgency: in.Urgency, Consent: in.Consent, Description: desc}
	// The norms in force now go with the signal: a later change of the
	// network's norms or categories applies to signals raised after it.
	norms := cfg.SignalNorms(in.Urgency, in.Categories)
	cmd.Norms = &norms
	out, err := domain.Decide(domain.Signal{}, req.Actor, cmd, now)
	if err != nil {
		return Result{}, err
	}
	// A routing rule marked on_raise hands the signal over at once, in the
	// same append, as the system's routing actor.
	routed := -1
	if auto, ok, err := s.routeOnRaise(ctx, network, out); err != nil {
		return Result{}, err
	} else if ok {
		routed = len(out)
		out = append(out, auto)
	}
	data, err := s.encode(req, s.eventIDs(req, stream, len(out)), out, now)
	if err != nil {
		return Result{}, err
	}
	if routed >= 0 {
		data[routed].Metadata.ActorID, data[routed].Metadata.ActorRole = domain.SystemRouting, domain.SystemRole
	}
	var indexed chan error
	if !known {
		if err := s.registerSubject(ctx, req, subjectID, in.Subject, now); err != nil {
			return Result{}, err
		}
		// The index entry and the signal only need the subject registered,
		// not each other: they are written side by side, so a raise waits
		// for three durable writes in a row instead of four. An index entry
		// never names a subject the log does not have; a failed one only
		// loses future matches, and the raise reports it (a retry with the
		// same Idempotency-Key writes it again, see above).
		indexed = make(chan error, 1)
		go func() { indexed <- s.Subjects.Put(ctx, network, token, subjectID) }()
	}
	ar, err := s.Log.Append(ctx, stream, eventlog.NoStream(), data...)
	if indexed != nil {
		if ierr := <-indexed; err == nil {
			err = ierr
		}
	}
	if err != nil {
		return Result{}, err
	}
	var st domain.Signal
	for _, e := range out {
		st = domain.Evolve(st, e)
	}
	res := Result{ID: signalID.String(), Version: st.Version, Position: ar.Position, Status: st.Status, SubjectID: subjectID}
	if known {
		// The match goes on the subject's stream, after the signal: a raise
		// about a known resident writes as much as one about a new resident
		// (whose registration comes first), and answers the position of its
		// last write in both cases.
		sig, err := s.recordSignalled(ctx, req, subjectID, signalID, matched, now)
		if err != nil {
			return Result{}, err
		}
		res.Matched, res.Position = sig.matched, sig.position
	}
	return res, nil
}

type signalled struct {
	matched  []uuid.UUID
	position uint64
}

// recordSignalled records SubjectSignalled on the subject's stream, once
// per raise: with an Idempotency-Key its event id is derived, so a retry
// finds it (and answers with what it recorded) rather than writing again.
func (s *Service) recordSignalled(ctx context.Context, req Request, subject, signal uuid.UUID, open []uuid.UUID, now time.Time) (signalled, error) {
	stream := eventlog.StreamName(domain.SubjectCategory, subject.String())
	scope := stream + "/signalled/" + signal.String()
	ids := s.eventIDs(req, scope, 1)
	if req.IdempotencyKey != "" {
		recs, events, err := s.load(ctx, stream)
		if err != nil {
			return signalled{}, err
		}
		for i, r := range recs {
			if e, ok := events[i].(domain.SubjectSignalled); ok && r.ID == ids[0] {
				return signalled{matched: e.Matched, position: r.Position}, nil
			}
		}
	}
	e := domain.Signalled(subject, signal, open)
	data, err := s.encode(req, ids, []domain.Event{e}, now)
	if err != nil {
		return signalled{}, err
	}
	ar, err := s.Log.Append(ctx, stream, eventlog.Any(), data...)
	if err != nil {
		return signalled{}, err
	}
	return signalled{matched: e.Matched, position: ar.Position}, nil
}

// routeOnRaise returns the handover the network's routing rules give a
// signal raised with events (domain.RouteOnRaise), for a team the
// configuration knows.
func (s *Service) routeOnRaise(ctx context.Context, network string, events []domain.Event) (domain.Event, bool, error) {
	rules, _, err := s.RoutingRules(ctx, network)
	if err != nil || len(rules) == 0 {
		return nil, false, err
	}
	var st domain.Signal
	for _, e := range events {
		st = domain.Evolve(st, e)
	}
	e, ok := domain.RouteOnRaise(rules, st)
	if !ok || !s.Lookup.KnownTeam(network, e.TeamID) {
		return nil, false, nil
	}
	return e, true, nil
}

func (s *Service) registerSubject(ctx context.Context, req Request, id uuid.UUID, data SubjectData, now time.Time) error {
	plain, err := json.Marshal(data)
	if err != nil {
		return err
	}
	sealed, err := s.Cipher.Seal(ctx, id, plain)
	if err != nil {
		return err
	}
	stream := eventlog.StreamName(domain.SubjectCategory, id.String())
	ev := domain.SubjectRegistered{SubjectID: id, Network: req.Actor.Network, Data: sealed}
	encoded, err := s.encode(req, s.eventIDs(req, stream, 1), []domain.Event{ev}, now)
	if err != nil {
		return err
	}
	_, err = s.Log.Append(ctx, stream, eventlog.NoStream(), encoded...)
	if errors.Is(err, eventlog.ErrWrongExpectedVersion) && req.IdempotencyKey != "" {
		// Registered by the first attempt of this request, whose signal was
		// not written: unless that attempt was another request.
		recs, events, lerr := s.load(ctx, stream)
		if lerr != nil {
			return lerr
		}
		_, _, ok, rerr := s.replay(req, stream, recs, events)
		if rerr != nil {
			return rerr
		}
		if ok {
			err = nil
		}
	}
	return err
}
