package protocol

import (
	"strconv"
	"unicode/utf8"
	"unsafe"

	"chatd/internal/jsonhex"
)

// textFrame encodes a delta or reasoning frame, the one frame per token of
// a stream, without reflection: the same bytes json.Marshal writes for
// deltaFrame and reasoningFrame (TestTextFrameMatchesMarshal), in one
// allocation (allocFrame) where json.Marshal took four. cursor is
// the value of the frame's cursor member, "seq" or "rseq".
func textFrame[T string | []byte](f Frame, cursor string, at int64, text T) *Frame {
	p, b := allocFrame(f, textNeed(&f, cursor, text))
	p.Data = appendTextFrame(b, p, cursor, at, text)
	return p
}

// textNeed is the most bytes textFrame may write for f and text.
func textNeed[T string | []byte](f *Frame, cursor string, text T) int {
	// 80: the member names, quotes and punctuation, and up to 20 digits.
	return 80 + len(f.Type) + len(cursor) + len(f.ConversationID) + len(f.MessageID) + len(text) + len(text)/8
}

// appendTextFrame appends the JSON of f, a delta or reasoning frame, to b.
func appendTextFrame[T string | []byte](b []byte, f *Frame, cursor string, at int64, text T) []byte {
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
	return append(b, '}')
}

// allocFrame returns a copy of f and an empty buffer of at least need
// bytes for its Data: in one allocation of 256, 320, 384 or 512 bytes (the
// allocator's size classes) when need fits beside the Frame, as a token's
// frame does, else in two.
func allocFrame(f Frame, need int) (*Frame, []byte) {
	switch {
	case need <= len(framed256{}.data):
		fd := &framed256{Frame: f}
		return &fd.Frame, fd.data[:0]
	case need <= len(framed320{}.data):
		fd := &framed320{Frame: f}
		return &fd.Frame, fd.data[:0]
	case need <= len(framed384{}.data):
		fd := &framed384{Frame: f}
		return &fd.Frame, fd.data[:0]
	case need <= len(framed512{}.data):
		fd := &framed512{Frame: f}
		return &fd.Frame, fd.data[:0]
	}
	p := new(Frame) // not &f: f would then escape on every path
	*p = f
	return p, make([]byte, 0, need)
}

// frameSize is the size of a Frame, which a framed* holds before its bytes.
const frameSize = int(unsafe.Sizeof(Frame{}))

// A Frame and the bytes of its Data, allocated together.
type (
	framed256 struct {
		Frame
		data [256 - frameSize]byte
	}
	framed320 struct {
		Frame
		data [320 - frameSize]byte
	}
	framed384 struct {
		Frame
		data [384 - frameSize]byte
	}
	framed512 struct {
		Frame
		data [512 - frameSize]byte
	}
)

// jsonSafe[c] reports whether appendJSONString writes the byte c as it is
// wherever it appears: ASCII but for control characters, quotes,
// backslashes and the HTML characters <, > and &. One table lookup per
// byte rather than six comparisons (a token's frame carries two ids and
// its text).
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// safeRun returns how many bytes s begins with that appendJSONString
// writes as they are: a loop of its own, small enough that the compiler
// keeps its index and length in registers, which it did not for the same
// test inside appendJSONString (BenchmarkDeltaFrame: a fifth fewer
// instructions a frame).
func safeRun[T string | []byte](s T) int {
	for i := 0; i < len(s); i++ {
		if !jsonSafe[s[i]] {
			return i
		}
	}
	return len(s)
}

// appendJSONString appends s as encoding/json encodes a string: quotes,
// backslashes and control characters escaped, <, > and & escaped for
// HTML, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendJSONString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if n := safeRun(s[i:]); n > 0 {
			i += n
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
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
			b = append(b, '\\', 'u', '2', '0', '2', jsonhex.Digits[r&0xF])
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
	return append(b, '\\', 'u', '0', '0', jsonhex.Digits[c>>4], jsonhex.Digits[c&0xF])
}
