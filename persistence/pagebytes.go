package persistence

import (
	"slices"
	"unicode/utf8"
)

// DefaultPageBytes is PageQuery.MaxBytes when it is 0: 2 MiB of message
// text a page, counted as JSON writes it (TextBytes). An answer may be
// 256 KiB of text and as much reasoning (more where
// CHATD_MAX_ANSWER_BYTES is raised), a question 32,000 characters (up to
// 128 KB), each up to six times that as JSON, so 500 messages could be
// hundreds of megabytes, held by one request while a slow reader takes
// them; a page stops at this many bytes instead, and says older messages
// exist.
const DefaultPageBytes = 2 << 20

// PageBytes maps 0 (or less) to DefaultPageBytes.
func PageBytes(n int) int {
	if n <= 0 {
		return DefaultPageBytes
	}
	return n
}

// TextBytes is what a message counts against a page's byte budget: the
// bytes of its text and its reasoning as JSON strings hold them, as the
// API writes a page. encoding/json writes < > & (escaped for HTML), control
// characters, U+2028 and U+2029 as six bytes each: a text of < is six
// times its length in the answer.
func TextBytes(m Message) int {
	return jsonLen(m.Content) + jsonLen(m.Reasoning)
}

// jsonLen is the length of s as encoding/json writes it in a string,
// without the quotes (an invalid byte is written as \ufffd).
func jsonLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			n += int(jsonExtra[c])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 5
		case r == '\u2028' || r == '\u2029':
			n += 3
		}
		i += size
	}
	return n
}

// jsonExtra is how many bytes encoding/json adds to each ASCII byte.
var jsonExtra = func() (t [utf8.RuneSelf]uint8) {
	for c := range 0x20 {
		t[c] = 5 // \u00XX
	}
	for _, c := range "<>&" {
		t[c] = 5
	}
	for _, c := range "\"\\\n\r\t\b\f" {
		t[c] = 1
	}
	return t
}()

// PageFill gathers a page of messages read newest first, as both stores
// read them, and says when to stop reading: at q.Limit messages, or at a
// message that would take the page's text past q.MaxBytes (PageBytes).
// The newest message is always taken, whatever its size, so paging back
// always moves on. The message that stopped the page is not kept; it
// exists, so HasMore is true. A store reads at most Rows() rows: a page
// holds the budget's bytes, and one message more while it is read.
type PageFill struct {
	limit, budget, used int
	msgs                []Message
	more                bool
}

// NewPageFill starts the page q asks for.
func NewPageFill(q PageQuery) *PageFill {
	return &PageFill{limit: ClampPageLimit(q.Limit), budget: PageBytes(q.MaxBytes), msgs: []Message{}}
}

// Rows is how many rows a store asks for: one past the limit, which says
// whether older messages exist.
func (f *PageFill) Rows() int { return f.limit + 1 }

// Take adds m, the next older message; false means the page is full
// (m is not in it) and the store stops reading.
func (f *PageFill) Take(m Message) bool {
	n := TextBytes(m)
	if len(f.msgs) == f.limit || (len(f.msgs) > 0 && f.used+n > f.budget) {
		f.more = true
		return false
	}
	f.msgs = append(f.msgs, m)
	f.used += n
	return true
}

// Page returns the page, oldest first.
func (f *PageFill) Page() MessagePage {
	slices.Reverse(f.msgs)
	return MessagePage{Messages: f.msgs, HasMore: f.more}
}
