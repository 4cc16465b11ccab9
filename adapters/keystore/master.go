package keystore

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// ErrMasterKeyInvalid (KindInvalid): the master key material is not a tink
// AEAD keyset (or not base64). The message never repeats the material.
var ErrMasterKeyInvalid = &domain.Error{Kind: domain.KindInvalid, Code: "master_key_invalid", Message: "the master key is not a valid tink AEAD keyset"}

// LoadOrCreateMasterKey returns the master AEAD of the keyset file at path
// on fsys (nil: the operating system's; tink's JSON keyset format, in
// clear), creating the file with a new AES-256-GCM keyset when it does not
// exist. Concurrent creators agree on one key: the file appears whole, once.
// The file is durable before the key is used: a new one is written to a
// temporary file, synced and linked into place, and its directory synced;
// the directory of one found there is synced too, since the process that
// made it may have crashed before it did (the key must not vanish in a
// power cut after keys were wrapped with it).
//
// This is the embedded default only: the key lies next to the data it
// protects. Production should give Open a KMS-backed tink.AEAD instead.
//
// Errors: ErrMasterKeyInvalid (KindInvalid) for a file that is not an AEAD
// keyset, KindInternal when the file cannot be read or written.
func LoadOrCreateMasterKey(fsys vfs.FS, path string) (tink.AEAD, error) {
	if fsys == nil {
		fsys = vfs.Default
	}
	data, err := readFile(fsys, path)
	if errors.Is(err, os.ErrNotExist) {
		if data, err = createMasterKeyFile(fsys, path); err != nil {
			return nil, domain.Wrap(domain.KindInternal, "master_key_file", "the master key file cannot be created", err)
		}
	} else if err == nil {
		if err = durablefs.SyncDir(fsys, fsys.PathDir(path)); err != nil {
			return nil, domain.Wrap(domain.KindInternal, "master_key_file", "the master key file's directory cannot be synced", err)
		}
	} else {
		return nil, domain.Wrap(domain.KindInternal, "master_key_file", "the master key file cannot be read", err)
	}
	return masterFrom(keyset.NewJSONReader(bytes.NewReader(data)))
}

// createMasterKeyFile writes a new keyset durably into place, unless
// another process was first; then it returns the file's contents, whoever
// wrote them.
func createMasterKeyFile(fsys vfs.FS, path string) ([]byte, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, err
	}
	if err := durablefs.MkdirAll(fsys, fsys.PathDir(path)); err != nil {
		return nil, err
	}
	if err := durablefs.CreateFile(fsys, path, buf.Bytes()); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return readFile(fsys, path)
}

func readFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
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
