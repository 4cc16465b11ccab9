package clusterkeys

import (
	"context"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/adapters/internal/subjectkeys"
)

// Shred implements domain.Cipher: it erases the subject for good, on every
// replica. In order:
//
//  1. the subject goes into the erased-subjects file (Options.ErasedFile);
//  2. SubjectKeyErased is appended to its key stream, at the revision read:
//     from then on every replica answers the subject as erased (reads from
//     the cluster see the marker; every replica's erasure watch drops its
//     cached key within milliseconds);
//  3. each blind index entry the key stream recorded is deleted, if it
//     still names the subject: SubjectUnindexed is appended (so the
//     stream's last event, which a scavenge keeps, names no subject) and
//     the stream is soft-deleted, so a new subject of the same person can
//     take the token;
//  4. the key stream is tombstoned, at the marker's revision: the wrapped
//     key can never be read again, and no key can ever be created again
//     for the subject's id.
//
// A crash or error between the steps leaves the subject erased for every
// reader (from step 2 on); calling Shred again, or ShredErased, finishes
// the rest. Shredding a subject without a key, or one already erased, is
// fine: it is marked erased too. The key's events stay in KurrentDB's chunk
// files until a scavenge (see the package documentation). Errors: ErrClosed,
// ErrUnavailable and "canceled" (KindUnavailable), KindInternal.
func (s *Store) Shred(ctx context.Context, subject uuid.UUID) error {
	if err := s.life.Enter(); err != nil {
		return err
	}
	defer s.life.Exit()
	if err := ctx.Err(); err != nil {
		return classify(ctx, err)
	}
	if s.opts.ErasedFile != "" {
		if err := subjectkeys.RecordErased(s.opts.FS, s.opts.ErasedFile, subject); err != nil {
			return err
		}
	}
	return s.shred(ctx, subject)
}

func (s *Store) shred(ctx context.Context, id uuid.UUID) error {
	stream := keyStream(id)
	for range maxRaces {
		k, err := s.readKey(ctx, id)
		if err != nil {
			return err
		}
		if k.deleted {
			s.forget(id)
			return nil // done before: the entries went before the tombstone
		}
		marker := k.last
		if !k.erased {
			_, err := s.appendTo(ctx, stream, k.expected(), event(typeKeyErased, keyErased{HadKey: k.wrapped != nil}))
			switch {
			case isCode(err, kurrentconn.WrongExpectedVersion):
				continue // a Put or Seal came first: read what it wrote
			case isCode(err, kurrentconn.StreamDeleted):
				s.forget(id)
				return nil
			case err != nil:
				return classify(ctx, err)
			}
			if k.exists {
				marker = k.last + 1
			} else {
				marker = 0
			}
		}
		s.forget(id)
		for _, r := range k.tokens {
			if err := s.unindex(ctx, r, id); err != nil {
				return err
			}
		}
		_, err = kurrentconn.Call(ctx, s.c, func(ctx context.Context, cl *esdb.Client) (*esdb.DeleteResult, error) {
			return cl.TombstoneStream(ctx, stream, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(marker)})
		})
		switch {
		case err == nil, isCode(err, kurrentconn.StreamDeleted):
			return nil
		case !isCode(err, kurrentconn.WrongExpectedVersion):
			return classify(ctx, err)
		}
		// Something was appended after the marker (nothing of this store
		// does): read again and finish.
	}
	return errRaces
}

// unindex deletes the token's index entry if it names the subject: it
// appends SubjectUnindexed at the revision read, then soft-deletes the
// stream at that event's revision. A race with a Put that takes the token
// over makes either step conflict; the entry is then read again and left to
// its new subject.
func (s *Store) unindex(ctx context.Context, r indexRef, id uuid.UUID) error {
	stream := indexStream(r)
	for range maxRaces {
		h, err := s.readIndex(ctx, r)
		if err != nil {
			return err
		}
		if !h.exists || (h.indexed && h.owner != id) {
			return nil
		}
		last := h.rev
		if h.indexed {
			_, err := s.appendTo(ctx, stream, esdb.Revision(h.rev), event(typeUnindexed, struct{}{}))
			if isCode(err, kurrentconn.WrongExpectedVersion) {
				continue
			}
			if err != nil {
				return classify(ctx, err)
			}
			last = h.rev + 1
		}
		_, err = kurrentconn.Call(ctx, s.c, func(ctx context.Context, cl *esdb.Client) (*esdb.DeleteResult, error) {
			return cl.DeleteStream(ctx, stream, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(last)})
		})
		switch {
		case err == nil:
			return nil
		case !isCode(err, kurrentconn.WrongExpectedVersion):
			return classify(ctx, err)
		}
	}
	return errRaces
}

// ShredErased applies an erased-subjects file to the cluster: it finishes
// the erasure of every subject the file lists whose key stream is not yet
// tombstoned (after a restore of an older cluster backup, or an erasure cut
// short), and returns how many it erased. It is idempotent: a second run
// finds every listed stream tombstoned and does nothing. Streams are
// checked 16 at a time. Errors: as Shred's, and the file's.
func (s *Store) ShredErased(ctx context.Context, path string) (int, error) {
	if err := s.life.Enter(); err != nil {
		return 0, err
	}
	defer s.life.Exit()
	ids, err := subjectkeys.ReadErased(s.opts.FS, path)
	if err != nil {
		return 0, err
	}
	seen := map[uuid.UUID]bool{}
	work := make(chan uuid.UUID)
	var (
		mu    sync.Mutex
		n     int
		first error
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(16, max(1, len(ids))) {
		wg.Go(func() {
			for id := range work {
				k, err := s.readKey(ctx, id)
				if err == nil && !k.deleted {
					err = s.shred(ctx, id)
					if err == nil {
						mu.Lock()
						n++
						mu.Unlock()
					}
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		select {
		case work <- id:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	return n, first
}
