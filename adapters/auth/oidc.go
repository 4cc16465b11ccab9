package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// OIDCConfig configures bearer JWT verification.
type OIDCConfig struct {
	Issuer   string // the issuer URL; discovery at Issuer/.well-known/openid-configuration
	Audience string // the expected aud (client id)
	// JWKSURL skips discovery and fetches keys from this URL.
	JWKSURL string
	// Claim names (defaults: roles, teams, organisation, name, network).
	RolesClaim, TeamsClaim, OrganisationClaim, NameClaim, NetworkClaim string
	DefaultNetwork                                                     string
	// Algs are the accepted signing algorithms (default RS256 and ES256).
	Algs       []string
	HTTPClient *http.Client
	Now        func() time.Time
}

// OIDC verifies bearer JWTs: signature against the provider's JWKS, issuer,
// audience, expiry and not-before; "alg: none" and unknown keys fail.
type OIDC struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier
}

var _ Authenticator = (*OIDC)(nil)

// NewOIDC sets up verification; with discovery it fetches the provider's
// configuration once (an error when the provider cannot be reached).
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
	if len(cfg.Algs) == 0 {
		cfg.Algs = []string{oidc.RS256, oidc.ES256}
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("auth: OIDC needs an issuer and an audience")
	}
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	vc := &oidc.Config{ClientID: cfg.Audience, SupportedSigningAlgs: cfg.Algs, Now: cfg.Now}
	o := &OIDC{cfg: cfg}
	if cfg.JWKSURL != "" {
		// The key set keeps ctx for its fetches: give it one that lives as long as the server.
		keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), cfg.HTTPClient), cfg.JWKSURL)
		o.verifier = oidc.NewVerifier(cfg.Issuer, keys, vc)
		return o, nil
	}
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("auth: OIDC discovery: %w", err)
	}
	o.verifier = provider.Verifier(vc)
	return o, nil
}

var errExpired = &domain.Error{Kind: domain.KindUnauthenticated, Code: "token_expired", Message: "the token is expired"}

// Authenticate implements Authenticator.
func (o *OIDC) Authenticate(ctx context.Context, token string) (domain.Principal, error) {
	if o.cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, o.cfg.HTTPClient)
	}
	idt, err := o.verifier.Verify(ctx, token)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return domain.Principal{}, errExpired
		}
		return domain.Principal{}, errUnknownToken
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return domain.Principal{}, errUnknownToken
	}
	p := domain.Principal{
		ID: idt.Subject, Name: first(claims[o.cfg.NameClaim]), Organisation: first(claims[o.cfg.OrganisationClaim]),
		Teams: strs(claims[o.cfg.TeamsClaim]), Network: first(claims[o.cfg.NetworkClaim]), MFA: mfa(strs(claims["amr"])),
	}
	if p.ID == "" {
		return domain.Principal{}, errUnknownToken
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

// mfa reads the amr claim (RFC 8176): true when it says "mfa", or names two
// or more distinct methods, or a method that is a second factor by nature
// (otp, hwk, sms, swk with another, fpt, face, iris, retina, sc).
func mfa(amr []string) bool {
	if slices.Contains(amr, "mfa") {
		return true
	}
	strong := []string{"otp", "hwk", "sms", "fpt", "face", "iris", "retina", "sc"}
	distinct := map[string]bool{}
	for _, m := range amr {
		distinct[m] = true
		if slices.Contains(strong, m) {
			return true
		}
	}
	return len(distinct) >= 2
}

// strs reads a claim that may be a string or an array of strings.
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
