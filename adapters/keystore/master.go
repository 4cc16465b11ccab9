package keystore

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// ErrMasterKeyInvalid (KindInvalid): the master key material is not a tink
// AEAD keyset (or not base64). The message never repeats the material.
var ErrMasterKeyInvalid = &domain.Error{Kind: domain.KindInvalid, Code: "master_key_invalid", Message: "the master key is not a valid tink AEAD keyset"}

// LoadOrCreateMasterKey returns the master AEAD of the keyset file at path
// (tink's JSON keyset format, in clear), creating the file with a new
// AES-256-GCM keyset, mode 0600 (its directory 0700), when it does not exist.
// Concurrent creators agree on one key: the file appears whole, once.
//
// This is the embedded default only: the key lies next to the data it
// protects. Production should give Open a KMS-backed tink.AEAD instead.
//
// Errors: ErrMasterKeyInvalid (KindInvalid) for a file that is not an AEAD
// keyset, KindInternal when the file cannot be read or written.
func LoadOrCreateMasterKey(path string) (tink.AEAD, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if data, err = createMasterKeyFile(path); err != nil {
			return nil, domain.Wrap(domain.KindInternal, "master_key_file", "the master key file cannot be created", err)
		}
	} else if err != nil {
		return nil, domain.Wrap(domain.KindInternal, "master_key_file", "the master key file cannot be read", err)
	}
	return masterFrom(keyset.NewJSONReader(bytes.NewReader(data)))
}

// createMasterKeyFile writes a new keyset to a temporary file and links it
// into place, which fails if another process was first; then it returns the
// file's contents, whoever wrote them.
func createMasterKeyFile(path string) ([]byte, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return os.ReadFile(path)
}

// MasterKeyFromEnv returns the master AEAD of a keyset given as base64
// (standard alphabet, padding optional) of tink's JSON or binary keyset
// format, in clear, as an operator puts it in BUURTSIGNAAL_MASTER_KEY
// (NewMasterKeyBase64 makes one). The caller reads the variable.
// Errors: ErrMasterKeyInvalid (KindInvalid).
func MasterKeyFromEnv(value string) (tink.AEAD, error) {
	value = strings.TrimSpace(value)
	data, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		if data, err = base64.RawStdEncoding.DecodeString(value); err != nil {
			return nil, ErrMasterKeyInvalid
		}
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return masterFrom(keyset.NewJSONReader(bytes.NewReader(data)))
	}
	return masterFrom(keyset.NewBinaryReader(bytes.NewReader(data)))
}

// NewMasterKeyBase64 makes a new AES-256-GCM master keyset and returns it as
// base64 of its JSON form, the format MasterKeyFromEnv reads. It is secret.
func NewMasterKeyBase64() (string, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return "", classify(err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return "", classify(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

func masterFrom(r keyset.Reader) (tink.AEAD, error) {
	h, err := insecurecleartextkeyset.Read(r)
	if err != nil {
		return nil, ErrMasterKeyInvalid
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, ErrMasterKeyInvalid
	}
	return a, nil
}
