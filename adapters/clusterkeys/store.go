package clusterkeys

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/adapters/internal/kurrentconn"
	"github.com/buurtsignaal/buurtsignaal/adapters/internal/subjectkeys"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Options tune the store. The zero value is fine.
type Options struct {
	// CacheSize bounds the unwrapped subject keys this replica keeps in
	// memory (default 100,000; about 1 KiB each).
	CacheSize int
	// Timeout bounds every call to the cluster, retries included, unless
	// the caller's context ends sooner (default: the connection string's
	// defaultDeadline, else 10 s).
	Timeout time.Duration
	// ErasedFile, when set, is this replica's erased-subjects file: Shred
	// records the subject there before it erases the key.
	ErasedFile string
	// FS is the file system of the erased-subjects file (nil: the
	// operating system's).
	FS vfs.FS
	// Log receives the client's log lines and the store's warnings (ids
	// only; nil: discarded).
	Log *slog.Logger
}

// Store is the cluster key store. It implements domain.KeyStore. It is safe
// for concurrent use; every replica opens its own on the same cluster.
type Store struct {
	c      *kurrentconn.Client
	master tink.AEAD
	index  *subjectkeys.BlindIndex
	cache  *subjectkeys.Cache[*entry]
	opts   Options
	log    *slog.Logger

	// life guards the client: every operation holds it (Enter, Exit);
	// Close takes it alone.
	life subjectkeys.Life

	// mu orders cache fills against erasures seen by the watch (see
	// beginLoad): a key is cached only if no erasure of its subject was
	// seen while it was loaded, and only while the watch is live.
	mu       sync.Mutex
	watching bool               // the erasure watch is subscribed
	gen      uint64             // bumped whenever the watch drops
	loading  map[uuid.UUID]int  // loads under way per subject
	stale    map[uuid.UUID]bool // erased while being loaded
	watched  chan struct{}      // closed when the watch first subscribes
	counted  atomic.Int64       // live keys, from the counting subscription
	caughtUp atomic.Bool        // the counting subscription has seen the history
	erasures atomic.Int64       // erasures the watch has seen (tests, metrics)
	stop     context.CancelFunc // ends the subscriptions
	wg       sync.WaitGroup     // the subscriptions' goroutines
}

var _ domain.KeyStore = (*Store)(nil)

// Errors of the store. Each is a *domain.Error; compare with errors.Is.
var (
	// ErrClosed (KindUnavailable) is returned by every method after Close.
	ErrClosed = subjectkeys.ErrClosed
	// ErrUnavailable (KindUnavailable): the cluster did not answer in time,
	// has no leader, or refused the credentials.
	ErrUnavailable = &domain.Error{Kind: domain.KindUnavailable, Code: "key_store_unavailable", Message: "the key store's cluster is unavailable"}
	// ErrCountNotReady (KindUnavailable) is returned by Count until the
	// counting subscription has caught up with the cluster's history.
	ErrCountNotReady = &domain.Error{Kind: domain.KindUnavailable, Code: "key_count_not_ready", Message: "the subject keys are still being counted"}
	// ErrKeyMissing, ErrUnwrap, ErrCiphertext and ErrMasterKeyMismatch
	// (KindInternal) are the local store's, with the same meaning.
	ErrKeyMissing        = subjectkeys.ErrKeyMissing
	ErrUnwrap            = subjectkeys.ErrUnwrap
	ErrCiphertext        = subjectkeys.ErrCiphertext
	ErrMasterKeyMismatch = subjectkeys.ErrMasterKeyMismatch

	errStore   = subjectkeys.ErrFailed
	errDamaged = &domain.Error{Kind: domain.KindInternal, Code: "key_stream_invalid", Message: "a key store stream holds what the key store does not write"}
	errRaces   = &domain.Error{Kind: domain.KindUnavailable, Code: "key_store_contended", Message: "the key store lost too many races for one subject; try again"}
)

// Stream names and event types. Nothing here is personal data: subject ids
// are random, tokens are keyed hashes, and index stream names are hashes
// of those.
const (
	keyCategory   = "subjectkey"
	indexCategory = "subjectindex"
	blindStream   = "blindindex-key"

	typeKeyCreated   = "SubjectKeyCreated"
	typeKeyIndexed   = "SubjectKeyIndexed"
	typeKeyErased    = "SubjectKeyErased"
	typeIndexed      = "SubjectIndexed"
	typeUnindexed    = "SubjectUnindexed"
	typeBlindCreated = "BlindIndexKeyCreated"
)

// EventTypes are the event types the store writes (none is a domain
// event; projections skip them).
var EventTypes = []string{typeKeyCreated, typeKeyIndexed, typeKeyErased, typeIndexed, typeUnindexed, typeBlindCreated}

