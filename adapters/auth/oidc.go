package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// MaxJWTSize bounds the bearer JWTs OIDC looks at; longer ones are refused
// before parsing.
const MaxJWTSize = 16 << 10

// DefaultHTTPTimeout bounds each discovery and JWKS request when
// OIDCConfig.HTTPClient is nil.
const DefaultHTTPTimeout = 10 * time.Second

// OIDCConfig configures bearer JWT verification. Only Issuer and Audience are
// required.
type OIDCConfig struct {
	// Issuer is the expected iss, exactly. Unless JWKSURL is set, the
	// provider is discovered at Issuer + "/.well-known/openid-configuration",
	// whose issuer must equal Issuer and whose jwks_uri gives the keys.
	Issuer string
	// Audience is the client id that must be among the token's aud values.
	Audience string
	// JWKSURL, when set, skips discovery and fetches the keys from this URL.
	JWKSURL string

	// Claim names; the defaults are "roles", "teams", "organisation",
	// "name" and "network". Each claim may be a string or an array of
	// strings; other types count as absent.
	RolesClaim, TeamsClaim, OrganisationClaim, NameClaim, NetworkClaim string
	// DefaultNetwork is the network of a token without a network claim
	// (domain.DefaultNetwork when empty).
	DefaultNetwork string

	// SupportedSigningAlgs are the accepted JWS algorithms (default RS256
	// and ES256). Only asymmetric algorithms are allowed: RS*, PS*, ES* and
	// EdDSA.
	SupportedSigningAlgs []string
	// HTTPClient makes the discovery and JWKS requests (default: a client
	// with DefaultHTTPTimeout). Give it a timeout: a key refresh that hangs
	// holds up every token signed with a new key.
	HTTPClient *http.Client
	// Now is the clock for expiry checks (default time.Now).
	Now func() time.Time
}

// OIDC authenticates bearer JWTs issued by an OpenID provider: the signature
// against the provider's JWKS (keys are cached and refetched when a token
// names a key id not seen before), the algorithm against
// SupportedSigningAlgs (so "alg: none" and HMAC fail), iss, aud, exp and nbf
// (go-oidc allows five minutes of clock skew on nbf, none on exp).
//
// The token's claims become a domain.Principal:
//   - ID is sub (required);
//   - Roles are the known roles (domain.Role.Valid) of the roles claim, in
//     order, without repeats; unknown ones are ignored, and a token with no
//     known role is still a principal, which policy then denies;
//   - Teams is the teams claim, without empty values or repeats;
//   - Name, Organisation and Network are the first value of their claims;
//     Network is DefaultNetwork when there is none;
//   - MFA follows the amr claim (RFC 8176), values compared exactly: true
//     when amr holds any of "mfa", "otp", "hwk", "sms", "fpt" or "face", or
//     holds "swk" together with any other value; false otherwise (no amr,
//     "pwd" alone, "pwd" with "kba", "swk" alone).
type OIDC struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier
}

var _ Authenticator = (*OIDC)(nil)

// asymmetricAlgs are the algorithms SupportedSigningAlgs may name.
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// NewOIDC checks cfg and prepares verification. Without JWKSURL it fetches
// the provider's discovery document once, under ctx; the keys are fetched
// on first use, outside ctx.
//
// A configuration that is incomplete or malformed (no issuer or audience, a
// URL that is not absolute http(s), an algorithm that is not asymmetric, a
// discovery document without jwks_uri) is KindInvalid; a discovery that
// fails (the provider cannot be reached, answers an error, or names another
// issuer) is KindUnavailable with the cause kept.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&cfg.RolesClaim, "roles")
	def(&cfg.TeamsClaim, "teams")
	def(&cfg.OrganisationClaim, "organisation")
	def(&cfg.NameClaim, "name")
	def(&cfg.NetworkClaim, "network")
	def(&cfg.DefaultNetwork, domain.DefaultNetwork)
	if len(cfg.SupportedSigningAlgs) == 0 {
		cfg.SupportedSigningAlgs = []string{oidc.RS256, oidc.ES256}
	}
	cfg.SupportedSigningAlgs = slices.Clone(cfg.SupportedSigningAlgs)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}

	if cfg.Issuer == "" {
		return nil, configError("an issuer is required")
	}
	if !httpURL(cfg.Issuer) {
		return nil, configError("the issuer must be an absolute http or https URL")
	}
	if cfg.Audience == "" {
		return nil, configError("an audience (client id) is required")
	}
	if cfg.JWKSURL != "" && !httpURL(cfg.JWKSURL) {
		return nil, configError("the JWKS URL must be an absolute http or https URL")
	}
	for _, alg := range cfg.SupportedSigningAlgs {
		if !slices.Contains(asymmetricAlgs, alg) {
			return nil, configError(fmt.Sprintf("signing algorithm %q is not supported (want asymmetric ones such as RS256 or ES256)", alg))
		}
	}

	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		provider, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
		if err != nil {
			return nil, domain.Wrap(domain.KindUnavailable, "oidc_discovery", "OIDC discovery at the issuer failed", err)
		}
		var meta struct {
			JWKSURL string `json:"jwks_uri"`
		}
		if err := provider.Claims(&meta); err != nil || !httpURL(meta.JWKSURL) {
			return nil, domain.Wrap(domain.KindInvalid, "oidc_config", "the issuer's discovery document has no usable jwks_uri", err)
		}
		jwksURL = meta.JWKSURL
	}
	// The key set fetches in the background with a context of its own;
	// this one only carries the HTTP client.
	keys := &keySet{remote: oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), cfg.HTTPClient), jwksURL)}
	verifier := oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: cfg.SupportedSigningAlgs,
		Now:                  cfg.Now,
	})
	return &OIDC{cfg: cfg, verifier: verifier}, nil
}

