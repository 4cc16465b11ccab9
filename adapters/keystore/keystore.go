// Package keystore keeps the per-subject data keys that make erasure a key
// deletion (crypto-shredding), and the blind index key.
//
// Each subject has its own tink keyset (AES-256-GCM), created on first use,
// wrapped by the master AEAD with the subject id as associated data (a
// wrapped key copied to another subject does not open), and stored in a
// Pebble database of its own, outside the event log. The master AEAD is an
// interface: a cleartext keyset file for the embedded default
// (LoadOrCreateMasterKey), a KMS-backed tink.AEAD in production.
//
// New keys are durable before Seal returns, and concurrent creations are
// group-committed: one writer goroutine writes every waiting key in one synced
// batch. Unwrapped keys are cached (bounded LRU).
//
// Shred deletes a key physically: the deletion is synced, the memtable
// flushed, the key's range compacted, and the obsolete files (old write-ahead
// logs and tables, which Pebble's ArchiveCleaner moves aside) overwritten
// with zeros before they are removed; with that cleaner Pebble recycles no
// write-ahead log, so no old log lingers for reuse. Shred returns only when no file of the store still holds
// the wrapped key's bytes.
package keystore

import (
	"bytes"
	"container/list"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Options tune the store.
type Options struct {
	// CacheSize bounds the unwrapped keys held in memory (default 100,000).
	CacheSize int
}

// Store is the key store. It implements domain.Cipher.
type Store struct {
	dir    string
	db     *pebble.DB
	master tink.AEAD
	index  *BlindIndex

	mu    sync.Mutex
	cache map[uuid.UUID]*list.Element
	lru   *list.List
	max   int

	creating sync.RWMutex // loads share it; Shred takes it alone, so no load races a shredding

	reqs chan *putReq
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

var (
	_ domain.Cipher       = (*Store)(nil)
	_ domain.SubjectIndex = (*Store)(nil)
)

type cached struct {
	id   uuid.UUID
	aead tink.AEAD
}

type putReq struct {
	key, value []byte
	res        chan putRes
}

type putRes struct {
	value []byte // the stored value: ours, or the one already there
	err   error
}

var (
	errInternal = &domain.Error{Kind: domain.KindInternal, Code: "key_store", Message: "the key store failed"}
	errClosed   = &domain.Error{Kind: domain.KindUnavailable, Code: "key_store_closed", Message: "the key store is closed"}
)

// shredArchive overwrites every file Pebble's ArchiveCleaner moved aside
// (obsolete logs and tables) with zeros, syncs it, and removes it. The
// ArchiveCleaner also turns off WAL recycling, since it keeps the files'
// contents: so no old log is reused with a key's bytes still in it.
func shredArchive(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "archive"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	zeros := make([]byte, 64<<10)
	for _, e := range entries {
		path := filepath.Join(dir, "archive", e.Name())
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil {
			for off := int64(0); off < st.Size(); off += int64(len(zeros)) {
				n := min(int64(len(zeros)), st.Size()-off)
				if _, err = f.WriteAt(zeros[:n], off); err != nil {
					break
				}
			}
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	return nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("keystore: "+format, args...))
}

// Open opens or creates the key store in dir, under the master AEAD.
func Open(dir string, master tink.AEAD, opts Options) (*Store, error) {
	if opts.CacheSize <= 0 {
		opts.CacheSize = 100_000
	}
	db, err := pebble.Open(dir, &pebble.Options{Cleaner: pebble.ArchiveCleaner{}, Logger: quietLogger{}, MaxManifestFileSize: 1})
	if err != nil {
		return nil, fmt.Errorf("keystore: open: %w", err)
	}
	s := &Store{dir: dir, db: db, master: master, cache: map[uuid.UUID]*list.Element{}, lru: list.New(), max: opts.CacheSize,
		reqs: make(chan *putReq, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	go s.writer()
	if err := shredArchive(dir); err != nil {
		s.Close()
		return nil, fmt.Errorf("keystore: clean archive: %w", err)
	}
	if s.index, err = s.loadBlindIndex(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func keyKey(id uuid.UUID) []byte    { return append([]byte{'k'}, id[:]...) }
func erasedKey(id uuid.UUID) []byte { return append([]byte{'e'}, id[:]...) }

// indexKey is a blind-index entry: network and token -> subject.
func indexKey(network, token string) []byte {
	return append(append(append([]byte{'x'}, network...), 0), token...)
}

// reverseKey lists a subject's index entries, so Shred can delete them.
func reverseKey(id uuid.UUID, network, token string) []byte {
	return append(append(append(append([]byte{'r'}, id[:]...), network...), 0), token...)
}

var blindKey = []byte("b")

func (s *Store) get(key []byte) ([]byte, bool, error) {
	v, c, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := bytes.Clone(v)
	c.Close()
	return out, true, nil
}

// writer group-commits puts: first write wins for a key.
func (s *Store) writer() {
	defer close(s.done)
	for {
		var first *putReq
		select {
		case first = <-s.reqs:
		case <-s.quit:
			return
		}
		batch := []*putReq{first}
	fill:
		for len(batch) < 1024 {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b := s.db.NewBatch()
		res := make([]putRes, len(batch))
		local := map[string][]byte{}
		for i, r := range batch {
			if v, ok := local[string(r.key)]; ok {
				res[i].value = v
				continue
			}
			v, ok, err := s.get(r.key)
			switch {
			case err != nil:
				res[i].err = err
			case ok:
				res[i].value = v
			default:
				_ = b.Set(r.key, r.value, nil)
				local[string(r.key)] = r.value
				res[i].value = r.value
			}
		}
		err := b.Commit(pebble.Sync)
		b.Close()
		for i, r := range batch {
			if err != nil && res[i].err == nil {
				res[i] = putRes{err: err}
			}
			r.res <- res[i]
		}
	}
}

func (s *Store) put(ctx context.Context, key, value []byte) ([]byte, error) {
	r := &putReq{key: key, value: value, res: make(chan putRes, 1)}
	select {
	case s.reqs <- r:
	case <-s.quit:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res := <-r.res
	return res.value, res.err
}

func (s *Store) cached(id uuid.UUID) (tink.AEAD, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.cache[id]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*cached).aead, true
	}
	return nil, false
}

func (s *Store) remember(id uuid.UUID, a tink.AEAD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.cache[id]; ok {
		s.lru.MoveToFront(el)
		return
	}
	s.cache[id] = s.lru.PushFront(&cached{id: id, aead: a})
	for s.lru.Len() > s.max {
		old := s.lru.Remove(s.lru.Back()).(*cached)
		delete(s.cache, old.id)
	}
}

func (s *Store) forget(id uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.cache[id]; ok {
		s.lru.Remove(el)
		delete(s.cache, id)
	}
}

func (s *Store) unwrap(id uuid.UUID, wrapped []byte) (tink.AEAD, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), s.master, id[:])
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, errInternal.Code, "a subject key does not unwrap", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
	}
	return a, nil
}

// load returns the subject's AEAD; create makes one when there is none.
// It returns domain.ErrErased for a shredded subject.
func (s *Store) load(ctx context.Context, id uuid.UUID, create bool) (tink.AEAD, error) {
	if a, ok := s.cached(id); ok {
		return a, nil
	}
	s.creating.RLock()
	defer s.creating.RUnlock()
	if _, erased, err := s.get(erasedKey(id)); err != nil {
		return nil, domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
	} else if erased {
		return nil, domain.ErrErased
	}
	wrapped, ok, err := s.get(keyKey(id))
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
	}
	if !ok {
		if !create {
			return nil, domain.ErrErased // no key was ever made: nothing can be read
		}
		h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
		if err != nil {
			return nil, domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
		}
		var buf bytes.Buffer
		if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), s.master, id[:]); err != nil {
			return nil, domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
		}
		if wrapped, err = s.put(ctx, keyKey(id), buf.Bytes()); err != nil {
			return nil, domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
		}
	}
	a, err := s.unwrap(id, wrapped)
	if err != nil {
		return nil, err
	}
	s.remember(id, a)
	return a, nil
}

// Seal implements domain.Cipher. It returns domain.ErrErased for a
// shredded subject.
func (s *Store) Seal(ctx context.Context, subject uuid.UUID, plaintext []byte) ([]byte, error) {
	a, err := s.load(ctx, subject, true)
	if err != nil {
		return nil, err
	}
	ct, err := a.Encrypt(plaintext, subject[:])
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
	}
	return ct, nil
}

