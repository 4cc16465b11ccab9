package domain

import (
	"context"

	"github.com/google/uuid"
)

// ErrErased is returned when personal data is read after its subject was
// erased (its key shredded).
var ErrErased = &Error{Kind: KindNotFound, Code: "erased", Message: "the personal data has been erased"}

// Cipher encrypts personal data with a key of its subject's own, so deleting
// that key (Shred) makes every ciphertext of the subject unreadable
// (crypto-shredding). Implementations keep keys outside the event log.
type Cipher interface {
	// Seal encrypts plaintext under the subject's key, creating the key on first use.
	Seal(ctx context.Context, subject uuid.UUID, plaintext []byte) ([]byte, error)
	// Open decrypts; it returns ErrErased once the subject's key is shredded.
	Open(ctx context.Context, subject uuid.UUID, ciphertext []byte) ([]byte, error)
	// Shred deletes the subject's key for good: physically, not tombstoned.
	Shred(ctx context.Context, subject uuid.UUID) error
	// Erased reports whether the subject's key was shredded.
	Erased(ctx context.Context, subject uuid.UUID) (bool, error)
}

// SubjectIndex finds a subject by its blind-index token. Entries live with
// the subject's key, outside the log, and are deleted with it by Shred.
type SubjectIndex interface {
	// Find returns the subject indexed under token in the network.
	Find(ctx context.Context, network, token string) (uuid.UUID, bool, error)
	// Put indexes the subject under token in the network, durably.
	Put(ctx context.Context, network, token string, subject uuid.UUID) error
}

// BlindIndex computes a keyed, deterministic token of identifying data (a
// normalized name and birth date) so a subject can be found again without
// storing the data in clear.
type BlindIndex interface {
	Token(name, birthDate string) string
	// Fingerprint is a keyed digest of a request's canonical form. It is
	// kept with the events an Idempotency-Key writes, so a reuse of the key
	// with another request is recognised without the request (which may
	// hold personal data) being stored, even as a plain hash.
	Fingerprint(canonical []byte) string
}

// KeyStore is a key store as the server wires it: the subjects' keys
// (Cipher), the blind index entries (SubjectIndex) and the blind index key
// (BlindIndex), kept together so that erasing a subject deletes its key and
// its entries at once. Implementations: the local store on one machine, and
// the cluster store that every replica of a scale-out server shares. They
// pass one conformance suite (adapters/keystoretest).
type KeyStore interface {
	Cipher
	SubjectIndex
	// BlindIndex returns the blind index under the store's one key: every
	// instance of a store (every replica) gives the same tokens.
	BlindIndex() BlindIndex
	// Count returns the number of live subject keys (created and not
	// erased), for an operator metric; an implementation may answer an
	// approximation it documents, or a KindUnavailable error while it
	// cannot tell.
	Count() (int, error)
	// Close releases the store; every other method then fails with a
	// KindUnavailable error.
	Close() error
}

// Access is one read of personal data, or a denied attempt, as the read side
// hands it to the auditor: the access record (ids only), and a break-glass
// reason in clear that the auditor seals under the first subject's key
// before anything is stored.
type Access struct {
	AccessRecord
	Reason string
}

// Auditor records accesses (NEN 7513). The read side calls RecordAccess
// before any personal data leaves the server and fails the read when it
// returns an error (fail closed); denied attempts are recorded too.
type Auditor interface {
	RecordAccess(ctx context.Context, a Access) error
	RecordDenied(ctx context.Context, a Access) error
}

// Authenticator turns a bearer token into a principal. A missing, unknown,
// expired or otherwise invalid token is a KindUnauthenticated error; an
// authenticator that cannot decide because something it depends on is down
// returns KindUnavailable.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}