// StreamPrefixes are the prefixes of the streams the store writes.
var StreamPrefixes = []string{keyCategory + "-", indexCategory + "-", blindStream}

func keyStream(id uuid.UUID) string { return keyCategory + "-" + id.String() }

func subjectOfKeyStream(stream string) (uuid.UUID, bool) {
	if len(stream) != len(keyCategory)+1+36 || stream[:len(keyCategory)+1] != keyCategory+"-" {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(stream[len(keyCategory)+1:])
	return id, err == nil
}

// indexRef is one blind index entry's place: a token in a network.
type indexRef struct {
	Network string `json:"network"`
	Token   string `json:"token"`
}

// indexStream names the stream of a token in a network: a hash, so the
// name has one length whatever the network's name.
func indexStream(r indexRef) string {
	h := sha256.New()
	io.WriteString(h, r.Network)
	h.Write([]byte{0})
	io.WriteString(h, r.Token)
	return indexCategory + "-" + hex.EncodeToString(h.Sum(nil))
}

// Event bodies.
type (
	keyCreated struct {
		Key []byte `json:"key"` // the wrapped keyset
	}
	keyErased struct {
		HadKey bool `json:"had_key"`
	}
	indexed struct {
		Subject uuid.UUID `json:"subject"`
	}
	blindCreated struct {
		Key []byte `json:"key"` // the wrapped blind index key
	}
)

func event(typ string, body any) esdb.EventData {
	data, err := json.Marshal(body)
	if err != nil {
		panic("clusterkeys: an event body does not encode: " + err.Error()) // fixed types: cannot happen
	}
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: data}
}

// Open opens the cluster key store on the KurrentDB node or cluster the
// connection string names (the event store's), under the master AEAD. It
// reads the blind index key from the cluster, creating it when there is
// none (replicas starting together agree on one), and starts watching the
// cluster for erasures and counting keys. It fails with ErrMasterKeyMismatch
// (KindInternal) when the cluster's keys were made under another master key,
// ErrUnavailable when the cluster does not answer, and KindInvalid for a
// missing master key or a connection string that does not parse.
func Open(ctx context.Context, connString string, master tink.AEAD, opts Options) (*Store, error) {
	if master == nil {
		return nil, subjectkeys.ErrMasterKeyMissing
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 100_000
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := kurrentconn.Open(connString, kurrentconn.Options{Timeout: opts.Timeout, Log: log})
	if err != nil {
		return nil, domain.Wrap(domain.KindInvalid, "key_store_connection", "the key store's connection string is not valid", err)
	}
	s := &Store{c: c, master: master, cache: subjectkeys.NewCache[*entry](opts.CacheSize), opts: opts, log: log,
		loading: map[uuid.UUID]int{}, stale: map[uuid.UUID]bool{}, watched: make(chan struct{})}
	if s.index, err = s.loadBlindIndex(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	s.startSubscriptions()
	// Keys are cached only while the erasure watch is live: wait (briefly)
	// for it, so a new replica caches from its first request.
	t := time.NewTimer(c.Timeout())
	defer t.Stop()
	select {
	case <-s.watched:
	case <-t.C:
		log.Warn("clusterkeys: the erasure watch is not subscribed yet; keys are not cached until it is")
	case <-ctx.Done():
	}
	return s, nil
}

// Close stops the subscriptions, waits for the operations under way (each
// bounded by its deadline) and closes the client. Later calls return nil;
// every other method then returns ErrClosed.
func (s *Store) Close() error {
	return s.life.Close(func() error {
		s.stop()
		s.wg.Wait()
		s.cache.Clear()
		return s.c.Close()
	})
}

// BlindIndex implements domain.KeyStore: the blind index under the
// cluster's one key.
func (s *Store) BlindIndex() domain.BlindIndex { return s.index }

// Count implements domain.KeyStore: the live subject keys of the whole
// cluster, counted by this replica's subscription to the key streams
// (SubjectKeyCreated minus SubjectKeyErased of a subject that had a key).
// It is exact as of the subscription's position, which follows the
// cluster's log by the delivery delay (milliseconds); until the
// subscription has read the history it answers ErrCountNotReady, so the
// gauge is left out of a scrape rather than wrong. Errors: ErrClosed,
// ErrCountNotReady.
func (s *Store) Count() (int, error) {
	if err := s.life.Enter(); err != nil {
		return 0, err
	}
	defer s.life.Exit()
	if !s.caughtUp.Load() {
		return 0, ErrCountNotReady
	}
	return int(s.counted.Load()), nil
}

// Erasures returns how many erasures (of every replica) this replica's
// erasure watch has seen since Open: a hint that a scavenge has work.
func (s *Store) Erasures() int64 { return s.erasures.Load() }

// classify turns an error of a call to the cluster into a *domain.Error:
// a *domain.Error stays, the caller's canceled context is "canceled",
// timeouts, unavailable nodes and refused credentials are ErrUnavailable,
// and anything else is KindInternal. The cause is kept for logs (stream
// names hold ids and hashes only), never shown.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if domain.AsError(err) != nil {
		return err
	}
	if ctx.Err() != nil {
		return subjectkeys.WrapAs(subjectkeys.ErrCanceled, err)
	}
	f := kurrentconn.Classify(err)
	switch f.Code {
	case kurrentconn.Closed:
		return subjectkeys.WrapAs(ErrClosed, err)
	case kurrentconn.Timeout, kurrentconn.Unavailable, kurrentconn.Denied:
		return domain.Wrap(domain.KindUnavailable, ErrUnavailable.Code, f.Message, err)
	}
	return subjectkeys.WrapAs(errStore, err)
}

