package relay

import (
	"errors"
	"strconv"

	"chatd/internal/jsonhex"
)

// errChunk is a chunk whose choices[0].delta.content could not be read.
var errChunk = errors.New("malformed chunk")

// chunkText appends the text of a chat completion chunk's
// choices[0].delta.content to buf, decoded, without reflection: the least
// a relay must read of a chunk. ok is false when the chunk has no content
// there (or it is null); err when the chunk is cut short (its brackets and
// strings unclosed, as a relay must notice) or the path to the content is
// not well-formed JSON. Members are matched by their exact unescaped
// names, as the OpenAI-compatible servers write them.
func chunkText(buf, data []byte) (text []byte, ok bool, err error) {
	if end, err := skipValue(data, space(data, 0)); err != nil || space(data, end) != len(data) {
		return buf, false, errChunk
	}
	i, found, err := member(data, 0, "choices")
	if err != nil || !found {
		return buf, false, err
	}
	if i = space(data, i); i >= len(data) || data[i] != '[' {
		return buf, false, nil // null
	}
	i = space(data, i+1)
	if i >= len(data) || data[i] != '{' {
		return buf, false, nil // no choices
	}
	if i, found, err = member(data, i, "delta"); err != nil || !found {
		return buf, false, err
	}
	if i, found, err = member(data, i, "content"); err != nil || !found {
		return buf, false, err
	}
	if i >= len(data) || data[i] != '"' {
		return buf, false, nil // null
	}
	end, err := stringEnd(data, i)
	if err != nil {
		return buf, false, err
	}
	return jsonhex.AppendUnquoted(buf, data[i+1:end-1]), true, nil
}

// member finds the member named name of the object at data[i:] and
// returns the offset of its value (after any space).
func member(data []byte, i int, name string) (int, bool, error) {
	if i = space(data, i); i >= len(data) || data[i] != '{' {
		return i, false, nil
	}
	i = space(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i, false, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, false, errChunk
		}
		end, err := stringEnd(data, i)
		if err != nil {
			return i, false, err
		}
		key := data[i+1 : end-1]
		if i = space(data, end); i >= len(data) || data[i] != ':' {
			return i, false, errChunk
		}
		i = space(data, i+1)
		if string(key) == name {
			return i, true, nil
		}
		if i, err = skipValue(data, i); err != nil {
			return i, false, err
		}
		switch i = space(data, i); {
		case i < len(data) && data[i] == ',':
			i = space(data, i+1)
		case i < len(data) && data[i] == '}':
			return i, false, nil
		default:
			return i, false, errChunk
		}
	}
}

// skipValue returns the offset after the value at data[i]: a string, an
// object or array (brackets counted outside strings), or a literal.
func skipValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return i, errChunk
	}
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				end, err := stringEnd(data, i)
				if err != nil {
					return i, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return i, errChunk
	}
	start := i
	for i < len(data) && data[i] != ',' && data[i] != '}' && data[i] != ']' && !isSpace(data[i]) {
		i++
	}
	if i == start {
		return i, errChunk
	}
	return i, nil
}

// stringEnd returns the offset after the string that opens at data[i].
func stringEnd(data []byte, i int) (int, error) {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return i, errChunk
}

func space(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// appendDelta appends the delta frame of text, seq the bytes sent so far
// with it, to frame.
func appendDelta(frame []byte, seq int, text []byte) []byte {
	frame = append(frame, `{"type":"delta","seq":`...)
	frame = strconv.AppendInt(frame, int64(seq), 10)
	frame = append(frame, `,"text":`...)
	frame = appendString(frame, text)
	return append(frame, '}')
}

// appendString appends s, valid UTF-8, as a JSON string: quotes,
// backslashes and control characters escaped, the rest as it is.
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', jsonhex.Digits[c>>4], jsonhex.Digits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendDone appends the done frame of an answer of seq bytes to frame;
// message is said only for an error.
func appendDone(frame []byte, seq int, status, message string) []byte {
	frame = append(frame, `{"type":"done","seq":`...)
	frame = strconv.AppendInt(frame, int64(seq), 10)
	frame = append(frame, `,"status":`...)
	frame = appendString(frame, []byte(status))
	frame = append(frame, `,"message":`...)
	frame = appendString(frame, []byte(message))
	return append(frame, '}')
}
