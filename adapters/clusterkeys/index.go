package clusterkeys

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/adapters/internal/subjectkeys"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// indexHead is what an index stream's last event says: the subject indexed
// under the token, or none (a SubjectUnindexed left by an erasure).
type indexHead struct {
	exists  bool // the stream is there (not soft-deleted)
	rev     uint64
	owner   uuid.UUID
	indexed bool // owner is set
}

func (s *Store) readIndex(ctx context.Context, r indexRef) (indexHead, error) {
	evs, deleted, err := s.read(ctx, indexStream(r), true)
	if err != nil {
		return indexHead{}, err
	}
	if deleted {
		return indexHead{}, subjectkeys.WrapAs(errDamaged, nil) // index streams are never tombstoned
	}
	if len(evs) == 0 {
		return indexHead{}, nil
	}
	last := evs[0]
	h := indexHead{exists: true, rev: last.EventNumber}
	switch last.EventType {
	case typeIndexed:
		var b indexed
		if err := json.Unmarshal(last.Data, &b); err != nil || b.Subject == uuid.Nil {
			return h, subjectkeys.WrapAs(errDamaged, err)
		}
		h.owner, h.indexed = b.Subject, true
	case typeUnindexed:
	default:
		return h, errDamaged
	}
	return h, nil
}

// live reports whether a subject found in the index is not erased: a cached
// key says so at once (an erasure drops it); otherwise its key stream is
// read (and its key cached for the Open or Seal that usually follows).
func (s *Store) live(ctx context.Context, id uuid.UUID) (bool, error) {
	_, err := s.key(ctx, id, false)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, domain.ErrErased):
		return false, nil
	case errors.Is(err, ErrKeyMissing):
		return true, nil // indexed before a key was sealed: not erased
	}
	return false, err
}

// Find implements domain.SubjectIndex: the subject indexed under the token
// in the network, read from the cluster's leader, so a subject another
// replica indexed a moment ago is found. An erased subject is not found.
// Errors: KindInvalid for a network with a NUL byte or an empty token,
// ErrClosed, ErrUnavailable and "canceled" (KindUnavailable), KindInternal.
func (s *Store) Find(ctx context.Context, network, token string) (uuid.UUID, bool, error) {
	if err := subjectkeys.CheckIndexArgs(network, token); err != nil {
		return uuid.Nil, false, err
	}
	if err := s.life.Enter(); err != nil {
		return uuid.Nil, false, err
	}
	defer s.life.Exit()
	h, err := s.readIndex(ctx, indexRef{Network: network, Token: token})
	if err != nil || !h.indexed {
		return uuid.Nil, false, err
	}
	ok, err := s.live(ctx, h.owner)
	if err != nil || !ok {
		return uuid.Nil, false, err
	}
	return h.owner, true, nil
}

// Put implements domain.SubjectIndex: it indexes the subject under the token
// in the network, durably in the cluster. First the subject's key stream
// records the entry (SubjectKeyIndexed, creating the subject's key if it has
// none), so an erasure knows every entry to delete; then the token's index
// stream gets SubjectIndexed. An entry stays with the subject that has it
// (first subject wins; Put still returns nil) unless that subject is
// erased. Errors: domain.ErrErased for an erased subject, KindInvalid for a
// network with a NUL byte or an empty token, ErrClosed, ErrUnavailable and
// "canceled" (KindUnavailable), KindInternal.
func (s *Store) Put(ctx context.Context, network, token string, subject uuid.UUID) error {
	if err := subjectkeys.CheckIndexArgs(network, token); err != nil {
		return err
	}
	if err := s.life.Enter(); err != nil {
		return err
	}
	defer s.life.Exit()
	r := indexRef{Network: network, Token: token}
	if err := s.recordEntry(ctx, subject, r); err != nil {
		return err
	}
	wrote, err := s.putIndex(ctx, r, subject)
	if err != nil || !wrote {
		return err
	}
	// An erasure of the subject that read its key stream after the entry
	// was recorded, but deleted the index entries before this one was
	// written, would leave it behind: look, and take it back. (Writing the
	// entry first and recording it second saves this read, but a crash
	// between the two would leave an entry no erasure knows of.)
	k, err := s.readKey(ctx, subject)
	if err != nil {
		return err
	}
	if k.deleted || k.erased {
		if err := s.unindex(ctx, r, subject); err != nil {
			return err
		}
		return domain.ErrErased
	}
	return nil
}

