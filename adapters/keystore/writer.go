package keystore

import (
	"bytes"
	"context"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// maxBatch bounds the requests of one group commit.
const maxBatch = 1024

// txn is the writer's view of one group commit: reads see the database and
// the batch's earlier writes.
type txn struct {
	s     *Store
	b     *pebble.Batch
	local map[string][]byte
}

func (t *txn) get(key []byte) ([]byte, bool, error) {
	if v, ok := t.local[string(key)]; ok {
		return v, true, nil
	}
	return t.s.get(key)
}

func (t *txn) set(key, value []byte) error {
	t.local[string(key)] = value
	return t.b.Set(key, value, nil)
}

// writeReq is one request to the writer. apply reads first and writes last:
// when it returns an error it must have written nothing.
type writeReq struct {
	apply func(*txn) error
	done  chan error
}

// writer group-commits: it takes every waiting request, applies each to one
// batch and commits that batch synced, so concurrent key creations share
// one fsync.
func (s *Store) writer() {
	defer s.wg.Done()
	batch := make([]*writeReq, 0, maxBatch)
	errs := make([]error, maxBatch)
	local := map[string][]byte{}
	for first := range s.reqs {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		clear(local)
		t := &txn{s: s, b: s.db.NewBatch(), local: local}
		for i, r := range batch {
			errs[i] = r.apply(t)
		}
		var err error
		if !t.b.Empty() {
			err = t.b.Commit(pebble.Sync)
		}
		_ = t.b.Close()
		for i, r := range batch {
			e := errs[i]
			if e == nil && err != nil {
				e = err
			}
			r.done <- classify(e)
			batch[i], errs[i] = nil, nil
		}
	}
}

// write hands apply to the writer and waits until its batch is durable.
func (s *Store) write(ctx context.Context, apply func(*txn) error) error {
	if err := ctx.Err(); err != nil {
		return classify(err)
	}
	r := &writeReq{apply: apply, done: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return classify(ctx.Err())
	}
	return <-r.done // bounded by one synced commit
}

// putIfAbsent stores value under key unless the key holds a value already;
// it returns the stored value and whether it is ours.
func (s *Store) putIfAbsent(ctx context.Context, key, value []byte) (stored []byte, created bool, err error) {
	err = s.write(ctx, func(t *txn) error {
		v, ok, err := t.get(key)
		if err != nil {
			return err
		}
		if ok {
			stored = v
			return nil
		}
		stored, created = value, true
		return t.set(key, value)
	})
	return stored, created, err
}

// putIndex stores a blind-index entry and its reverse entry. An entry for
// the token stays with the subject that has it (first subject wins) unless
// that subject is erased. It fails with domain.ErrErased for an erased
// subject.
func (s *Store) putIndex(ctx context.Context, network, token string, subject uuid.UUID) error {
	return s.write(ctx, func(t *txn) error {
		if v, ok, err := t.get(keyKey(subject)); err != nil {
			return err
		} else if ok && len(v) == 0 {
			return domain.ErrErased
		}
		xk := indexKey(network, token)
		owner, ok, err := t.get(xk)
		if err != nil {
			return err
		}
		if ok {
			if bytes.Equal(owner, subject[:]) {
				return nil
			}
			id, err := uuid.FromBytes(owner)
			if err != nil {
				return err
			}
			v, found, err := t.get(keyKey(id))
			if err != nil {
				return err
			}
			if !found || len(v) > 0 {
				return nil // first subject wins
			}
		}
		if ok {
			// The erased owner's entry (set once) goes by a single delete
			// before the new Set, so each Set stays single.
			if err := t.b.SingleDelete(xk, nil); err != nil {
				return err
			}
		}
		if err := t.set(xk, subject[:]); err != nil {
			return err
		}
		return t.set(reverseKey(subject, network, token), nil)
	})
}
