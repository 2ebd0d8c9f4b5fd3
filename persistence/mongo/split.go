package mongo

import (
	"sync"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// maxSplitRunes bounds each side of a split word kept for search: a search
// term crossing a chunk boundary is found when the parts before and after
// the boundary each have at most this many characters (any term of up to
// maxSplitRunes+1 characters). It is small because text without spaces (CJK,
// long URLs) is cut wherever the batching writer's hold-back limit falls,
// and every such cut costs up to two sides of this length in writes.
const maxSplitRunes = 16

// maxTails bounds how many streaming messages the store remembers the
// trailing partial word of; when full, one is forgotten (and read back from
// the database if it receives more text).
const maxTails = 10_000

// tailCache remembers, per message still receiving text, the trailing
// partial word of its stored text (what follows the last whitespace, at most
// maxSplitRunes characters; "" when the text ends with whitespace). Entries
// are only changed while the message's document lock is held, so they follow
// the order the database applied the appends in.
type tailCache struct {
	mu sync.Mutex
	m  map[bson.ObjectID]string
}

func (c *tailCache) get(id bson.ObjectID) (tail string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tail, ok = c.m[id]
	return tail, ok
}

func (c *tailCache) set(id bson.ObjectID, tail string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[bson.ObjectID]string)
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= maxTails {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[id] = tail
}

func (c *tailCache) forget(ids ...bson.ObjectID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.m, id)
	}
}

func (c *tailCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

// appendText works out what appending chunk to a text ending in tail writes
// for search: the split word when the boundary cuts a word in two ("" when
// it does not), and the new tail.
func appendText(tail, chunk string) (split, newTail string) {
	if chunk == "" {
		return "", tail
	}
	if tail != "" && !startsWithSpace(chunk) {
		split = tail + leadingWord(chunk)
	}
	if i := lastSpaceEnd(chunk); i >= 0 {
		return split, lastRunes(chunk[i:], maxSplitRunes)
	}
	return split, lastRunes(tail+chunk, maxSplitRunes)
}

// trailingWord is the tail of a whole text.
func trailingWord(text string) string {
	_, tail := appendText("", text)
	return tail
}

func startsWithSpace(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// leadingWord is s up to its first whitespace, at most maxSplitRunes characters.
func leadingWord(s string) string {
	n := 0
	for i, r := range s {
		if unicode.IsSpace(r) || n == maxSplitRunes {
			return s[:i]
		}
		n++
	}
	return s
}

// lastSpaceEnd is the index just after the last whitespace character of s,
// or -1 when s has none.
func lastSpaceEnd(s string) int {
	for i := len(s); i > 0; {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		if unicode.IsSpace(r) {
			return i
		}
		i -= size
	}
	return -1
}

// lastRunes is the last n characters of s.
func lastRunes(s string, n int) string {
	i := len(s)
	for ; i > 0 && n > 0; n-- {
		_, size := utf8.DecodeLastRuneInString(s[:i])
		i -= size
	}
	return s[i:]
}
