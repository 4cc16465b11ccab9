// Package auth turns bearer tokens into principals: from a tokens file (the
// embedded default and tests) or from OIDC JWTs verified against the
// provider's JWKS (production).
//
// Every authentication failure is a *domain.Error of KindUnauthenticated
// whose message is safe to show: it never echoes the token and never says
// more about a failed check than "the token is expired" or "the token is not
// valid". The underlying reason, when there is one, is kept as the error's
// cause for logs.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Authenticator is the domain's port, which this package's token files,
// OIDC verifier and Chain implement.
type Authenticator = domain.Authenticator

// ErrInvalidToken is the error for a token that is missing, unknown, malformed
// or fails a check other than expiry. Errors returned by this package match it
// with errors.Is (same kind and code) even when they carry a cause.
var ErrInvalidToken = &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_token", Message: "the token is not valid"}

// ErrTokenExpired is the error for a well-formed, correctly signed token whose
// expiry has passed.
var ErrTokenExpired = &domain.Error{Kind: domain.KindUnauthenticated, Code: "token_expired", Message: "the token is expired"}

// invalidToken returns a fresh ErrInvalidToken carrying cause for logs. The
// cause must never contain the token.
func invalidToken(cause error) error {
	return &domain.Error{Kind: ErrInvalidToken.Kind, Code: ErrInvalidToken.Code, Message: ErrInvalidToken.Message, Err: cause}
}

// HashToken returns the lower-case hex SHA-256 of a token, as the tokens file
// stores it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a new random token: 32 bytes from crypto/rand as 64 hex
// digits. It fails only if the system's random source does.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: new token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Chain returns an Authenticator that tries auths in order (typically the
// tokens file, then OIDC) and returns the first principal one accepts. Nil
// entries are skipped.
//
// When none accepts the token: if one failed with an error other than
// KindUnauthenticated (say KindUnavailable when the identity provider's keys
// cannot be fetched), the first such error is returned, since the token might
// have been good; otherwise the result is KindUnauthenticated, preferring
// ErrTokenExpired (a later authenticator recognised the token) over
// ErrInvalidToken. An empty chain accepts nothing.
func Chain(auths ...Authenticator) Authenticator {
	c := make(chain, 0, len(auths))
	for _, a := range auths {
		if a != nil {
			c = append(c, a)
		}
	}
	return c
}

type chain []Authenticator

func (c chain) Authenticate(ctx context.Context, token string) (domain.Principal, error) {
	var unauth, other error
	for _, a := range c {
		p, err := a.Authenticate(ctx, token)
		if err == nil {
			return p, nil
		}
		switch {
		case domain.KindOf(err) != domain.KindUnauthenticated:
			if other == nil {
				other = err
			}
		case unauth == nil || domain.AsError(err).Is(ErrTokenExpired):
			unauth = err
		}
	}
	if other != nil {
		return domain.Principal{}, other
	}
	if unauth == nil {
		unauth = ErrInvalidToken
	}
	return domain.Principal{}, unauth
}

// FromRequest returns the bearer token of r's Authorization header
// ("Bearer <token>", RFC 6750). The scheme is case-insensitive and spaces
// around the token are trimmed. It reports false when there is no such
// header, more than one, another scheme, an empty token, or a token that is
// not an RFC 6750 b64token (letters, digits, "-._~+/", then any "="), which
// rules out spaces and control characters inside it.
func FromRequest(r *http.Request) (token string, ok bool) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return "", false
	}
	scheme, rest, found := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.Trim(rest, " \t")
	if !isB64Token(token) {
		return "", false
	}
	return token, true
}

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
