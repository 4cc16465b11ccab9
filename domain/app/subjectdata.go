package app

import (
	"encoding/json"
	"unicode/utf8"
)

// DecodeSubjectData decodes a subject's data as Raise seals it (json.Marshal
// of SubjectData). A caseload page decodes one per case, so the form
// json.Marshal writes (a flat object of these four string fields, no
// whitespace, no escapes) is read directly, seven times faster; anything
// else goes through encoding/json. FuzzDecodeSubjectData holds the two equal.
func DecodeSubjectData(b []byte) (SubjectData, error) {
	if d, ok := decodeFlat(b); ok {
		return d, nil
	}
	var d SubjectData
	err := json.Unmarshal(b, &d)
	return d, err
}

// decodeFlat reads {"name":"…","birth_date":"…",…} with each known key at
// most once; ok is false for anything it does not read exactly as
// encoding/json would (other keys, case variants, escapes, whitespace).
func decodeFlat(b []byte) (d SubjectData, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return d, false
	}
	if len(b) == 2 {
		return d, true
	}
	var seen [4]bool
	i := 1
	for {
		key, next, ok := flatString(b, i)
		if !ok || next >= len(b) || b[next] != ':' {
			return d, false
		}
		val, next, ok := flatString(b, next+1)
		if !ok || next >= len(b) {
			return d, false
		}
		var f int
		switch key {
		case "name":
			f, d.Name = 0, val
		case "birth_date":
			f, d.BirthDate = 1, val
		case "address":
			f, d.Address = 2, val
		case "phone":
			f, d.Phone = 3, val
		default:
			return d, false
		}
		if seen[f] {
			return d, false
		}
		seen[f] = true
		switch {
		case b[next] == ',':
			i = next + 1
		case next == len(b)-1: // the closing brace
			return d, true
		default:
			return d, false
		}
	}
}

// flatString reads a JSON string without escapes at b[i], valid UTF-8 and
// no control characters, and returns it and the index after it.
func flatString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			if !ascii && !utf8.Valid(s) {
				return "", 0, false
			}
			return string(s), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", 0, false
}
