package batch

import (
	"unicode"
	"unicode/utf8"
)

// checkpointCut returns how many leading bytes of a streaming message's
// pending text a checkpoint writes.
//
// The MongoDB store keeps a message's text as an array of appended chunks and
// searches the chunks one by one, so a checkpoint must not split a word
// across two chunks: it writes up to and including the last whitespace
// character and holds back the trailing partial word. A partial word longer
// than maxHold bytes (a URL, a line of CJK text, a base64 blob) is written
// anyway, so that text without spaces still reaches the database. The cut is
// never inside a UTF-8 character: an incomplete character at the end is
// always held back.
func checkpointCut(text []byte, maxHold int) int {
	end := completeLen(text)
	for i := end; i > 0; {
		r, size := utf8.DecodeLastRune(text[:i])
		if unicode.IsSpace(r) {
			return i
		}
		i -= size
		if end-i > maxHold {
			return end
		}
	}
	return 0
}

// completeLen returns the length of text without a trailing incomplete UTF-8
// character (a multi-byte character whose last bytes have not arrived yet).
func completeLen(text []byte) int {
	n := len(text)
	for j := n - 1; j >= 0 && j >= n-utf8.UTFMax; j-- {
		if !utf8.RuneStart(text[j]) {
			continue
		}
		if !utf8.FullRune(text[j:]) {
			return j
		}
		return n
	}
	return n
}