// recordEntry appends SubjectKeyIndexed for r to the subject's key stream,
// at the revision last seen (from the cache when it can), so it never
// lands after an erasure marker: a Put that races an erasure either lands
// first (and the erasure, whose marker then conflicts, reads it and deletes
// the entry) or finds the subject erased.
func (s *Store) recordEntry(ctx context.Context, id uuid.UUID, r indexRef) error {
	e, cached := s.cache.Get(id)
	for range maxRaces {
		var (
			expected esdb.ExpectedRevision
			events   []esdb.EventData
			view     *entry
		)
		if cached {
			if e.has(r) {
				return nil
			}
			expected = esdb.Revision(e.last)
			view = &entry{aead: e.aead, last: e.last + 1, tokens: append(append([]indexRef(nil), e.tokens...), r)}
		} else {
			k, err := s.readKey(ctx, id)
			if err != nil {
				return err
			}
			switch {
			case k.deleted || k.erased:
				return domain.ErrErased
			case k.has(r):
				return nil
			case k.exists:
				expected = k.expected()
			default: // no key yet: make it with the entry, in one append
				_, wrapped, err := subjectkeys.NewKey(s.master, id)
				if err != nil {
					return err
				}
				expected = esdb.NoStream{}
				events = append(events, event(typeKeyCreated, keyCreated{Key: wrapped}))
			}
		}
		events = append(events, event(typeKeyIndexed, r))
		_, err := s.appendTo(ctx, keyStream(id), expected, events...)
		switch {
		case err == nil:
			if view != nil {
				s.refresh(id, view)
			}
			return nil
		case isCode(err, kurrentconn.StreamDeleted):
			s.forget(id)
			return domain.ErrErased
		case !isCode(err, kurrentconn.WrongExpectedVersion):
			return classify(ctx, err)
		}
		cached = false // the stream moved on: read it
	}
	return errRaces
}

// putIndex makes the token's index stream name the subject, unless another
// live subject has it. It first tries the common case, a token nobody has
// (a new stream, or one soft-deleted by an erasure, which KurrentDB lets
// no_stream write again); when that loses, it reads who has the token and
// takes it over only from an erased subject, at the exact revision read. It
// reports whether it wrote.
func (s *Store) putIndex(ctx context.Context, r indexRef, id uuid.UUID) (bool, error) {
	stream := indexStream(r)
	ev := event(typeIndexed, indexed{Subject: id})
	expected := esdb.ExpectedRevision(esdb.NoStream{})
	for range maxRaces {
		_, err := s.appendTo(ctx, stream, expected, ev)
		if err == nil {
			return true, nil
		}
		if !isCode(err, kurrentconn.WrongExpectedVersion) {
			return false, classify(ctx, err)
		}
		h, err := s.readIndex(ctx, r)
		if err != nil {
			return false, err
		}
		switch {
		case !h.exists:
			expected = esdb.NoStream{}
			continue
		case h.indexed && h.owner == id:
			return false, nil
		case h.indexed:
			ok, err := s.live(ctx, h.owner)
			if err != nil {
				return false, err
			}
			if ok {
				return false, nil // first subject wins
			}
		}
		// Unindexed, or its subject erased: take the token over.
		expected = esdb.Revision(h.rev)
		ev = event(typeIndexed, indexed{Subject: id}) // a new id: another append
	}
	return false, errRaces
}
