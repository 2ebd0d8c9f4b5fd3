package fakeai

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ReasoningKey is the delta field reasoning chunks use.
type ReasoningKey string

// Reasoning field spellings.
const (
	// KeyReasoningContent is DeepSeek's and older vLLM's spelling (the default).
	KeyReasoningContent ReasoningKey = "reasoning_content"
	// KeyReasoning is OpenRouter's, Ollama's and newer vLLM's spelling.
	KeyReasoning ReasoningKey = "reasoning"
	// KeyMixed alternates the two spellings chunk by chunk.
	KeyMixed ReasoningKey = "mixed"
	// KeyBoth sends both spellings in every chunk, the text in one and ""
	// in the other, alternating which (a server between the spellings).
	KeyBoth ReasoningKey = "both"
	// KeyThink sends the reasoning inline in the content, between "<think>\n"
	// and "</think>\n\n", as DeepSeek-R1 and QwQ do when served without a
	// reasoning parser (vLLM's default, llama.cpp, older Ollama): the content
	// streamed is then ThinkText(c) followed by ExpectedText(c).
	KeyThink ReasoningKey = "think"
	// KeyThinkOpen sends the reasoning inline as KeyThink does, without
	// the "<think>\n": the thinking, then "</think>\n\n", as models
	// whose prompt template opens the block (DeepSeek-R1 and its
	// distills, QwQ-32B, Qwen3's Thinking-2507 models) stream it.
	KeyThinkOpen ReasoningKey = "think_open"
	// KeyParts sends the delta's content as a list of parts, as Mistral's
	// reasoning models (Magistral) do: each reasoning chunk as
	// [{"type":"thinking","thinking":[{"type":"text","text":...}]}], each
	// content token as [{"type":"text","text":...}].
	KeyParts ReasoningKey = "parts"
)

// ThinkText returns the inline reasoning a response with config c sends in
// its content before the answer when c.ReasoningKey is KeyThink or
// KeyThinkOpen ("" when it sends no reasoning).
func ThinkText(c Config) string {
	if c.Reasoning <= 0 {
		return ""
	}
	return c.ReasoningKey.thinkOpen() + ExpectedReasoning(c) + "</think>\n\n"
}

// inline reports whether k sends the reasoning inline in the content.
func (k ReasoningKey) inline() bool { return k == KeyThink || k == KeyThinkOpen }

// thinkOpen is what opens inline reasoning sent as k: "<think>\n", or
// nothing for KeyThinkOpen (the template opened it).
func (k ReasoningKey) thinkOpen() string {
	if k == KeyThinkOpen {
		return ""
	}
	return "<think>\n"
}

// reasoningWords is the vocabulary of reasoning chunks, with multi-byte
// characters like the text mode's.
var reasoningWords = []string{
	"Let", "me", "think", "step", "by", "step:", "the", "user", "wants", "ünïcode", "中文", "🤔", "so", "first", "check.",
}

// ReasoningTokens returns the reasoning chunks a response with config c
// sends before its content (none unless c.Reasoning > 0).
func ReasoningTokens(c Config) []string {
	out := make([]string, max(c.Reasoning, 0))
	for i := range out {
		out[i] = reasoningWords[i%len(reasoningWords)] + " "
	}
	return out
}

// ExpectedReasoning returns the exact reasoning text of a response with config c.
func ExpectedReasoning(c Config) string {
	return strings.Join(ReasoningTokens(c), "")
}

func parseReasoningKey(v string) (ReasoningKey, error) {
	switch k := ReasoningKey(v); k {
	case "", KeyReasoningContent, KeyReasoning, KeyMixed, KeyBoth, KeyThink, KeyThinkOpen, KeyParts:
		return k, nil
	}
	return "", fmt.Errorf("unknown reasoning key")
}

