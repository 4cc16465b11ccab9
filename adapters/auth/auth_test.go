package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func TestParseTokens(t *testing.T) {
	hash := HashToken("secret-anna")
	good := `{"principals": [{"token_sha256": "` + hash + `", "id": "anna", "name": "Anna de Vries",
	  "roles": ["professional"], "teams": ["basisteam-beesd"], "organisation": "gemeente"}]}`
	tf, err := ParseTokens([]byte(good), "net")
	if err != nil {
		t.Fatal(err)
	}
	p, err := tf.Authenticate(context.Background(), "secret-anna")
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Principal{ID: "anna", Name: "Anna de Vries", Roles: []domain.Role{domain.RoleProfessional},
		Teams: []string{"basisteam-beesd"}, Organisation: "gemeente", Network: "net", MFA: true}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	for _, tok := range []string{"", "secret-ann", "SECRET-ANNA"} {
		if _, err := tf.Authenticate(context.Background(), tok); domain.KindOf(err) != domain.KindUnauthenticated {
			t.Errorf("token %q: err %v, want unauthenticated", tok, err)
		}
	}
	if diff := cmp.Diff([]string{"basisteam-beesd"}, tf.Teams()); diff != "" {
		t.Errorf("teams (-want +got):\n%s", diff)
	}

	bad := map[string]string{
		"not json":        `{`,
		"unknown field":   `{"principals": [], "extra": 1}`,
		"short hash":      `{"principals": [{"token_sha256": "abc", "id": "a", "roles": ["admin"]}]}`,
		"no id":           `{"principals": [{"token_sha256": "` + hash + `", "roles": ["admin"]}]}`,
		"unknown role":    `{"principals": [{"token_sha256": "` + hash + `", "id": "a", "roles": ["king"]}]}`,
		"no role":         `{"principals": [{"token_sha256": "` + hash + `", "id": "a", "roles": []}]}`,
		"duplicate token": `{"principals": [{"token_sha256": "` + hash + `", "id": "a", "roles": ["admin"]}, {"token_sha256": "` + hash + `", "id": "b", "roles": ["admin"]}]}`,
		"duplicate id":    `{"principals": [{"token_sha256": "` + hash + `", "id": "a", "roles": ["admin"]}, {"token_sha256": "` + HashToken("x") + `", "id": "a", "roles": ["admin"]}]}`,
		"wrong type":      `{"principals": {"id": 1}}`,
		"trailing data":   `{"principals": []} {}`,
	}
	for name, data := range bad {
		if _, err := ParseTokens([]byte(data), "net"); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%s: err %v, want invalid", name, err)
		} else if strings.Contains(err.Error(), hash) {
			t.Errorf("%s: error echoes the token hash", name)
		}
	}
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(`{"principals": [{"token_sha256": "` + HashToken("t") + `", "id": "a", "roles": ["admin"]}]}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"principals": [{"id": 1}]}`))
	f.Add([]byte(strings.Repeat("[", 10000)))
	f.Add([]byte("{\"principals\": [{\"id\": \"\xff\xfe\"}]}"))
	f.Add([]byte(`{"principals": [` + strings.Repeat(`{},`, 1000) + `{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := ParseTokens(data, "net")
		if err != nil {
			if domain.KindOf(err) != domain.KindInvalid {
				t.Fatalf("error of kind %s", domain.KindOf(err))
			}
			return
		}
		for _, p := range tf.Principals() {
			if p.ID == "" || len(p.Roles) == 0 {
				t.Fatalf("accepted an invalid principal")
			}
		}
	})
}

// idp is an in-test OpenID provider: discovery and a JWKS over HTTP.
type idp struct {
	srv    *httptest.Server
	rsaKey *rsa.PrivateKey
	ecKey  *ecdsa.PrivateKey
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{rsaKey: rk, ecKey: ek}
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks",
			"authorization_endpoint": p.srv.URL + "/auth", "token_endpoint": p.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"}})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &rk.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
			{Key: &ek.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		}})
	})
	return p
}

func (p *idp) sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestOIDC(t *testing.T) {
	p := newIDP(t)
	now := time.Now()
	o, err := NewOIDC(context.Background(), OIDCConfig{Issuer: p.srv.URL, Audience: "buurtsignaal", DefaultNetwork: "net", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"iss": p.srv.URL, "aud": "buurtsignaal", "sub": "anna", "exp": now.Add(time.Hour).Unix(),
			"iat": now.Add(-time.Minute).Unix(), "name": "Anna", "roles": []string{"professional", "unknown"},
			"teams": []string{"team-a"}, "organisation": "gemeente", "amr": []string{"pwd", "otp"}}
		if edit != nil {
			edit(c)
		}
		return c
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	payload, _ := json.Marshal(claims(nil))
	none := header + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	valid := p.sign(t, jose.RS256, p.rsaKey, "rsa-1", claims(nil))
	parts := strings.Split(valid, ".")
	tamperedClaims, _ := json.Marshal(claims(func(c map[string]any) { c["roles"] = []string{"admin"} }))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedClaims) + "." + parts[2]

	want := domain.Principal{ID: "anna", Name: "Anna", Roles: []domain.Role{domain.RoleProfessional}, Teams: []string{"team-a"},
		Organisation: "gemeente", Network: "net", MFA: true}
	tests := []struct {
		name     string
		token    string
		want     *domain.Principal
		wantCode string
	}{
		{"valid RS256", valid, &want, ""},
		{"valid ES256", p.sign(t, jose.ES256, p.ecKey, "ec-1", claims(nil)), &want, ""},
		{"password only is not MFA", p.sign(t, jose.RS256, p.rsaKey, "rsa-1", claims(func(c map[string]any) { c["amr"] = []string{"pwd"} })),
			&domain.Principal{ID: "anna", Name: "Anna", Roles: []domain.Role{domain.RoleProfessional}, Teams: []string{"team-a"}, Organisation: "gemeente", Network: "net"}, ""},
		{"expired", p.sign(t, jose.RS256, p.rsaKey, "rsa-1", claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), nil, "token_expired"},
		{"wrong audience", p.sign(t, jose.RS256, p.rsaKey, "rsa-1", claims(func(c map[string]any) { c["aud"] = "other" })), nil, "invalid_token"},
		{"wrong issuer", p.sign(t, jose.RS256, p.rsaKey, "rsa-1", claims(func(c map[string]any) { c["iss"] = "https://evil.invalid" })), nil, "invalid_token"},
		{"unknown key", p.sign(t, jose.RS256, otherKey, "rsa-1", claims(nil)), nil, "invalid_token"},
		{"alg none", none, nil, "invalid_token"},
		{"tampered payload", tampered, nil, "invalid_token"},
		{"garbage", "not-a-jwt", nil, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := o.Authenticate(context.Background(), tt.token)
			if tt.want != nil {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(*tt.want, got); diff != "" {
					t.Errorf("principal (-want +got):\n%s", diff)
				}
				return
			}
			e := domain.AsError(err)
			if e == nil || e.Kind != domain.KindUnauthenticated || e.Code != tt.wantCode {
				t.Fatalf("err = %v, want unauthenticated %s", err, tt.wantCode)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Fatal("error echoes the token")
			}
		})
	}

	// A chain with the tokens file first, OIDC second.
	tf, err := ParseTokens([]byte(`{"principals": [{"token_sha256": "`+HashToken("file-token")+`", "id": "carla", "roles": ["buurtsteun"]}]}`), "net")
	if err != nil {
		t.Fatal(err)
	}
	c := Chain(tf, o)
	if p, err := c.Authenticate(context.Background(), "file-token"); err != nil || p.ID != "carla" {
		t.Errorf("chain, file token: %v %v", p.ID, err)
	}
	if p, err := c.Authenticate(context.Background(), valid); err != nil || p.ID != "anna" {
		t.Errorf("chain, JWT: %v %v", p.ID, err)
	}
	if _, err := c.Authenticate(context.Background(), "nothing"); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Errorf("chain, unknown: %v", err)
	}
}

func TestMFARule(t *testing.T) {
	for _, tt := range []struct {
		amr  []string
		want bool
	}{{nil, false}, {[]string{"pwd"}, false}, {[]string{"mfa"}, true}, {[]string{"pwd", "otp"}, true}, {[]string{"hwk"}, true}, {[]string{"pwd", "kba"}, true}, {[]string{"pwd", "pwd"}, false}} {
		if got := mfa(tt.amr); got != tt.want {
			t.Errorf("mfa(%v) = %t, want %t", tt.amr, got, tt.want)
		}
	}
}
