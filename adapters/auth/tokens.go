package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// MaxTokensFileSize bounds what LoadTokensFile reads.
const MaxTokensFileSize = 16 << 20

const (
	maxIdentifier = 200 // bytes of an id, team, organisation or network
	maxName       = 500 // bytes of a display name
	maxFieldErrs  = 20  // field errors listed in one KindInvalid error
)

// TokensFile is a parsed tokens file (API.md, "Tokens file"):
//
//	{"principals": [{"token_sha256": "<hex of sha256(token)>", "id": "anna", "name": "Anna de Vries",
//	  "roles": ["professional"], "teams": ["basisteam-beesd"], "organisation": "...", "network": "..."}]}
//
// It authenticates a token by the SHA-256 of the presented token. Its
// principals count as MFA: the file stands in for an identity provider in the
// embedded default and in tests.
//
// Lookup is a map keyed by that hash rather than a constant-time comparison
// against each entry. That is safe because the key is the hash of a
// high-entropy secret: whatever timing a map lookup leaks tells an attacker
// about the hash of their own guess, not about any stored token, and learning
// a prefix of a stored hash does not help find a preimage.
type TokensFile struct {
	byHash     map[[32]byte]domain.Principal
	principals []domain.Principal // one per id, in order of first appearance
}

var _ Authenticator = (*TokensFile)(nil)

// TokenEntry is one principal of a tokens file, as written by EncodeTokens.
type TokenEntry struct {
	TokenSHA256  string   `json:"token_sha256"`
	ID           string   `json:"id"`
	Name         string   `json:"name,omitempty"`
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

// EncodeTokens writes a tokens file holding entries. It does not validate
// them; ParseTokens does. Its only error is a KindInternal one from encoding.
func EncodeTokens(entries []TokenEntry) ([]byte, error) {
	if entries == nil {
		entries = []TokenEntry{}
	}
	data, err := json.MarshalIndent(struct {
		Principals []TokenEntry `json:"principals"`
	}{entries}, "", "  ")
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, "encode_tokens_file", "the tokens file cannot be encoded", err)
	}
	return data, nil
}

// LoadTokensFile reads and parses the tokens file at path (see ParseTokens).
// A file that cannot be read, is larger than MaxTokensFileSize, or does not
// parse and validate is a KindInvalid error; for a read failure the cause
// (with the path) is kept for the operator.
func LoadTokensFile(path, defaultNetwork string) (*TokensFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, domain.Wrap(domain.KindInvalid, "tokens_file_unreadable", "the tokens file cannot be read", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTokensFileSize+1))
	if err != nil {
		return nil, domain.Wrap(domain.KindInvalid, "tokens_file_unreadable", "the tokens file cannot be read", err)
	}
	if len(data) > MaxTokensFileSize {
		return nil, &domain.Error{Kind: domain.KindInvalid, Code: "invalid_tokens_file",
			Message: fmt.Sprintf("the tokens file is larger than %d bytes", MaxTokensFileSize)}
	}
	return ParseTokens(data, defaultNetwork)
}

// ParseTokens parses and validates a tokens file. Principals without a
// network get defaultNetwork (domain.DefaultNetwork when that is empty).
//
// Decoding is strict: the document must be one UTF-8 JSON object with exactly
// the key "principals" holding an array of objects with the keys of
// TokenEntry, spelled exactly (no case folding), each at most once, with
// strings and arrays of strings (no nulls, numbers or nesting), and nothing
// after it. Then each principal must have a token_sha256 of 64 hex digits
// (either case) not shared with another principal, a non-empty id, at least
// one role, only known roles (domain.Role.Valid), no role or team twice, and
// ids, teams, organisation and network of at most 200 bytes without control
// characters or surrounding spaces. One id may appear with several tokens
// only if every entry describes the same principal.
//
// Every failure is a *domain.Error of KindInvalid with code
// "invalid_tokens_file"; validation failures list each offending field (such
// as "principals[2].roles[0]") in Fields. Messages never contain hashes,
// display names or other values from the file.
func ParseTokens(data []byte, defaultNetwork string) (*TokensFile, error) {
	if defaultNetwork == "" {
		defaultNetwork = domain.DefaultNetwork
	}
	entries, err := decodeTokens(data)
	if err != nil {
		return nil, err
	}
	return buildTokens(entries, defaultNetwork)
}

