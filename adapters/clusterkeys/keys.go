package clusterkeys

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/adapters/internal/subjectkeys"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// keyState is a subject's key stream as read: SubjectKeyCreated first (the
// wrapped key), then a SubjectKeyIndexed per blind index entry, then
// SubjectKeyErased, then the tombstone.
type keyState struct {
	exists  bool       // the stream has events
	deleted bool       // tombstoned: erased for good
	erased  bool       // SubjectKeyErased is in it
	last    uint64     // its last revision (when exists)
	wrapped []byte     // the wrapped key, if created
	tokens  []indexRef // the entries it was indexed under
}

// expected is the revision an append after the stream's last event expects.
func (k keyState) expected() esdb.ExpectedRevision {
	if !k.exists {
		return esdb.NoStream{}
	}
	return esdb.Revision(k.last)
}

func (k keyState) has(r indexRef) bool { return slices.Contains(k.tokens, r) }

func parseKeyStream(evs []*esdb.RecordedEvent, deleted bool) (keyState, error) {
	k := keyState{deleted: deleted, exists: len(evs) > 0}
	for _, r := range evs {
		k.last = r.EventNumber
		switch r.EventType {
		case typeKeyCreated:
			var b keyCreated
			if err := json.Unmarshal(r.Data, &b); err != nil || len(b.Key) == 0 {
				return k, subjectkeys.WrapAs(errDamaged, err)
			}
			if k.wrapped == nil { // the first key wins (only one is ever written)
				k.wrapped = b.Key
			}
		case typeKeyIndexed:
			var b indexRef
			if err := json.Unmarshal(r.Data, &b); err != nil {
				return k, subjectkeys.WrapAs(errDamaged, err)
			}
			if !k.has(b) {
				k.tokens = append(k.tokens, b)
			}
		case typeKeyErased:
			k.erased = true
		}
	}
	return k, nil
}

// readKey reads the subject's key stream from the leader.
func (s *Store) readKey(ctx context.Context, id uuid.UUID) (keyState, error) {
	evs, deleted, err := s.read(ctx, keyStream(id), false)
	if err != nil {
		return keyState{}, err
	}
	return parseKeyStream(evs, deleted)
}

// entry is a cached subject key: the AEAD, and what the key stream held
// when it was read (so Put can append without reading again). Entries are
// never changed; Put replaces one with a newer.
type entry struct {
	aead   tink.AEAD
	last   uint64
	tokens []indexRef
}

func (e *entry) has(r indexRef) bool { return slices.Contains(e.tokens, r) }

// ticket is a load of a subject's key under way (see beginLoad).
type ticket struct {
	id       uuid.UUID
	gen      uint64
	watching bool
}

// beginLoad registers a load of the subject's key from the cluster. A key
// read from the cluster is cached (endLoad) only if the erasure watch was
// live for the whole load (its generation unchanged) and saw no erasure of
// the subject meanwhile: an erasure committed before the read is in what
// the read returns, and one committed after it reaches the watch, which
// subscribed before the load began. So no erased key is ever cached, and a
// cached one is dropped when its erasure arrives.
func (s *Store) beginLoad(id uuid.UUID) ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loading[id]++
	return ticket{id: id, gen: s.gen, watching: s.watching}
}

// endLoad ends a load with its result e (nil if it failed) and caches e if
// it may (see beginLoad). It reports whether the watch saw the subject
// erased during the load: then e must not be used.
func (s *Store) endLoad(t ticket, e *entry) (erased bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	erased = s.stale[t.id]
	if s.loading[t.id]--; s.loading[t.id] <= 0 {
		delete(s.loading, t.id)
		delete(s.stale, t.id)
	}
	if e != nil && !erased && t.watching && s.watching && t.gen == s.gen {
		s.cache.Put(t.id, e)
	}
	return erased
}

// forget drops a subject's cached key because it was erased, and marks the
// loads of it under way, so they neither cache nor use what they read.
func (s *Store) forget(id uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache.Remove(id)
	if s.loading[id] > 0 {
		s.stale[id] = true
	}
}

// refresh replaces a cached entry with a newer view of its stream, if the
// subject is still cached (it never adds one: see beginLoad).
func (s *Store) refresh(id uuid.UUID, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache.Replace(id, e)
}

