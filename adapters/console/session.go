package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

const cookieName = "bs_session"

// maxCookie bounds a session cookie; browsers keep at least 4096 bytes of
// one. An OIDC ID token of a few kilobytes would not fit: sign-in fails
// with a clear message rather than a cookie the browser drops.
const maxCookie = 4000

// sessionAD binds a sealed session to its purpose and format.
var sessionAD = []byte("buurtsignaal console session v1")

// SessionEnds records signed-out sessions and answers whether a session was
// signed out, the same on every replica (the wiring backs it with the log).
type SessionEnds interface {
	End(ctx context.Context, p domain.Principal, id string, until time.Time) error
	Ended(id string) bool
}

// MasterKey is the master AEAD (tink.AEAD's method set) that wraps the
// session key.
type MasterKey interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

// sessionKeyAD binds the wrapped session key to its purpose.
var sessionKeyAD = []byte("buurtsignaal console session key")

// NewSessionKey makes a random session key, wrapped by master, to be kept
// where every replica finds it (domain.SessionKeyCreated in the log).
func NewSessionKey(master MasterKey) ([]byte, error) {
	return master.Encrypt(randomKey(), sessionKeyAD)
}

// SessionSealer unwraps a session key that NewSessionKey made and returns
// the AEAD that seals sessions into cookies.
func SessionSealer(master MasterKey, wrapped []byte) (cipher.AEAD, error) {
	raw, err := master.Decrypt(wrapped, sessionKeyAD)
	if err != nil {
		return nil, errors.New("console: the session key does not open with this master key")
	}
	return newSealer(raw)
}

func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func newSealer(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// session is a signed-in user: what the cookie carries, and the principal
// its token gives now.
type session struct {
	sessionData
	principal domain.Principal
}

// sessionData is what a session cookie carries, sealed. Times are the
// server's clock, in Unix seconds.
type sessionData struct {
	ID        string `json:"id"`
	Token     string `json:"t"`
	CSRF      string `json:"c"`
	Expires   int64  `json:"e"`
	IdleUntil int64  `json:"i"`
}

func (d sessionData) expires() time.Time { return time.Unix(d.Expires, 0) }

// seal writes the session as a cookie value.
func (c *Console) seal(d sessionData) (string, error) {
	plain, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	v, err := c.sealBytes(plain, sessionAD)
	if err != nil {
		return "", err
	}
	if len(cookieName)+1+len(v) > maxCookie {
		return "", errSessionTooLarge
	}
	return v, nil
}

// sealBytes seals plain for a cookie (base64url), bound to ad.
func (c *Console) sealBytes(plain, ad []byte) (string, error) {
	nonce := make([]byte, c.Sealer.NonceSize(), c.Sealer.NonceSize()+len(plain)+c.Sealer.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(c.Sealer.Seal(nonce, nonce, plain, ad)), nil
}

// openBytes opens what sealBytes sealed with ad; ok is false otherwise.
func (c *Console) openBytes(v string, ad []byte) ([]byte, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	n := c.Sealer.NonceSize()
	if err != nil || len(raw) < n+c.Sealer.Overhead() {
		return nil, false
	}
	plain, err := c.Sealer.Open(nil, raw[:n], raw[n:], ad)
	return plain, err == nil
}

var errSessionTooLarge = errors.New("console: the token is too long for a session cookie")

// open reads a cookie value; ok is false for anything that was not sealed
// by this deployment's key.
func (c *Console) open(v string) (d sessionData, ok bool) {
	plain, ok := c.openBytes(v, sessionAD)
	if !ok || json.Unmarshal(plain, &d) != nil {
		return d, false
	}
	return d, true
}

// session is the request's signed-in user, or nil: a cookie this
// deployment sealed, before its end and its idle deadline, not signed out,
// whose token is still valid.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	d, ok := c.open(ck.Value)
	now := c.Now().Unix()
	if !ok || now >= d.Expires || now >= d.IdleUntil || (c.Ended != nil && c.Ended.Ended(d.ID)) {
		return nil
	}
	p, err := c.Auth.Authenticate(r.Context(), d.Token)
	if err != nil {
		return nil
	}
	return &session{sessionData: d, principal: p}
}

// startSession signs a principal in with its token for at most lifetime
// (0: SessionTTL; never more than SessionTTL).
//
// The cookie carries Max-Age, a number of seconds the browser counts on its
// own clock, never an absolute Expires computed from the server's: a server
// whose clock is behind, or a workstation whose clock is ahead, would
// otherwise receive a cookie that is already expired and could not sign in.
// The sealed session keeps its end on the server's clock.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, token string, lifetime time.Duration) {
	now := c.Now()
	if lifetime <= 0 || lifetime > c.SessionTTL {
		lifetime = c.SessionTTL
	}
	d := sessionData{ID: randomID(), Token: token, CSRF: randomID(), Expires: now.Add(lifetime).Unix(), IdleUntil: now.Add(c.IdleTimeout).Unix()}
	if err := c.setCookie(w, r, d, lifetime); err != nil {
		c.Log.Warn("console: sign-in", "err", err)
		c.showLogin(w, r, http.StatusUnauthorized, c.t(r, "login_failed"))
		return
	}
	http.Redirect(w, r, "/console", http.StatusSeeOther)
}

// refresh starts a session's idle time again: the cookie is sealed anew.
// The idle deadline never moves back: a clock stepped back (NTP) would
// otherwise set it earlier than it was, and the session would end early
// once the clock is right again.
func (c *Console) refresh(w http.ResponseWriter, r *http.Request, s *session) {
	now := c.Now()
	d := s.sessionData
	d.IdleUntil = max(d.IdleUntil, min(now.Add(c.IdleTimeout).Unix(), d.Expires))
	if err := c.setCookie(w, r, d, d.expires().Sub(now)); err != nil {
		c.Log.Warn("console: session", "err", err)
	}
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, d sessionData, lifetime time.Duration) error {
	v, err := c.seal(d)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v, Path: "/console", HttpOnly: true, Secure: c.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge(lifetime)})
	return nil
}

// maxAge is a cookie's Max-Age for a lifetime: whole seconds, at least one.
func maxAge(lifetime time.Duration) int {
	return max(1, int(lifetime/time.Second))
}

// logout records the session's end, so no replica takes it again, and
// deletes the cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	if c.Ended != nil {
		if err := c.Ended.End(r.Context(), s.principal, s.ID, s.expires()); err != nil {
			c.Log.Error("console: sign out", "err", err)
			c.render(w, r, http.StatusServiceUnavailable, "error", s, page{Error: c.t(r, "unavailable")})
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console", HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}
