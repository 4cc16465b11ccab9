package keystore

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// TestCheckpointOutlivesLaterShreds: a shred after a checkpoint leaves the
// checkpoint's files as they were. (With hard links, a purge zeroed the
// tables the checkpoint shared with the store, and the backup failed its
// checksums.)
func TestCheckpointOutlivesLaterShreds(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "keys"), newMaster(t), Options{})
	var ids []uuid.UUID
	for range 200 {
		id := uuid.New()
		ids = append(ids, id)
		if _, err := s.Seal(ctx, id, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "checkpoint")
	if err := s.Checkpoint(cp); err != nil {
		t.Fatal(err)
	}
	before := fileSums(t, cp)
	for _, id := range ids[:3] {
		if err := s.Shred(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(before, fileSums(t, cp)); diff != "" {
		t.Fatalf("the checkpoint changed after shreds (-before +after):\n%s", diff)
	}
}

// fileSums maps each file under dir to its SHA-256.
func fileSums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[filepath.Base(p)] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