func configError(msg string) error {
	return &domain.Error{Kind: domain.KindInvalid, Code: "oidc_config", Message: "OIDC configuration: " + msg}
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// keySet wraps the remote key set to tell a key set that cannot be fetched
// (KindUnavailable: the token may be good) from a signature no key verifies
// (KindUnauthenticated). go-oidc flattens the key set's error into text, so
// the wrapper reports a fetch failure through the context Authenticate gives
// to Verify.
//
// It relies on RemoteKeySet wrapping fetch failures (including the caller's
// context ending while it waits) with %w, and returning an unwrapped error
// when no key verifies; TestOIDCKeysUnavailable pins that.
type keySet struct{ remote *oidc.RemoteKeySet }

type fetchErrKey struct{}

func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.remote.VerifySignature(ctx, jwt)
	if err != nil && errors.Unwrap(err) != nil {
		if p, ok := ctx.Value(fetchErrKey{}).(*error); ok {
			*p = err
		}
	}
	return payload, err
}

// Authenticate verifies token and maps its claims to a principal (see OIDC).
//
// A token that is empty, longer than MaxJWTSize, not a compact JWS,
// unsigned, signed with an unsupported algorithm or by no key of the
// provider, not yet valid, issued by another issuer or for another audience,
// or without exp or sub is ErrInvalidToken; an expired one is
// ErrTokenExpired. Both are KindUnauthenticated, with the reason kept as the
// cause. When the provider's keys cannot be fetched, or ctx ends while
// waiting for them, the result is KindUnavailable.
func (o *OIDC) Authenticate(ctx context.Context, token string) (domain.Principal, error) {
	if token == "" {
		return domain.Principal{}, ErrInvalidToken
	}
	if len(token) > MaxJWTSize {
		return domain.Principal{}, invalidToken(errors.New("oidc: the token is too long"))
	}
	if !compactJWS(token) {
		return domain.Principal{}, invalidToken(errors.New("oidc: the token is not a compact JWS"))
	}
	var fetchErr error
	idt, err := o.verifier.Verify(context.WithValue(ctx, fetchErrKey{}, &fetchErr), token)
	if err != nil {
		if fetchErr != nil {
			return domain.Principal{}, domain.Wrap(domain.KindUnavailable, "oidc_keys_unavailable",
				"the identity provider's keys cannot be fetched; try again later", fetchErr)
		}
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) && exp.Expiry.IsZero() {
			return domain.Principal{}, invalidToken(errors.New("oidc: the token has no exp"))
		}
		if errors.As(err, &exp) {
			return domain.Principal{}, &domain.Error{Kind: ErrTokenExpired.Kind, Code: ErrTokenExpired.Code, Message: ErrTokenExpired.Message, Err: err}
		}
		return domain.Principal{}, invalidToken(err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return domain.Principal{}, invalidToken(err)
	}
	if idt.Subject == "" {
		return domain.Principal{}, invalidToken(errors.New("oidc: the token has no sub"))
	}
	p := domain.Principal{
		ID:           idt.Subject,
		Name:         first(claims[o.cfg.NameClaim]),
		Teams:        unique(strs(claims[o.cfg.TeamsClaim])),
		Organisation: first(claims[o.cfg.OrganisationClaim]),
		Network:      first(claims[o.cfg.NetworkClaim]),
		MFA:          mfa(strs(claims["amr"])),
	}
	if p.Network == "" {
		p.Network = o.cfg.DefaultNetwork
	}
	for _, r := range strs(claims[o.cfg.RolesClaim]) {
		if role := domain.Role(r); role.Valid() && !slices.Contains(p.Roles, role) {
			p.Roles = append(p.Roles, role)
		}
	}
	return p, nil
}

// compactJWS reports whether token has the shape of a compact JWS: three
// base64url parts, the last possibly empty. go-jose also parses the JSON
// serialization, which a bearer JWT never uses.
func compactJWS(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, part := range parts {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// mfaAlone are the amr values (RFC 8176) that count as MFA by themselves.
var mfaAlone = []string{"mfa", "otp", "hwk", "sms", "fpt", "face"}

// mfa applies the rule documented on OIDC to the amr values.
func mfa(amr []string) bool {
	swk, other := false, false
	for _, m := range amr {
		if slices.Contains(mfaAlone, m) {
			return true
		}
		if m == "swk" {
			swk = true
		} else {
			other = true
		}
	}
	return swk && other
}

// strs reads a claim that may be a string or an array of strings; empty
// strings and non-string elements are dropped, other types give nil.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func first(v any) string {
	if s := strs(v); len(s) > 0 {
		return s[0]
	}
	return ""
}

// unique drops repeats, keeping the first of each.
func unique(s []string) []string {
	var out []string
	seen := make(map[string]bool, len(s))
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
