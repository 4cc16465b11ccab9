package app

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeSubjectData(t *testing.T) {
	full := SubjectData{Name: "Özlem de Vries-Öztürk", BirthDate: "1941-03-12", Address: "Dorpsstraat 7", Phone: "0612345678"}
	marshalled, _ := json.Marshal(full)
	tests := []struct {
		name string
		in   string
		want SubjectData
		fast bool // read by the fast path
	}{
		{"as json.Marshal writes it", string(marshalled), full, true},
		{"name only", `{"name":"Kees"}`, SubjectData{Name: "Kees"}, true},
		{"empty object", `{}`, SubjectData{}, true},
		{"escaped quote", `{"name":"K\"ees"}`, SubjectData{Name: `K"ees`}, false},
		{"unicode escape", `{"name":"K\u00e9es"}`, SubjectData{Name: "Kées"}, false},
		{"whitespace", `{ "name" : "Kees" }`, SubjectData{Name: "Kees"}, false},
		{"key in other case", `{"NAME":"Kees"}`, SubjectData{Name: "Kees"}, false},
		{"unknown key", `{"name":"Kees","x":"y"}`, SubjectData{Name: "Kees"}, false},
		{"duplicate key: the last wins", `{"name":"A","name":"B"}`, SubjectData{Name: "B"}, false},
		{"invalid UTF-8 is replaced", "{\"name\":\"K\xffes\"}", SubjectData{Name: "K\uFFFDes"}, false},
		{"null value", `{"name":null}`, SubjectData{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSubjectData([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeSubjectData(%q) (-want +got):\n%s", tt.in, diff)
			}
			if _, fast := decodeFlat([]byte(tt.in)); fast != tt.fast {
				t.Errorf("fast path taken = %v, want %v", fast, tt.fast)
			}
		})
	}
	for _, bad := range []string{``, `{`, `{"name":"Kees"`, `{"name":"Kees",}`, `{"name":1}`, `[]`, `{"name":"Kees"}x`} {
		if _, err := DecodeSubjectData([]byte(bad)); err == nil {
			t.Errorf("DecodeSubjectData(%q): want an error", bad)
		}
	}
}

// FuzzDecodeSubjectData: whatever the fast path reads, encoding/json reads
// the same.
func FuzzDecodeSubjectData(f *testing.F) {
	for _, s := range []string{`{"name":"Kees","birth_date":"1950-01-01","address":"Dorpsstraat 7","phone":"06"}`,
		`{}`, `{"name":"Ö"}`, `{"name":"A","name":"B"}`, `{"NAME":"x"}`, `{"name":"a\"b"}`, "{\"name\":\"\xff\"}", `{"phone":""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeFlat(b)
		if !ok {
			return
		}
		var want SubjectData
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast path read %q, encoding/json fails: %v", b, err)
		}
		if diff := cmp.Diff(want, fast); diff != "" {
			t.Fatalf("%q (-json +fast):\n%s", b, diff)
		}
	})
}

func BenchmarkDecodeSubjectData(b *testing.B) {
	raw, _ := json.Marshal(SubjectData{Name: "Johanna de Vries", BirthDate: "1941-03-12"})
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeSubjectData(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var d SubjectData
			if err := json.Unmarshal(raw, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
