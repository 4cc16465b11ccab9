package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// authFunc adapts a function to Authenticator.
type authFunc func(ctx context.Context, token string) (domain.Principal, error)

func (f authFunc) Authenticate(ctx context.Context, token string) (domain.Principal, error) {
	return f(ctx, token)
}

func TestChain(t *testing.T) {
	ctx := context.Background()
	accept := func(id string) Authenticator {
		return authFunc(func(context.Context, string) (domain.Principal, error) { return domain.Principal{ID: id}, nil })
	}
	fail := func(err error) Authenticator {
		return authFunc(func(context.Context, string) (domain.Principal, error) { return domain.Principal{}, err })
	}
	unavailable := &domain.Error{Kind: domain.KindUnavailable, Code: "oidc_keys_unavailable", Message: "down"}
	internal := errors.New("boom")
	tests := []struct {
		name   string
		auths  []Authenticator
		wantID string
		want   error // with errors.Is, when wantID is ""
	}{
		{"empty", nil, "", ErrInvalidToken},
		{"only nils", []Authenticator{nil, nil}, "", ErrInvalidToken},
		{"first accepts", []Authenticator{accept("a"), accept("b")}, "a", nil},
		{"second accepts", []Authenticator{fail(ErrInvalidToken), nil, accept("b")}, "b", nil},
		{"none accepts", []Authenticator{fail(ErrInvalidToken), fail(ErrInvalidToken)}, "", ErrInvalidToken},
		{"expired beats invalid", []Authenticator{fail(ErrInvalidToken), fail(ErrTokenExpired)}, "", ErrTokenExpired},
		{"expired first", []Authenticator{fail(ErrTokenExpired), fail(ErrInvalidToken)}, "", ErrTokenExpired},
		{"unavailable beats invalid", []Authenticator{fail(ErrInvalidToken), fail(unavailable)}, "", unavailable},
		{"unavailable, then another accepts", []Authenticator{fail(unavailable), accept("b")}, "b", nil},
		{"the first other error", []Authenticator{fail(internal), fail(unavailable), fail(ErrTokenExpired)}, "", internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Chain(tt.auths...).Authenticate(ctx, "tok")
			if tt.wantID != "" {
				if err != nil || got.ID != tt.wantID {
					t.Fatalf("got %q, %v; want %q", got.ID, err, tt.wantID)
				}
				return
			}
			if !errors.Is(err, tt.want) || got.ID != "" {
				t.Fatalf("got %q, %v; want %v", got.ID, err, tt.want)
			}
		})
	}
}

// TestChainTokensFileThenOIDC: the serve configuration, for real.
func TestChainTokensFileThenOIDC(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t)
	o, err := NewOIDC(ctx, p.config())
	if err != nil {
		t.Fatal(err)
	}
	tf, err := ParseTokens([]byte(`{"principals": [{"token_sha256": "`+HashToken("file-token")+`", "id": "carla", "roles": ["buurtsteun"]}]}`), "net")
	if err != nil {
		t.Fatal(err)
	}
	c := Chain(tf, o)
	carla := domain.Principal{ID: "carla", Roles: []domain.Role{domain.RoleBuurtsteun}, Network: "net", MFA: true}
	if got, err := c.Authenticate(ctx, "file-token"); err != nil || !cmp.Equal(carla, got) {
		t.Errorf("file token: %v, %v", got, err)
	}
	jwt := sign(t, jose.RS256, p.rsaKey, "rsa-1", p.claims(nil))
	if got, err := c.Authenticate(ctx, jwt); err != nil || got.ID != "anna" || !got.MFA {
		t.Errorf("JWT: %v, %v", got, err)
	}
	expired := sign(t, jose.RS256, p.rsaKey, "rsa-1", p.claims(func(c map[string]any) { c["exp"] = testNow.Add(-time.Hour).Unix() }))
	for _, tt := range []struct {
		token string
		want  error
	}{{"nothing", ErrInvalidToken}, {"", ErrInvalidToken}, {expired, ErrTokenExpired}} {
		got, err := c.Authenticate(ctx, tt.token)
		checkAuth(t, tt.token, got, err, nil, domain.KindUnauthenticated, tt.want.(*domain.Error).Code)
	}
	p.set(func(p *provider) { p.jwksDown = true })
	if got, err := c.Authenticate(ctx, "file-token"); err != nil || got.ID != "carla" {
		t.Errorf("file token with the provider down: %v, %v", got, err)
	}
}

func TestFromRequest(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbm5hIn0.c2ln-_"
	tests := []struct {
		name    string
		headers []string // Authorization values
		want    string   // "": not ok
	}{
		{"bearer", []string{"Bearer abc123"}, "abc123"},
		{"lower-case scheme", []string{"bearer abc123"}, "abc123"},
		{"upper-case scheme", []string{"BEARER abc123"}, "abc123"},
		{"a JWT", []string{"Bearer " + jwt}, jwt},
		{"base64 with padding", []string{"Bearer YWJj+/~=="}, "YWJj+/~=="},
		{"spaces around", []string{"  Bearer   abc123  "}, "abc123"},
		{"a tab after the token", []string{"Bearer abc123\t"}, "abc123"},
		{"no header", nil, ""},
		{"empty header", []string{""}, ""},
		{"scheme only", []string{"Bearer"}, ""},
		{"scheme and space", []string{"Bearer "}, ""},
		{"scheme and spaces", []string{"Bearer    "}, ""},
		{"another scheme", []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, ""},
		{"a scheme that starts alike", []string{"Bearerx abc"}, ""},
		{"no scheme", []string{"abc123"}, ""},
		{"tab instead of a space", []string{"Bearer\tabc123"}, ""},
		{"two tokens", []string{"Bearer abc def"}, ""},
		{"only padding", []string{"Bearer =="}, ""},
		{"padding inside", []string{"Bearer ab=c"}, ""},
		{"a comma", []string{"Bearer abc,def"}, ""},
		{"non-ASCII", []string{"Bearer abcé"}, ""},
		{"two headers", []string{"Bearer abc", "Bearer def"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/signals", nil)
			for _, v := range tt.headers {
				r.Header.Add("Authorization", v)
			}
			got, ok := FromRequest(r)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("FromRequest = %q, %t; want %q", got, ok, tt.want)
			}
		})
	}
}
