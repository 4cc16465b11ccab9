package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/subjectkeys"
)

// pieceLen is the length of the pieces of secret bytes that the purge check
// looks for. A write-ahead log splits records at its 32 KiB block
// boundaries, so a value may not be found whole; a piece of 16 random bytes
// cannot appear by chance, and every piece but the one at a split survives.
const pieceLen = 16

// purgeItem is what must leave the disk for one shredded subject.
type purgeItem struct {
	id      uuid.UUID
	keys    [][]byte // the keys that held it: the compaction ranges
	needles [][]byte // pieces of the encrypted key material: must go
	tokens  [][]byte // pieces of the blind-index tokens: should go
}

func (p *purgeItem) merge(o *purgeItem) {
	p.keys = append(p.keys, o.keys...)
	p.needles = append(p.needles, o.needles...)
	p.tokens = append(p.tokens, o.tokens...)
}

type purgeReq struct {
	item *purgeItem
	done chan error
}

// secretOf returns the encrypted key material of a wrapped keyset (the rest
// is tink's key info, the same for every subject), or all of it when it
// does not parse.
func secretOf(wrapped []byte) []byte {
	var ek tinkpb.EncryptedKeyset
	if err := proto.Unmarshal(wrapped, &ek); err != nil || len(ek.GetEncryptedKeyset()) < pieceLen {
		return wrapped
	}
	return ek.GetEncryptedKeyset()
}

// pieces cuts secret into non-overlapping pieces of pieceLen bytes (one
// shorter piece when it is short).
func pieces(secret []byte) [][]byte {
	if len(secret) < pieceLen {
		if len(secret) == 0 {
			return nil
		}
		return [][]byte{bytes.Clone(secret)}
	}
	var out [][]byte
	for i := 0; i+pieceLen <= len(secret); i += pieceLen {
		out = append(out, bytes.Clone(secret[i:i+pieceLen]))
	}
	return out
}

