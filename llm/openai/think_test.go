package openai

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// thinkCases are answers as an upstream sends them in content, with the
// reasoning and the text chatd makes of them.
var thinkCases = []struct{ name, content, thinking, text string }{
	{"r1", "<think>\nOkay, the user…\n</think>\n\nAnswer", "Okay, the user…\n", "Answer"},
	{"white space first", " \n\t<think>héllo 中文 🤔</think>Answer 🙂", "héllo 中文 🤔", "Answer 🙂"},
	{"empty thinking (qwen3 told not to think)", "<think>\n\n</think>\n\nHi", "", "Hi"},
	{"crlf", "<think>\r\n a\r\n</think>\r\n\r\nA", "a\r\n", "A"},
	{"only spaces and lines trimmed after", "<think>x</think> \n y", "x", " \n y"},
	{"unclosed", "<think>still 🤔 thinking </th", "still 🤔 thinking </th", ""},
	{"only the tag", "<think>", "", ""},
	{"empty block", "<think></think>", "", ""},
	{"a tag later in the answer", "Hello <think>x</think>", "", "Hello <think>x</think>"},
	{"a second block is text", "<think>a</think>b<think>c</think>", "a", "b<think>c</think>"},
	{"a near close tag", "<think>a </thinkb> c</think>\n\n\nd\n", "a </thinkb> c", "d\n"},
	{"< before the close", "<think>a<</think>b", "a<", "b"},
	{"</ before the close", "<think>a</</think>b", "a</", "b"},
	{"thinking about", "<thinking about it>", "", "<thinking about it>"},
	{"a tag's start, then text", "<th🙂", "", "<th🙂"},
	{"only a tag's start", " <th", "", " <th"},
	{"<<think>", "<<think>x</think>", "", "<<think>x</think>"},
	{"white space only", "\n \n", "", "\n \n"},
	{"leading white space kept", "\n\nHello 🙂", "", "\n\nHello 🙂"},
	{"white space at the bound", strings.Repeat(" ", maxLeadSpace) + "<think>x</think>y", "x", "y"},
	{"white space past the bound", strings.Repeat(" ", maxLeadSpace+1) + "<think>x</think>", "",
		strings.Repeat(" ", maxLeadSpace+1) + "<think>x</think>"},
	{"plain", "中文 text", "", "中文 text"},
}

// TestInlineThinkSplits: each answer cut into three pieces at every pair
// of bytes (inside tags and inside characters) gives the same thinking
// and text as whole, in whole characters, holding back only what may
// still be a tag (or a character's start).
func TestInlineThinkSplits(t *testing.T) {
	t.Parallel()
	for _, tc := range thinkCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.content
			for i := 0; i <= len(c); i++ {
				for j := i; j <= len(c); j++ {
					th, tx := splitThink(t, c[:i], c[i:j], c[j:])
					if th != tc.thinking || tx != tc.text {
						t.Fatalf("pieces %q %q %q: thinking %q text %q, want %q and %q",
							c[:i], c[i:j], c[j:], th, tx, tc.thinking, tc.text)
					}
				}
			}
		})
	}
}

// splitThink feeds pieces to an answerParts as content and returns the
// thinking and text it gives, checking each step's output and what it
// holds back.
func splitThink(t *testing.T, pieces ...string) (thinking, text string) {
	t.Helper()
	var p answerParts
	take := func(r, x string) {
		if !utf8.ValidString(r) || !utf8.ValidString(x) {
			t.Fatalf("pieces %q: broken characters out: %q %q", pieces, r, x)
		}
		thinking += r
		text += x
	}
	for _, s := range pieces {
		take(p.add("", s))
		checkHeld(t, pieces, &p)
	}
	take(p.flush())
	return thinking, text
}

// checkHeld fails unless p holds back at most a character's start and
// what may still be a tag: part of <think> after white space before the
// thinking, part of </think> in it, nothing after it.
func checkHeld(t *testing.T, pieces []string, p *answerParts) {
	t.Helper()
	held := p.think.held
	ok := len(p.text.pending) < utf8.UTFMax
	switch p.think.state {
	case thinkStart:
		body := strings.TrimLeft(held, " \t\r\n")
		ok = ok && len(body) < len(thinkOpen) && strings.HasPrefix(thinkOpen, body) && len(held)-len(body) <= maxLeadSpace
	case thinkIn:
		ok = ok && len(held) < len(thinkClose) && strings.HasPrefix(thinkClose, held)
	default:
		ok = ok && held == ""
	}
	if !ok {
		t.Fatalf("pieces %q: held %q (state %d) and %q", pieces, held, p.think.state, p.text.pending)
	}
}

// TestInlineThinkAfterReasoningField: an upstream that sends its reasoning
// in a field and inline too (llama.cpp's deepseek-legacy format) has it
// once, from the field; the text is the answer after </think>.
func TestInlineThinkAfterReasoningField(t *testing.T) {
	t.Parallel()
	var p answerParts
	steps := []struct{ reasoning, content, wantR, wantT string }{
		{"", "<thi", "", ""},
		{"Okay", "nk>Okay", "Okay", ""},
		{", so", ", so</th", ", so", ""},
		{"", "ink>\n\nAnswer", "", "Answer"},
	}
	for _, s := range steps {
		if r, x := p.add(s.reasoning, s.content); r != s.wantR || x != s.wantT {
			t.Fatalf("add(%q, %q) = %q, %q, want %q, %q", s.reasoning, s.content, r, x, s.wantR, s.wantT)
		}
	}
	if r, x := p.flush(); r != "" || x != "" {
		t.Fatalf("flush = %q, %q", r, x)
	}
}
