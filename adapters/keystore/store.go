package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs"
	"github.com/buurtsignaal/buurtsignaal/adapters/internal/pebbledb"
	"github.com/buurtsignaal/buurtsignaal/adapters/internal/subjectkeys"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Options tune the store. The zero value is fine.
type Options struct {
	// CacheSize bounds the unwrapped subject keys kept in memory
	// (default 100,000; about 1 KiB each).
	CacheSize int
	// BlockCacheBytes is the size of Pebble's block cache (default 32 MiB).
	BlockCacheBytes int64
	// ShredTimeout bounds how long Shred keeps waiting, after its first
	// flush and compaction, for a key's bytes to leave every file of the
	// store (default 30 seconds).
	ShredTimeout time.Duration
	// ErasedFile, when set, is the erased-subjects file: Shred records the
	// subject there before it erases the key.
	ErasedFile string
	// FS is the file system of the store and of the erased-subjects file
	// (default vfs.Default, the operating system's; the power-loss tests
	// give a crashable one in memory).
	FS vfs.FS
}

// Store is the local key store. It implements domain.KeyStore. It is safe
// for concurrent use.
type Store struct {
	dir    string
	db     *pebble.DB
	fs     *shredFS
	master tink.AEAD
	index  *subjectkeys.BlindIndex
	cache  *subjectkeys.Cache[tink.AEAD]
	opts   Options
	live   atomic.Int64 // live subject keys, for Count

	// life guards the database: every operation holds it (Enter, Exit);
	// Close takes it alone.
	life subjectkeys.Life

	// shredMu orders key loads against Shred: a load that misses the cache
	// holds it shared from its read to filling the cache; Shred holds it alone
	// while it erases the key and drops it from the cache, so no load can put
	// a shredded key back.
	shredMu sync.RWMutex

	pendingMu sync.Mutex
	pending   map[uuid.UUID]*purgeItem // erased, bytes not yet seen gone

	reqs        chan *writeReq
	purges      chan *purgeReq
	purgeCtx    context.Context
	cancelPurge context.CancelFunc
	wg          sync.WaitGroup
}

var _ domain.KeyStore = (*Store)(nil)

// Errors of the store. Each is a *domain.Error; compare with errors.Is.
var (
	// ErrClosed (KindUnavailable) is returned by every method after Close.
	ErrClosed = subjectkeys.ErrClosed
	// ErrKeyMissing (KindInternal) is returned by Open for a subject that
	// has no key and was never erased: the key store does not belong to the
	// data (a wrong or lost directory), which must not pass for an erasure.
	ErrKeyMissing = subjectkeys.ErrKeyMissing
	// ErrUnwrap (KindInternal): a stored key does not open under the master
	// key for its subject (corruption, a key moved to another subject, or
	// another master key).
	ErrUnwrap = subjectkeys.ErrUnwrap
	// ErrCiphertext (KindInternal): a ciphertext does not open under its
	// subject's key (corruption, or sealed for another subject).
	ErrCiphertext = subjectkeys.ErrCiphertext
	// ErrMasterKeyMismatch (KindInternal) is returned by Open when the store
	// was made under another master key.
	ErrMasterKeyMismatch = subjectkeys.ErrMasterKeyMismatch
	// ErrShredIncomplete (KindInternal): Shred erased the key but could not
	// see its bytes gone from every file in time; calling Shred again
	// resumes the purge.
	ErrShredIncomplete = &domain.Error{Kind: domain.KindInternal, Code: "shred_incomplete", Message: "the key is erased but its bytes are not yet purged from disk"}

	errStore = subjectkeys.ErrFailed
)

// classify turns any error of the store's own into a *domain.Error.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case domain.AsError(err) != nil:
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return wrapAs(subjectkeys.ErrCanceled, err)
	case errors.Is(err, pebble.ErrClosed):
		return wrapAs(ErrClosed, err)
	case errors.Is(err, syscall.ENOSPC):
		return domain.Wrap(domain.KindUnavailable, "key_store_full", "the key store's disk is full", err)
	default:
		return wrapAs(errStore, err)
	}
}

func wrapAs(sentinel *domain.Error, err error) error { return subjectkeys.WrapAs(sentinel, err) }

// Key layout. Values hold no plaintext; the only key material is the wrapped
// keysets and the wrapped blind index key.
//
//	k<id>                 wrapped keyset; an empty value marks the subject erased
//	p<id>                 a shredded subject whose purge is not yet confirmed
//	x<network>0<token>    blind index entry: the subject id
//	r<id><network>0<token> reverse entry, so Shred finds the subject's entries
//	b                     the blind index key, wrapped
//	e<id>                 erased marker of an earlier layout, migrated by Open
func keyKey(id uuid.UUID) []byte     { return append([]byte{'k'}, id[:]...) }
func pendingKey(id uuid.UUID) []byte { return append([]byte{'p'}, id[:]...) }
func indexKey(network, token string) []byte {
	k := make([]byte, 0, 2+len(network)+len(token))
	k = append(k, 'x')
	k = append(k, network...)
	k = append(k, 0)
	return append(k, token...)
}
func reverseKey(id uuid.UUID, network, token string) []byte {
	k := make([]byte, 0, 18+len(network)+len(token))
	k = append(k, 'r')
	k = append(k, id[:]...)
	k = append(k, network...)
	k = append(k, 0)
	return append(k, token...)
}

