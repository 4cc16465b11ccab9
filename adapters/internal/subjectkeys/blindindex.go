package subjectkeys

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// BlindIndex computes keyed tokens (HMAC-SHA256) of a normalized name and
// birth date, so the same person is found again without the data in clear.
type BlindIndex struct{ key []byte }

var _ domain.BlindIndex = (*BlindIndex)(nil)

// NewBlindIndex returns a blind index under key, which should be 32 random
// bytes; it panics on a key shorter than 16 bytes (a programming error).
func NewBlindIndex(key []byte) *BlindIndex {
	if len(key) < 16 {
		panic("subjectkeys: a blind index key needs at least 16 bytes")
	}
	return &BlindIndex{key: append([]byte(nil), key...)}
}

// Token implements domain.BlindIndex: the hex HMAC-SHA256 of
// NormalizeName(name), a zero byte and NormalizeBirthDate(birthDate).
func (b *BlindIndex) Token(name, birthDate string) string {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(NormalizeName(name)))
	m.Write([]byte{0})
	m.Write([]byte(NormalizeBirthDate(birthDate)))
	return hex.EncodeToString(m.Sum(nil))
}

// fingerprintDomain separates fingerprints from tokens under the one key.
const fingerprintDomain = "buurtsignaal request fingerprint\x00"

// Fingerprint implements domain.BlindIndex: the first 16 bytes, in hex, of
// the HMAC-SHA256 of the canonical request under the index key, in a domain
// of its own (no fingerprint equals a token).
func (b *BlindIndex) Fingerprint(canonical []byte) string {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(fingerprintDomain))
	m.Write(canonical)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// folds hands out transformers that decompose compatibility forms (the
// Dutch ligature Ĳ into IJ, ﬁ, full-width letters), drop the combining marks
// that carry diacritics (é -> e, ë -> e, ç -> c) and compose what is left. A
// chain keeps state, so each call takes one of its own.
var folds = sync.Pool{New: func() any {
	return transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}}

// letters maps letters that carry no combining mark to their plain form.
var letters = strings.NewReplacer(
	"ø", "o", "Ø", "O", "ł", "l", "Ł", "L", "đ", "d", "Đ", "D", "ð", "d", "Ð", "D",
	"ß", "ss", "ẞ", "SS", "æ", "ae", "Æ", "AE", "œ", "oe", "Œ", "OE", "þ", "th", "Þ", "TH", "ı", "i",
)

// isApostrophe reports the marks that join a name's parts: d'Ancona, ’t Hart.
func isApostrophe(r rune) bool {
	switch r {
	case '\'', '’', '‘', '`', '´', 'ʼ', 'ʻ', '′':
		return true
	}
	return false
}

// NormalizeName folds the ways one name is written: case, diacritics
// (é -> e), ligatures (Ĳ -> ij), apostrophes (removed: "d'Ancona" is
// "dancona"), other punctuation such as '.' and '-' (a space), and white
// space (collapsed and trimmed). So "J. de Vries-Bakker" and
// "j de vries bakker" match. Word order and the tussenvoegsels themselves are
// kept: "de Vries, J." is another name than "J. de Vries".
func NormalizeName(name string) string {
	name = strings.Map(func(r rune) rune {
		if isApostrophe(r) {
			return -1
		}
		return r
	}, name)
	t := folds.Get().(transform.Transformer)
	folded, _, err := transform.String(t, name) // resets t first
	folds.Put(t)
	if err != nil {
		folded = name
	}
	folded = strings.ToLower(letters.Replace(folded))
	var b strings.Builder
	b.Grow(len(folded))
	space := false
	for _, r := range folded {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
			continue
		}
		space = true
	}
	return b.String()
}

// NormalizeBirthDate writes a birth date as YYYY-MM-DD. It reads
// YYYY-MM-DD and the Dutch DD-MM-YYYY, with '-', '/', '.' or a space between
// the parts and one or two digits for day and month, YYYYMMDD, and an RFC
// 3339 time (its date part). Anything else (or an impossible date such as
// 1950-02-30) is kept trimmed, lower-cased and behind a '?', so it still
// gives a stable token that no valid date gives; an empty date stays empty.
func NormalizeBirthDate(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if d, ok := parseDate(s); ok {
		return d
	}
	return "?" + strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

func parseDate(s string) (string, bool) {
	if len(s) > 10 && (s[10] == 'T' || s[10] == 't' || s[10] == ' ') {
		if _, err := time.Parse(time.RFC3339, strings.ToUpper(s[:10])+"T"+s[11:]); err == nil {
			s = s[:10]
		}
	}
	var parts []string
	if len(s) == 8 && strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		parts = []string{s[:4], s[4:6], s[6:]}
	} else {
		parts = strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '/' || r == '.' || r == ' ' })
	}
	if len(parts) != 3 {
		return "", false
	}
	var y, m, d string
	switch {
	case len(parts[0]) == 4 && len(parts[1]) <= 2 && len(parts[2]) <= 2:
		y, m, d = parts[0], parts[1], parts[2]
	case len(parts[2]) == 4 && len(parts[0]) <= 2 && len(parts[1]) <= 2:
		d, m, y = parts[0], parts[1], parts[2]
	default:
		return "", false
	}
	yi, err1 := strconv.Atoi(y)
	mi, err2 := strconv.Atoi(m)
	di, err3 := strconv.Atoi(d)
	if err1 != nil || err2 != nil || err3 != nil || yi < 1 || mi < 1 || mi > 12 || di < 1 || di > 31 {
		return "", false
	}
	t := time.Date(yi, time.Month(mi), di, 0, 0, 0, 0, time.UTC)
	if t.Day() != di { // 30 February and the like
		return "", false
	}
	return fmt.Sprintf("%04d-%02d-%02d", yi, mi, di), true
}
