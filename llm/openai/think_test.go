package openai

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// thinkCase is an answer as an upstream sends it in content, with the
// reasoning and the text chatd makes of it.
type thinkCase struct{ name, content, thinking, text string }

// thinkCases are answers read as ThinkAuto reads them.
var thinkCases = []thinkCase{
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
	// A model explaining the tag loses its answer: ThinkOff is for it.
	{"a tag explained", "<think> is a tag name I made up.", "is a tag name I made up.", ""},
}

// openThinkCases are answers of a model whose template opened the
// thinking (ThinkOpen): DeepSeek-R1 and its distills, QwQ-32B, Qwen3's
// Thinking-2507 models send only </think>.
var openThinkCases = []thinkCase{
	{"r1 distill", "Okay, the user…\n</think>\n\nAnswer", "Okay, the user…\n", "Answer"},
	{"thinking 2507", "\nOkay 🤔 中文\n</think>\n\nAnswer 🙂", "Okay 🤔 中文\n", "Answer 🙂"},
	{"its own <think> too", "<think>\nhm</think>\n\nA", "hm", "A"},
	{"white space, then <think>", " \n\t<think> hm</think>A", "hm", "A"},
	{"empty thinking", "</think>\n\nHi", "", "Hi"},
	{"crlf", "a\r\n</think>\r\n\r\nA", "a\r\n", "A"},
	{"only spaces and lines trimmed after", "x</think> \n y", "x", " \n y"},
	{"unclosed", "still 🤔 thinking </th", "still 🤔 thinking </th", ""},
	{"only a tag's start", " <th", "<th", ""},
	{"<think> later is thinking", "a <think> b</think>c", "a <think> b", "c"},
	{"<thinking is thinking", "<thinking>x</think>y", "<thinking>x", "y"},
	{"<<think>", "<<think>x</think>", "<<think>x", ""},
	{"a second close tag is answer", "a</think>b</think>c", "a", "b</think>c"},
	{"a near close tag", "a </thinkb> c</think>\n\n\nd\n", "a </thinkb> c", "d\n"},
	{"long white space first", strings.Repeat(" ", 2*maxLeadSpace) + "x</think>y", "x", "y"},
	{"white space only", "\n \n", "", ""},
	{"nothing", "", "", ""},
}

// offThinkCases are answers of a model that does not think inline
// (ThinkOff): all text, byte for byte.
var offThinkCases = []thinkCase{
	{"a tag explained", "<think> is a tag name I made up.", "", "<think> is a tag name I made up."},
	{"a block", " <think>\nhm\n</think>\n\nAnswer", "", " <think>\nhm\n</think>\n\nAnswer"},
	{"a close tag", "hm</think>\n\nA", "", "hm</think>\n\nA"},
	{"only the tag", "<think>", "", "<think>"},
	{"plain", "中文 text 🙂\n", "", "中文 text 🙂\n"},
}

// TestInlineThinkSplits: each answer cut into three pieces at every pair
// of bytes (inside tags and inside characters) gives the same thinking
// and text as whole, in whole characters, holding back only what may
// still be a tag (or a character's start), in each mode ("" is auto).
func TestInlineThinkSplits(t *testing.T) {
	t.Parallel()
	modes := []struct {
		mode  InlineThinking
		cases []thinkCase
	}{{"", thinkCases}, {ThinkAuto, thinkCases}, {ThinkOpen, openThinkCases}, {ThinkOff, offThinkCases}}
	for _, m := range modes {
		for _, tc := range m.cases {
			t.Run(string(m.mode)+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				c := tc.content
				for i := 0; i <= len(c); i++ {
					for j := i; j <= len(c); j++ {
						th, tx := splitThink(t, m.mode, c[:i], c[i:j], c[j:])
						if th != tc.thinking || tx != tc.text {
							t.Fatalf("pieces %q %q %q: thinking %q text %q, want %q and %q",
								c[:i], c[i:j], c[j:], th, tx, tc.thinking, tc.text)
						}
					}
				}
			})
		}
	}
}

// splitThink feeds pieces to the answerParts of mode as content and
// returns the thinking and text it gives, checking each step's output and
// what it holds back.
func splitThink(t *testing.T, mode InlineThinking, pieces ...string) (thinking, text string) {
	t.Helper()
	p := newAnswerParts(mode)
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
	case thinkOpened:
		ok = ok && len(held) < len(thinkOpen) && strings.HasPrefix(thinkOpen, held)
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
// once, from the field; the text is the answer after </think>. One whose
// reasoning parser sends the thinking in the field and only the answer in
// the content has that answer as text, whether the model is declared
// ThinkOpen or not; under ThinkOff the content is text as it came.
func TestInlineThinkAfterReasoningField(t *testing.T) {
	t.Parallel()
	type step struct{ reasoning, content, wantR, wantT string }
	legacy := []step{
		{"", "<thi", "", ""},
		{"Okay", "nk>Okay", "Okay", ""},
		{", so", ", so</th", ", so", ""},
		{"", "ink>\n\nAnswer", "", "Answer"},
	}
	parser := []step{
		{"Okay", "", "Okay", ""},
		{", so", "", ", so", ""},
		{"", "\n\nAnswer </think>", "", "\n\nAnswer </think>"},
	}
	tests := []struct {
		name  string
		mode  InlineThinking
		steps []step
	}{
		{"legacy", "", legacy},
		{"legacy, open", ThinkOpen, legacy},
		{"parser", "", parser},
		{"parser, open", ThinkOpen, parser},
		{"parser, off", ThinkOff, parser},
		{"legacy, off", ThinkOff, []step{{"Okay", "<think>Okay", "Okay", "<think>Okay"}, {"", "</think>A", "", "</think>A"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newAnswerParts(tc.mode)
			for _, s := range tc.steps {
				if r, x := p.add(s.reasoning, s.content); r != s.wantR || x != s.wantT {
					t.Fatalf("add(%q, %q) = %q, %q, want %q, %q", s.reasoning, s.content, r, x, s.wantR, s.wantT)
				}
			}
			if r, x := p.flush(); r != "" || x != "" {
				t.Fatalf("flush = %q, %q", r, x)
			}
		})
	}
}

// TestParseInlineThinking: the three modes' names, and nothing else.
func TestParseInlineThinking(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"auto", "open", "off"} {
		if m, err := ParseInlineThinking(s); err != nil || string(m) != s {
			t.Errorf("%q: %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Open", "on", " off"} {
		if _, err := ParseInlineThinking(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
