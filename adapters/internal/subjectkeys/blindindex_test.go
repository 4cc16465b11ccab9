package subjectkeys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"sync"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"initial and double surname", "J. de Vries-Bakker", "j de vries bakker"},
		{"already plain", "j de vries bakker", "j de vries bakker"},
		{"spacing and case", "  J  de   VRIES bakker ", "j de vries bakker"},
		{"tabs, new lines, no-break space", "Jan\tde\nVries\u00a0Bakker", "jan de vries bakker"},
		{"tussenvoegsels keep their words", "Anne-Marie van den Berg", "anne marie van den berg"},
		{"'t", "Jan van 't Hof", "jan van t hof"},
		{"’t", "Jan van ’t Hof", "jan van t hof"},
		{"'s-", "Pieter 's-Gravesande", "pieter s gravesande"},
		{"IJ in capitals", "IJsbrand IJzerman", "ijsbrand ijzerman"},
		{"Ij", "Ijsbrand", "ijsbrand"},
		{"ligature Ĳ", "Ĳsbrand ĳzerman", "ijsbrand ijzerman"},
		{"diaeresis", "Zoë Noël", "zoe noel"},
		{"acute", "Renée Hélène", "renee helene"},
		{"apostrophe joins", "Renée d'Ancona", "renee dancona"},
		{"typographic apostrophe", "renée d’ancona", "renee dancona"},
		{"acute accent as apostrophe", "d´Ancona", "dancona"},
		{"O'", "Siobhan O'Neill", "siobhan oneill"},
		{"Turkish", "Ayşe Çelik Öztürk", "ayse celik ozturk"},
		{"dotless i", "Aydın", "aydin"},
		{"Nordic", "Søren Ødegård Ærø", "soren odegard aero"},
		{"Polish", "Łukasz Wałęsa", "lukasz walesa"},
		{"sharp s", "Straße", "strasse"},
		{"fi ligature", "ﬁlip", "filip"},
		{"full width", "Ｊａｎ", "jan"},
		{"comma and brackets", "Vries, J. (Jan) de", "vries j jan de"},
		{"digits stay", "Willem 2", "willem 2"},
		{"only punctuation", " .-- ", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormalizeName(tt.in); got != tt.want {
				t.Fatalf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeNameKeepsDifferentNamesApart(t *testing.T) {
	tests := []struct{ a, b string }{
		{"Jan de Vries", "Jan de Vriesen"},
		{"J. de Vries", "de Vries, J."},
		{"Van Dijk", "Van Dyk"},
		{"van Dam", "Vandam"},
		{"Jan de Vries", "Jan van Vries"},
	}
	for _, tt := range tests {
		if NormalizeName(tt.a) == NormalizeName(tt.b) {
			t.Errorf("%q and %q normalize alike: %q", tt.a, tt.b, NormalizeName(tt.a))
		}
	}
}

func TestNormalizeBirthDate(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ISO", "1941-03-12", "1941-03-12"},
		{"ISO, one digit, spaces", " 1941-3-2 ", "1941-03-02"},
		{"Dutch", "12-03-1941", "1941-03-12"},
		{"Dutch, one digit", "2-3-1941", "1941-03-02"},
		{"slashes", "12/03/1941", "1941-03-12"},
		{"dots", "12.03.1941", "1941-03-12"},
		{"spaces", "12 03 1941", "1941-03-12"},
		{"compact", "19410312", "1941-03-12"},
		{"RFC 3339", "1941-03-12T00:00:00Z", "1941-03-12"},
		{"RFC 3339 with offset", "1941-03-12t10:00:00+02:00", "1941-03-12"},
		{"leap day", "2000-02-29", "2000-02-29"},
		{"no leap day", "1900-02-29", "?1900-02-29"},
		{"30 February", "1950-02-30", "?1950-02-30"},
		{"month 13", "1950-13-01", "?1950-13-01"},
		{"month and year only", "1941-03", "?1941-03"},
		{"words", "  12 Maart  1941 ", "?12 maart 1941"},
		{"unknown", "Onbekend", "?onbekend"},
		{"empty", "  ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormalizeBirthDate(tt.in); got != tt.want {
				t.Fatalf("NormalizeBirthDate(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	b := NewBlindIndex(key)
	type in struct{ name, date string }
	same := [][]in{
		{{"J. de Vries-Bakker", "1941-03-12"}, {"j de vries bakker", "12-03-1941"}, {" J de  VRIES bakker", "12/3/1941"}},
		{{"Zoë Ĳzerman", "2000-02-29"}, {"Zoe IJzerman", "29-02-2000"}, {"ZOË ĳzerman", "20000229"}},
		{{"Renée d'Ancona", "1956-07-01"}, {"Renee dAncona", "1-7-1956"}, {"renée d’ancona", "1956-07-01T00:00:00Z"}},
	}
	for _, group := range same {
		want := b.Token(group[0].name, group[0].date)
		for _, x := range group[1:] {
			if got := b.Token(x.name, x.date); got != want {
				t.Errorf("Token(%q, %q) differs from Token(%q, %q)", x.name, x.date, group[0].name, group[0].date)
			}
		}
	}
	tok := b.Token("Jan", "1950-01-01")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tok) {
		t.Fatalf("token %q is not 64 hex digits", tok)
	}
	// The token is the HMAC of name, a zero byte and date: stored entries
	// depend on this.
	m := hmac.New(sha256.New, key)
	m.Write([]byte("j de vries bakker\x001941-03-12"))
	if got, want := b.Token("J. de Vries-Bakker", "12-03-1941"), hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("token %s, want %s", got, want)
	}
	if tok == b.Token("Jan", "1950-01-02") {
		t.Error("the birth date does not count")
	}
	if tok == b.Token("Jans", "1950-01-01") {
		t.Error("the name does not count")
	}
	if tok == NewBlindIndex(bytes.Repeat([]byte{8}, 32)).Token("Jan", "1950-01-01") {
		t.Error("the token does not depend on the key")
	}
	key[0] = 0 // NewBlindIndex keeps a copy
	if b.Token("Jan", "1950-01-01") != tok {
		t.Error("changing the caller's key slice changed the tokens")
	}
}

func TestNewBlindIndexRefusesAShortKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a 15-byte key")
		}
	}()
	NewBlindIndex(make([]byte, 15))
}

// Tokens are computed by many request goroutines at once.
func TestTokenConcurrently(t *testing.T) {
	b := NewBlindIndex(bytes.Repeat([]byte{7}, 32))
	names := []string{"J. de Vries-Bakker", "Zoë Ĳzerman", "Renée d'Ancona", "Ayşe Çelik"}
	want := make([]string, len(names))
	for i, n := range names {
		want[i] = b.Token(n, "1950-01-01")
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				j := (g + i) % len(names)
				if got := b.Token(names[j], "1950-01-01"); got != want[j] {
					t.Errorf("token of %q changed under concurrency", names[j])
					return
				}
			}
		})
	}
	wg.Wait()
}
