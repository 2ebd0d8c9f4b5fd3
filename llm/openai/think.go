package openai

import (
	"fmt"
	"strings"
)

// InlineThinking is how a model puts its thinking in its answer's content,
// when its server sends it there instead of in a reasoning field of its
// own (see Options.InlineThinking).
type InlineThinking string

// The ways a model thinks inline.
const (
	// ThinkAuto (the default, also "") takes a block "<think>…</think>"
	// at the very start of the content (after optional white space) for
	// the thinking; content that does not start so is all answer.
	ThinkAuto InlineThinking = "auto"
	// ThinkOpen is a model whose prompt template opens the block itself
	// (DeepSeek-R1 and its distills, QwQ-32B, Qwen3's Thinking-2507
	// models): its content starts inside the thinking and holds only the
	// "</think>". Everything up to the first </think> is the thinking
	// (a <think> at the very start, after optional white space, is
	// dropped too), the rest the answer; content without </think> is
	// all thinking, as an unclosed block under ThinkAuto. Once the
	// server sent a reasoning field before the content started (its
	// reasoning parser split the thinking off), the content is read as
	// under ThinkAuto.
	ThinkOpen InlineThinking = "open"
	// ThinkOff is a model that does not think inline: its content is the
	// answer, byte for byte, a leading <think> included.
	ThinkOff InlineThinking = "off"
)

// ParseInlineThinking reads a mode's name: auto, open or off.
func ParseInlineThinking(s string) (InlineThinking, error) {
	switch m := InlineThinking(s); m {
	case ThinkAuto, ThinkOpen, ThinkOff:
		return m, nil
	}
	return "", fmt.Errorf("%q is not an inline thinking mode (auto, open or off)", s)
}

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
	thinkOpened                     // ThinkOpen's start: white space dropped, part of <think> held
	thinkLead                       // after <think>: white space, dropped
	thinkIn                         // the thinking, up to </think>
	thinkTrail                      // after </think>: line breaks, dropped
	thinkAnswered                   // the rest is the answer
)

// inlineThink splits an answer's text into the thinking a model put
// inline at its very start, as DeepSeek-R1 and QwQ do when served without
// a reasoning parser (vLLM's default, llama.cpp, LM Studio, older
// Ollama): "<think>…</think>" after optional white space (ThinkAuto), or
// everything up to "</think>" when the prompt's template opened the block
// (ThinkOpen), and the answer after it (its leading line breaks dropped,
// and the white space that starts the thinking). Text that does not start
// so under ThinkAuto, and all text under ThinkOff, is all answer, byte
// for byte. It holds back only what may still be a tag (and the white
// space before a <think> that may follow, at most maxLeadSpace bytes):
// at most len(thinkClose)-1 bytes once thinking. It works on bytes; the
// tags being ASCII, whole characters in give whole characters out.
//
// Its zero value reads an answer as ThinkAuto; newInlineThink takes the
// mode.
type inlineThink struct {
	state thinkState
	held  string
}

// newInlineThink returns the splitter of an answer of a model thinking
// inline as mode says ("" is ThinkAuto).
func newInlineThink(mode InlineThinking) inlineThink {
	switch mode {
	case ThinkOpen:
		return inlineThink{state: thinkOpened}
	case ThinkOff:
		return inlineThink{state: thinkAnswered}
	}
	return inlineThink{}
}

// parsed tells s that the server sends the thinking in a field of its
// own: content not yet started is no longer taken for being inside a
// block the template opened (ThinkOpen), but read as under ThinkAuto.
func (s *inlineThink) parsed() {
	if s.state == thinkOpened {
		s.state = thinkStart
	}
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
	case thinkOpened:
		return "", "", s.opened(t)
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

// opened reads the start t of an answer whose template opened the
// thinking (ThinkOpen) and returns what is left of it: the thinking,
// without its leading white space nor a <think> after it. A start of
// <think> is held; white space alone is dropped.
func (s *inlineThink) opened(t string) string {
	body := strings.TrimLeft(t, " \t\r\n")
	switch {
	case body == "":
		return ""
	case strings.HasPrefix(body, thinkOpen):
		s.state = thinkLead
		return body[len(thinkOpen):]
	case strings.HasPrefix(thinkOpen, body):
		s.held = body
		return ""
	}
	s.state = thinkIn
	return body
}

// flush ends the answer: what is held goes where it stands, thinking
// inside an unclosed <think> (or one the template opened), answer before
// one (white space and "<th" that turned out to be text).
func (s *inlineThink) flush() (thinking, text string) {
	held := s.held
	s.held = ""
	switch s.state {
	case thinkStart:
		s.state = thinkAnswered
		return "", held
	case thinkIn, thinkOpened:
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
// inlineThink) moved to the reasoning. Its zero value reads inline
// thinking as ThinkAuto; newAnswerParts takes the mode.
type answerParts struct {
	text, reasoning utf8Joiner
	think           inlineThink
	// fielded is set once the upstream sent reasoning in a field of its
	// own: inline thinking is then a copy of it (llama.cpp's
	// deepseek-legacy format sends both), and dropped.
	fielded bool
}

// newAnswerParts returns the parts of an answer of a model thinking
// inline as mode says.
func newAnswerParts(mode InlineThinking) answerParts {
	return answerParts{think: newInlineThink(mode)}
}

// add takes a choice's reasoning field and content (its refusal
// included) and returns the reasoning and the text they complete.
func (a *answerParts) add(reasoning, content string) (string, string) {
	if reasoning != "" {
		a.fielded = true
		a.think.parsed()
	}
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

// heldText returns, at a failure, the answer text held back as what may
// have become a tag (a "<" that might have opened <think>, and the white
// space before it): text, lost otherwise. Held thinking (the start of a
// close tag) and a character cut short are dropped, as they are not
// shown of an answer that broke off.
func (a *answerParts) heldText() string {
	if a.think.state != thinkStart {
		return ""
	}
	_, text := a.think.flush()
	return text
}

// inline is the reasoning that inline thinking gives.
func (a *answerParts) inline(thinking string) string {
	if a.fielded {
		return ""
	}
	return thinking
}