// Authenticate returns the principal whose token hashes to the SHA-256 of
// token, or ErrInvalidToken (KindUnauthenticated) for an empty or unknown
// token. The principal's slices are the caller's own.
func (f *TokensFile) Authenticate(_ context.Context, token string) (domain.Principal, error) {
	if f == nil || token == "" {
		return domain.Principal{}, ErrInvalidToken
	}
	p, ok := f.byHash[hashBytes(token)]
	if !ok {
		return domain.Principal{}, ErrInvalidToken
	}
	return clonePrincipal(p), nil
}

// Principals lists the file's principals, one per id, in the order their ids
// first appear. The slices are the caller's own.
func (f *TokensFile) Principals() []domain.Principal {
	if f == nil {
		return nil
	}
	out := make([]domain.Principal, len(f.principals))
	for i, p := range f.principals {
		out[i] = clonePrincipal(p)
	}
	return out
}

// Teams lists, sorted and without repeats, every team some principal belongs
// to: the known teams of the embedded default.
func (f *TokensFile) Teams() []string {
	var out []string
	if f != nil {
		for _, p := range f.principals {
			out = append(out, p.Teams...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// decodeHex decodes exactly len(dst) bytes of hex (either case) into dst.
func decodeHex(dst []byte, s string) bool {
	n, err := hex.Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}

func hashBytes(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func clonePrincipal(p domain.Principal) domain.Principal {
	p.Roles = slices.Clone(p.Roles)
	p.Teams = slices.Clone(p.Teams)
	return p
}

// invalidFile is a KindInvalid error about the whole file.
func invalidFile(cause error, format string, args ...any) *domain.Error {
	return &domain.Error{Kind: domain.KindInvalid, Code: "invalid_tokens_file",
		Message: "the tokens file is not valid: " + fmt.Sprintf(format, args...), Err: cause}
}

// decodeTokens walks the JSON tokens strictly (see ParseTokens). It stops at
// the first shape error, so nesting never goes deeper than the expected shape.
func decodeTokens(data []byte) ([]TokenEntry, error) {
	if !utf8.Valid(data) {
		return nil, invalidFile(nil, "it is not UTF-8")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalidFile(nil, "it is empty")
	}
	d := &tokenDecoder{dec: json.NewDecoder(bytes.NewReader(data))}
	if err := d.delim('{', "the document", "an object"); err != nil {
		return nil, err
	}
	var entries []TokenEntry
	seen := false
	for d.dec.More() {
		key, err := d.key("the document")
		if err != nil {
			return nil, err
		}
		if key != "principals" {
			return nil, invalidFile(nil, "unknown field %s at the top level (want only \"principals\")", quoteKey(key))
		}
		if seen {
			return nil, invalidFile(nil, "\"principals\" appears twice")
		}
		seen = true
		if entries, err = d.principals(); err != nil {
			return nil, err
		}
	}
	if err := d.delim('}', "the document", "the end of the object"); err != nil {
		return nil, err
	}
	if !seen {
		return nil, invalidFile(nil, "the field \"principals\" is missing")
	}
	if _, err := d.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidFile(nil, "there is data after the JSON object")
	}
	return entries, nil
}

type tokenDecoder struct{ dec *json.Decoder }

// token reads the next JSON token, turning syntax errors and a premature end
// into KindInvalid errors.
func (d *tokenDecoder) token() (json.Token, error) {
	t, err := d.dec.Token()
	if err == nil {
		return t, nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, invalidFile(err, "the JSON ends early")
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return nil, invalidFile(err, "the JSON is malformed near byte %d", syn.Offset)
	}
	return nil, invalidFile(err, "the JSON is malformed")
}

func (d *tokenDecoder) delim(want json.Delim, where, what string) error {
	t, err := d.token()
	if err != nil {
		return err
	}
	if t != want {
		return invalidFile(nil, "%s must be %s", where, what)
	}
	return nil
}

func (d *tokenDecoder) key(where string) (string, error) {
	t, err := d.token()
	if err != nil {
		return "", err
	}
	k, ok := t.(string)
	if !ok { // the decoder only yields strings in key position
		return "", invalidFile(nil, "%s has a malformed key", where)
	}
	return k, nil
}

func (d *tokenDecoder) str(field string) (string, error) {
	t, err := d.token()
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", invalidFile(nil, "%s must be a string", field)
	}
	return s, nil
}

func (d *tokenDecoder) strs(field string) ([]string, error) {
	if err := d.delim('[', field, "an array of strings"); err != nil {
		return nil, err
	}
	out := []string{}
	for i := 0; d.dec.More(); i++ {
		s, err := d.str(fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, d.delim(']', field, "an array of strings")
}

func (d *tokenDecoder) principals() ([]TokenEntry, error) {
	if err := d.delim('[', "principals", "an array of objects"); err != nil {
		return nil, err
	}
	entries := []TokenEntry{}
	for i := 0; d.dec.More(); i++ {
		e, err := d.principal(fmt.Sprintf("principals[%d]", i))
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, d.delim(']', "principals", "an array of objects")
}

func (d *tokenDecoder) principal(at string) (TokenEntry, error) {
	var e TokenEntry
	if err := d.delim('{', at, "an object"); err != nil {
		return e, err
	}
	seen := map[string]bool{}
	for d.dec.More() {
		key, err := d.key(at)
		if err != nil {
			return e, err
		}
		field := at + "." + key
		var target *string
		switch key {
		case "token_sha256":
			target = &e.TokenSHA256
		case "id":
			target = &e.ID
		case "name":
			target = &e.Name
		case "organisation":
			target = &e.Organisation
		case "network":
			target = &e.Network
		case "roles", "teams":
		default:
			return e, invalidFile(nil, "%s: unknown field %s", at, quoteKey(key))
		}
		if seen[key] {
			return e, invalidFile(nil, "%s appears twice", field)
		}
		seen[key] = true
		switch key {
		case "roles":
			e.Roles, err = d.strs(field)
		case "teams":
			e.Teams, err = d.strs(field)
		default:
			*target, err = d.str(field)
		}
		if err != nil {
			return e, err
		}
	}
	return e, d.delim('}', at, "an object")
}

// quoteKey quotes an unknown key for a message, cut short if long.
func quoteKey(k string) string {
	if len(k) > 40 {
		cut := 40
		for cut > 0 && !utf8.RuneStart(k[cut]) {
			cut--
		}
		k = k[:cut] + "..."
	}
	return fmt.Sprintf("%q", k)
}

// fieldErrs collects validation failures, up to maxFieldErrs.
type fieldErrs struct {
	list  []domain.FieldError
	total int
}

func (f *fieldErrs) add(field, message string) {
	f.total++
	if len(f.list) < maxFieldErrs {
		f.list = append(f.list, domain.FieldError{Field: field, Message: message})
	}
}

func (f *fieldErrs) err() error {
	if f.total == 0 {
		return nil
	}
	first := f.list[0]
	msg := "the tokens file is not valid: " + first.Field + " " + first.Message
	switch {
	case f.total == 2:
		msg += " (and 1 more problem)"
	case f.total > 2:
		msg += fmt.Sprintf(" (and %d more problems)", f.total-1)
	}
	return &domain.Error{Kind: domain.KindInvalid, Code: "invalid_tokens_file", Message: msg, Fields: f.list}
}

// identifierProblem says what is wrong with an id, team, organisation or
// network, or returns "".
func identifierProblem(s string) string {
	switch {
	case len(s) > maxIdentifier:
		return fmt.Sprintf("must be at most %d bytes", maxIdentifier)
	case strings.TrimSpace(s) != s:
		return "must not start or end with spaces"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "must not contain control characters"
	}
	return ""
}

func buildTokens(entries []TokenEntry, defaultNetwork string) (*TokensFile, error) {
	var errs fieldErrs
	tf := &TokensFile{byHash: make(map[[32]byte]domain.Principal, len(entries))}
	hashAt := map[[32]byte]int{}
	idAt := map[string]int{}    // id -> index in tf.principals
	firstAt := map[string]int{} // id -> index of its first entry in the file
	for i, e := range entries {
		at := fmt.Sprintf("principals[%d]", i)
		ok := true
		bad := func(field, msg string) { errs.add(at+field, msg); ok = false }

		var hash [32]byte
		switch {
		case e.TokenSHA256 == "":
			bad(".token_sha256", "is required")
		case len(e.TokenSHA256) != hex.EncodedLen(len(hash)):
			bad(".token_sha256", "must be the 64 hex digits of a SHA-256 hash")
		case !decodeHex(hash[:], e.TokenSHA256):
			bad(".token_sha256", "must be the 64 hex digits of a SHA-256 hash")
		default:
			if j, dup := hashAt[hash]; dup {
				bad(".token_sha256", fmt.Sprintf("is the same token as principals[%d]'s", j))
			} else {
				hashAt[hash] = i
			}
		}

		if e.ID == "" {
			bad(".id", "is required")
		} else if msg := identifierProblem(e.ID); msg != "" {
			bad(".id", msg)
		}
		if len(e.Name) > maxName {
			bad(".name", fmt.Sprintf("must be at most %d bytes", maxName))
		} else if strings.ContainsFunc(e.Name, unicode.IsControl) {
			bad(".name", "must not contain control characters")
		}
		if e.Organisation != "" {
			if msg := identifierProblem(e.Organisation); msg != "" {
				bad(".organisation", msg)
			}
		}
		if e.Network != "" {
			if msg := identifierProblem(e.Network); msg != "" {
				bad(".network", msg)
			}
		}

		p := domain.Principal{ID: e.ID, Name: e.Name, Organisation: e.Organisation, Network: e.Network, MFA: true}
		if p.Network == "" {
			p.Network = defaultNetwork
		}
		if len(e.Roles) == 0 {
			bad(".roles", "must name at least one role")
		}
		for k, r := range e.Roles {
			role := domain.Role(r)
			switch {
			case !role.Valid():
				bad(fmt.Sprintf(".roles[%d]", k), "is not a known role (want one of "+roleList()+")")
			case slices.Contains(p.Roles, role): // at most len(domain.Roles) long
				bad(fmt.Sprintf(".roles[%d]", k), "appears twice")
			default:
				p.Roles = append(p.Roles, role)
			}
		}
		teams := make(map[string]bool, len(e.Teams))
		for k, t := range e.Teams {
			field := fmt.Sprintf(".teams[%d]", k)
			switch {
			case t == "":
				bad(field, "must not be empty")
			case identifierProblem(t) != "":
				bad(field, identifierProblem(t))
			case teams[t]:
				bad(field, "appears twice")
			default:
				teams[t] = true
				p.Teams = append(p.Teams, t)
			}
		}
		if !ok {
			continue
		}
		if j, dup := idAt[e.ID]; dup {
			if !samePrincipal(tf.principals[j], p) {
				bad(".id", fmt.Sprintf("is also the id of principals[%d], with different data", firstAt[e.ID]))
				continue
			}
		} else {
			idAt[e.ID] = len(tf.principals)
			firstAt[e.ID] = i
			tf.principals = append(tf.principals, p)
		}
		tf.byHash[hash] = p
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return tf, nil
}

// samePrincipal compares two principals of one id, taking roles and teams
// as sets.
func samePrincipal(a, b domain.Principal) bool {
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	roles := func(rs []domain.Role) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = string(r)
		}
		return sorted(out)
	}
	return a.ID == b.ID && a.Name == b.Name && a.Organisation == b.Organisation && a.Network == b.Network &&
		a.MFA == b.MFA && slices.Equal(roles(a.Roles), roles(b.Roles)) && slices.Equal(sorted(a.Teams), sorted(b.Teams))
}

func roleList() string {
	names := make([]string, len(domain.Roles))
	for i, r := range domain.Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}
