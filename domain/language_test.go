package domain

import "testing"

func TestLanguage(t *testing.T) {
	for _, tc := range []struct{ accept, want string }{
		{"", "nl"},
		{"en", "en"},
		{"en-GB,en;q=0.9", "en"},
		{"nl-BE, en;q=0.8", "nl"},
		{"de-DE,de;q=0.9,en;q=0.5", "en"},
		{"fr, de", "nl"},
		{" EN-us ;q=1", "en"},
		{"*", "nl"},
	} {
		if got := Language(tc.accept); got != tc.want {
			t.Errorf("Language(%q) = %q, want %q", tc.accept, got, tc.want)
		}
	}
}
