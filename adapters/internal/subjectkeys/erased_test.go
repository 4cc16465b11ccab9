package subjectkeys

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

func TestErasedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "erased-subjects")
	if ids, err := ReadErased(path); err != nil || len(ids) != 0 {
		t.Fatalf("a missing file: %v, %v; want an empty list", ids, err)
	}
	a, b := uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{a, b, a} {
		if err := RecordErased(path, id); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadErased(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uuid.UUID{a, b, a}, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// A torn last line (a crash while recording) is skipped.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(b.String()[:10])
	f.Close()
	if got, err := ReadErased(path); err != nil || len(got) != 3 {
		t.Fatalf("a torn last line: %v, %v", got, err)
	}
	// A bad line before the end is damage.
	if err := os.WriteFile(path, []byte("not-an-id\n"+a.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadErased(path); err == nil {
		t.Fatal("a bad line before the end: want an error")
	}
}
