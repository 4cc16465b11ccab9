package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func TestHashToken(t *testing.T) {
	// SHA-256 of "abc" (FIPS 180-2, appendix B.1).
	if got, want := HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashToken(abc) = %s, want %s", got, want)
	}
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 64 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Errorf("NewToken: %d hex digits, distinct %t", len(a), a != b)
	}
}

func TestParseTokensValid(t *testing.T) {
	ctx := context.Background()
	data := `{"principals": [
	  {"token_sha256": "` + HashToken("tok-anna") + `", "id": "anna", "name": "Anna de Vries",
	   "roles": ["professional", "coordinator"], "teams": ["basisteam-beesd", "jeugd"], "organisation": "gemeente"},
	  {"token_sha256": "` + strings.ToUpper(HashToken("tok-carla")) + `", "id": "carla", "roles": ["buurtsteun"], "network": "tiel"},
	  {"token_sha256": "` + HashToken("tok-anna-2") + `", "id": "anna", "name": "Anna de Vries",
	   "roles": ["coordinator", "professional"], "teams": ["jeugd", "basisteam-beesd"], "organisation": "gemeente"},
	  {"token_sha256": "` + HashToken("tok-piet") + `", "id": "piet", "roles": ["partner"], "teams": ["jeugd"], "organisation": "vluchtelingenwerk"}
	]}`
	tf, err := ParseTokens([]byte(data), "west-betuwe")
	if err != nil {
		t.Fatal(err)
	}
	anna := domain.Principal{ID: "anna", Name: "Anna de Vries", Roles: []domain.Role{domain.RoleProfessional, domain.RoleCoordinator},
		Teams: []string{"basisteam-beesd", "jeugd"}, Organisation: "gemeente", Network: "west-betuwe", MFA: true}
	carla := domain.Principal{ID: "carla", Roles: []domain.Role{domain.RoleBuurtsteun}, Network: "tiel", MFA: true}
	piet := domain.Principal{ID: "piet", Roles: []domain.Role{domain.RolePartner}, Teams: []string{"jeugd"},
		Organisation: "vluchtelingenwerk", Network: "west-betuwe", MFA: true}
	annaAgain := anna
	annaAgain.Roles = []domain.Role{domain.RoleCoordinator, domain.RoleProfessional}
	annaAgain.Teams = []string{"jeugd", "basisteam-beesd"}

	for _, tt := range []struct {
		token string
		want  domain.Principal
	}{{"tok-anna", anna}, {"tok-anna-2", annaAgain}, {"tok-carla", carla}, {"tok-piet", piet}} {
		got, err := tf.Authenticate(ctx, tt.token)
		if err != nil {
			t.Fatalf("%s: %v", tt.token, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: principal (-want +got):\n%s", tt.token, diff)
		}
	}
	if diff := cmp.Diff([]domain.Principal{anna, carla, piet}, tf.Principals()); diff != "" {
		t.Errorf("Principals (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"basisteam-beesd", "jeugd"}, tf.Teams()); diff != "" {
		t.Errorf("Teams (-want +got):\n%s", diff)
	}

	// What callers get is theirs to change.
	got, _ := tf.Authenticate(ctx, "tok-anna")
	got.Roles[0], got.Teams[0] = domain.RoleAdmin, "other"
	tf.Principals()[0].Roles[0] = domain.RoleAdmin
	if again, _ := tf.Authenticate(ctx, "tok-anna"); !cmp.Equal(anna, again) {
		t.Errorf("a caller's change reached the tokens file: %v", again.Roles)
	}
	if diff := cmp.Diff([]domain.Principal{anna, carla, piet}, tf.Principals()); diff != "" {
		t.Errorf("Principals after changes (-want +got):\n%s", diff)
	}

	for _, tok := range []string{"", "tok-ann", "TOK-ANNA", "tok-anna ", HashToken("tok-anna")} {
		_, err := tf.Authenticate(ctx, tok)
		if !errors.Is(err, ErrInvalidToken) || domain.KindOf(err) != domain.KindUnauthenticated {
			t.Errorf("token %q: err %v, want ErrInvalidToken", tok, err)
		}
	}

	// An empty network falls back to domain.DefaultNetwork; an empty list is a valid file.
	tf, err = ParseTokens([]byte(`{"principals": [{"token_sha256": "`+HashToken("x")+`", "id": "x", "roles": ["admin"]}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := tf.Authenticate(ctx, "x"); p.Network != domain.DefaultNetwork {
		t.Errorf("network %q, want %q", p.Network, domain.DefaultNetwork)
	}
	tf, err = ParseTokens([]byte(`{"principals": []}`), "net")
	if err != nil {
		t.Fatal(err)
	}
	if len(tf.Principals()) != 0 || len(tf.Teams()) != 0 {
		t.Errorf("empty file: %d principals, %d teams", len(tf.Principals()), len(tf.Teams()))
	}
	var none *TokensFile
	if _, err := none.Authenticate(ctx, "x"); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("nil tokens file: %v", err)
	}
}

func TestParseTokensInvalid(t *testing.T) {
	hash, hash2 := HashToken("secret-anna"), HashToken("secret-bert")
	entry := func(fields string) string { return `{"principals": [` + fields + `]}` }
	anna := `{"token_sha256": "` + hash + `", "id": "anna", "name": "Anna de Vries", "roles": ["admin"]`
	tests := []struct {
		name   string
		data   string
		fields []string // the offending fields, when validation names them
	}{
		{"empty", ``, nil},
		{"not json", `{`, nil},
		{"malformed", `{"principals": [}`, nil},
		{"not an object", `[]`, nil},
		{"null", `null`, nil},
		{"no principals", `{}`, nil},
		{"principals twice", `{"principals": [], "principals": []}`, nil},
		{"unknown top-level field", `{"principals": [], "extra": 1}`, nil},
		{"principals not an array", `{"principals": {"id": "a"}}`, nil},
		{"principals null", `{"principals": null}`, nil},
		{"principal not an object", entry(`"anna"`), nil},
		{"unknown field", entry(anna + `, "rol": ["admin"]}`), nil},
		{"field in another case", entry(anna + `, "Organisation": "x"}`), nil},
		{"field twice", entry(anna + `, "id": "bert"}`), nil},
		{"id a number", entry(`{"token_sha256": "` + hash + `", "id": 1, "roles": ["admin"]}`), nil},
		{"id null", entry(`{"token_sha256": "` + hash + `", "id": null, "roles": ["admin"]}`), nil},
		{"roles a string", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": "admin"}`), nil},
		{"role a number", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": [1]}`), nil},
		{"role nested", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": [["admin"]]}`), nil},
		{"trailing data", `{"principals": []} {}`, nil},
		{"trailing garbage", `{"principals": []} x`, nil},
		{"invalid UTF-8", "{\"principals\": [{\"token_sha256\": \"" + hash + "\", \"id\": \"\xff\", \"roles\": [\"admin\"]}]}", nil},

		{"no hash", entry(`{"id": "a", "roles": ["admin"]}`), []string{"principals[0].token_sha256"}},
		{"short hash", entry(`{"token_sha256": "abc", "id": "a", "roles": ["admin"]}`), []string{"principals[0].token_sha256"}},
		{"long hash", entry(`{"token_sha256": "` + hash + `00", "id": "a", "roles": ["admin"]}`), []string{"principals[0].token_sha256"}},
		{"hash not hex", entry(`{"token_sha256": "` + strings.Repeat("g", 64) + `", "id": "a", "roles": ["admin"]}`), []string{"principals[0].token_sha256"}},
		{"no id", entry(`{"token_sha256": "` + hash + `", "roles": ["admin"]}`), []string{"principals[0].id"}},
		{"id with spaces around", entry(`{"token_sha256": "` + hash + `", "id": " a", "roles": ["admin"]}`), []string{"principals[0].id"}},
		{"id with a control character", entry(`{"token_sha256": "` + hash + `", "id": "a\nb", "roles": ["admin"]}`), []string{"principals[0].id"}},
		{"id too long", entry(`{"token_sha256": "` + hash + `", "id": "` + strings.Repeat("a", 201) + `", "roles": ["admin"]}`), []string{"principals[0].id"}},
		{"name too long", entry(`{"token_sha256": "` + hash + `", "id": "a", "name": "` + strings.Repeat("a", 501) + `", "roles": ["admin"]}`), []string{"principals[0].name"}},
		{"no roles key", entry(`{"token_sha256": "` + hash + `", "id": "a"}`), []string{"principals[0].roles"}},
		{"no role", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": []}`), []string{"principals[0].roles"}},
		{"unknown role", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": ["admin", "king"]}`), []string{"principals[0].roles[1]"}},
		{"role in another case", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": ["Admin"]}`), []string{"principals[0].roles[0]"}},
		{"role twice", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": ["admin", "admin"]}`), []string{"principals[0].roles[1]"}},
		{"empty team", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": ["admin"], "teams": [""]}`), []string{"principals[0].teams[0]"}},
		{"team twice", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": ["admin"], "teams": ["t", "t"]}`), []string{"principals[0].teams[1]"}},
		{"bad organisation", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": ["admin"], "organisation": "x "}`), []string{"principals[0].organisation"}},
		{"bad network", entry(`{"token_sha256": "` + hash + `", "id": "a", "roles": ["admin"], "network": "\t"}`), []string{"principals[0].network"}},
		{"duplicate token", entry(anna + `}, {"token_sha256": "` + hash + `", "id": "bert", "roles": ["admin"]}`), []string{"principals[1].token_sha256"}},
		{"duplicate token in another case", entry(anna + `}, {"token_sha256": "` + strings.ToUpper(hash) + `", "id": "bert", "roles": ["admin"]}`), []string{"principals[1].token_sha256"}},
		{"duplicate id, other roles", entry(anna + `}, {"token_sha256": "` + hash2 + `", "id": "anna", "name": "Anna de Vries", "roles": ["partner"]}`), []string{"principals[1].id"}},
		{"duplicate id, other name", entry(anna + `}, {"token_sha256": "` + hash2 + `", "id": "anna", "name": "Anna", "roles": ["admin"]}`), []string{"principals[1].id"}},
		{"several problems", entry(`{"id": "", "roles": ["king"]}`), []string{"principals[0].token_sha256", "principals[0].id", "principals[0].roles[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf, err := ParseTokens([]byte(tt.data), "net")
			if err == nil {
				t.Fatalf("accepted: %d principals", len(tf.Principals()))
			}
			e := domain.AsError(err)
			if e == nil || e.Kind != domain.KindInvalid || e.Code != "invalid_tokens_file" {
				t.Fatalf("err = %#v, want KindInvalid invalid_tokens_file", err)
			}
			if tt.fields != nil {
				var got []string
				for _, f := range e.Fields {
					got = append(got, f.Field)
				}
				if diff := cmp.Diff(tt.fields, got); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
				if !strings.Contains(e.Message, tt.fields[0]) {
					t.Errorf("message %q does not name %s", e.Message, tt.fields[0])
				}
			}
			for _, secret := range []string{hash, strings.ToUpper(hash), hash2, "Anna de Vries", `"king"`} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q echoes a value from the file", err)
				}
			}
		})
	}
}

func TestParseTokensManyProblems(t *testing.T) {
	data := `{"principals": [` + strings.Repeat(`{},`, 99) + `{}]}`
	_, err := ParseTokens([]byte(data), "net")
	e := domain.AsError(err)
	if e == nil || e.Kind != domain.KindInvalid {
		t.Fatalf("err = %v", err)
	}
	if len(e.Fields) != maxFieldErrs || !strings.Contains(e.Message, "(and 299 more problems)") {
		t.Errorf("%d fields, message %q", len(e.Fields), e.Message)
	}
}

func TestLoadTokensFile(t *testing.T) {
	dir := t.TempDir()
	entries := []TokenEntry{
		NewTokenEntry("tok-anna", "anna", "Anna de Vries", "professional", "basisteam-beesd", "gemeente"),
		NewTokenEntry("tok-bert", "bert", "Bert", "admin", "", ""),
	}
	data, err := EncodeTokens(entries)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tf, err := LoadTokensFile(path, "net")
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Principal{
		{ID: "anna", Name: "Anna de Vries", Roles: []domain.Role{domain.RoleProfessional}, Teams: []string{"basisteam-beesd"}, Organisation: "gemeente", Network: "net", MFA: true},
		{ID: "bert", Name: "Bert", Roles: []domain.Role{domain.RoleAdmin}, Network: "net", MFA: true},
	}
	if diff := cmp.Diff(want, tf.Principals()); diff != "" {
		t.Errorf("principals (-want +got):\n%s", diff)
	}
	if p, err := tf.Authenticate(context.Background(), "tok-bert"); err != nil || p.ID != "bert" {
		t.Errorf("tok-bert: %v, %v", p.ID, err)
	}

	if data, err := EncodeTokens(nil); err != nil || string(data) != "{\n  \"principals\": []\n}" {
		t.Errorf("EncodeTokens(nil) = %s, %v", data, err)
	}

	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, MaxTokensFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing.json"), dir, big} {
		if _, err := LoadTokensFile(p, "net"); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%s: err %v, want KindInvalid", filepath.Base(p), err)
		}
	}
	if _, err := LoadTokensFile(filepath.Join(dir, "missing.json"), "net"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v does not wrap os.ErrNotExist", err)
	}
}

func FuzzParseTokens(f *testing.F) {
	valid := `{"principals": [{"token_sha256": "` + HashToken("t") + `", "id": "a", "name": "A", "roles": ["admin", "partner"],
	  "teams": ["t1", "t2"], "organisation": "o", "network": "n"}, {"token_sha256": "` + HashToken("u") + `", "id": "b", "roles": ["buurtsteun"]}]}`
	for _, seed := range []string{
		valid,
		``,
		`{}`,
		`{"principals": []}`,
		`null`,
		`{"principals": [{"id": 1}]}`,
		`{"principals": [{"token_sha256": 5, "id": true, "roles": {"admin": 1}}]}`,
		`{"principals": "all"}`,
		strings.Repeat("[", 10000),
		`{"principals": [` + strings.Repeat(`{"x": `, 5000) + `1` + strings.Repeat(`}`, 5000) + `]}`,
		`{"principals": [{"roles": [` + strings.Repeat(`[`, 5000) + `]}]}`,
		"{\"principals\": [{\"id\": \"\xff\xfe\"}]}",
		"\xef\xbb\xbf" + valid,
		`{"principals": [` + strings.Repeat(`{},`, 1000) + `{}]}`,
		`{"principals": [{"token_sha256": "` + HashToken("t") + `", "id": "a", "roles": [` + strings.Repeat(`"admin",`, 1000) + `"admin"]}]}`,
		`{"principals": []} trailing`,
		`{"principals": [{"token_sha256": "` + HashToken("t") + `", "id": "a\u0000", "roles": ["admin"]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := ParseTokens(data, "net")
		if err != nil {
			var e *domain.Error
			if !errors.As(err, &e) || e.Kind != domain.KindInvalid {
				t.Fatalf("error %v is not a KindInvalid *domain.Error", err)
			}
			return
		}
		teams := map[string]bool{}
		for _, p := range tf.Principals() {
			if p.ID == "" || len(p.Roles) == 0 || p.Network == "" || !p.MFA {
				t.Fatalf("accepted an invalid principal %#v", p)
			}
			for _, r := range p.Roles {
				if !r.Valid() {
					t.Fatalf("accepted role %q", r)
				}
			}
			for _, team := range p.Teams {
				teams[team] = true
			}
		}
		if len(tf.Teams()) != len(teams) {
			t.Fatalf("Teams() has %d teams, principals %d", len(tf.Teams()), len(teams))
		}
	})
}
