package domain

import "strings"

// Language picks the language of an answer, nl or en, from an
// Accept-Language header: the first tag that names one of them, Dutch when
// none does. The API and the console share this one rule.
func Language(accept string) string {
	for _, part := range strings.Split(accept, ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "nl"):
			return "nl"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return "nl"
}
