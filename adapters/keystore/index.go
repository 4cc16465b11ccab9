package keystore

import (
	"context"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/subjectkeys"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// BlindIndex returns the store's blind index. Its key (32 random bytes,
// made with the store) is kept in the store, wrapped by the master AEAD.
func (s *Store) BlindIndex() domain.BlindIndex { return s.index }

// loadBlindIndex unwraps the blind index key, creating it on first use. It
// fails with ErrMasterKeyMismatch when the key does not open: the store was
// made under another master key.
func (s *Store) loadBlindIndex() (*subjectkeys.BlindIndex, error) {
	wrapped, ok, err := s.get(blindKey)
	if err != nil {
		return nil, err
	}
	if !ok {
		if wrapped, err = subjectkeys.NewBlindKey(s.master); err != nil {
			return nil, err
		}
		if err := s.db.Set(blindKey, wrapped, pebble.Sync); err != nil {
			return nil, err
		}
	}
	return subjectkeys.OpenBlindKey(s.master, wrapped)
}

// Find implements domain.SubjectIndex: the subject indexed under token in the
// network. An erased subject is not found. Errors: KindInvalid for a network
// with a NUL byte or an empty token, ErrClosed, KindInternal.
func (s *Store) Find(_ context.Context, network, token string) (uuid.UUID, bool, error) {
	if err := subjectkeys.CheckIndexArgs(network, token); err != nil {
		return uuid.Nil, false, err
	}
	if err := s.life.Enter(); err != nil {
		return uuid.Nil, false, err
	}
	defer s.life.Exit()
	v, ok, err := s.get(indexKey(network, token))
	if err != nil || !ok {
		return uuid.Nil, false, classify(err)
	}
	id, err := uuid.FromBytes(v)
	if err != nil {
		return uuid.Nil, false, wrapAs(errStore, err)
	}
	k, found, err := s.get(keyKey(id))
	if err != nil {
		return uuid.Nil, false, classify(err)
	}
	if found && len(k) == 0 {
		return uuid.Nil, false, nil
	}
	return id, true, nil
}

// Put implements domain.SubjectIndex: it indexes the subject under token in
// the network, durably (group-committed like a key). An entry for the token
// stays with the subject that has it (first subject wins; Put still returns
// nil), unless that subject is erased. Shred deletes the subject's entries.
// Errors: domain.ErrErased for an erased subject, KindInvalid for a network
// with a NUL byte or an empty token, ErrClosed and "canceled" (KindUnavailable), KindInternal.
func (s *Store) Put(ctx context.Context, network, token string, subject uuid.UUID) error {
	if err := subjectkeys.CheckIndexArgs(network, token); err != nil {
		return err
	}
	if err := s.life.Enter(); err != nil {
		return err
	}
	defer s.life.Exit()
	s.shredMu.RLock()
	defer s.shredMu.RUnlock()
	return s.putIndex(ctx, network, token, subject)
}
