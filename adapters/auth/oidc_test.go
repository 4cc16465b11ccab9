package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// testNow is the clock of the OIDC tests, far from the real time so that a
// check against the wall clock would show.
var testNow = time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)

const testAudience = "buurtsignaal"

// provider is an in-test OpenID provider over TLS: a discovery document and
// a JWKS, with keys generated for the test.
type provider struct {
	srv    *httptest.Server
	rsaKey *rsa.PrivateKey
	ecKey  *ecdsa.PrivateKey

	mu        sync.Mutex
	keys      []jose.JSONWebKey // the published public keys
	discovery map[string]any    // the discovery document; nil: the default
	jwksDown  bool              // the JWKS answers 500
	jwksBlock chan struct{}     // when set, JWKS requests wait for it to close

	discoveryHits, jwksHits atomic.Int32
}

func newProvider(t *testing.T) *provider {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{rsaKey: rk, ecKey: ek, keys: []jose.JSONWebKey{
		{Key: &rk.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		{Key: &ek.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		p.discoveryHits.Add(1)
		p.mu.Lock()
		doc := p.discovery
		p.mu.Unlock()
		if doc == nil {
			doc = map[string]any{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks",
				"authorization_endpoint": p.srv.URL + "/auth", "token_endpoint": p.srv.URL + "/token",
				"id_token_signing_alg_values_supported": []string{"RS256", "ES256"}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		p.mu.Lock()
		down, block, keys := p.jwksDown, p.jwksBlock, jose.JSONWebKeySet{Keys: p.keys}
		p.mu.Unlock()
		if block != nil {
			<-block
		}
		if down {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(keys)
	})
	p.srv = httptest.NewUnstartedServer(mux)
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case fails handshakes
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) set(f func(p *provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// config is an OIDC configuration against p with the test clock.
func (p *provider) config() OIDCConfig {
	return OIDCConfig{Issuer: p.srv.URL, Audience: testAudience, DefaultNetwork: "net", HTTPClient: p.srv.Client(),
		Now: func() time.Time { return testNow }}
}

// claims are those of a valid token for anna, changed by edit.
func (p *provider) claims(edit func(c map[string]any)) map[string]any {
	c := map[string]any{
		"iss": p.srv.URL, "aud": testAudience, "sub": "anna",
		"iat": testNow.Add(-time.Minute).Unix(), "exp": testNow.Add(time.Hour).Unix(),
		"name": "Anna de Vries", "roles": []string{"professional", "unknown", "professional"},
		"teams": []string{"team-a", "", "team-b", "team-a"}, "organisation": "gemeente", "amr": []string{"pwd", "otp"},
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// sign signs claims as a compact JWT; kid "" leaves the header without one.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// checkAuth compares what Authenticate returned with a wanted principal, or
// with a wanted kind and code; an error must not contain the token, any of
// its parts, or the display name.
func checkAuth(t *testing.T, token string, got domain.Principal, err error, want *domain.Principal, kind domain.Kind, code string) {
	t.Helper()
	if want != nil {
		if err != nil {
			t.Fatalf("err = %v, want a principal", err)
		}
		if diff := cmp.Diff(*want, got); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
		return
	}
	e := domain.AsError(err)
	if e == nil || e.Kind != kind || e.Code != code {
		t.Fatalf("err = %v (%#v), want %s %s", err, e, kind, code)
	}
	if !cmp.Equal(domain.Principal{}, got) {
		t.Errorf("a principal with an error: %v", got)
	}
	for _, part := range append(strings.Split(token, "."), token, "Anna de Vries") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			t.Fatalf("error %q echoes the token", err)
		}
	}
}

func TestOIDC(t *testing.T) {
	p := newProvider(t)
	o, err := NewOIDC(context.Background(), p.config())
	if err != nil {
		t.Fatal(err)
	}
	rs := func(edit func(map[string]any)) string { return sign(t, jose.RS256, p.rsaKey, "rsa-1", p.claims(edit)) }
	valid := rs(nil)

	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&p.rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64(p.claims(func(c map[string]any) { c["roles"] = []string{"admin"} })) + "." + parts[2]
	otherSig := strings.Split(rs(func(c map[string]any) { c["sub"] = "bert" }), ".")[2]
	none := b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(p.claims(nil)) + "."
	noneKid := b64(map[string]any{"alg": "none", "typ": "JWT", "kid": "rsa-1"}) + "." + b64(p.claims(nil)) + "."

	anna := domain.Principal{ID: "anna", Name: "Anna de Vries", Roles: []domain.Role{domain.RoleProfessional},
		Teams: []string{"team-a", "team-b"}, Organisation: "gemeente", Network: "net", MFA: true}
	with := func(edit func(p *domain.Principal)) *domain.Principal {
		q := anna
		edit(&q)
		return &q
	}

	tests := []struct {
		name  string
		token string
		want  *domain.Principal // nil: an error of kind and code
		kind  domain.Kind
		code  string
	}{
		{name: "valid RS256", token: valid, want: &anna},
		{name: "valid ES256", token: sign(t, jose.ES256, p.ecKey, "ec-1", p.claims(nil)), want: &anna},
		{name: "valid without kid", token: sign(t, jose.RS256, p.rsaKey, "", p.claims(nil)), want: &anna},
		{name: "audience among several", token: rs(func(c map[string]any) { c["aud"] = []string{"other", testAudience} }), want: &anna},
		{name: "claims as single strings", token: rs(func(c map[string]any) {
			c["roles"], c["teams"], c["amr"], c["network"] = "coordinator", "team-c", "mfa", "tiel"
		}), want: with(func(p *domain.Principal) {
			p.Roles, p.Teams, p.Network = []domain.Role{domain.RoleCoordinator}, []string{"team-c"}, "tiel"
		})},
		{name: "network claim", token: rs(func(c map[string]any) { c["network"] = []string{"tiel", "culemborg"} }),
			want: with(func(p *domain.Principal) { p.Network = "tiel" })},
		{name: "several known roles", token: rs(func(c map[string]any) { c["roles"] = []string{"privacy_officer", "king", "admin"} }),
			want: with(func(p *domain.Principal) { p.Roles = []domain.Role{domain.RolePrivacyOfficer, domain.RoleAdmin} })},
		{name: "no known role is still a principal", token: rs(func(c map[string]any) { c["roles"] = []string{"king", "Admin"} }),
			want: with(func(p *domain.Principal) { p.Roles = nil })},
		{name: "claims missing or of other types", token: rs(func(c map[string]any) {
			delete(c, "roles")
			c["teams"], c["name"], c["organisation"], c["amr"] = 7, map[string]any{"x": 1}, []any{1, true}, nil
		}), want: &domain.Principal{ID: "anna", Network: "net"}},
		{name: "password only is not MFA", token: rs(func(c map[string]any) { c["amr"] = []string{"pwd"} }),
			want: with(func(p *domain.Principal) { p.MFA = false })},
		{name: "nbf within the clock skew", token: rs(func(c map[string]any) { c["nbf"] = testNow.Add(2 * time.Minute).Unix() }), want: &anna},

		{name: "expired", token: rs(func(c map[string]any) { c["exp"] = testNow.Add(-time.Second).Unix() }),
			kind: domain.KindUnauthenticated, code: "token_expired"},
		{name: "expired, ES256", token: sign(t, jose.ES256, p.ecKey, "ec-1", p.claims(func(c map[string]any) { c["exp"] = testNow.Add(-time.Hour).Unix() })),
			kind: domain.KindUnauthenticated, code: "token_expired"},
		{name: "no exp", token: rs(func(c map[string]any) { delete(c, "exp") }), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "not yet valid", token: rs(func(c map[string]any) { c["nbf"] = testNow.Add(10 * time.Minute).Unix() }),
			kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "wrong audience", token: rs(func(c map[string]any) { c["aud"] = "other" }), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "no audience", token: rs(func(c map[string]any) { delete(c, "aud") }), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "wrong issuer", token: rs(func(c map[string]any) { c["iss"] = "https://evil.invalid" }), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "issuer with a trailing slash", token: rs(func(c map[string]any) { c["iss"] = p.srv.URL + "/" }), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "no sub", token: rs(func(c map[string]any) { delete(c, "sub") }), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "unknown RSA key under a known kid", token: sign(t, jose.RS256, otherRSA, "rsa-1", p.claims(nil)), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "unknown EC key under a known kid", token: sign(t, jose.ES256, otherEC, "ec-1", p.claims(nil)), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "unknown key and kid", token: sign(t, jose.RS256, otherRSA, "rsa-9", p.claims(nil)), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "unknown key without kid", token: sign(t, jose.ES256, otherEC, "", p.claims(nil)), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "alg none", token: none, kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "alg none with a known kid", token: noneKid, kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "HS256 keyed with the public key", token: sign(t, jose.HS256, pubDER, "rsa-1", p.claims(nil)), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "RS384, not a supported alg", token: sign(t, jose.RS384, p.rsaKey, "rsa-1", p.claims(nil)), kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "tampered payload", token: tampered, kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "signature of another token", token: parts[0] + "." + parts[1] + "." + otherSig, kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "no signature", token: parts[0] + "." + parts[1] + ".", kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "JWS JSON serialization", token: `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`,
			kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "garbage", token: "not-a-jwt-at-all", kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "garbage in three parts", token: "abcdefgh.ijklmnop.qrstuvwx", kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "empty", token: "", kind: domain.KindUnauthenticated, code: "invalid_token"},
		{name: "too long", token: valid + strings.Repeat("A", MaxJWTSize), kind: domain.KindUnauthenticated, code: "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := o.Authenticate(context.Background(), tt.token)
			checkAuth(t, tt.token, got, err, tt.want, tt.kind, tt.code)
			if err != nil {
				for _, sentinel := range []error{ErrInvalidToken, ErrTokenExpired} {
					if errors.Is(err, sentinel) != (domain.AsError(err).Code == sentinel.(*domain.Error).Code) {
						t.Errorf("errors.Is(err, %v) disagrees with the code", sentinel)
					}
				}
			}
		})
	}
	if n := p.discoveryHits.Load(); n != 1 {
		t.Errorf("%d discovery requests, want 1", n)
	}
}

// TestOIDCClaimNames maps claims under configured names, including
// namespaced ones.
func TestOIDCClaimNames(t *testing.T) {
	p := newProvider(t)
	cfg := p.config()
	cfg.RolesClaim, cfg.TeamsClaim, cfg.OrganisationClaim = "groups", "https://buurtsignaal.example/teams", "org"
	cfg.NameClaim, cfg.NetworkClaim, cfg.DefaultNetwork = "preferred_username", "tenant", ""
	o, err := NewOIDC(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.ES256, p.ecKey, "ec-1", p.claims(func(c map[string]any) {
		c["groups"], c["https://buurtsignaal.example/teams"], c["org"] = []string{"partner"}, "wijkteam", "stichting"
		c["preferred_username"], c["amr"] = "anna.dv", []string{"swk", "pin"}
	}))
	got, err := o.Authenticate(context.Background(), tok)
	want := domain.Principal{ID: "anna", Name: "anna.dv", Roles: []domain.Role{domain.RolePartner}, Teams: []string{"wijkteam"},
		Organisation: "stichting", Network: domain.DefaultNetwork, MFA: true}
	checkAuth(t, tok, got, err, &want, 0, "")
}

// TestOIDCJWKSURL skips discovery: the issuer need not answer at all.
func TestOIDCJWKSURL(t *testing.T) {
	p := newProvider(t)
	const issuer = "https://login.buurtsignaal.invalid/realms/west-betuwe"
	cfg := p.config()
	cfg.Issuer, cfg.JWKSURL = issuer, p.srv.URL+"/jwks"
	o, err := NewOIDC(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"issued by the configured issuer", sign(t, jose.RS256, p.rsaKey, "rsa-1", p.claims(func(c map[string]any) { c["iss"] = issuer })), true},
		{"issued by the JWKS host", sign(t, jose.RS256, p.rsaKey, "rsa-1", p.claims(nil)), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := o.Authenticate(context.Background(), tt.token)
			if tt.ok {
				if err != nil || got.ID != "anna" {
					t.Fatalf("got %v, %v", got, err)
				}
			} else {
				checkAuth(t, tt.token, got, err, nil, domain.KindUnauthenticated, "invalid_token")
			}
		})
	}
	if n := p.discoveryHits.Load(); n != 0 {
		t.Errorf("%d discovery requests with a JWKS URL", n)
	}
}

// authenticateSoon retries until o accepts tok. A key set refetches at most
// once at a time and a call that comes right after a fetch may still get
// that fetch's result, so a change at the provider shows a moment later.
func authenticateSoon(t *testing.T, o *OIDC, tok string) domain.Principal {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := o.Authenticate(context.Background(), tok)
		if err == nil {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOIDCKeyRotation: a token under a kid not seen before makes the key
// set refetch, so a new provider key works without a restart.
func TestOIDCKeyRotation(t *testing.T) {
	p := newProvider(t)
	o, err := NewOIDC(context.Background(), p.config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := o.Authenticate(ctx, sign(t, jose.RS256, p.rsaKey, "rsa-1", p.claims(nil))); err != nil {
		t.Fatal(err)
	}
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.ES256, newKey, "ec-2", p.claims(nil))
	got, err := o.Authenticate(ctx, tok)
	checkAuth(t, tok, got, err, nil, domain.KindUnauthenticated, "invalid_token")

	p.set(func(p *provider) {
		p.keys = append(p.keys, jose.JSONWebKey{Key: &newKey.PublicKey, KeyID: "ec-2", Algorithm: "ES256", Use: "sig"})
	})
	if got := authenticateSoon(t, o, tok); got.ID != "anna" {
		t.Fatalf("after rotation: %v", got)
	}
	if n := p.jwksHits.Load(); n < 2 {
		t.Errorf("%d JWKS requests, want at least 2 (first use, after rotation)", n)
	}
}

// TestOIDCKeysUnavailable: when the keys cannot be fetched the answer is
// KindUnavailable (the token may be good), not a 401; a token that fails
// before the keys matter is still a 401.
func TestOIDCKeysUnavailable(t *testing.T) {
	p := newProvider(t)
	o, err := NewOIDC(context.Background(), p.config())
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.RS256, p.rsaKey, "rsa-1", p.claims(nil))

	p.set(func(p *provider) { p.jwksDown = true })
	got, err := o.Authenticate(context.Background(), tok)
	checkAuth(t, tok, got, err, nil, domain.KindUnavailable, "oidc_keys_unavailable")
	for _, bad := range []string{"garbage", b64(map[string]any{"alg": "none"}) + "." + b64(p.claims(nil)) + "."} {
		got, err := o.Authenticate(context.Background(), bad)
		checkAuth(t, bad, got, err, nil, domain.KindUnauthenticated, "invalid_token")
	}
	// Once the provider answers again, the same token is accepted.
	p.set(func(p *provider) { p.jwksDown = false })
	if got := authenticateSoon(t, o, tok); got.ID != "anna" {
		t.Fatalf("after recovery: %v", got)
	}
}

// TestOIDCKeysHang: a JWKS that does not answer holds a caller only until
// its context ends.
func TestOIDCKeysHang(t *testing.T) {
	p := newProvider(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the server closes
	p.set(func(p *provider) { p.jwksBlock = release })
	o, err := NewOIDC(context.Background(), p.config())
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.RS256, p.rsaKey, "rsa-1", p.claims(nil))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got, err := o.Authenticate(ctx, tok)
	checkAuth(t, tok, got, err, nil, domain.KindUnavailable, "oidc_keys_unavailable")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v does not wrap the deadline", err)
	}
}

func TestNewOIDCConfig(t *testing.T) {
	p := newProvider(t)
	closed := httptest.NewTLSServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name string
		edit func(c *OIDCConfig, p *provider)
		kind domain.Kind
		code string
	}{
		{"no issuer", func(c *OIDCConfig, _ *provider) { c.Issuer = "" }, domain.KindInvalid, "oidc_config"},
		{"relative issuer", func(c *OIDCConfig, _ *provider) { c.Issuer = "login.example" }, domain.KindInvalid, "oidc_config"},
		{"issuer of another scheme", func(c *OIDCConfig, _ *provider) { c.Issuer = "ftp://login.example" }, domain.KindInvalid, "oidc_config"},
		{"no audience", func(c *OIDCConfig, _ *provider) { c.Audience = "" }, domain.KindInvalid, "oidc_config"},
		{"relative JWKS URL", func(c *OIDCConfig, _ *provider) { c.JWKSURL = "/jwks" }, domain.KindInvalid, "oidc_config"},
		{"alg none", func(c *OIDCConfig, _ *provider) { c.SupportedSigningAlgs = []string{"RS256", "none"} }, domain.KindInvalid, "oidc_config"},
		{"alg HS256", func(c *OIDCConfig, _ *provider) { c.SupportedSigningAlgs = []string{"HS256"} }, domain.KindInvalid, "oidc_config"},
		{"issuer not answering", func(c *OIDCConfig, _ *provider) { c.Issuer = closed.URL }, domain.KindUnavailable, "oidc_discovery"},
		{"issuer without discovery", func(c *OIDCConfig, p *provider) { c.Issuer = p.srv.URL + "/realms/other" }, domain.KindUnavailable, "oidc_discovery"},
		{"untrusted certificate", func(c *OIDCConfig, _ *provider) { c.HTTPClient = nil }, domain.KindUnavailable, "oidc_discovery"},
		{"discovery names another issuer", func(_ *OIDCConfig, p *provider) {
			p.set(func(p *provider) {
				p.discovery = map[string]any{"issuer": "https://evil.invalid", "jwks_uri": p.srv.URL + "/jwks"}
			})
		}, domain.KindUnavailable, "oidc_discovery"},
		{"discovery without jwks_uri", func(_ *OIDCConfig, p *provider) {
			p.set(func(p *provider) { p.discovery = map[string]any{"issuer": p.srv.URL} })
		}, domain.KindInvalid, "oidc_config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { p.set(func(p *provider) { p.discovery = nil }) })
			cfg := p.config()
			tt.edit(&cfg, p)
			o, err := NewOIDC(context.Background(), cfg)
			e := domain.AsError(err)
			if e == nil || e.Kind != tt.kind || e.Code != tt.code {
				t.Fatalf("NewOIDC = %v, %v; want %s %s", o, err, tt.kind, tt.code)
			}
		})
	}

	// Defaults: RS256 and ES256 only, and a client with a timeout.
	o, err := NewOIDC(context.Background(), p.config())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"RS256", "ES256"}, o.cfg.SupportedSigningAlgs); diff != "" {
		t.Errorf("default algs (-want +got):\n%s", diff)
	}
	cfg := p.config()
	cfg.HTTPClient, cfg.JWKSURL = nil, p.srv.URL+"/jwks"
	if o, err = NewOIDC(context.Background(), cfg); err != nil || o.cfg.HTTPClient.Timeout != DefaultHTTPTimeout {
		t.Errorf("default client: %v", err)
	}
}

func TestMFARule(t *testing.T) {
	for _, tt := range []struct {
		amr  []string
		want bool
	}{
		{nil, false},
		{[]string{"pwd"}, false},
		{[]string{"pwd", "kba"}, false},
		{[]string{"pwd", "pwd"}, false},
		{[]string{"pin"}, false},
		{[]string{"swk"}, false},
		{[]string{"swk", "swk"}, false},
		{[]string{"MFA"}, false},
		{[]string{"mfa"}, true},
		{[]string{"otp"}, true},
		{[]string{"pwd", "otp"}, true},
		{[]string{"hwk"}, true},
		{[]string{"sms"}, true},
		{[]string{"fpt"}, true},
		{[]string{"face"}, true},
		{[]string{"swk", "pin"}, true},
		{[]string{"pwd", "swk"}, true},
	} {
		if got := mfa(tt.amr); got != tt.want {
			t.Errorf("mfa(%q) = %t, want %t", tt.amr, got, tt.want)
		}
	}
}
