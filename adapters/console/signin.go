package console

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const loginCookie = "bs_login"

// loginForm offers the token form and, when configured, the OIDC sign-in.
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if l := r.URL.Query().Get("lang"); l == "nl" || l == "en" {
		http.SetCookie(w, &http.Cookie{Name: "bs_lang", Value: l, Path: "/console", HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 365 * 24 * 3600})
		r.AddCookie(&http.Cookie{Name: "bs_lang", Value: l})
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomID()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: "/console", HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 600})
	c.render(w, r, status, "login", nil, page{Title: "login", CSRF: token, Error: msg, Data: map[string]bool{"TokenForm": c.TokenForm, "OIDC": c.OIDC != nil}})
}

// login signs in with a token from the form (the embedded default). An
// address that tried too often, or failed too often, is refused (429).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	addr, now := c.ClientAddr(r), c.Now()
	if !c.signIns.allow(addr, now) {
		c.showLogin(w, r, http.StatusTooManyRequests, c.t(r, "too_many_sign_ins"))
		return
	}
	if err := r.ParseForm(); err != nil {
		c.showLogin(w, r, http.StatusRequestEntityTooLarge, c.t(r, "login_failed"))
		return
	}
	ck, err := r.Cookie(loginCookie)
	if !c.TokenForm || err != nil || !c.sameOrigin(r) || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		c.showLogin(w, r, http.StatusForbidden, c.t(r, "csrf"))
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if _, err := c.Auth.Authenticate(r.Context(), token); err != nil {
		c.signIns.failed(addr, now)
		c.showLogin(w, r, http.StatusUnauthorized, c.t(r, "login_failed"))
		return
	}
	c.startSession(w, r, token, 0)
}

// OIDCClient runs the authorization-code flow with PKCE against the
// identity provider the API trusts.
type OIDCClient struct {
	// PublicURL is the server's public address; the callback is
	// PublicURL + /console/oidc/callback (default: the console's PublicURL).
	PublicURL string
	provider  *oidc.Provider
	config    oauth2.Config
	verifier  *oidc.IDTokenVerifier
}

// pendingLogin is a sign-in between its start and the provider's callback.
// It travels sealed in the bs_oidc cookie of the browser that started it,
// so the callback must come back to that browser (no login CSRF) and may
// reach any replica.
type pendingLogin struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

const oidcCookie = "bs_oidc"

// NewOIDCClient discovers the issuer and returns a client for clientID.
func NewOIDCClient(ctx context.Context, issuer, clientID, clientSecret, publicURL string) (*OIDCClient, error) {
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("console: oidc discovery: %w", err)
	}
	return &OIDCClient{
		PublicURL: strings.TrimSuffix(publicURL, "/"),
		provider:  p,
		config:    oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile"}},
		verifier:  p.Verifier(&oidc.Config{ClientID: clientID}),
	}, nil
}

func (c *Console) redirectURL(r *http.Request) string {
	base := c.OIDC.PublicURL
	if base == "" {
		scheme, host := c.origin(r)
		base = scheme + "://" + host
	}
	return base + "/console/oidc/callback"
}

func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := c.OIDC
	if o == nil {
		http.NotFound(w, r)
		return
	}
	if !c.signIns.allow(c.ClientAddr(r), c.Now()) {
		c.showLogin(w, r, http.StatusTooManyRequests, c.t(r, "too_many_sign_ins"))
		return
	}
	p := pendingLogin{State: randomID(), Nonce: randomID(), Verifier: oauth2.GenerateVerifier(), Expires: c.Now().Add(10 * time.Minute).Unix()}
	plain, _ := json.Marshal(p)
	sealed, err := c.sealBytes(plain, oidcAD)
	if err != nil {
		c.showLogin(w, r, http.StatusInternalServerError, c.t(r, "login_failed"))
		return
	}
	// Lax, not Strict: the provider's redirect back is a cross-site navigation.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: sealed, Path: "/console/oidc", HttpOnly: true, Secure: c.secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: 600})
	cfg := o.config
	cfg.RedirectURL = c.redirectURL(r)
	http.Redirect(w, r, cfg.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)), http.StatusFound)
}

var (
	errOIDC = errors.New("console: oidc sign-in failed")
	oidcAD  = []byte("buurtsignaal oidc sign-in v1")
)

// oidcCallback finishes a sign-in: the state must be the one sealed in this
// browser's bs_oidc cookie, before its end.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := c.OIDC
	if o == nil {
		http.NotFound(w, r)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/console/oidc", HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode, MaxAge: -1})
	addr, now := c.ClientAddr(r), c.Now()
	q := r.URL.Query()
	var p pendingLogin
	ok := false
	if ck, err := r.Cookie(oidcCookie); err == nil {
		if plain, good := c.openBytes(ck.Value, oidcAD); good && json.Unmarshal(plain, &p) == nil {
			ok = p.State != "" && subtle.ConstantTimeCompare([]byte(p.State), []byte(q.Get("state"))) == 1
		}
	}
	if !ok || now.Unix() >= p.Expires || q.Get("error") != "" || q.Get("code") == "" {
		c.signIns.failed(addr, now)
		c.showLogin(w, r, http.StatusUnauthorized, c.t(r, "login_failed"))
		return
	}
	raw, lifetime, err := c.exchange(r, p, q.Get("code"))
	if err != nil {
		c.Log.Warn("console: oidc sign-in", "err", err)
		c.signIns.failed(addr, now)
		c.showLogin(w, r, http.StatusUnauthorized, c.t(r, "login_failed"))
		return
	}
	if _, err = c.Auth.Authenticate(r.Context(), raw); err != nil {
		c.signIns.failed(addr, now)
		c.showLogin(w, r, http.StatusUnauthorized, c.t(r, "login_failed"))
		return
	}
	c.startSession(w, r, raw, lifetime)
}

// exchange trades the code for tokens and checks the ID token and nonce. It
// returns the raw ID token and its lifetime, measured on the identity
// provider's own clock (expiry minus issued-at), so that a session lasts as
// long as its token whatever the difference between the provider's clock
// and this server's.
func (c *Console) exchange(r *http.Request, p pendingLogin, code string) (string, time.Duration, error) {
	o := c.OIDC
	cfg := o.config
	cfg.RedirectURL = c.redirectURL(r)
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return "", 0, fmt.Errorf("%w: code exchange: %w", errOIDC, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", 0, fmt.Errorf("%w: no id_token", errOIDC)
	}
	id, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", errOIDC, err)
	}
	if subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(p.Nonce)) != 1 {
		return "", 0, fmt.Errorf("%w: nonce mismatch", errOIDC)
	}
	lifetime := id.Expiry.Sub(id.IssuedAt)
	if id.IssuedAt.IsZero() || lifetime <= 0 {
		lifetime = time.Until(id.Expiry) // no iat: the verifier has just checked exp on the real clock
	}
	return raw, lifetime, nil
}
