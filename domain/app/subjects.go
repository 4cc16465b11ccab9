package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// EraseSubject crypto-shreds a subject: it deletes the subject's key for good
// (the key store makes it physically gone before returning), then records
// SubjectErased with who, the basis and the request reference.
//
// The key goes first, so the log never says a subject is erased while its
// data can still be read. From then on the erasure must not stop half way:
// recording it no longer depends on the caller's context (a client that
// hangs up does not cut it short), a concurrent append to the subject's
// stream (an export) is retried, and so is a store that is briefly
// unavailable, for up to eraseRecordTimeout. Should recording still fail,
// the data is unreadable already, a retry of the request records it (a
// second Shred is harmless), and so does the next start of the server
// (CompleteErasure). reason is kept out of the log (free text may hold
// personal data); the request reference is the link to the request's file.
// It returns KindForbidden, KindNotFound for an unknown subject, and the
// store's errors.
func (s *Service) EraseSubject(ctx context.Context, req Request, subject uuid.UUID, requestRef, basis string, exists bool) (Result, error) {
	if _, err := domain.Authorize(req.Actor, domain.ActErase, domain.Target{}); err != nil {
		return Result{}, err
	}
	return s.erase(ctx, req, subject, requestRef, basis, exists)
}

// erase is EraseSubject once the erasure is authorized (by a request's
// actor, or as the retention sweep's own use case).
func (s *Service) erase(ctx context.Context, req Request, subject uuid.UUID, requestRef, basis string, exists bool) (Result, error) {
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
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eraseRecordTimeout)
	defer cancel()
	return s.appendSubject(rctx, req, subject, domain.SubjectErased{SubjectID: subject, RequestRef: requestRef, Basis: basis}, true)
}

// CompleteErasure records SubjectErased for a subject whose key is shredded
// already but whose erasure was cut short before it was recorded (a crash,
// or a store that stayed unavailable), with basis "completed". req carries
// an Idempotency-Key, so that replicas completing the same erasure record
// it once. It returns the store's errors.
func (s *Service) CompleteErasure(ctx context.Context, req Request, subject uuid.UUID) (Result, error) {
	return s.appendSubject(ctx, req, subject, domain.SubjectErased{SubjectID: subject, RequestRef: "erased-subjects", Basis: "completed"}, true)
}

// eraseRecordTimeout bounds how long an erasure keeps trying to record
// SubjectErased after its key is shredded.
const eraseRecordTimeout = 10 * time.Second

// RecordExport records that a subject's data was exported (GDPR art. 15).
// A concurrent append to the subject's stream is retried, never a conflict.
func (s *Service) RecordExport(ctx context.Context, req Request, subject uuid.UUID, requestRef string) (Result, error) {
	return s.appendSubject(ctx, req, subject, domain.SubjectExported{SubjectID: subject, RequestRef: requestRef}, false)
}

// subjectAppendAttempts bounds the appends appendSubject tries: each lost
// race means another append to the stream won, so it is only reached when
// that many requests on one subject arrive at once.
const subjectAppendAttempts = 100

// appendSubject appends ev, which does not depend on the subject stream's
// state, to that stream. The append carries the expected version of the
// stream as read, so an idempotent retry is recognised on the current
// stream; when another append got in between, the stream is read again and
// the append retried (with a short, growing, jittered pause), never answered
// as a conflict. With persist, a store that is unavailable is retried too,
// until ctx ends.
func (s *Service) appendSubject(ctx context.Context, req Request, subject uuid.UUID, ev domain.Event, persist bool) (Result, error) {
	return s.appendTo(ctx, req, eventlog.StreamName(domain.SubjectCategory, subject.String()), subject.String(), ev, persist)
}

// appendTo appends ev to stream as appendSubject does; the answer names id.
func (s *Service) appendTo(ctx context.Context, req Request, stream, id string, ev domain.Event, persist bool) (Result, error) {
	now := s.Now().UTC()
	data, err := s.encode(req, s.eventIDs(req, stream, 1), []domain.Event{ev}, now)
	if err != nil {
		return Result{}, err
	}
	for attempt := 1; ; attempt++ {
		recs, events, err := s.load(ctx, stream)
		if err == nil {
			if res, _, ok, rerr := s.replay(req, stream, recs, events); rerr != nil {
				return Result{}, rerr
			} else if ok {
				res.ID, res.Status = id, ""
				return res, nil
			}
			expected := eventlog.NoStream()
			if len(recs) > 0 {
				expected = eventlog.Revision(uint64(len(recs) - 1))
			}
			var ar eventlog.AppendResult
			if ar, err = s.Log.Append(ctx, stream, expected, data...); err == nil {
				return Result{ID: id, Version: len(recs) + 1, Position: ar.Position}, nil
			}
		}
		retry := errors.Is(err, eventlog.ErrWrongExpectedVersion) ||
			(persist && domain.KindOf(err) == domain.KindUnavailable && !errors.Is(err, eventlog.ErrClosed))
		if !retry || attempt >= subjectAppendAttempts {
			return Result{}, err
		}
		if err := pause(ctx, attempt); err != nil {
			return Result{}, err
		}
	}
}

// pause waits before the attempt+1-th try: nothing after the first lost
// race, then a jittered wait growing to about 50 ms.
func pause(ctx context.Context, attempt int) error {
	if attempt < 2 {
		return ctx.Err()
	}
	d := time.Duration(rand.Int64N(int64(min(attempt, 50)) * int64(time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
