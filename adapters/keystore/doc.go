// Package keystore is the local key store: it keeps the per-subject data
// keys that make erasure a key deletion (crypto-shredding), the blind index
// of subjects, and the blind index key, in a Pebble database of its own on
// one machine. It implements domain.KeyStore (domain.Cipher,
// domain.SubjectIndex and a domain.BlindIndex). The cluster key store,
// adapters/clusterkeys, keeps the same keys in KurrentDB for servers with
// several replicas; both use the key format, the cryptography and the blind
// index of adapters/internal/subjectkeys, and both pass the conformance
// suite adapters/keystoretest.
//
// # Keys
//
// Each subject has its own tink keyset (AES-256-GCM), created by its first
// Seal, wrapped by the master AEAD with the subject id's 16 bytes as
// associated data (a wrapped key copied to another subject does not open),
// and stored in a Pebble database of its own directory, outside the event
// log. Ciphertexts are tink AEAD ciphertexts with the subject id as
// associated data as well.
//
// The master AEAD is the tink.AEAD passed to Open. LoadOrCreateMasterKey
// gives the embedded default: a cleartext keyset file (mode 0600) next to the
// data, which protects nothing against someone who can read the data
// directory. Production should pass a KMS-backed tink.AEAD instead (for
// example one from tink's Google Cloud or AWS KMS integrations, or a Vault
// transit key), so the master key never sits on the server's disk.
// MasterKeyFromEnv reads a keyset given as base64 (the wiring reads
// BUURTSIGNAAL_MASTER_KEY).
//
// # Performance
//
// A new key is durable (synced) before Seal returns. Concurrent creations are
// group-committed: one writer goroutine takes every waiting request and
// writes them in one synced Pebble batch. Unwrapped keys are cached (a
// sharded LRU bounded by Options.CacheSize), so Seal and Open on a hot
// subject do no unwrap and no disk read. Bloom filters keep the lookups of
// new subjects (keys that do not exist yet) cheap.
//
// # Shredding
//
// Shred is a physical deletion. In one synced batch it replaces the key by an
// erased marker (the subject id only, no key material) and deletes the
// subject's blind-index entries. Then it flushes the memtable, compacts the
// ranges of those keys down the tree, where the older versions are dropped,
// and waits until no file of the directory holds the wrapped key: it reads
// every file that may (each write-ahead log, manifest and other file, and
// every live table whose key range covers one of the deleted keys) for
// 16-byte pieces of the encrypted key material. Shred returns only when none
// is found, or fails with ErrShredIncomplete (KindInternal) after
// Options.ShredTimeout; the next Shred of the subject resumes the purge.
//
// The blind-index entries are written once and removed with single deletes,
// which vanish with the entry they delete in the same compaction, so the
// tokens leave the logs and tables with the key (Shred waits a few rounds
// for that, then gives up quietly). A manifest may still name a token as a
// table's bound until Pebble rotates its manifest; a token is a keyed hash,
// useless without the blind index key.
//
// A purge rewrites the tables that overlap the shred's flushed writes, which
// span the key and index ranges: in practice most of the store, about a
// quarter of a second at 100,000 subjects on two cores. Concurrent Shreds
// share one purge (one flush, compaction and check for all), so a sweep
// that erases many subjects should call Shred concurrently.
//
// Obsolete files never linger: Pebble recycles write-ahead logs by default
// (an obsolete log is kept and later overwritten from its start, so old bytes
// survive in its tail). Pebble turns recycling off for a cleaner that needs
// the files' contents, such as its ArchiveCleaner, which this store uses; the
// store's file system then zeroes, syncs and removes every file that cleaner
// would move to an archive directory, and any file Pebble removes or would
// reuse. A test checks both that the default recycles (and keeps a deleted
// value on disk) and that this configuration does not. Zeroing doubles the
// writes of compactions; the key store is small (a wrapped key and an index
// entry per subject), so that is cheap.
//
// Shredding is crash-safe: the batch that erases the key also writes a
// pending-purge marker; Open finds markers left by a crash, compacts the
// whole store, closes and reopens it (Pebble's Close waits for every
// obsolete file to be cleaned), and only then removes them.
//
// What this cannot promise: a file system or disk may keep copies of
// overwritten blocks (journals, copy-on-write snapshots, flash wear
// levelling, backups). Encrypting the volume, and keeping backups of the key
// store short-lived, covers that; the master key in a KMS makes any stray
// copy of a wrapped key useless once the KMS key is rotated.
//
// # Blind index
//
// The blind index key is 32 random bytes created with the store, wrapped by
// the master AEAD (associated data "buurtsignaal blind index") and kept in
// the key store itself (Store.BlindIndex), so it shares the master key's
// protection and a wrong master key fails Open at once. The index entries
// (network and token to subject) live in the same database and Shred deletes
// them with the key. A token is the hex HMAC-SHA256 of the normalized name
// and birth date (subjectkeys.NormalizeName, subjectkeys.NormalizeBirthDate).
//
// # Errors
//
// Every error is a *domain.Error: domain.ErrErased (KindNotFound) for a
// shredded subject, KindUnavailable when the store is closed or the caller's
// context ends, KindInvalid for bad input or master key material, and
// KindInternal for failures, corruption and keys that do not unwrap. No
// message holds key bytes or plaintext, and the store logs nothing.
package keystore