// Open implements domain.Cipher. It returns domain.ErrErased once the
// subject's key is shredded, and KindInternal for ciphertext that does not open.
func (s *Store) Open(ctx context.Context, subject uuid.UUID, ciphertext []byte) ([]byte, error) {
	a, err := s.load(ctx, subject, false)
	if err != nil {
		return nil, err
	}
	pt, err := a.Decrypt(ciphertext, subject[:])
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, errInternal.Code, "a ciphertext does not open", err)
	}
	return pt, nil
}

// Find implements domain.SubjectIndex.
func (s *Store) Find(_ context.Context, network, token string) (uuid.UUID, bool, error) {
	v, ok, err := s.get(indexKey(network, token))
	if err != nil || !ok {
		return uuid.Nil, false, err
	}
	id, err := uuid.FromBytes(v)
	if err != nil {
		return uuid.Nil, false, domain.Wrap(domain.KindInternal, errInternal.Code, "a blind index entry is damaged", err)
	}
	if _, erased, err := s.get(erasedKey(id)); err != nil || erased {
		return uuid.Nil, false, err
	}
	return id, true, nil
}

// Put implements domain.SubjectIndex. The entry is group-committed like a
// key; an existing entry for the token stays (first subject wins).
func (s *Store) Put(ctx context.Context, network, token string, subject uuid.UUID) error {
	s.creating.RLock()
	defer s.creating.RUnlock()
	if _, erased, err := s.get(erasedKey(subject)); err != nil {
		return err
	} else if erased {
		return domain.ErrErased
	}
	if _, err := s.put(ctx, reverseKey(subject, network, token), nil); err != nil {
		return domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
	}
	if _, err := s.put(ctx, indexKey(network, token), subject[:]); err != nil {
		return domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
	}
	return nil
}

