package openai

import "strings"

// The tags of a model thinking inline.
const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
)

// maxLeadSpace bounds the white space held before a possible <think>: an
// answer starting with more is taken for one that does not think inline.
const maxLeadSpace = 64

// thinkState is where an inlineThink is in the answer.
type thinkState uint8

const (
	thinkStart    thinkState = iota // nothing but white space and part of <think> yet
	thinkLead                       // after <think>: white space, dropped
	thinkIn                         // the thinking, up to </think>
	thinkTrail                      // after </think>: line breaks, dropped
	thinkAnswered                   // the rest is the answer
)

// inlineThink splits an answer's text into the thinking a model put
// inline at its very start, as DeepSeek-R1 and QwQ do when served without
// a reasoning parser (vLLM's default, llama.cpp, LM Studio, older
// Ollama): "<think>…</think>" after optional white space, and the answer
// after it (its leading line breaks dropped, and the white space that
// starts the thinking). Text that does not start so is all answer, byte
// for byte. It holds back only what may still be a tag (and the white
// space before a <think> that may follow, at most maxLeadSpace bytes):
// at most len(thinkClose)-1 bytes once thinking. It works on bytes; the
// tags being ASCII, whole characters in give whole characters out.
type inlineThink struct {
	state thinkState
	held  string
}

// push takes the next text of the answer and returns the thinking and
// the answer it completes.
func (s *inlineThink) push(t string) (thinking, text string) {
	if s.state == thinkAnswered {
		return "", t
	}
	t, s.held = s.held+t, ""
	for t != "" {
		var th, tx string
		th, tx, t = s.step(t)
		thinking += th
		text += tx
	}
	return thinking, text
}

// step consumes the start of t in the current state and returns the
// thinking and answer it gives, and what is left of t for the next state.
func (s *inlineThink) step(t string) (thinking, text, rest string) {
	switch s.state {
	case thinkStart:
		return "", "", s.start(t)
	case thinkLead:
		if t = strings.TrimLeft(t, " \t\r\n"); t != "" {
			s.state = thinkIn
		}
		return "", "", t
	case thinkIn:
		i := strings.Index(t, thinkClose)
		if i < 0 {
			keep := len(t) - tagPrefixLen(t, thinkClose)
			s.held = t[keep:]
			return t[:keep], "", ""
		}
		s.state = thinkTrail
		return t[:i], "", t[i+len(thinkClose):]
	case thinkTrail:
		if t = strings.TrimLeft(t, "\r\n"); t != "" {
			s.state = thinkAnswered
		}
		return "", t, ""
	}
	return "", t, ""
}

// start reads the answer's start t and returns what is left of it: past
// <think> (after white space) when t begins so; nothing while t may
// still (it is held); all of t when it cannot, the rest of the answer
// then.
func (s *inlineThink) start(t string) string {
	body := strings.TrimLeft(t, " \t\r\n")
	switch {
	case len(t)-len(body) > maxLeadSpace:
	case strings.HasPrefix(body, thinkOpen):
		s.state = thinkLead
		return body[len(thinkOpen):]
	case strings.HasPrefix(thinkOpen, body):
		s.held = t
		return ""
	}
	s.state = thinkAnswered
	return t
}

// flush ends the answer: what is held goes where it stands, thinking
// inside an unclosed <think>, answer before one (white space and "<th"
// that turned out to be text).
func (s *inlineThink) flush() (thinking, text string) {
	held := s.held
	s.held = ""
	switch s.state {
	case thinkStart:
		s.state = thinkAnswered
		return "", held
	case thinkIn:
		return held, ""
	}
	return "", held
}

// tagPrefixLen is the length of the longest end of t that is a proper
// start of tag: what may still become tag with more text.
func tagPrefixLen(t, tag string) int {
	for n := min(len(t), len(tag)-1); n > 0; n-- {
		if strings.HasSuffix(t, tag[:n]) {
			return n
		}
	}
	return 0
}

// answerParts are the reasoning and text of one attempt's answer as they
// stream: whole characters of each, the answer's inline thinking (see
// inlineThink) moved to the reasoning.
type answerParts struct {
	text, reasoning utf8Joiner
	think           inlineThink
	// fielded is set once the upstream sent reasoning in a field of its
	// own: inline thinking is then a copy of it (llama.cpp's
	// deepseek-legacy format sends both), and dropped.
	fielded bool
}

// add takes a choice's reasoning field and content (its refusal
// included) and returns the reasoning and the text they complete.
func (a *answerParts) add(reasoning, content string) (string, string) {
	a.fielded = a.fielded || reasoning != ""
	r := a.reasoning.push(reasoning)
	thinking, text := a.think.push(a.text.push(content))
	return r + a.inline(thinking), text
}

// flush returns what is held back at the answer's end.
func (a *answerParts) flush() (string, string) {
	r := a.reasoning.flush()
	thinking, text := a.think.push(a.text.flush())
	th, tx := a.think.flush()
	return r + a.inline(thinking+th), text + tx
}

// inline is the reasoning that inline thinking gives.
func (a *answerParts) inline(thinking string) string {
	if a.fielded {
		return ""
	}
	return thinking
}
