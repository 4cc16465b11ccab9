package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// oidcProvider is an in-test OpenID provider on loopback: discovery, keys,
// an authorization endpoint that signs the configured user in at once, and
// a token endpoint that checks the code, PKCE verifier and redirect.
type oidcProvider struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey
	claims map[string]any

	mu    sync.Mutex
	codes map[string]map[string]string // code -> challenge, nonce, redirect_uri, client_id
}

func newOIDCProvider(t *testing.T, claims map[string]any) *oidcProvider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &oidcProvider{t: t, key: key, claims: claims, codes: map[string]map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.srv.URL, "authorization_endpoint": p.srv.URL + "/authorize", "token_endpoint": p.srv.URL + "/token",
			"jwks_uri": p.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := rand.Text()
		p.mu.Lock()
		p.codes[code] = map[string]string{"challenge": q.Get("code_challenge"), "nonce": q.Get("nonce"), "redirect_uri": q.Get("redirect_uri"), "client_id": q.Get("client_id")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		p.mu.Lock()
		c := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if c == nil || base64.RawURLEncoding.EncodeToString(sum[:]) != c["challenge"] || r.PostForm.Get("redirect_uri") != c["redirect_uri"] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		claims := map[string]any{"iss": p.srv.URL, "aud": c["client_id"], "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "nonce": c["nonce"]}
		for k, v := range p.claims {
			claims[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "opaque", "token_type": "Bearer", "expires_in": 3600, "id_token": p.sign(claims)})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *oidcProvider) sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		p.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// TestConsoleOIDCSignIn signs a professional in through the authorization
// code flow with PKCE against an in-test provider; the ID token is the
// session's bearer token, so the API applies its roles and audits the reads.
func TestConsoleOIDCSignIn(t *testing.T) {
	p := newOIDCProvider(t, map[string]any{"sub": "oidc-anna", "roles": []string{"professional"}, "teams": []string{"team-a"}, "amr": []string{"pwd", "otp"}})
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_OIDC_ISSUER": p.srv.URL, "BUURTSIGNAAL_OIDC_AUDIENCE": "buurtsignaal-console"})
	id := s.must(201, s.do("POST", "/v1/signals", "carla", raiseBody("Oidc Bewoner")), "raise").str("id")
	s.must(200, s.do("POST", "/v1/signals/"+id+"/handover", "carla", map[string]any{"team_id": "team-a"}), "handover")

	c := newConsoleClient(t, s)
	c.must(200, c.get("/console/login"), "sign-in page", "/console/oidc/start")
	resp := c.get("/console/oidc/start")
	c.must(200, resp, "the flow ends on the caseload", "oidc-anna")
	if resp.Request.URL.Path != "/console/caseload" {
		t.Errorf("the flow ends at %s", resp.Request.URL)
	}
	c.must(200, c.get("/console/cases/"+id), "case page with the ID token", "Oidc Bewoner")
	// A callback with an unknown state is refused.
	c.must(401, c.get("/console/oidc/callback?code=x&state=forged"), "forged state")
}

// TestConsoleSignInWhateverTheClocks: the session cookie carries Max-Age
// (seconds, counted on the client's own clock) and never an absolute
// Expires, so signing in works against a server whose clock is a year
// behind or ahead of the client's, with the token form and with OIDC (whose
// provider and client here run on the real clock).
func TestConsoleSignInWhateverTheClocks(t *testing.T) {
	const year = 365 * 24 * time.Hour
	for _, tc := range []struct {
		name string
		skew time.Duration
	}{
		{"server a year behind", -year},
		{"clocks agree", 0},
		{"server a year ahead", year},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newOIDCProvider(t, map[string]any{"sub": "oidc-anna", "roles": []string{"professional"}, "teams": []string{"team-a"}})
			s := startServerWith(t, "", map[string]string{"BUURTSIGNAAL_OIDC_ISSUER": p.srv.URL, "BUURTSIGNAAL_OIDC_AUDIENCE": "buurtsignaal-console"},
				func() time.Time { return time.Now().Add(tc.skew) })

			// The cookie as sent: Max-Age, no Expires.
			c := newConsoleClient(t, s)
			c.get("/console/login")
			noRedirect := &http.Client{Jar: c.hc.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, _ := http.NewRequest(http.MethodPost, s.base+"/console/login", strings.NewReader(url.Values{"token": {"tok-anna"}, "csrf": {c.csrf}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var set string
			for _, v := range resp.Header.Values("Set-Cookie") {
				if strings.HasPrefix(v, "bs_session=") {
					set = v
				}
			}
			if !strings.Contains(set, "Max-Age=28800") || strings.Contains(set, "Expires=") {
				t.Errorf("session cookie %q: want Max-Age of the session's 8 hours and no Expires", set)
			}
			c.must(200, c.get("/console/caseload"), "caseload after the token form", `class="logout"`)

			o := newConsoleClient(t, s)
			resp = o.get("/console/oidc/start")
			o.must(200, resp, "OIDC sign-in", "oidc-anna")
			if resp.Request.URL.Path != "/console/caseload" {
				t.Errorf("the OIDC flow ends at %s, want the caseload", resp.Request.URL)
			}
			o.must(200, o.get("/console/caseload"), "caseload after OIDC", `class="logout"`)
		})
	}
}

// TestConsoleSessionsLiveInTheirCookies: a session is sealed into its
// cookie, so it survives a restart of the server; it ends after the idle
// time without a request (each request starts the idle time again), at its
// absolute limit whatever the activity, and when signed out, after which a
// copy of its cookie is refused too; a cookie altered by a single byte is
// refused.
func TestConsoleSessionsLiveInTheirCookies(t *testing.T) {
	start := time.Now()
	c := &clock{t: start}
	dir := t.TempDir()
	s := startServerWith(t, dir, map[string]string{"BUURTSIGNAAL_SESSION_IDLE_TIMEOUT": "15m", "BUURTSIGNAAL_SESSION_LIFETIME": "1h"}, c.now)
	cl := newConsoleClient(t, s)
	cl.signIn("tok-anna")
	signedIn := func(what string, want bool) {
		t.Helper()
		resp := cl.get("/console/caseload")
		if got := resp.StatusCode == 200 && resp.Request.URL.Path == "/console/caseload"; got != want {
			t.Fatalf("%s: signed in = %v, want %v (at %s)", what, got, want, resp.Request.URL.Path)
		}
	}
	signedIn("after sign-in", true)

	// A restart signs no one out.
	s.stop()
	s = startServerWith(t, dir, map[string]string{"BUURTSIGNAAL_SESSION_IDLE_TIMEOUT": "15m", "BUURTSIGNAAL_SESSION_LIFETIME": "1h"}, c.now)
	cl.s = s
	signedIn("after a restart", true)

	// Activity keeps it alive past the idle time, but not past its limit.
	for i := 1; i <= 4; i++ {
		c.set(start.Add(time.Duration(i) * 14 * time.Minute))
		signedIn(fmt.Sprintf("after %d x 14 minutes with a request each", i), i*14 < 60)
	}

	// Idle for 15 minutes: signed out.
	c.set(start)
	cl.signIn("tok-anna")
	c.set(start.Add(15 * time.Minute))
	signedIn("after 15 idle minutes", false)

	// Signed out: a copy of the cookie is refused as well.
	c.set(start)
	cl.signIn("tok-anna")
	u, _ := url.Parse(s.base + "/console/")
	var copied *http.Cookie
	for _, ck := range cl.hc.Jar.Cookies(u) {
		if ck.Name == "bs_session" {
			copied = ck
		}
	}
	if copied == nil {
		t.Fatal("no session cookie")
	}
	replay := func(value string) bool {
		req, _ := http.NewRequest(http.MethodGet, s.base+"/console/caseload", nil)
		req.AddCookie(&http.Cookie{Name: "bs_session", Value: value})
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if !replay(copied.Value) {
		t.Fatal("the copied cookie does not work before sign-out")
	}
	tampered := []byte(copied.Value)
	tampered[len(tampered)/2] ^= 1
	if replay(string(tampered)) {
		t.Error("a cookie with one byte changed is taken")
	}
	cl.must(200, cl.post("/console/logout", url.Values{}), "sign out", `id="token"`)
	deadline := time.Now().Add(5 * time.Second)
	for replay(copied.Value) {
		if time.Now().After(deadline) {
			t.Fatal("a copy of a signed-out session's cookie is still taken")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConsoleSignInGuards: an OIDC callback is taken only from the browser
// that started the sign-in (its state is sealed in that browser's cookie);
// sign-in bodies are bounded; an address that failed too often is refused
// even with a good token; a form whose Origin has another scheme is refused.
func TestConsoleSignInGuards(t *testing.T) {
	p := newOIDCProvider(t, map[string]any{"sub": "oidc-anna", "roles": []string{"professional"}, "teams": []string{"team-a"}})
	s := startServer(t, "", map[string]string{"BUURTSIGNAAL_OIDC_ISSUER": p.srv.URL, "BUURTSIGNAAL_OIDC_AUDIENCE": "buurtsignaal-console"})
	noFollow := func(jar http.CookieJar) *http.Client {
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	// A starts a sign-in; the provider sends it back with a code and state.
	jarA, _ := cookiejar.New(nil)
	resp, err := noFollow(jarA).Get(s.base + "/console/oidc/start")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("start: %v %v", resp, err)
	}
	resp, err = noFollow(nil).Get(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("provider: %v %v", resp, err)
	}
	callback := resp.Header.Get("Location")
	// B, another browser, cannot finish A's sign-in (login CSRF).
	jarB, _ := cookiejar.New(nil)
	if resp, err := noFollow(jarB).Get(callback); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("another browser finishing the sign-in: %v %v, want 401", resp.Status, err)
	}
	// A can.
	a := &consoleClient{t: t, s: s, hc: &http.Client{Jar: jarA, Timeout: 10 * time.Second}}
	a.must(200, a.get(strings.TrimPrefix(callback, s.base)), "the browser that started it", "oidc-anna")

	// A sign-in body over the limit is refused before it is read.
	big := strings.NewReader("token=" + strings.Repeat("x", 1<<20))
	req, _ := http.NewRequest(http.MethodPost, s.base+"/console/login", big)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 1 MiB sign-in body: %v %v, want 413", resp, err)
	}

	// A form from another scheme of the same host is refused.
	c := newConsoleClient(t, s)
	c.signIn("tok-anna")
	c.must(403, c.post("/console/logout", url.Values{}, "Origin", strings.Replace(s.base, "http://", "https://", 1)), "Origin with another scheme")

	// Ten failed sign-ins from one address: the eleventh is refused, even
	// with a good token.
	f := newConsoleClient(t, s)
	for i := 0; i < 10; i++ {
		f.get("/console/login")
		f.post("/console/login", url.Values{"token": {"wrong-" + fmt.Sprint(i)}})
	}
	f.get("/console/login")
	f.must(429, f.post("/console/login", url.Values{"token": {"tok-anna"}}), "after ten failures")
}
