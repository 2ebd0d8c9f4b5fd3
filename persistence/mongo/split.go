package mongo

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// maxSplitRunes bounds each side of a split word kept for search: a run
// of text without whitespace that crosses chunk boundaries has, around the
// last boundary it crosses, at most this many characters on each side
// when it has at most maxPieceRunes characters, so it lies whole inside
// the split word kept there (the characters before the boundary are the
// end of the text's trailing word, whatever chunks it spans: see
// appendText). It is small because text without spaces (CJK, long URLs)
// is cut wherever the batching writer's hold-back limit falls, and every
// such cut costs up to two sides of this length in writes, in the
// document and in the text index. A longer search term is not looked for
// whole in the chunks and split words but by its pieces of at most
// maxPieceRunes characters, each of which lies inside one of them, and
// checked against the message's joined text (see conversationsWithText).
const maxSplitRunes = 16

// maxPieceRunes is the longest run of characters without whitespace
// that, wherever the chunk boundaries fall, lies inside one chunk or one
// split word of every message whose text holds it (see maxSplitRunes).
const maxPieceRunes = maxSplitRunes + 1

// maxTails bounds how many streaming messages the store remembers the
// stored state of; when full, one is forgotten (and read back from the
// database if it receives more text).
const maxTails = 10_000

// stored is what the store knows of a streaming message's stored text:
// the trailing partial word of its content (what follows the last
// whitespace, at most maxSplitRunes characters; "" when the text ends with
// whitespace) and how many chunks its content and reasoning arrays hold,
// the version an appending statement is conditioned on (see
// mergedUpdate.filter).
type stored struct {
	tail     string
	chunks   int // len(content)
	thoughts int // len(reasoning)
	// unsure marks the state a statement reported failed was written from:
	// the statement may still apply later, and the caller's retry repeats
	// its text. The chunks stored beyond this state are then a prefix of
	// the retry's text, which the store does not write again (rebase).
	unsure bool
}

// after is the state s leaves once chunk and thought (either may be
// empty) are appended.
func (s stored) after(chunk, thought string) stored {
	next := stored{tail: s.tail, chunks: s.chunks, thoughts: s.thoughts}
	if chunk != "" {
		_, next.tail = appendText(s.tail, chunk)
		next.chunks++
	}
	if thought != "" {
		next.thoughts++
	}
	return next
}

// storedOf is the state of a message whose content and reasoning arrays
// are content and reasoning.
func storedOf(content, reasoning []string) stored {
	return stored{tail: trailingWord(strings.Join(content, "")), chunks: len(content), thoughts: len(reasoning)}
}

// tailCache remembers the stored state of messages still receiving text.
// ApplyMessageUpdates sets entries only while it holds the message's
// write lock (docLocks.writeLock, taken on every server), so they follow
// the order the database applied the appends in; elsewhere entries are
// set for a message just inserted or forgotten for one that ended.
type tailCache struct {
	mu sync.Mutex
	m  map[bson.ObjectID]stored
}

func (c *tailCache) get(id bson.ObjectID) (st stored, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok = c.m[id]
	return st, ok
}

func (c *tailCache) set(id bson.ObjectID, st stored) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[bson.ObjectID]stored)
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= maxTails {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[id] = st
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
