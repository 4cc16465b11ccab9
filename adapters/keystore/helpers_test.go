package keystore

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newMaster(t testing.TB) tink.AEAD {
	t.Helper()
	m, err := LoadOrCreateMasterKey(nil, filepath.Join(t.TempDir(), "master.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func openStore(t testing.TB, dir string, m tink.AEAD, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// needle is a run of secret bytes that must not be on disk; a token may
// stay as a table bound in a manifest (see purgeItems).
type needle struct {
	what  string
	bytes []byte
	token bool
}

// tokenNeedles returns a blind-index token and its 8-byte pieces.
func tokenNeedles(token string) []needle {
	out := cut("token", []byte(token), 8)
	for i := range out {
		out[i].token = true
	}
	return out
}

// cut returns what and every non-overlapping piece of n bytes of b: a
// write-ahead log may split a value at a block boundary, so the pieces are
// looked for as well as the whole.
func cut(what string, b []byte, n int) []needle {
	out := []needle{{what: what, bytes: b}}
	for i := 0; i+n <= len(b); i += n {
		out = append(out, needle{what: what + " piece", bytes: b[i : i+n]})
	}
	return out
}

// keyNeedles returns the secrets of a subject's stored key: the wrapped
// keyset, 8-byte pieces of its encrypted part, and the raw AES key.
func keyNeedles(t *testing.T, m tink.AEAD, id uuid.UUID, wrapped []byte) []needle {
	t.Helper()
	var ek tinkpb.EncryptedKeyset
	if err := proto.Unmarshal(wrapped, &ek); err != nil {
		t.Fatal(err)
	}
	out := append(cut("encrypted keyset", ek.GetEncryptedKeyset(), 8), needle{what: "wrapped key", bytes: wrapped})
	return append(out, cut("raw key", rawKey(t, m, id, wrapped), 8)...)
}

// rawKey unwraps a stored keyset and returns its 32-byte AES key.
func rawKey(t *testing.T, m tink.AEAD, id uuid.UUID, wrapped []byte) []byte {
	t.Helper()
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), m, id[:])
	if err != nil {
		t.Fatal(err)
	}
	ks := insecurecleartextkeyset.KeysetMaterial(h)
	if len(ks.GetKey()) != 1 {
		t.Fatalf("%d keys in a subject keyset", len(ks.GetKey()))
	}
	v := ks.GetKey()[0].GetKeyData().GetValue() // AesGcmKey: 0x1a 0x20 and the key
	if len(v) < 32 {
		t.Fatalf("short key value")
	}
	return v[len(v)-32:]
}

// storedKey returns the subject's wrapped keyset as stored.
func storedKey(t *testing.T, s *Store, id uuid.UUID) []byte {
	t.Helper()
	v, ok, err := s.get(keyKey(id))
	if err != nil || !ok || len(v) == 0 {
		t.Fatalf("no stored key: %v %v", ok, err)
	}
	return v
}

// findOnDisk reads every byte of every file under dir and returns where
// each needle was found (tokens: outside manifests).
func findOnDisk(t *testing.T, dir string, needles []needle) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		manifest := strings.HasPrefix(d.Name(), "MANIFEST-")
		for _, n := range needles {
			if n.token && manifest {
				continue
			}
			if bytes.Contains(data, n.bytes) {
				rel, _ := filepath.Rel(dir, path)
				hits = append(hits, n.what+" in "+rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func wantErr(t *testing.T, err error, kind domain.Kind, code string) {
	t.Helper()
	e := domain.AsError(err)
	if e == nil {
		t.Fatalf("error %v (%T) is not a *domain.Error", err, err)
	}
	if e.Kind != kind || e.Code != code {
		t.Fatalf("error %v: kind %v code %q, want %v %q", err, e.Kind, e.Code, kind, code)
	}
}