var blindKey = []byte("b")

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fatalError{fmt.Sprintf(format, args...)})
}

type fatalError struct{ msg string }

func (f fatalError) Error() string { return "pebble: " + f.msg }

func pebbleOptions(fs vfs.FS, cacheBytes int64) (*pebble.Options, func()) {
	cache := pebble.NewCache(cacheBytes)
	po := &pebble.Options{
		FS:     fs,
		Cache:  cache,
		Logger: quietLogger{},
		// A cleaner that "needs file contents" turns off Pebble's WAL
		// recycling (see deleteObsoleteFiles); shredFS turns its archiving
		// into zeroing and removal.
		Cleaner: pebble.ArchiveCleaner{},
		// Rotate manifests as often as Pebble allows, so an old manifest,
		// which names the bound keys of deleted tables (blind-index keys
		// among them), does not stay for long. Manifests hold no values.
		MaxManifestFileSize: 1,
	}
	for i := range po.Levels {
		// New subjects look up keys that do not exist yet.
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		// Values are ciphertext: compression gains nothing, and without it
		// the purge check can find a key's bytes verbatim in a table.
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	for i := range po.TargetFileSizes {
		// Small tables keep the compaction of one key's range cheap.
		po.TargetFileSizes[i] = 4 << 20
	}
	return po, cache.Unref
}

func openDB(dir string, fs vfs.FS, cacheBytes int64) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			db, err = nil, f
		}
	}()
	po, unref := pebbleOptions(fs, cacheBytes)
	defer unref()
	return pebble.Open(dir, po)
}

// Open opens or creates the key store in dir (a directory of its own) under
// the master AEAD. A store made under another master key fails with
// ErrMasterKeyMismatch (KindInternal); a directory that cannot be opened or
// is locked by another process fails with KindUnavailable or KindInternal.
// Open finishes purges that a crash interrupted before it returns.
func Open(dir string, master tink.AEAD, opts Options) (*Store, error) {
	if master == nil {
		return nil, subjectkeys.ErrMasterKeyMissing
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 100_000
	}
	if opts.BlockCacheBytes <= 0 {
		opts.BlockCacheBytes = 32 << 20
	}
	if opts.ShredTimeout <= 0 {
		opts.ShredTimeout = 30 * time.Second
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if err := durablefs.MkdirAll(opts.FS, dir); err != nil {
		return nil, classify(err)
	}
	fs := &shredFS{FS: opts.FS, dir: dir}
	// A store written with Pebble's ArchiveCleaner alone keeps obsolete
	// files in dir/archive: shred them.
	if err := fs.shredArchive(); err != nil {
		return nil, classify(err)
	}
	db, err := openDB(dir, fs, opts.BlockCacheBytes)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || isLocked(err) {
			return nil, domain.Wrap(domain.KindUnavailable, "key_store_unavailable", "the key store directory cannot be opened", err)
		}
		return nil, classify(err)
	}
	s := &Store{dir: dir, db: db, fs: fs, master: master, cache: subjectkeys.NewCache[tink.AEAD](opts.CacheSize), opts: opts,
		pending: map[uuid.UUID]*purgeItem{}, reqs: make(chan *writeReq, 1024), purges: make(chan *purgeReq, 64)}
	s.purgeCtx, s.cancelPurge = context.WithCancel(context.Background())
	if err := s.prepare(); err != nil {
		if s.db != nil {
			_ = s.db.Close()
		}
		s.cancelPurge()
		return nil, classify(err)
	}
	s.wg.Add(2)
	go s.writer()
	go s.purger()
	return s, nil
}

func isLocked(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EACCES)
}

