package openai

import "bytes"

// appendCompact appends to dst a smaller form of payload, the JSON object
// of one chat completion chunk, that go-openai decodes to the same values
// of every field chatd reads (a delta's content, reasoning_content and
// refusal, a choice's index and finish_reason, usage) and to the same
// error, if any. It drops the members chatd never reads (id, object,
// created, model, system_fingerprint, role, logprobs, nulls, empty
// strings, fields go-openai does not know such as OpenAI's obfuscation),
// so go-openai's json.Unmarshal scans a third of the bytes and allocates
// none of their strings.
//
// A member is dropped only when go-openai would decode it without an
// error into a field chatd does not read, or ignore it; everything else
// is copied as it was. The payload is left alone (false) when it is not
// strictly valid JSON, when it has an "error" member (go-openai treats a
// chunk starting with one as the stream's error), or when an object holds
// a name go-openai could match in more than one way: a duplicate, a
// case-insensitive match of a field name, a name with an escape or a
// non-ASCII byte.
func appendCompact(dst, payload []byte) ([]byte, bool) {
	c := compactor{in: payload, out: dst}
	c.space()
	if c.i >= len(c.in) || c.in[c.i] != '{' || !c.object(chunkLevel, 0) {
		return dst, false
	}
	if c.space(); c.i != len(c.in) {
		return dst, false
	}
	return c.out, true
}

// compactor reads in from i and appends the compact form to out.
type compactor struct {
	in  []byte
	i   int
	out []byte
}

// action is what happens to a known member.
type action uint8

const (
	keep          action = iota // copied as it is
	dropString                  // dropped when a string or null
	dropInt                     // dropped when null or an integer that fits an int64
	dropNull                    // dropped when null
	dropZero                    // dropped when the number 0
	dropEmpty                   // dropped when null or ""
	descendObject               // an object of level sub, compacted too
	descendArray                // an array whose objects are of level sub, compacted too
	refuse                      // the payload is left alone
)

// field is a member name go-openai decodes at a level of the chunk.
type field struct {
	name string
	act  action
	sub  *level
}

// level lists the fields of one of go-openai's chunk types
// (ChatCompletionStreamResponse, ChatCompletionStreamChoice,
// ChatCompletionStreamChoiceDelta): every JSON name it decodes, with what
// may be dropped.
type level struct {
	fields []field
	slots  [64]int8 // 1 + the index of the field in each nameSlot; 0: none
}

// newLevel returns the level of fields; no two may share a slot.
func newLevel(fields ...field) *level {
	l := &level{fields: fields}
	for i, f := range fields {
		slot := nameSlot([]byte(f.name))
		if l.slots[slot] != 0 {
			panic("openai: compact: " + f.name + " and " + fields[l.slots[slot]-1].name + " share a slot")
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

var (
	deltaLevel = newLevel(
		field{name: "content", act: dropEmpty}, field{name: "role", act: dropString},
		field{name: "function_call", act: keep}, field{name: "tool_calls", act: keep},
		field{name: "refusal", act: dropEmpty}, field{name: "reasoning_content", act: dropEmpty},
	)
	choiceLevel = newLevel(
		field{name: "index", act: dropZero}, field{name: "delta", act: descendObject, sub: deltaLevel},
		field{name: "logprobs", act: dropNull}, field{name: "finish_reason", act: dropNull},
		field{name: "content_filter_results", act: keep},
	)
	chunkLevel = newLevel(
		field{name: "id", act: dropString}, field{name: "object", act: dropString}, field{name: "created", act: dropInt},
		field{name: "model", act: dropString}, field{name: "choices", act: descendArray, sub: choiceLevel},
		field{name: "system_fingerprint", act: dropString}, field{name: "prompt_annotations", act: keep},
		field{name: "prompt_filter_results", act: keep}, field{name: "usage", act: dropNull},
		field{name: "error", act: refuse},
	)
)

// maxDepth bounds nesting; deeper payloads are left alone.
const maxDepth = 64

// find returns the index of the field named key, or -1 for a name
// go-openai ignores; ok is false for a name it might match otherwise (in
// another case, or spelled with an escape or non-ASCII bytes).
func (l *level) find(key []byte) (idx int, ok bool) {
	if s := l.slots[nameSlot(key)]; s != 0 {
		name := l.fields[s-1].name
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

// object compacts the object at c.i (a '{') whose fields are those of l.
func (c *compactor) object(l *level, depth int) bool {
	if depth >= maxDepth {
		return false
	}
	c.out = append(c.out, '{')
	var seen uint32
	first := true
	if !c.open('}') {
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
			if !ok || idx >= 0 && seen&(1<<idx) != 0 {
				return false
			}
			if !c.member(l, idx, key, &first, depth) {
				return false
			}
			if idx >= 0 {
				seen |= 1 << idx
			}
			if more, ok = c.next('}'); !ok {
				return false
			}
		}
	}
	c.out = append(c.out, '}')
	return true
}

// member reads the value of the member key (field idx of l, or -1 for a
// name go-openai ignores) at c.i and writes it out unless it may be dropped.
func (c *compactor) member(l *level, idx int, key []byte, first *bool, depth int) bool {
	if c.i >= len(c.in) {
		return false
	}
	var f field // a name go-openai ignores: dropped once its value is checked
	if idx >= 0 {
		f = l.fields[idx]
	}
	switch {
	case f.act == refuse:
		return false
	case f.act == descendObject && c.in[c.i] == '{':
		c.key(key, first)
		return c.object(f.sub, depth+1)
	case f.act == descendArray && c.in[c.i] == '[':
		c.key(key, first)
		return c.array(f.sub, depth+1)
	}
	vs := c.i
	if !c.value(depth + 1) {
		return false
	}
	if v := c.in[vs:c.i]; idx >= 0 && !droppable(f.act, v) {
		c.key(key, first)
		c.out = append(c.out, v...)
	}
	return true
}

// array compacts the array at c.i (a '['): its objects have the fields
// of l, anything else is copied.
func (c *compactor) array(l *level, depth int) bool {
	if depth >= maxDepth {
		return false
	}
	c.out = append(c.out, '[')
	if !c.open(']') {
		for more := true; more; {
			if c.i < len(c.in) && c.in[c.i] == '{' {
				if !c.object(l, depth+1) {
					return false
				}
			} else {
				vs := c.i
				if !c.value(depth + 1) {
					return false
				}
				c.out = append(c.out, c.in[vs:c.i]...)
			}
			var ok bool
			if more, ok = c.next(']'); !ok {
				return false
			}
			if more {
				c.out = append(c.out, ',')
			}
		}
	}
	c.out = append(c.out, ']')
	return true
}

// key writes `"key":`, after a comma unless it is the object's first.
func (c *compactor) key(key []byte, first *bool) {
	if !*first {
		c.out = append(c.out, ',')
	}
	*first = false
	c.out = append(c.out, '"')
	c.out = append(c.out, key...)
	c.out = append(c.out, '"', ':')
}

// droppable reports whether act allows dropping the valid JSON value v.
func droppable(act action, v []byte) bool {
	null := string(v) == "null"
	switch act {
	case dropString:
		return null || v[0] == '"'
	case dropInt:
		return null || smallInt(v)
	case dropNull:
		return null
	case dropZero:
		return string(v) == "0"
	case dropEmpty:
		return null || string(v) == `""`
	}
	return false
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
