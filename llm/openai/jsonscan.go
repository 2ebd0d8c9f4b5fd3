package openai

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// scanner reads JSON from in at i with strict syntax checks (RFC 8259, as
// encoding/json accepts it): a value it skips is one go-openai would parse
// too. The chunk decoder reads with it.
type scanner struct {
	in []byte
	i  int
}

// value checks the JSON value at c.i and moves past it.
func (c *scanner) value(depth int) bool {
	if c.i >= len(c.in) || depth >= maxDepth {
		return false
	}
	switch b := c.in[c.i]; {
	case b == '"':
		return c.string()
	case b == '{':
		return c.skipComposite('}', depth, true)
	case b == '[':
		return c.skipComposite(']', depth, false)
	case b == '-' || b >= '0' && b <= '9':
		return c.number()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	}
	return false
}

// skipComposite checks the object (members) or array at c.i, ending in end.
func (c *scanner) skipComposite(end byte, depth int, members bool) bool {
	if c.open(end) {
		return true
	}
	for more := true; more; {
		if members {
			if !c.string() {
				return false
			}
			if c.space(); c.i >= len(c.in) || c.in[c.i] != ':' {
				return false
			}
			c.i++
			c.space()
		}
		if !c.value(depth + 1) {
			return false
		}
		var ok bool
		if more, ok = c.next(end); !ok {
			return false
		}
	}
	return true
}

// open moves past the '{' or '[' at c.i and the space after it, and
// reports whether the container ends right there (its end moved past too).
func (c *scanner) open(end byte) (empty bool) {
	c.i++
	c.space()
	if c.i < len(c.in) && c.in[c.i] == end {
		c.i++
		return true
	}
	return false
}

// next moves past the space and the ',' or end that follow a member or an
// element: more after a ',' (and the space after it), ok false when
// neither comes.
func (c *scanner) next(end byte) (more, ok bool) {
	c.space()
	if c.i >= len(c.in) {
		return false, false
	}
	switch c.in[c.i] {
	case ',':
		c.i++
		c.space()
		return true, true
	case end:
		c.i++
		return false, true
	}
	return false, false
}

// string checks the string at c.i (escapes, no control characters) and
// moves past its closing quote.
func (c *scanner) string() bool {
	_, ok := c.stringEsc()
	return ok
}

// stringEsc is string; esc reports whether the string has an escape.
func (c *scanner) stringEsc() (esc, ok bool) {
	if c.i >= len(c.in) || c.in[c.i] != '"' {
		return false, false
	}
	in := c.in
	i := c.i + 1
	for {
		if i = nextSpecial(in, i); i >= len(in) {
			return false, false
		}
		switch in[i] {
		case '"':
			c.i = i + 1
			return esc, true
		case '\\':
			n := escapeLen(in[i:])
			if n == 0 {
				return false, false
			}
			i, esc = i+n, true
		default: // a control character
			return false, false
		}
	}
}

// nextSpecial returns the index of the first quote, backslash or control
// character (below 0x20) in in at or after i, or len(in); it tests eight
// bytes at a time.
func nextSpecial(in []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(in); i += 8 {
		w := binary.LittleEndian.Uint64(in[i:])
		q, bs := w^(ones*'"'), w^(ones*'\\')
		// Each term flags the bytes that are zero (below 0x20 for the
		// last); the lowest flag is always a true one.
		m := (q-ones)&^q | (bs-ones)&^bs | (w-ones*0x20)&^w
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(in) && plainByte[in[i]] {
		i++
	}
	return i
}

// plainByte marks the bytes that stand for themselves inside a JSON string.
var plainByte = func() (t [256]bool) {
	for b := 0x20; b < 256; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// escapeLen returns the length of the valid escape e starts with, or 0.
func escapeLen(e []byte) int {
	if len(e) < 2 {
		return 0
	}
	switch e[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if len(e) >= 6 && isHex(e[2]) && isHex(e[3]) && isHex(e[4]) && isHex(e[5]) {
			return 6
		}
	}
	return 0
}

// number checks the number at c.i against JSON's grammar.
func (c *scanner) number() bool {
	i := c.i
	if i < len(c.in) && c.in[i] == '-' {
		i++
	}
	switch {
	case i < len(c.in) && c.in[i] == '0':
		i++
	case i < len(c.in) && c.in[i] >= '1' && c.in[i] <= '9':
		i = c.digits(i)
	default:
		return false
	}
	if i < len(c.in) && c.in[i] == '.' {
		if j := c.digits(i + 1); j > i+1 {
			i = j
		} else {
			return false
		}
	}
	if i < len(c.in) && (c.in[i] == 'e' || c.in[i] == 'E') {
		i++
		if i < len(c.in) && (c.in[i] == '+' || c.in[i] == '-') {
			i++
		}
		j := c.digits(i)
		if j == i {
			return false
		}
		i = j
	}
	c.i = i
	return true
}

// digits returns the end of the run of digits starting at i.
func (c *scanner) digits(i int) int {
	for i < len(c.in) && c.in[i] >= '0' && c.in[i] <= '9' {
		i++
	}
	return i
}

func (c *scanner) literal(lit string) bool {
	if !bytes.HasPrefix(c.in[c.i:], []byte(lit)) {
		return false
	}
	c.i += len(lit)
	return true
}

// space skips JSON whitespace.
func (c *scanner) space() {
	for c.i < len(c.in) && c.in[c.i] <= ' ' && isSpace(c.in[c.i]) {
		c.i++
	}
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
