// Package clusterkeys is the cluster key store: the subjects' data keys,
// the blind index entries and the blind index key in KurrentDB streams, so
// that every replica of a scale-out server decrypts, matches and erases
// every resident. It implements domain.KeyStore (domain.Cipher,
// domain.SubjectIndex and a domain.BlindIndex) through the EventStore v4
// client, on the same connection string as the event store. Keys are in the
// local key store's format (adapters/internal/subjectkeys): a tink
// AES-256-GCM keyset per subject, wrapped by the master AEAD with the
// subject id as associated data. The master key stays outside the cluster
// (a file, the environment, or a KMS-backed tink.AEAD), so what the cluster
// holds is useless without it.
//
// # Streams and events
//
//	subjectkey-<subject id>
//	    SubjectKeyCreated {key}          the wrapped keyset; always the first event
//	    SubjectKeyIndexed {network, token}  one per blind index entry (Put)
//	    SubjectKeyErased {had_key}       the erasure marker
//	    (tombstone)                      erased for good
//	subjectindex-<hex SHA-256 of network, NUL, token>
//	    SubjectIndexed {subject}         the subject the token finds
//	    SubjectUnindexed {}              the entry deleted by an erasure
//	    (soft-deleted after SubjectUnindexed; written again by a later subject)
//	blindindex-key
//	    BlindIndexKeyCreated {key}       the blind index key, wrapped (once)
//
// None of these is a domain event: projections skip them. No stream name or
// event holds personal data: subject ids are random, tokens are keyed
// hashes (HMAC-SHA256 under the blind index key), and the index streams are
// named by a hash of network and token.
//
// # Expected versions
//
// Every write states what it expects, so replicas racing on one subject end
// in one state:
//
//   - A subject's key is created with expected revision no_stream. Of two
//     replicas creating it at once one wins; the other's append fails, it
//     reads the winner's key and uses it. The key is in the cluster (the
//     leader and a quorum) before Seal returns.
//   - Put appends SubjectKeyIndexed at the key stream's last revision
//     (creating the key in the same append, at no_stream, when the subject
//     has none), then SubjectIndexed to the token's stream at no_stream (a
//     new token, or one whose stream an erasure soft-deleted: KurrentDB
//     lets no_stream write a soft-deleted stream again). When that loses,
//     the subject that has the token keeps it (first subject wins), unless
//     it is erased: then the token is taken over at the exact revision read.
//   - The blind index key is created once, at no_stream; replicas starting
//     together end with the first one written, and the others read it.
//   - The erasure marker is appended at the key stream's last revision, the
//     tombstone at the marker's revision, and an index entry is unindexed
//     and soft-deleted at the revisions read. A Put racing an erasure either
//     lands first, and the erasure (whose marker then conflicts) reads it
//     again and deletes its entry, or finds the subject erased.
//
// All reads and writes go to the cluster's leader (requires-leader, with
// nodePreference=leader, the connection string's default), so a subject one
// replica created or indexed a moment ago is found by every other at once.
//
// # Cache and erasure watch
//
// Each replica keeps the unwrapped keys it used in a bounded LRU cache
// (Options.CacheSize), so Seal and Open of a known subject do no I/O. An
// erasure must reach those caches: every replica subscribes to $all for
// SubjectKeyErased (filtered on the server, from the end of the log), and
// drops the subject's cached key when its marker arrives, milliseconds
// after it is written. Keys are cached only while that subscription is
// live: when it drops, the cache is emptied and stays off (every Open reads
// the cluster) until it is subscribed again, and a key whose load began
// before an erasure arrived is neither cached nor used. So a cached key
// outlives its erasure by the subscription's delivery delay at most, as
// long as the replica is connected; a replica cut off from the cluster
// without noticing keeps serving its cache until the client's keepalive
// gives up (keepAliveInterval plus keepAliveTimeout, 20 s by default), and
// can do nothing else meanwhile.
//
// # Erasure, races and crashes
//
// Shred (1) records the subject in the replica's erased-subjects file,
// (2) appends SubjectKeyErased, (3) deletes the subject's index entries
// (SubjectUnindexed, then a soft delete, each only while the entry still
// names the subject), and (4) tombstones the key stream. From step 2 on the
// subject reads as erased everywhere: Open and Seal answer ErrErased, Find
// does not find it, Erased answers true. A crash or a lost connection after
// step 2 leaves entries or the stream behind; the next Shred of the
// subject, or ShredErased at the next start of the replica whose file lists
// it, finishes the steps (both are idempotent). Once tombstoned, no key can
// ever be created for the id again (KurrentDB refuses every write to a
// tombstoned stream); a new signal about the person starts a new subject,
// which may take the same index token.
//
// # What KurrentDB keeps, and scavenging
//
// A tombstone or a soft delete hides a stream's events from stream reads at
// once, but the events stay in the nodes' chunk files, and reads of $all
// (the projections' replay among them) still return them, until a
// scavenge rewrites the chunks without them. Until then the erased
// subject's wrapped key is on disk: useless without the master key, but
// there. A scavenge removes the events of tombstoned and soft-deleted
// streams, with two exceptions KurrentDB documents: the tombstone itself
// stays, and a soft-deleted stream keeps its last event (here
// SubjectUnindexed, which names no subject; that is why it is written).
// The stream names stay too (a subject id, a hash of a token). A scavenge
// only rewrites completed chunks (256 MiB by default): events in the chunk
// being written stay until it is full and a later scavenge runs. Copies
// outside the nodes' databases (backups, an archive) are out of its reach.
//
// Scavenges run per node. An operator starts one with KurrentDB's HTTP API
// (POST /admin/scavenge on each node, as an admin or ops user), its admin
// UI, or the gRPC operations API; KurrentDB 25.1 and later can also
// schedule them cluster-wide (auto-scavenge). Store.Scavenge (and
// buurtsignaal erasures scavenge) starts one on every live node through the
// operations API, followers first and the leader last; it does not wait for
// them to finish.
//
// # Backups and the erased-subjects file
//
// KurrentDB is backed up with its own tools. A restored backup older than
// an erasure brings the subject's key stream back, untombstoned. Each
// replica records its erasures in its own erased-subjects file
// (Options.ErasedFile, kept on other storage than the cluster): after a
// restore, apply every replica's file with buurtsignaal erasures apply
// (ShredErased) before the replicas serve; each replica also applies its
// own file when it starts.
//
// # Count
//
// Count (the gauge buurtsignaal_subject_keys) comes from a second
// subscription per replica: to the key streams from the start of $all,
// counting SubjectKeyCreated minus SubjectKeyErased of subjects that had a
// key, of every replica. It is exact as of the subscription's position,
// which follows the log by its delivery delay, and answers ErrCountNotReady
// until the subscription has read the history (at start, a filtered read of
// the whole log, in the background). A scavenge removes a created and an
// erased event together, so the count stays right across one.
//
// # Errors
//
// Every error is a *domain.Error: domain.ErrErased (KindNotFound) for an
// erased subject; KindUnavailable for a cluster that does not answer in
// time, has no leader or refuses the credentials (ErrUnavailable), a
// caller's context that ends ("canceled"), a closed store (ErrClosed), and
// a subject contended beyond reason (many lost races in a row); KindInvalid
// for bad arguments and a missing master key; KindInternal for keys and
// ciphertexts that do not open, a missing key, a cluster made under another
// master key, and streams holding what this store does not write. The
// client's errors are classified before they are wrapped (kurrentconn); no
// message holds key bytes or plaintext, and the cause (stream names: ids
// and hashes) is kept for logs only.
package clusterkeys
