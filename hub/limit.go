package hub

import (
	"errors"
	"unicode/utf8"
)

// errTooLong ends an answer that reached Options.MaxAnswerBytes; it is
// stored complete with finish reason "length", like an upstream's own cut.
var errTooLong = errors.New("the answer reached the size limit")

// capLocked returns the part of text that still fits after have bytes of
// the same stream (the answer's text, or its reasoning: each is bounded by
// MaxAnswerBytes). When text reaches the limit, it keeps what fits (whole
// characters only), marks the generation capped and cancels its stream;
// everything after, of either stream, is dropped. conv.mu is held.
func (g *generation) capLocked(have int, text string) string {
	if g.capped {
		return ""
	}
	room := g.hub.opts.MaxAnswerBytes - have
	if len(text) <= room {
		return text
	}
	for room > 0 && !utf8.RuneStart(text[room]) {
		room--
	}
	g.capped = true
	g.cancel(errTooLong)
	return text[:room]
}

// isCapped reports whether the answer or its reasoning was cut at MaxAnswerBytes.
func (g *generation) isCapped() bool {
	g.conv.mu.Lock()
	defer g.conv.mu.Unlock()
	return g.capped
}