// Erased implements domain.Cipher.
func (s *Store) Erased(_ context.Context, subject uuid.UUID) (bool, error) {
	_, erased, err := s.get(erasedKey(subject))
	return erased, err
}

// Shred implements domain.Cipher: the key is physically gone when it returns.
func (s *Store) Shred(ctx context.Context, subject uuid.UUID) error {
	s.creating.Lock()
	defer s.creating.Unlock()
	wrapped, had, err := s.get(keyKey(subject))
	if err != nil {
		return domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
	}
	b := s.db.NewBatch()
	_ = b.Set(erasedKey(subject), nil, nil)
	_ = b.Delete(keyKey(subject), nil)
	// The subject's blind-index entries go too.
	prefix := append([]byte{'r'}, subject[:]...)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: append(bytes.Clone(prefix), 0xff)})
	if err != nil {
		b.Close()
		return domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
	}
	var tokens [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := bytes.Clone(it.Key())
		network, token, _ := bytes.Cut(k[len(prefix):], []byte{0})
		_ = b.Delete(k, nil)
		_ = b.Delete(indexKey(string(network), string(token)), nil)
		tokens = append(tokens, token)
	}
	_ = it.Close()
	err = b.Commit(pebble.Sync)
	b.Close()
	if err != nil {
		return domain.Wrap(domain.KindInternal, errInternal.Code, errInternal.Message, err)
	}
	s.forget(subject)
	_ = tokens // deleted above; see purge on what stays on disk
	if !had {
		return nil
	}
	if err := s.purge(ctx, [][]byte{wrapped}); err != nil {
		return domain.Wrap(domain.KindInternal, errInternal.Code, "the key could not be purged from disk", err)
	}
	return nil
}

