package subjectkeys

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

func TestLRUCache(t *testing.T) {
	ids := make([]uuid.UUID, 5)
	for i := range ids {
		ids[i] = uuid.New()
	}
	tests := []struct {
		name string
		ops  string // p<i> put, g<i> get, r<i> remove
		want []int  // ids cached afterwards
	}{
		{"within bound", "p0 p1 p2", []int{0, 1, 2}},
		{"evicts the least recent", "p0 p1 p2 p3", []int{1, 2, 3}},
		{"a get refreshes", "p0 p1 p2 g0 p3", []int{0, 2, 3}},
		{"a put again refreshes", "p0 p1 p2 p0 p3", []int{0, 2, 3}},
		{"remove frees a place", "p0 p1 p2 r1 p3", []int{0, 2, 3}},
		{"remove unknown", "p0 r4", []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache[int](3)
			for _, op := range strings.Fields(tt.ops) {
				id := ids[op[1]-'0']
				switch op[0] {
				case 'p':
					c.Put(id, 1)
				case 'g':
					c.Get(id)
				case 'r':
					c.Remove(id)
				}
			}
			var got []int
			for i, id := range ids {
				sh := c.shard(id)
				if sh.m[id] != nil {
					got = append(got, i)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("cached (-want +got):\n%s", diff)
			}
		})
	}
}

// Replace never brings back a value that is not there.
func TestCacheReplace(t *testing.T) {
	c := NewCache[int](3)
	id := uuid.New()
	if c.Replace(id, 1) {
		t.Fatal("replaced a value that was not there")
	}
	if _, ok := c.Get(id); ok {
		t.Fatal("Replace added a value")
	}
	c.Put(id, 1)
	if !c.Replace(id, 2) {
		t.Fatal("did not replace")
	}
	if v, _ := c.Get(id); v != 2 {
		t.Fatalf("value %d, want 2", v)
	}
}
