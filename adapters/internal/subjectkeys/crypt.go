package subjectkeys

import (
	"bytes"
	"crypto/rand"
	"io"
	"strings"

	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Errors both key stores report. Each is a *domain.Error; compare with
// errors.Is.
var (
	// ErrKeyMissing (KindInternal) is returned by Open for a subject that
	// has no key and was never erased: the key store does not belong to the
	// data (a wrong or lost store), which must not pass for an erasure.
	ErrKeyMissing = &domain.Error{Kind: domain.KindInternal, Code: "key_missing", Message: "the subject's key is missing from the key store"}
	// ErrUnwrap (KindInternal): a stored key does not open under the master
	// key for its subject (corruption, a key moved to another subject, or
	// another master key).
	ErrUnwrap = &domain.Error{Kind: domain.KindInternal, Code: "key_unwrap", Message: "a subject key does not unwrap"}
	// ErrCiphertext (KindInternal): a ciphertext does not open under its
	// subject's key (corruption, or sealed for another subject).
	ErrCiphertext = &domain.Error{Kind: domain.KindInternal, Code: "ciphertext_invalid", Message: "a ciphertext does not open"}
	// ErrMasterKeyMismatch (KindInternal): the blind index key does not
	// open: the key store was made under another master key.
	ErrMasterKeyMismatch = &domain.Error{Kind: domain.KindInternal, Code: "master_key_mismatch", Message: "the key store does not open under this master key"}
	// ErrClosed (KindUnavailable) is returned by every method of a key
	// store after Close (Life.Enter).
	ErrClosed = &domain.Error{Kind: domain.KindUnavailable, Code: "key_store_closed", Message: "the key store is closed"}
	// ErrCanceled (KindUnavailable): the caller's context ended before the
	// key store's operation did.
	ErrCanceled = &domain.Error{Kind: domain.KindUnavailable, Code: "canceled", Message: "the key store operation was canceled"}
	// ErrFailed (KindInternal): the key store failed; the cause is kept for
	// logs.
	ErrFailed = &domain.Error{Kind: domain.KindInternal, Code: "key_store", Message: "the key store failed"}
	// ErrMasterKeyMissing (KindInvalid): a key store was opened without a
	// master AEAD.
	ErrMasterKeyMissing = &domain.Error{Kind: domain.KindInvalid, Code: "master_key_missing", Message: "the key store needs a master key"}
)

// WrapAs returns a copy of sentinel with err as its cause (kept for logs and
// errors.Is, never shown).
func WrapAs(sentinel *domain.Error, err error) error {
	return &domain.Error{Kind: sentinel.Kind, Code: sentinel.Code, Message: sentinel.Message, Err: err}
}

// NewKey makes a subject's keyset and wraps it for the subject under master.
// It returns the subject's AEAD and the wrapped keyset to store. Errors are
// KindInternal.
func NewKey(master tink.AEAD, id uuid.UUID) (tink.AEAD, []byte, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, nil, domain.Wrap(domain.KindInternal, "key_new", "a subject key cannot be made", err)
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), master, id[:]); err != nil {
		return nil, nil, domain.Wrap(domain.KindInternal, "key_wrap", "a subject key cannot be wrapped", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, nil, domain.Wrap(domain.KindInternal, "key_new", "a subject key cannot be made", err)
	}
	return a, buf.Bytes(), nil
}

// Unwrap opens a wrapped keyset of the subject under master. It fails with
// ErrUnwrap when the keyset was wrapped for another subject, under another
// master key, or is damaged.
func Unwrap(master tink.AEAD, id uuid.UUID, wrapped []byte) (tink.AEAD, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), master, id[:])
	if err != nil {
		return nil, WrapAs(ErrUnwrap, err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, WrapAs(ErrUnwrap, err)
	}
	return a, nil
}

// Seal encrypts plaintext under the subject's AEAD, bound to the subject.
func Seal(a tink.AEAD, id uuid.UUID, plaintext []byte) ([]byte, error) {
	ct, err := a.Encrypt(plaintext, id[:])
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, "seal", "the data cannot be sealed", err)
	}
	return ct, nil
}

// Open decrypts a ciphertext of the subject; one of another subject, or
// damaged, fails with ErrCiphertext.
func Open(a tink.AEAD, id uuid.UUID, ciphertext []byte) ([]byte, error) {
	pt, err := a.Decrypt(ciphertext, id[:])
	if err != nil {
		return nil, WrapAs(ErrCiphertext, err)
	}
	return pt, nil
}

// CheckIndexArgs checks the arguments of a blind index Find or Put: a
// network without NUL bytes and a non-empty token (KindInvalid otherwise).
func CheckIndexArgs(network, token string) error {
	var fields []domain.FieldError
	if strings.IndexByte(network, 0) >= 0 {
		fields = append(fields, domain.FieldError{Field: "network", Message: "must not hold NUL bytes"})
	}
	if token == "" {
		fields = append(fields, domain.FieldError{Field: "token", Message: "must be non-empty"})
	}
	if fields != nil {
		return domain.Invalid(fields...)
	}
	return nil
}

// blindIndexAD is the associated data of the wrapped blind index key.
var blindIndexAD = []byte("buurtsignaal blind index")

// RandReader is where new blind index keys come from (tests may replace it).
var RandReader io.Reader = rand.Reader

// NewBlindKey makes a blind index key (32 random bytes) and returns it
// wrapped by master, to be stored once and opened with OpenBlindKey.
func NewBlindKey(master tink.AEAD) ([]byte, error) {
	raw := make([]byte, 32)
	if _, err := io.ReadFull(RandReader, raw); err != nil {
		return nil, domain.Wrap(domain.KindInternal, "blind_key_new", "the blind index key cannot be made", err)
	}
	wrapped, err := master.Encrypt(raw, blindIndexAD)
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, "blind_key_wrap", "the blind index key cannot be wrapped", err)
	}
	return wrapped, nil
}

// OpenBlindKey unwraps a stored blind index key and returns its index. It
// fails with ErrMasterKeyMismatch when the key does not open: the store was
// made under another master key.
func OpenBlindKey(master tink.AEAD, wrapped []byte) (*BlindIndex, error) {
	raw, err := master.Decrypt(wrapped, blindIndexAD)
	if err != nil {
		return nil, WrapAs(ErrMasterKeyMismatch, err)
	}
	if len(raw) < 16 {
		return nil, WrapAs(ErrMasterKeyMismatch, nil)
	}
	return NewBlindIndex(raw), nil
}
