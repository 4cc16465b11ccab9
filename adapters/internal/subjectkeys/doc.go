// Package subjectkeys is what every key store of the server shares, so the
// local key store (adapters/keystore) and the cluster key store
// (adapters/clusterkeys) keep keys in one format and match subjects alike:
//
//   - the key format and its cryptography: each subject has its own tink
//     keyset (AES-256-GCM), wrapped by the master AEAD with the subject id's
//     16 bytes as associated data (NewKey, Unwrap), and ciphertexts are tink
//     AEAD ciphertexts with the subject id as associated data (Seal, Open);
//   - the blind index: keyed tokens (HMAC-SHA256) of a normalized name and
//     birth date (BlindIndex, NormalizeName, NormalizeBirthDate), under a
//     32-byte key wrapped by the master AEAD with its own associated data
//     (NewBlindKey, OpenBlindKey);
//   - a sharded LRU cache of unwrapped keys (Cache);
//   - the erased-subjects file that outlives restores (RecordErased,
//     ReadErased);
//   - the admission of operations until a store closes (Life);
//   - the errors both report (ErrKeyMissing, ErrUnwrap, ErrCiphertext,
//     ErrMasterKeyMismatch, ErrClosed, ErrCanceled, ErrFailed), each a
//     *domain.Error whose message holds no key bytes and no plaintext.
//
// It is a library, not an adapter: it implements no port on its own.
package subjectkeys