// purge flushes and compacts the store until no file holds any of the
// needles (the wrapped key). The key store is small (keys and index entries),
// so compacting all of it is cheap enough for an erasure. The subject's
// blind-index entries are deleted too, but a deletion's tombstone names the
// entry's key (a keyed HMAC of name and birth date, useless without the
// blind-index key) until later compactions drop it; the key material and
// every value are gone at once.
func (s *Store) purge(ctx context.Context, needles [][]byte) error {
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 0; ; attempt++ {
		if err := s.db.Flush(); err != nil {
			return err
		}
		if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
			return err
		}
		if err := shredArchive(s.dir); err != nil {
			return err
		}
		found := false
		for _, needle := range needles {
			if found {
				break
			}
			f, err := filesContain(s.dir, needle)
			if err != nil {
				return err
			}
			found = f
		}
		if !found {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the wrapped key is still on disk")
		}
		time.Sleep(time.Duration(min(attempt+1, 20)) * 5 * time.Millisecond)
	}
}

// filesContain reports whether any file under dir holds needle.
func filesContain(dir string, needle []byte) (bool, error) {
	found := false
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || found {
			return nil
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		found = bytes.Contains(data, needle)
		return nil
	})
	return found, err
}

// Count returns the number of live subject keys.
func (s *Store) Count() (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'k'}, UpperBound: []byte{'l'}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Error()
}

// BlindIndex returns the store's blind index (its key is kept here, wrapped).
func (s *Store) BlindIndex() domain.BlindIndex { return s.index }

func (s *Store) loadBlindIndex() (*BlindIndex, error) {
	wrapped, ok, err := s.get(blindKey)
	if err != nil {
		return nil, err
	}
	if !ok {
		raw := make([]byte, 32)
		if _, err := io.ReadFull(randReader, raw); err != nil {
			return nil, err
		}
		ct, err := s.master.Encrypt(raw, []byte("buurtsignaal blind index"))
		if err != nil {
			return nil, err
		}
		if wrapped, err = s.put(context.Background(), blindKey, ct); err != nil {
			return nil, err
		}
	}
	raw, err := s.master.Decrypt(wrapped, []byte("buurtsignaal blind index"))
	if err != nil {
		return nil, fmt.Errorf("keystore: blind index key does not open under this master key: %w", err)
	}
	return NewBlindIndex(raw), nil
}

// Close stops the writer and closes the database.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	return s.db.Close()
}

// LoadOrCreateMasterKey reads a cleartext master keyset (JSON) from path,
// creating it (mode 0600) when missing. For the embedded default only:
// production should pass a KMS-backed tink.AEAD to Open.
func LoadOrCreateMasterKey(path string) (tink.AEAD, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := writeFileSync(path, buf.Bytes()); err != nil {
			return nil, fmt.Errorf("keystore: write master key: %w", err)
		}
		return aead.New(h)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: read master key: %w", err)
	}
	return masterFrom(data, keyset.NewJSONReader(bytes.NewReader(data)))
}

// MasterKeyFromEnv reads a master keyset given as base64 (of its JSON or binary form).
func MasterKeyFromEnv(value string) (tink.AEAD, error) {
	data, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, errors.New("keystore: the master key is not base64")
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return masterFrom(data, keyset.NewJSONReader(bytes.NewReader(data)))
	}
	return masterFrom(data, keyset.NewBinaryReader(bytes.NewReader(data)))
}

func masterFrom(_ []byte, r keyset.Reader) (tink.AEAD, error) {
	h, err := insecurecleartextkeyset.Read(r)
	if err != nil {
		return nil, errors.New("keystore: the master key is not a valid keyset")
	}
	return aead.New(h)
}

func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
