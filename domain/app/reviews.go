package app

import (
	"context"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// RecordReview records a privacy officer's judgement of an item to review
// (a break-glass read or a flag; the caller checks that it exists) as
// AccessReviewed on the network's reviews stream. The note is free text:
// it is sealed under the key of subject (the item's first subject; for an
// item without one, the network's own, domain.NetworkSealSubject), never
// kept in clear. With an Idempotency-Key a retry writes nothing new. It
// returns KindInvalid for an unknown judgement, the cipher's and the log's
// errors.
func (s *Service) RecordReview(ctx context.Context, req Request, item, judgement, note string, subject uuid.UUID) (Result, error) {
	if !domain.Judgements.Has(judgement) {
		return Result{}, &domain.Error{Kind: domain.KindInvalid, Code: "invalid_judgement", Message: "judgement must be justified, not_justified or follow_up"}
	}
	if subject == uuid.Nil {
		subject = domain.NetworkSealSubject(req.Actor.Network)
	}
	ev := domain.AccessReviewed{Network: req.Actor.Network, Item: item, Judgement: judgement}
	if note != "" {
		sealed, err := s.Cipher.Seal(ctx, subject, []byte(note))
		if err != nil {
			return Result{}, err
		}
		ev.Note, ev.Subject = sealed, subject
	}
	res, err := s.appendTo(ctx, req, eventlog.StreamName(domain.ReviewsCategory, req.Actor.Network), item, ev, false)
	if err != nil {
		return Result{}, err
	}
	return res, nil
}
