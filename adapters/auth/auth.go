// Package auth turns bearer tokens into principals: from a tokens file (the
// embedded default and tests) or from OIDC JWTs verified against the
// provider's JWKS (production). Errors never echo the token.
package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Authenticator turns a bearer token into a principal. It returns a
// KindUnauthenticated error for a token it does not accept.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (domain.Principal, error)
}

var errUnknownToken = &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_token", Message: "the token is not valid"}

// HashToken returns the hex SHA-256 of a token, as the tokens file stores it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a new random token (32 bytes, hex).
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// TokensFile is a parsed tokens file (API.md):
//
//	{"principals": [{"token_sha256": "<hex>", "id": "anna", "name": "Anna de Vries",
//	  "roles": ["professional"], "teams": ["basisteam-beesd"], "organisation": "...", "network": "..."}]}
//
// Tokens are looked up by the SHA-256 of the presented token. A map lookup
// by hash leaks no useful timing: the hash of a high-entropy secret reveals
// nothing about the secret.
type TokensFile struct {
	byHash     map[string]domain.Principal
	principals []domain.Principal
}

var _ Authenticator = (*TokensFile)(nil)

// TokenEntry is one principal of a tokens file.
type TokenEntry struct {
	TokenSHA256  string   `json:"token_sha256"`
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Roles        []string `json:"roles"`
	Teams        []string `json:"teams,omitempty"`
	Organisation string   `json:"organisation,omitempty"`
	Network      string   `json:"network,omitempty"`
}

// NewTokenEntry describes a principal holding token (stored as its hash) in
// one role, with at most one team.
func NewTokenEntry(token, id, name, role, team, organisation string) TokenEntry {
	e := TokenEntry{TokenSHA256: HashToken(token), ID: id, Name: name, Roles: []string{role}, Organisation: organisation}
	if team != "" {
		e.Teams = []string{team}
	}
	return e
}

// EncodeTokens writes a tokens file.
func EncodeTokens(entries []TokenEntry) ([]byte, error) {
	return json.MarshalIndent(struct {
		Principals []TokenEntry `json:"principals"`
	}{entries}, "", "  ")
}

// LoadTokensFile reads and parses a tokens file. It returns KindInvalid
// errors for a file that does not parse or validate.
func LoadTokensFile(path, defaultNetwork string) (*TokensFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read tokens file: %w", err)
	}
	return ParseTokens(data, defaultNetwork)
}

func invalidTokens(format string, args ...any) error {
	return &domain.Error{Kind: domain.KindInvalid, Code: "invalid_tokens_file", Message: "tokens file: " + fmt.Sprintf(format, args...)}
}

// ParseTokens parses a tokens file strictly: unknown fields, unknown roles,
// malformed hashes, duplicate hashes and duplicate ids are KindInvalid errors.
func ParseTokens(data []byte, defaultNetwork string) (*TokensFile, error) {
	var f struct {
		Principals []TokenEntry `json:"principals"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, invalidTokens("not valid JSON of the expected shape")
	}
	if dec.More() {
		return nil, invalidTokens("data after the JSON object")
	}
	tf := &TokensFile{byHash: map[string]domain.Principal{}}
	ids := map[string]bool{}
	for i, e := range f.Principals {
		if len(e.TokenSHA256) != 64 {
			return nil, invalidTokens("principal %d: token_sha256 must be 64 hex digits", i)
		}
		if _, err := hex.DecodeString(e.TokenSHA256); err != nil {
			return nil, invalidTokens("principal %d: token_sha256 must be 64 hex digits", i)
		}
		if e.ID == "" || len(e.ID) > 200 {
			return nil, invalidTokens("principal %d: an id is required", i)
		}
		if ids[e.ID] {
			return nil, invalidTokens("principal %d: id %q appears twice", i, e.ID)
		}
		ids[e.ID] = true
		hash := string(bytes.ToLower([]byte(e.TokenSHA256)))
		if _, dup := tf.byHash[hash]; dup {
			return nil, invalidTokens("principal %d: the same token appears twice", i)
		}
		p := domain.Principal{ID: e.ID, Name: e.Name, Teams: slices.Clone(e.Teams), Organisation: e.Organisation, Network: e.Network, MFA: true}
		if p.Network == "" {
			p.Network = defaultNetwork
		}
		for _, r := range e.Roles {
			role := domain.Role(r)
			if !role.Valid() {
				return nil, invalidTokens("principal %d: unknown role %q", i, r)
			}
			p.Roles = append(p.Roles, role)
		}
		if len(p.Roles) == 0 {
			return nil, invalidTokens("principal %d: at least one role is required", i)
		}
		tf.byHash[hash] = p
		tf.principals = append(tf.principals, p)
	}
	return tf, nil
}

// Authenticate implements Authenticator.
func (f *TokensFile) Authenticate(_ context.Context, token string) (domain.Principal, error) {
	p, ok := f.byHash[HashToken(token)]
	if !ok || token == "" {
		return domain.Principal{}, errUnknownToken
	}
	return p, nil
}

// Principals lists the file's principals in file order.
func (f *TokensFile) Principals() []domain.Principal { return slices.Clone(f.principals) }

// Teams lists every team some principal belongs to, sorted.
func (f *TokensFile) Teams() []string {
	set := map[string]bool{}
	for _, p := range f.principals {
		for _, t := range p.Teams {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Chain tries each authenticator in order and returns the first principal;
// when none accepts the token it returns the last KindUnauthenticated error.
func Chain(auths ...Authenticator) Authenticator { return chain(auths) }

type chain []Authenticator

func (c chain) Authenticate(ctx context.Context, token string) (domain.Principal, error) {
	err := error(errUnknownToken)
	for _, a := range c {
		p, aerr := a.Authenticate(ctx, token)
		if aerr == nil {
			return p, nil
		}
		if domain.KindOf(aerr) != domain.KindUnauthenticated {
			return domain.Principal{}, aerr
		}
		if ae := domain.AsError(aerr); ae != nil && ae.Code != errUnknownToken.Code {
			err = aerr // a more specific reason (expired) from a later authenticator
		}
	}
	return domain.Principal{}, err
}
