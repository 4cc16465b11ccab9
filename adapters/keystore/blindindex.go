package keystore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

var randReader = rand.Reader

// BlindIndex computes keyed tokens (HMAC-SHA256) of a normalized name and
// birth date, so the same person is found again without the data in clear.
type BlindIndex struct{ key []byte }

var _ domain.BlindIndex = (*BlindIndex)(nil)

// NewBlindIndex returns a blind index under key (32 random bytes).
func NewBlindIndex(key []byte) *BlindIndex { return &BlindIndex{key: append([]byte(nil), key...)} }

// Token implements domain.BlindIndex.
func (b *BlindIndex) Token(name, birthDate string) string {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(NormalizeName(name)))
	m.Write([]byte{0})
	m.Write([]byte(strings.TrimSpace(birthDate)))
	return hex.EncodeToString(m.Sum(nil))
}

// NormalizeName folds the ways one name is written: case, diacritics
// (é -> e, ï -> i), punctuation (. - ' ’), and white space, so "J. de
// Vries-Bakker" and "j de vries bakker" give the same token.
func NormalizeName(name string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	folded, _, err := transform.String(t, name)
	if err != nil {
		folded = name
	}
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(folded) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		case r == '\'' || r == '’' || r == '`':
			// apostrophes join: d'Ancona and dAncona match
		default:
			space = true
		}
	}
	return b.String()
}
