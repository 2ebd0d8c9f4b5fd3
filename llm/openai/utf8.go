package openai

import (
	"strings"
	"unicode/utf8"
)

// utf8Joiner holds back a trailing incomplete UTF-8 sequence until the
// next piece completes it, so callers only ever see whole characters.
// (go-openai decodes JSON strings, which are always valid, so this is a
// guard, not a hot path.)
type utf8Joiner struct{ pending string }

// push returns the whole characters of pending+s.
func (j *utf8Joiner) push(s string) string {
	if j.pending != "" {
		s, j.pending = j.pending+s, ""
	}
	cut := completePrefix(s)
	j.pending = s[cut:]
	return s[:cut]
}

// flush returns what is held back, invalid bytes replaced.
func (j *utf8Joiner) flush() string {
	s := strings.ToValidUTF8(j.pending, "\uFFFD")
	j.pending = ""
	return s
}

// completePrefix returns the length of s without a trailing incomplete
// UTF-8 sequence.
func completePrefix(s string) int {
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if utf8.FullRuneInString(s[i:]) {
				return len(s)
			}
			return i
		}
	}
	return len(s)
}