// key returns the field of reasoning chunk i.
func (k ReasoningKey) key(i int) string {
	switch {
	case k == KeyReasoning, (k == KeyMixed || k == KeyBoth) && i%2 == 1:
		return string(KeyReasoning)
	}
	return string(KeyReasoningContent)
}

// inlineThought is the content of reasoning chunk i of n sent inline as
// k (KeyThink, KeyThinkOpen): the first opens with "<think>\n" (not
// KeyThinkOpen's), the last closes with "</think>\n\n".
func (k ReasoningKey) inlineThought(i, n int, text string) string {
	if i == 0 {
		text = k.thinkOpen() + text
	}
	if i == n-1 {
		text += "</think>\n\n"
	}
	return text
}

// Pieces returns text cut as Config.Pieces cuts a content delta: into
// pieces of at most n bytes, between characters, a longer character a
// piece of its own; n <= 0 leaves text whole.
func Pieces(text string, n int) []string {
	if n <= 0 || len(text) <= n {
		return []string{text}
	}
	var out []string
	for text != "" {
		k := 0
		for k < len(text) {
			_, size := utf8.DecodeRuneInString(text[k:])
			if k > 0 && k+size > n {
				break
			}
			k += size
		}
		out = append(out, text[:k])
		text = text[k:]
	}
	return out
}

// reasoning returns the frame of reasoning chunk i of n (not KeyThink nor
// KeyThinkOpen, whose reasoning is content: inlineThought).
func (e *chunkEncoder) reasoning(key ReasoningKey, i int, text string) []byte {
	if key == KeyParts {
		return e.parts(`{"type":"thinking","thinking":[{"type":"text","text":`, text, `}]}`)
	}
	b := append(e.buf[:0], e.head...)
	b = append(b, `{"index":0,"delta":{"`...)
	if key == KeyBoth && i%2 == 0 {
		b = append(b, `reasoning":"","`...)
	}
	b = append(b, key.key(i)...)
	b = append(b, `":`...)
	b = appendString(b, text)
	if key == KeyBoth && i%2 == 1 {
		b = append(b, `,"reasoning_content":""`...)
	}
	b = append(b, `},"logprobs":null,"finish_reason":null}]`...)
	return e.end(b, e.usageNull)
}

// parts returns the frame of a delta whose content is a list of one
// part: open, text as a JSON string, then end.
func (e *chunkEncoder) parts(open, text, end string) []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `{"index":0,"delta":{"content":[`...)
	b = append(b, open...)
	b = appendString(b, text)
	b = append(b, end...)
	b = append(b, `]},"logprobs":null,"finish_reason":null}]`...)
	return e.end(b, e.usageNull)
}

// contentJSON returns the frame of a content delta whose JSON string body
// (without quotes) is given already escaped.
func (e *chunkEncoder) contentJSON(escaped []byte) []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `{"index":0,"delta":{"content":"`...)
	b = append(b, escaped...)
	b = append(b, `"},"logprobs":null,"finish_reason":null}]`...)
	return e.end(b, e.usageNull)
}

// surrogateHalves returns a token holding a character outside the Basic
// Multilingual Plane as two JSON string bodies, cut between the two
// \u escapes of that character's UTF-16 surrogate pair, as a server that
// chunks text by JavaScript string index sends it; ok is false when the
// token has no such character.
func surrogateHalves(tok string) (first, second []byte, ok bool) {
	for i, r := range tok {
		if r <= 0xFFFF {
			continue
		}
		hi, lo := 0xD800+((r-0x10000)>>10), 0xDC00+((r-0x10000)&0x3FF)
		first = escaped(tok[:i])
		first = fmt.Appendf(first, `\u%04x`, hi)
		second = fmt.Appendf(nil, `\u%04x`, lo)
		second = append(second, escaped(tok[i+utf8.RuneLen(r):])...)
		return first, second, true
	}
	return nil, nil, false
}

// escaped is s as a JSON string body, without the quotes.
func escaped(s string) []byte {
	b := appendString(nil, s)
	return b[1 : len(b)-1]
}
