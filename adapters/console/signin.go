package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const loginCookie = "bs_login"

// loginForm offers the token form and, when configured, the OIDC sign-in.
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if l := r.URL.Query().Get("lang"); l == "nl" || l == "en" {
		http.SetCookie(w, &http.Cookie{Name: "bs_lang", Value: l, Path: "/console", HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 365 * 24 * 3600})
		r.AddCookie(&http.Cookie{Name: "bs_lang", Value: l})
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomID()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: "/console", HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 600})
	c.render(w, r, status, "login", nil, page{Title: "login", CSRF: token, Error: msg, Data: map[string]bool{"TokenForm": c.TokenForm, "OIDC": c.OIDC != nil}})
}

// login signs in with a token from the form (the embedded default).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(loginCookie)
	if !c.TokenForm || err != nil || !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		c.showLogin(w, r, http.StatusForbidden, c.t(r, "csrf"))
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if _, err := c.Auth.Authenticate(r.Context(), token); err != nil {
		c.showLogin(w, r, http.StatusUnauthorized, c.t(r, "login_failed"))
		return
	}
	c.startSession(w, r, token, 0)
}

// OIDCClient runs the authorization-code flow with PKCE against the
// identity provider the API trusts.
type OIDCClient struct {
	// PublicURL is the server's public address; the callback is
	// PublicURL + /console/oidc/callback (default: from the request).
	PublicURL string
	provider  *oidc.Provider
	config    oauth2.Config
	verifier  *oidc.IDTokenVerifier

	mu      sync.Mutex
	pending map[string]pendingLogin
}

type pendingLogin struct {
	verifier, nonce string
	expires         time.Time
}

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
		pending:   map[string]pendingLogin{},
	}, nil
}

func (o *OIDCClient) redirectURL(r *http.Request) string {
	base := o.PublicURL
	if base == "" {
		scheme := "https"
		if !secure(r) {
			scheme = "http"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/console/oidc/callback"
}

func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := c.OIDC
	if o == nil {
		http.NotFound(w, r)
		return
	}
	state, nonce, verifier := randomID(), randomID(), oauth2.GenerateVerifier()
	now := c.Now()
	o.mu.Lock()
	for k, p := range o.pending {
		if now.After(p.expires) {
			delete(o.pending, k)
		}
	}
	if len(o.pending) > 10000 { // a flood of unfinished sign-ins
		o.mu.Unlock()
		http.Error(w, http.StatusText(http.StatusTooManyRequests), http.StatusTooManyRequests)
		return
	}
	o.pending[state] = pendingLogin{verifier: verifier, nonce: nonce, expires: now.Add(10 * time.Minute)}
	o.mu.Unlock()
	cfg := o.config
	cfg.RedirectURL = o.redirectURL(r)
	http.Redirect(w, r, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

var errOIDC = errors.New("console: oidc sign-in failed")

func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := c.OIDC
	if o == nil {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	o.mu.Lock()
	p, ok := o.pending[q.Get("state")]
	delete(o.pending, q.Get("state"))
	o.mu.Unlock()
	if !ok || c.Now().After(p.expires) || q.Get("error") != "" || q.Get("code") == "" {
		c.showLogin(w, r, http.StatusUnauthorized, c.t(r, "login_failed"))
		return
	}
	raw, lifetime, err := c.exchange(r, p, q.Get("code"))
	if err != nil {
		c.Log.Warn("console: oidc sign-in", "err", err)
		c.showLogin(w, r, http.StatusUnauthorized, c.t(r, "login_failed"))
		return
	}
	_, err = c.Auth.Authenticate(r.Context(), raw)
	if err != nil {
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
	cfg.RedirectURL = o.redirectURL(r)
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(p.verifier))
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
	if subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(p.nonce)) != 1 {
		return "", 0, fmt.Errorf("%w: nonce mismatch", errOIDC)
	}
	lifetime := id.Expiry.Sub(id.IssuedAt)
	if id.IssuedAt.IsZero() || lifetime <= 0 {
		lifetime = time.Until(id.Expiry) // no iat: the verifier has just checked exp on the real clock
	}
	return raw, lifetime, nil
}
