package protocol

import (
	"strconv"
	"unicode/utf8"
)

// textFrame encodes a delta or reasoning frame, the one frame per token of
// a stream, without reflection: the same bytes json.Marshal writes for
// deltaFrame and reasoningFrame (TestTextFrameMatchesMarshal), in two
// allocations (the Frame and its Data) instead of four. cursor is the
// value of the frame's cursor member, "seq" or "rseq".
func textFrame[T string | []byte](f *Frame, cursor string, at int64, text T) *Frame {
	// 80: the member names, quotes and punctuation, and up to 20 digits.
	b := make([]byte, 0, 80+len(f.Type)+len(cursor)+len(f.ConversationID)+len(f.MessageID)+len(text)+len(text)/8)
	b = append(b, `{"type":`...)
	b = appendJSONString(b, f.Type)
	b = append(b, `,"conversationId":`...)
	b = appendJSONString(b, f.ConversationID)
	b = append(b, `,"messageId":`...)
	b = appendJSONString(b, f.MessageID)
	b = append(b, ',', '"')
	b = append(b, cursor...)
	b = append(b, '"', ':')
	b = strconv.AppendInt(b, at, 10)
	b = append(b, `,"text":`...)
	b = appendJSONString(b, text)
	f.Data = append(b, '}')
	return f
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json encodes a string: quotes,
// backslashes and control characters escaped, <, > and & escaped for
// HTML, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendJSONString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = appendEscape(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEscape appends the escape of the ASCII byte c.
func appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}
