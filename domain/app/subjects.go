package app

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// EraseSubject crypto-shreds a subject: it deletes the subject's key for good
// (the key store makes it physically gone before returning), then records
// SubjectErased with who, the basis and the request reference. The key goes
// first: if recording fails the data is already unreadable and a retry
// records it. reason is kept out of the log (free text may hold personal
// data); the request reference is the link to the request's file.
// It returns KindForbidden, KindNotFound for an unknown subject, and the
// store's errors.
func (s *Service) EraseSubject(ctx context.Context, req Request, subject uuid.UUID, requestRef, basis string, exists bool) (Result, error) {
	if _, err := domain.Authorize(req.Actor, domain.ActErase, domain.Target{}); err != nil && basis != "retention" {
		return Result{}, err
	}
	if !exists {
		return Result{}, &domain.Error{Kind: domain.KindNotFound, Code: "subject_not_found", Message: "the subject does not exist"}
	}
	if req.IdempotencyKey != "" { // a retry, or a key reused for another request, shreds nothing
		stream := eventlog.StreamName(domain.SubjectCategory, subject.String())
		recs, events, err := s.load(ctx, stream)
		if err != nil {
			return Result{}, err
		}
		if res, _, ok, err := s.replay(req, stream, recs, events); err != nil {
			return Result{}, err
		} else if ok {
			res.ID, res.Status = subject.String(), ""
			return res, nil
		}
	}
	if err := s.Cipher.Shred(ctx, subject); err != nil {
		return Result{}, fmt.Errorf("shred: %w", err)
	}
	return s.appendSubject(ctx, req, subject, domain.SubjectErased{SubjectID: subject, RequestRef: requestRef, Basis: basis})
}

// RecordExport records that a subject's data was exported (GDPR art. 15).
func (s *Service) RecordExport(ctx context.Context, req Request, subject uuid.UUID, requestRef string) (Result, error) {
	return s.appendSubject(ctx, req, subject, domain.SubjectExported{SubjectID: subject, RequestRef: requestRef})
}

func (s *Service) appendSubject(ctx context.Context, req Request, subject uuid.UUID, ev domain.Event) (Result, error) {
	stream := eventlog.StreamName(domain.SubjectCategory, subject.String())
	recs, events, err := s.load(ctx, stream)
	if err != nil {
		return Result{}, err
	}
	if res, _, ok, err := s.replay(req, stream, recs, events); err != nil {
		return Result{}, err
	} else if ok {
		res.ID, res.Status = subject.String(), ""
		return res, nil
	}
	now := s.Now().UTC()
	data, err := s.encode(req, s.eventIDs(req, stream, 1), []domain.Event{ev}, now)
	if err != nil {
		return Result{}, err
	}
	expected := eventlog.NoStream()
	if len(recs) > 0 {
		expected = eventlog.Revision(uint64(len(recs) - 1))
	}
	ar, err := s.Log.Append(ctx, stream, expected, data...)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: subject.String(), Version: len(recs) + 1, Position: ar.Position}, nil
}
