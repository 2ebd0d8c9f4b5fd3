package openai

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"chatd/internal/jsonhex"
)

// Reading the values of JSON objects whose members are fields of Go types
// decoded by encoding/json, as encoding/json would decode them.

// level lists the JSON field names of a Go type, as encoding/json
// matches them.
type level struct {
	names []string
	slots [64]int8 // 1 + the index of the name in each nameSlot; 0: none
}

// newLevel returns the level of names; no two may share a slot.
func newLevel(names ...string) *level {
	l := &level{names: names}
	for i, n := range names {
		slot := nameSlot([]byte(n))
		if l.slots[slot] != 0 {
			panic("openai: " + n + " and " + names[l.slots[slot]-1] + " share a slot")
		}
		l.slots[slot] = int8(i + 1)
	}
	return l
}

// nameSlot hashes a name's length and its first and last bytes with ASCII
// letters folded to lower case, so a name that differs from a field's only
// in case lands in that field's slot.
func nameSlot(name []byte) int {
	if len(name) == 0 {
		return 0
	}
	return (len(name) + int(name[0]|0x20) + int(name[len(name)-1]|0x20)) & 63
}

// maxDepth bounds nesting; deeper values are not read.
const maxDepth = 64

// find returns the index of the name key, or -1 for a name encoding/json
// ignores; ok is false for a name it might match otherwise (in another
// case, or spelled with an escape or non-ASCII bytes).
func (l *level) find(key []byte) (idx int, ok bool) {
	if s := l.slots[nameSlot(key)]; s != 0 {
		name := l.names[s-1]
		if string(key) == name {
			return int(s - 1), true
		}
		if len(key) == len(name) && bytes.EqualFold(key, []byte(name)) {
			return -1, false
		}
	}
	for _, b := range key {
		if b == '\\' || b >= 0x80 {
			return -1, false
		}
	}
	return -1, true
}

// members reads the object at c.i (a '{') whose field names are l's: it
// calls member with the index of each field's name and the value at c.i,
// and checks and skips the members of other names (go-openai ignores
// them). It fails on a name seen before and on a name go-openai might
// match to a field in another way.
func (c *scanner) members(l *level, depth int, member func(idx, depth int) bool) bool {
	if depth >= maxDepth {
		return false
	}
	if c.open('}') {
		return true
	}
	var seen uint32
	for more := true; more; {
		ks := c.i
		if !c.string() {
			return false
		}
		key := c.in[ks+1 : c.i-1]
		if c.space(); c.i >= len(c.in) || c.in[c.i] != ':' {
			return false
		}
		c.i++
		c.space()
		idx, ok := l.find(key)
		switch {
		case !ok || c.i >= len(c.in):
			return false
		case idx < 0:
			ok = c.value(depth + 1)
		case seen&(1<<idx) != 0:
			return false
		default:
			seen |= 1 << idx
			ok = member(idx, depth)
		}
		if !ok {
			return false
		}
		if more, ok = c.next('}'); !ok {
			return false
		}
	}
	return true
}

// null moves past a null at c.i and reports whether there was one.
func (c *scanner) null() bool {
	return c.i < len(c.in) && c.in[c.i] == 'n' && c.literal("null")
}

// skipString moves past the string or null at c.i; esc reports whether
// the string has an escape.
func (c *scanner) skipString() (esc, ok bool) {
	if c.null() {
		return false, true
	}
	return c.stringEsc()
}

// text decodes the string or null (as "") at c.i as encoding/json does,
// cut from a (see textArena), and moves past it.
func (c *scanner) text(a *textArena) (string, bool) {
	start := c.i
	esc, ok := c.skipString()
	if !ok || c.in[start] == 'n' {
		return "", ok
	}
	raw := c.in[start+1 : c.i-1]
	if !esc && utf8.Valid(raw) {
		return a.cut(raw), true
	}
	return a.unquoted(raw), true
}

// textArena cuts the strings of a stream's chunks out of a block of a few
// kilobytes at a time, where each took an allocation of its own (a
// token's text is a few bytes). The block is a strings.Builder: a string
// it returned keeps the bytes it was cut from, which the builder never
// writes again (it only appends, and copies when it grows), so no string
// is ever overwritten; a full block is left to the strings cut from it
// and a new one started. A string kept (the store writer holds each piece
// until the next checkpoint) keeps its block alive: at most arenaBlock
// bytes, of the same answer's text. It is used by one goroutine.
type textArena struct {
	block   strings.Builder
	scratch []byte // an escaped string's decoding, before it is cut
}

// arenaBlock is the size of a textArena's block; a string longer than a
// quarter of it is allocated alone.
const arenaBlock = 2 << 10

// cut returns a string of p's bytes.
func (a *textArena) cut(p []byte) string {
	switch {
	case len(p) == 0:
		return ""
	case len(p) > arenaBlock/4:
		return string(p)
	case a.block.Cap()-a.block.Len() < len(p):
		a.block = strings.Builder{}
		a.block.Grow(arenaBlock)
	}
	start := a.block.Len()
	a.block.Write(p)
	return a.block.String()[start:]
}

// unquoted returns the string the JSON string raw (without its quotes)
// decodes to, as encoding/json decodes it.
func (a *textArena) unquoted(raw []byte) string {
	a.scratch = jsonhex.AppendUnquoted(a.scratch[:0], raw)
	s := a.cut(a.scratch)
	if cap(a.scratch) > arenaBlock {
		a.scratch = nil // a long string's: not kept
	}
	return s
}

// int reads the integer or null (as 0) at c.i; it fails on a number that
// is not an integer of at most 18 digits (encoding/json may reject those).
func (c *scanner) int() (int, bool) {
	if c.null() {
		return 0, true
	}
	start := c.i
	if !c.number() {
		return 0, false
	}
	v := c.in[start:c.i]
	if !smallInt(v) {
		return 0, false
	}
	neg := v[0] == '-'
	if neg {
		v = v[1:]
	}
	n := 0
	for _, b := range v {
		n = n*10 + int(b-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// smallInt reports whether the valid JSON number v is an integer of at
// most 18 digits (it fits an int64).
func smallInt(v []byte) bool {
	if v[0] == '-' {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 18 {
		return false
	}
	for _, b := range v {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}