// isCode reports whether a call failed with the code.
func isCode(err error, code kurrentconn.Code) bool {
	return err != nil && domain.AsError(err) == nil && kurrentconn.Classify(err).Code == code
}

// read reads a whole stream forwards (page by page), or its last event
// backwards when last is set. A missing or soft-deleted stream gives no
// events and no error; a tombstoned one gives deleted.
func (s *Store) read(ctx context.Context, stream string, last bool) (evs []*esdb.RecordedEvent, deleted bool, err error) {
	const page = 512
	var from esdb.StreamPosition = esdb.Start{}
	dir, count := esdb.Forwards, uint64(page)
	if last {
		from, dir, count = esdb.End{}, esdb.Backwards, 1
	}
	for {
		got, err := kurrentconn.Call(ctx, s.c, func(ctx context.Context, cl *esdb.Client) ([]*esdb.RecordedEvent, error) {
			return kurrentconn.Drain(cl.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: dir, From: from}, count))
		})
		switch {
		case isCode(err, kurrentconn.StreamNotFound):
			return evs, false, nil
		case isCode(err, kurrentconn.StreamDeleted):
			return nil, true, nil
		case err != nil:
			return nil, false, classify(ctx, err)
		}
		evs = append(evs, got...)
		if last || uint64(len(got)) < count {
			return evs, false, nil
		}
		from = esdb.Revision(got[len(got)-1].EventNumber + 1)
	}
}

// appendTo appends events with an expected revision. Its error is the
// client's, unclassified, so callers can tell a lost race
// (kurrentconn.WrongExpectedVersion) and a tombstone
// (kurrentconn.StreamDeleted); a retry after a lost answer is idempotent
// (same ids, same expected revision).
func (s *Store) appendTo(ctx context.Context, stream string, expected esdb.ExpectedRevision, events ...esdb.EventData) (*esdb.WriteResult, error) {
	return kurrentconn.Call(ctx, s.c, func(ctx context.Context, cl *esdb.Client) (*esdb.WriteResult, error) {
		return cl.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expected}, events...)
	})
}

// maxRaces bounds the rounds of read and conditional write an operation
// makes on one stream before it gives up with errRaces.
const maxRaces = 16

// expectAfter is the expected revision of an append after the stream's
// last event (NoStream when it has none).
func expectAfter(evs []*esdb.RecordedEvent) esdb.ExpectedRevision {
	if len(evs) == 0 {
		return esdb.NoStream{}
	}
	return esdb.Revision(evs[len(evs)-1].EventNumber)
}

// loadBlindIndex reads the blind index key, creating it when the cluster
// has none: it appends with expected revision no_stream, and a replica
// that loses that race reads the winner's key.
func (s *Store) loadBlindIndex(ctx context.Context) (*subjectkeys.BlindIndex, error) {
	for range maxRaces {
		evs, deleted, err := s.read(ctx, blindStream, false)
		if err != nil {
			return nil, err
		}
		if deleted {
			return nil, domain.Wrap(errDamaged.Kind, errDamaged.Code, "the blind index key's stream is deleted", nil)
		}
		for _, r := range evs {
			if r.EventType != typeBlindCreated {
				continue
			}
			var b blindCreated
			if err := json.Unmarshal(r.Data, &b); err != nil {
				return nil, subjectkeys.WrapAs(errDamaged, err)
			}
			return subjectkeys.OpenBlindKey(s.master, b.Key)
		}
		wrapped, err := subjectkeys.NewBlindKey(s.master)
		if err != nil {
			return nil, err
		}
		_, err = s.appendTo(ctx, blindStream, expectAfter(evs), event(typeBlindCreated, blindCreated{Key: wrapped}))
		if err != nil && !isCode(err, kurrentconn.WrongExpectedVersion) {
			return nil, classify(ctx, err)
		}
		// Written, or another replica was first: read what is there.
	}
	return nil, errRaces
}