// prepare migrates the earlier layout, finishes interrupted purges, counts
// the live keys and loads the blind index key, before any goroutine runs.
func (s *Store) prepare() error {
	if err := s.migrateErasedMarkers(); err != nil {
		return err
	}
	if err := s.recoverPurges(); err != nil {
		return err
	}
	n := 0
	err := s.scanPrefix([]byte{'k'}, func(_, v []byte) error {
		if len(v) > 0 {
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.live.Store(int64(n))
	s.index, err = s.loadBlindIndex()
	return err
}

// migrateErasedMarkers turns e<id> markers into empty k<id> values.
func (s *Store) migrateErasedMarkers() error {
	b := s.db.NewBatch()
	defer b.Close()
	err := s.scanPrefix([]byte{'e'}, func(k, _ []byte) error {
		if len(k) != 17 {
			return nil
		}
		id, _ := uuid.FromBytes(k[1:])
		if err := b.Set(keyKey(id), nil, nil); err != nil {
			return err
		}
		return b.Delete(k, nil)
	})
	if err != nil || b.Empty() {
		return err
	}
	return b.Commit(pebble.Sync)
}

// prefixEnd returns the least key greater than every key with the prefix,
// or nil when there is none.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// scanPrefix calls fn for every key with the prefix; k and v are copies.
func (s *Store) scanPrefix(prefix []byte, fn func(k, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if err := fn(bytes.Clone(it.Key()), bytes.Clone(v)); err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}

func (s *Store) get(key []byte) ([]byte, bool, error) { return pebbledb.Lookup(s.db, key) }

func (s *Store) unwrap(id uuid.UUID, wrapped []byte) (tink.AEAD, error) {
	return subjectkeys.Unwrap(s.master, id, wrapped)
}

// newKey makes a subject keyset and wraps it for the subject.
func (s *Store) newKey(id uuid.UUID) (tink.AEAD, []byte, error) {
	return subjectkeys.NewKey(s.master, id)
}

// aeadFor returns the subject's AEAD, from the cache or the store; with
// create it makes the key when there is none. It returns domain.ErrErased
// for an erased subject and ErrKeyMissing for a missing key (without create).
func (s *Store) aeadFor(ctx context.Context, id uuid.UUID, create bool) (tink.AEAD, error) {
	if a, ok := s.cache.Get(id); ok {
		return a, nil
	}
	s.shredMu.RLock()
	defer s.shredMu.RUnlock()
	wrapped, ok, err := s.get(keyKey(id))
	if err != nil {
		return nil, classify(err)
	}
	switch {
	case ok && len(wrapped) == 0:
		return nil, domain.ErrErased
	case ok:
		a, err := s.unwrap(id, wrapped)
		if err != nil {
			return nil, err
		}
		s.cache.Put(id, a)
		return a, nil
	case !create:
		return nil, ErrKeyMissing
	}
	a, ours, err := s.newKey(id)
	if err != nil {
		return nil, err
	}
	stored, created, err := s.putIfAbsent(ctx, keyKey(id), ours)
	if err != nil {
		return nil, err
	}
	switch {
	case created:
		s.live.Add(1)
	case len(stored) == 0:
		return nil, domain.ErrErased
	default: // another Seal made the subject's key first
		if a, err = s.unwrap(id, stored); err != nil {
			return nil, err
		}
	}
	s.cache.Put(id, a)
	return a, nil
}

// Seal implements domain.Cipher: it encrypts plaintext under the subject's
// key, creating the key (durably, group-committed) on the subject's first
// Seal. Sealing for an erased subject fails with domain.ErrErased
// (KindNotFound): an erased subject is never given a new key, so a new
// signal about the same person needs a new subject id. Other errors:
// ErrClosed and "canceled" (KindUnavailable), KindInternal.
func (s *Store) Seal(ctx context.Context, subject uuid.UUID, plaintext []byte) ([]byte, error) {
	if err := s.life.Enter(); err != nil {
		return nil, err
	}
	defer s.life.Exit()
	a, err := s.aeadFor(ctx, subject, true)
	if err != nil {
		return nil, err
	}
	return subjectkeys.Seal(a, subject, plaintext)
}

// Open implements domain.Cipher. It returns domain.ErrErased (KindNotFound)
// once the subject is shredded, ErrKeyMissing (KindInternal) for a subject
// that has no key and was never shredded, ErrCiphertext (KindInternal) for a
// ciphertext that does not open, ErrUnwrap (KindInternal) for a stored key
// that does not unwrap, and ErrClosed (KindUnavailable) after Close.
func (s *Store) Open(ctx context.Context, subject uuid.UUID, ciphertext []byte) ([]byte, error) {
	if err := s.life.Enter(); err != nil {
		return nil, err
	}
	defer s.life.Exit()
	a, err := s.aeadFor(ctx, subject, false)
	if err != nil {
		return nil, err
	}
	return subjectkeys.Open(a, subject, ciphertext)
}

// Erased implements domain.Cipher: whether Shred was called for the subject.
// Errors: ErrClosed (KindUnavailable), KindInternal.
func (s *Store) Erased(_ context.Context, subject uuid.UUID) (bool, error) {
	if err := s.life.Enter(); err != nil {
		return false, err
	}
	defer s.life.Exit()
	v, ok, err := s.get(keyKey(subject))
	if err != nil {
		return false, classify(err)
	}
	return ok && len(v) == 0, nil
}

// Count returns the number of live subject keys (created and not shredded),
// for an operator metric. It reads a counter, not the disk. Errors: ErrClosed.
func (s *Store) Count() (int, error) {
	if err := s.life.Enter(); err != nil {
		return 0, err
	}
	defer s.life.Exit()
	return int(s.live.Load()), nil
}

// Close waits for the operations under way (a running purge is canceled:
// its Shred fails with KindUnavailable and resumes at the next Open), stops
// the writer and closes the database. Later calls return nil; every other
// method then returns ErrClosed.
func (s *Store) Close() error {
	s.cancelPurge()
	return s.life.Close(func() error {
		close(s.reqs)
		close(s.purges)
		s.wg.Wait()
		s.cache.Clear()
		return classify(s.db.Close())
	})
}
