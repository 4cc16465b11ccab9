package keystore

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// sameKey asserts that b opens what a seals.
func sameKey(t *testing.T, a, b tink.AEAD) {
	t.Helper()
	ct, err := a.Encrypt([]byte("proef"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Decrypt(ct, []byte("ad")); err != nil || string(pt) != "proef" {
		t.Fatalf("the keys differ: %v", err)
	}
}

func TestLoadOrCreateMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "master.json")
	m1, err := LoadOrCreateMasterKey(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Fatalf("mode %o, want 600", perm)
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %o, want 700", dst.Mode().Perm())
	}
	m2, err := LoadOrCreateMasterKey(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, m1, m2)
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("%d files next to the key, want the key alone", len(entries))
	}
}

// Processes starting together agree on one master key.
func TestConcurrentMasterKeyCreationAgrees(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.json")
	keys := make([]tink.AEAD, 16)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			var err error
			if keys[i], err = LoadOrCreateMasterKey(nil, path); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, k := range keys[1:] {
		sameKey(t, keys[0], k)
	}
}

func TestMasterKeyFileThatIsNoKeyset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.json")
	if err := os.WriteFile(path, []byte(`{"not":"a keyset"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateMasterKey(nil, path)
	wantErr(t, err, domain.KindInvalid, ErrMasterKeyInvalid.Code)
}

func TestMasterKeyFromEnv(t *testing.T) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	want, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	var jsonKS, binKS bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&jsonKS)); err != nil {
		t.Fatal(err)
	}
	if err := insecurecleartextkeyset.Write(h, keyset.NewBinaryWriter(&binKS)); err != nil {
		t.Fatal(err)
	}
	macHandle, err := keyset.NewHandle(mac.HMACSHA256Tag256KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	var macKS bytes.Buffer
	if err := insecurecleartextkeyset.Write(macHandle, keyset.NewJSONWriter(&macKS)); err != nil {
		t.Fatal(err)
	}
	good := []struct{ name, value string }{
		{"JSON", base64.StdEncoding.EncodeToString(jsonKS.Bytes())},
		{"binary", base64.StdEncoding.EncodeToString(binKS.Bytes())},
		{"without padding", base64.RawStdEncoding.EncodeToString(jsonKS.Bytes())},
		{"with a new line", base64.StdEncoding.EncodeToString(jsonKS.Bytes()) + "\n"},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MasterKeyFromEnv(tt.value)
			if err != nil {
				t.Fatal(err)
			}
			sameKey(t, want, got)
		})
	}
	bad := []struct{ name, value string }{
		{"empty", ""},
		{"not base64", "geen-base64!"},
		{"base64 of text", base64.StdEncoding.EncodeToString([]byte("hunter2 hunter2"))},
		{"a MAC keyset", base64.StdEncoding.EncodeToString(macKS.Bytes())},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MasterKeyFromEnv(tt.value)
			wantErr(t, err, domain.KindInvalid, ErrMasterKeyInvalid.Code)
			if tt.value != "" && strings.Contains(err.Error(), tt.value) {
				t.Fatalf("the error %q repeats the value", err)
			}
		})
	}
}

func TestNewMasterKeyBase64(t *testing.T) {
	v, err := NewMasterKeyBase64()
	if err != nil {
		t.Fatal(err)
	}
	m, err := MasterKeyFromEnv(v)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := NewMasterKeyBase64()
	if v == w {
		t.Fatal("two new master keys are the same")
	}
	s := openStore(t, t.TempDir(), m, Options{})
	if s.BlindIndex() == nil {
		t.Fatal("no blind index")
	}
}

func TestOpenUnderAnotherMasterKeyFails(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, newMaster(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, newMaster(t), Options{})
	wantErr(t, err, domain.KindInternal, ErrMasterKeyMismatch.Code)
	if !errors.Is(err, ErrMasterKeyMismatch) {
		t.Fatalf("errors.Is: %v", err)
	}
	_, err = Open(dir, nil, Options{})
	wantErr(t, err, domain.KindInvalid, "master_key_missing")
}

// The blind index key survives a reopen: tokens stay the same.
func TestBlindIndexKeyPersists(t *testing.T) {
	dir, m := t.TempDir(), newMaster(t)
	s, err := Open(dir, m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.BlindIndex().Token("Jan de Vries", "1950-01-01")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, m, Options{})
	if got := s.BlindIndex().Token("Jan de Vries", "1950-01-01"); got != tok {
		t.Fatal("the blind index key changed on reopen")
	}
	other := openStore(t, t.TempDir(), m, Options{})
	if other.BlindIndex().Token("Jan de Vries", "1950-01-01") == tok {
		t.Fatal("two stores share a blind index key")
	}
}