// key returns the subject's key: from the cache, else from the cluster
// (leader). With create it makes the key when the subject has none: the
// wrapped key is appended with expected revision no_stream, so replicas
// creating one subject's key at once end with one key, the first written,
// and every creator uses it. It returns domain.ErrErased for an erased
// subject and ErrKeyMissing when there is no key and create is false.
func (s *Store) key(ctx context.Context, id uuid.UUID, create bool) (*entry, error) {
	if e, ok := s.cache.Get(id); ok {
		return e, nil
	}
	t := s.beginLoad(id)
	e, err := s.loadKey(ctx, id, create)
	if erased := s.endLoad(t, e); erased {
		return nil, domain.ErrErased
	}
	return e, err
}

func (s *Store) loadKey(ctx context.Context, id uuid.UUID, create bool) (*entry, error) {
	for range maxRaces {
		k, err := s.readKey(ctx, id)
		if err != nil {
			return nil, err
		}
		switch {
		case k.deleted || k.erased:
			return nil, domain.ErrErased
		case k.wrapped != nil:
			a, err := subjectkeys.Unwrap(s.master, id, k.wrapped)
			if err != nil {
				return nil, err
			}
			return &entry{aead: a, last: k.last, tokens: k.tokens}, nil
		case k.exists:
			// Events but no key: not a stream this store writes.
			return nil, errDamaged
		case !create:
			return nil, ErrKeyMissing
		}
		a, wrapped, err := subjectkeys.NewKey(s.master, id)
		if err != nil {
			return nil, err
		}
		_, err = s.appendTo(ctx, keyStream(id), esdb.NoStream{}, event(typeKeyCreated, keyCreated{Key: wrapped}))
		switch {
		case err == nil:
			return &entry{aead: a}, nil
		case isCode(err, kurrentconn.StreamDeleted):
			return nil, domain.ErrErased
		case !isCode(err, kurrentconn.WrongExpectedVersion):
			return nil, classify(ctx, err)
		}
		// Another replica (or request) created the key first: use theirs.
	}
	return nil, errRaces
}

// Seal implements domain.Cipher: it encrypts plaintext under the subject's
// key, creating the key on the subject's first Seal; the new key is durable
// in the cluster before Seal returns. Sealing for an erased subject fails
// with domain.ErrErased (KindNotFound): the erased subject's key stream is
// tombstoned, so no key can ever be made for its id again. Other errors:
// ErrClosed, ErrUnavailable and "canceled" (KindUnavailable), KindInternal.
func (s *Store) Seal(ctx context.Context, subject uuid.UUID, plaintext []byte) ([]byte, error) {
	if err := s.life.Enter(); err != nil {
		return nil, err
	}
	defer s.life.Exit()
	e, err := s.key(ctx, subject, true)
	if err != nil {
		return nil, err
	}
	return subjectkeys.Seal(e.aead, subject, plaintext)
}

// Open implements domain.Cipher. It returns domain.ErrErased (KindNotFound)
// once the subject is erased (on this replica at once; on the others within
// the erasure watch's delivery, milliseconds), ErrKeyMissing (KindInternal)
// for a subject that has no key and was never erased, ErrCiphertext
// (KindInternal) for a ciphertext that does not open, ErrUnwrap
// (KindInternal) for a key that does not unwrap, and ErrClosed,
// ErrUnavailable and "canceled" (KindUnavailable).
func (s *Store) Open(ctx context.Context, subject uuid.UUID, ciphertext []byte) ([]byte, error) {
	if err := s.life.Enter(); err != nil {
		return nil, err
	}
	defer s.life.Exit()
	e, err := s.key(ctx, subject, false)
	if err != nil {
		return nil, err
	}
	return subjectkeys.Open(e.aead, subject, ciphertext)
}

// Erased implements domain.Cipher: whether the subject was erased, as the
// cluster's leader says (never from the cache). Errors: ErrClosed,
// ErrUnavailable and "canceled" (KindUnavailable), KindInternal.
func (s *Store) Erased(ctx context.Context, subject uuid.UUID) (bool, error) {
	if err := s.life.Enter(); err != nil {
		return false, err
	}
	defer s.life.Exit()
	k, err := s.readKey(ctx, subject)
	if err != nil {
		return false, err
	}
	if k.deleted || k.erased {
		s.forget(subject)
		return true, nil
	}
	return false, nil
}