// Shred implements domain.Cipher: it deletes the subject's key and blind
// index entries for good and marks the subject erased, so Seal and Open
// return domain.ErrErased from then on. It returns only when no file of the
// store holds the wrapped key or the entries' tokens any more (see the
// package documentation). Shredding a subject without a key, or one already
// shredded, is fine and marks it erased. Errors: ErrShredIncomplete
// (KindInternal) when the bytes are still seen after Options.ShredTimeout (a
// second Shred resumes), "canceled" (KindUnavailable) when ctx ends or the
// store closes during the purge (the key is erased already; the purge
// resumes at the next Shred or Open), ErrClosed, KindInternal.
func (s *Store) Shred(ctx context.Context, subject uuid.UUID) error {
	if err := s.life.Enter(); err != nil {
		return err
	}
	defer s.life.Exit()
	if err := ctx.Err(); err != nil {
		return classify(err)
	}
	if s.opts.ErasedFile != "" {
		if err := subjectkeys.RecordErased(s.opts.FS, s.opts.ErasedFile, subject); err != nil {
			return err
		}
	}
	item, err := s.erase(subject)
	if err != nil || item == nil {
		return err
	}
	req := &purgeReq{item: item, done: make(chan error, 1)}
	select {
	case s.purges <- req:
	case <-ctx.Done():
		return classify(ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return classify(ctx.Err())
	}
}

// erase marks the subject erased, deletes its key and index entries in one
// synced batch and drops the key from the cache. It returns what must be
// purged from disk, or nil when nothing must.
func (s *Store) erase(id uuid.UUID) (*purgeItem, error) {
	s.shredMu.Lock()
	defer s.shredMu.Unlock()
	wrapped, had, err := s.get(keyKey(id))
	if err != nil {
		return nil, classify(err)
	}
	_, pendingOnDisk, err := s.get(pendingKey(id))
	if err != nil {
		return nil, classify(err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	item := &purgeItem{id: id}
	hadKey := had && len(wrapped) > 0
	if hadKey {
		item.keys = append(item.keys, keyKey(id))
		item.needles = append(item.needles, pieces(secretOf(wrapped))...)
	}
	err = s.scanPrefix(append([]byte{'r'}, id[:]...), func(rk, _ []byte) error {
		// Index entries are written once, so a single delete meets its one
		// Set in the first compaction that holds both and both vanish; a
		// Delete would leave a tombstone, with the token in its key, in the
		// bottom level, which no manual compaction rewrites.
		item.keys = append(item.keys, rk)
		if err := b.SingleDelete(rk, nil); err != nil {
			return err
		}
		network, token, ok := bytes.Cut(rk[17:], []byte{0})
		if !ok {
			return nil
		}
		item.tokens = append(item.tokens, pieces(token)...)
		xk := indexKey(string(network), string(token))
		owner, found, err := s.get(xk)
		if err != nil || !found || !bytes.Equal(owner, id[:]) {
			return err // another subject's entry stays
		}
		item.keys = append(item.keys, xk)
		return b.SingleDelete(xk, nil)
	})
	if err != nil {
		return nil, classify(err)
	}
	s.pendingMu.Lock()
	prev := s.pending[id]
	s.pendingMu.Unlock()
	if prev != nil {
		item.merge(prev)
	}
	needPurge := len(item.keys) > 0 || pendingOnDisk
	if !had || hadKey {
		if err := b.Set(keyKey(id), nil, nil); err != nil {
			return nil, classify(err)
		}
	}
	if needPurge && !pendingOnDisk {
		if err := b.Set(pendingKey(id), nil, nil); err != nil {
			return nil, classify(err)
		}
	}
	if !b.Empty() {
		if err := b.Commit(pebble.Sync); err != nil {
			return nil, classify(err)
		}
	}
	s.cache.Remove(id)
	if hadKey {
		s.live.Add(-1)
	}
	if !needPurge {
		return nil, nil
	}
	if len(item.keys) == 0 {
		item.keys = [][]byte{keyKey(id)}
	}
	s.pendingMu.Lock()
	s.pending[id] = item
	s.pendingMu.Unlock()
	return item, nil
}

// purger runs the purges of concurrent Shreds together: one flush, one set
// of compactions and one check of the files for all of them.
func (s *Store) purger() {
	defer s.wg.Done()
	for first := range s.purges {
		reqs := []*purgeReq{first}
	fill:
		for {
			select {
			case r, ok := <-s.purges:
				if !ok {
					break fill
				}
				reqs = append(reqs, r)
			default:
				break fill
			}
		}
		items := make([]*purgeItem, 0, len(reqs))
		for _, r := range reqs {
			items = append(items, r.item)
		}
		err := s.purgeItems(s.purgeCtx, items)
		if err == nil {
			err = s.finishPurge(items)
		}
		for _, r := range reqs {
			r.done <- err
		}
	}
}

// purgeItems flushes and compacts until no file holds any item's key
// material, or fails with ErrShredIncomplete at the deadline. Once the key
// material is gone it tries a few more rounds until no log or table holds
// the tokens either, then gives up on them quietly: a token is a keyed hash,
// and one that stays (an entry of an earlier layout, deleted by a tombstone)
// goes at a later compaction. A manifest may name a token as a table's
// bound until Pebble writes its next manifests; that is not checked.
func (s *Store) purgeItems(ctx context.Context, items []*purgeItem) error {
	deadline := time.Now().Add(s.opts.ShredTimeout)
	tokenRounds := 0
	var keys [][]byte
	for _, it := range items {
		keys = append(keys, it.keys...)
	}
	for attempt := 0; ; attempt++ {
		if err := s.db.Flush(); err != nil {
			return classify(err)
		}
		if len(keys) > 32 || attempt >= 2 {
			// Many keys, or a narrow compaction did not do: compact everything.
			if err := s.db.Compact(ctx, []byte{0}, []byte{0xff, 0xff}, true); err != nil {
				return classify(err)
			}
		} else {
			for _, k := range keys {
				if err := s.db.Compact(ctx, k, append(bytes.Clone(k), 0), false); err != nil {
					return classify(err)
				}
			}
		}
		found, tokens, err := s.holds(items, keys)
		if err != nil {
			return classify(err)
		}
		if !found {
			if !tokens || tokenRounds >= 5 {
				return nil
			}
			tokenRounds++
		}
		if time.Now().After(deadline) {
			return ErrShredIncomplete
		}
		// Obsolete files go when the last reader lets go of them.
		t := time.NewTimer(min(5*time.Millisecond<<min(attempt, 6), 200*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return classify(ctx.Err())
		}
	}
}

// finishPurge removes the pending markers of purged subjects, unless a
// later Shred of the subject has a purge of its own under way.
func (s *Store) finishPurge(items []*purgeItem) error {
	s.shredMu.Lock()
	defer s.shredMu.Unlock()
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	for _, it := range items {
		if s.pending[it.id] != it {
			continue
		}
		delete(s.pending, it.id)
		if err := b.SingleDelete(pendingKey(it.id), nil); err != nil {
			return classify(err)
		}
	}
	// Not synced: a marker that comes back after a crash costs one more purge.
	return classify(b.Commit(pebble.NoSync))
}

// holds reports whether a file of the store holds a piece of the items' key
// material, and whether one holds a piece of their tokens. It reads every
// file but the live tables whose key range covers none of keys (a table
// holds only keys within its bounds).
func (s *Store) holds(items []*purgeItem, keys [][]byte) (found, foundToken bool, err error) {
	var needles, tokens [][]byte
	for _, it := range items {
		needles = append(needles, it.needles...)
		tokens = append(tokens, it.tokens...)
	}
	if len(needles)+len(tokens) == 0 {
		return false, false, nil
	}
	levels, err := s.db.SSTables()
	if err != nil {
		return false, false, err
	}
	type bounds struct{ lo, hi []byte }
	live := map[string]bounds{}
	for _, level := range levels {
		for _, t := range level {
			live[t.BackingSSTNum.String()+".sst"] = bounds{t.Smallest.UserKey, t.Largest.UserKey}
		}
	}
	covers := func(b bounds) bool {
		for _, k := range keys {
			if bytes.Compare(b.lo, k) <= 0 && bytes.Compare(k, b.hi) <= 0 {
				return true
			}
		}
		return false
	}
	top := filepath.Clean(s.dir)
	err = s.fs.walk(top, func(path, name string) error {
		if found {
			return nil
		}
		if b, ok := live[name]; ok && filepath.Dir(path) == top && !covers(b) {
			return nil
		}
		data, err := s.fs.readFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		found = containsAny(data, needles)
		if !strings.HasPrefix(name, "MANIFEST-") {
			foundToken = foundToken || containsAny(data, tokens)
		}
		return nil
	})
	return found, foundToken, err
}

func containsAny(data []byte, needles [][]byte) bool {
	for _, n := range needles {
		if bytes.Contains(data, n) {
			return true
		}
	}
	return false
}

// recoverPurges finishes the purges a crash interrupted: it compacts the
// whole store and closes it, since Pebble's Close waits until every obsolete
// file is cleaned (zeroed and removed by shredFS), then reopens it and
// removes the markers. The needles were lost with the crash, so this relies
// on the compaction rather than on a check of the files.
func (s *Store) recoverPurges() error {
	var marks [][]byte
	if err := s.scanPrefix([]byte{'p'}, func(k, _ []byte) error {
		marks = append(marks, k)
		return nil
	}); err != nil || len(marks) == 0 {
		return err
	}
	if err := s.db.Flush(); err != nil {
		return err
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff, 0xff}, true); err != nil {
		return err
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return err
	}
	if s.db, err = openDB(s.dir, s.fs, s.opts.BlockCacheBytes); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, k := range marks {
		if err := b.SingleDelete(k, nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

// shredFS is the store's file system. Every file Pebble lets go of is
// overwritten with zeros, synced and removed: the files its ArchiveCleaner
// would move to dir/archive (old write-ahead logs, tables and manifests),
// the files it removes, and a log it would reuse (it does not, with that
// cleaner). Whatever this misses, Shred's check of the files still finds.
type shredFS struct {
	vfs.FS
	dir      string
	failures atomic.Int64 // files that could not be zeroed (removed anyway)
}

func (f *shredFS) isArchive(dir string) bool {
	return filepath.Clean(dir) == filepath.Join(filepath.Clean(f.dir), "archive")
}

// MkdirAll implements vfs.FS; the archive directory is never made.
func (f *shredFS) MkdirAll(dir string, perm os.FileMode) error {
	if f.isArchive(dir) {
		return nil
	}
	return f.FS.MkdirAll(dir, perm)
}

// Rename implements vfs.FS; a move to the archive shreds the file instead.
func (f *shredFS) Rename(oldname, newname string) error {
	if f.isArchive(filepath.Dir(newname)) {
		return f.shred(oldname)
	}
	return f.FS.Rename(oldname, newname)
}

// Remove implements vfs.FS: the file is zeroed first.
func (f *shredFS) Remove(name string) error { return f.shred(name) }

// errNoLinks refuses hard links (see Link).
var errNoLinks = errors.New("keystore: no hard links to the key store's files")

// Link implements vfs.FS by refusing: a hard link shares its bytes with the
// store's own file, which a purge zeroes when the store lets go of it, so a
// checkpoint (a backup) linked to it would be zeroed too. Pebble's
// checkpoint then copies the file (vfs.LinkOrCopy); the key store is small.
func (f *shredFS) Link(string, string) error { return errNoLinks }

// ReuseForWrite implements vfs.FS without reuse: the old file is shredded
// and a new one made, so no old log's tail survives in a recycled file.
func (f *shredFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if err := f.shred(oldname); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return f.FS.Create(newname, category)
}

func (f *shredFS) shred(name string) error {
	if err := f.zero(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.failures.Add(1)
	}
	return f.FS.Remove(name)
}

// shredArchive shreds what an earlier version of the store (Pebble's
// ArchiveCleaner alone) left in dir/archive.
func (f *shredFS) shredArchive() error {
	dir := f.FS.PathJoin(f.dir, "archive")
	names, err := f.FS.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := f.shred(f.FS.PathJoin(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return f.FS.Remove(dir)
}

var zeros = make([]byte, 64<<10)

// zero overwrites a regular file with zeros and syncs it.
func (f *shredFS) zero(name string) error {
	st, err := f.FS.Stat(name)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return nil
	}
	file, err := f.FS.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	for off := int64(0); off < st.Size() && err == nil; off += int64(len(zeros)) {
		_, err = file.WriteAt(zeros[:min(int64(len(zeros)), st.Size()-off)], off)
	}
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("zero %s: %w", filepath.Base(name), err)
	}
	return nil
}

// walk calls fn for every regular file under dir, with its path and name;
// files and directories that vanish meanwhile are skipped.
func (f *shredFS) walk(dir string, fn func(path, name string) error) error {
	names, err := f.FS.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		path := f.FS.PathJoin(dir, name)
		st, err := f.FS.Stat(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			return err
		case st.IsDir():
			err = f.walk(path, fn)
		case st.Mode().IsRegular():
			err = fn(path, name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readFile reads a whole file.
func (f *shredFS) readFile(path string) ([]byte, error) {
	file, err := f.FS.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return io.ReadAll(file)
}
