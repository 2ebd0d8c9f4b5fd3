// Package demo is the offline demo model, used when no model provider is
// configured: it streams a short canned markdown answer that quotes the
// prompt, at a pace a person can watch. It is always presented as a demo
// (ModelInfo.Demo), never as a real model.
package demo

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"chatd/llm"
)

// ModelID is the id of the demo model.
const ModelID = "demo"

// Info describes the demo model.
func Info() llm.ModelInfo {
	return llm.ModelInfo{ID: ModelID, Name: "Demo model (offline)", Demo: true}
}

// Options configures a Model.
type Options struct {
	// Delay is the pause between tokens; it defaults to 25ms. A negative
	// value streams without pauses (tests).
	Delay time.Duration
}

// Model is the demo model; it implements llm.Streamer and llm.Catalog and
// is safe for concurrent use.
type Model struct {
	delay time.Duration
}

var (
	_ llm.Streamer = (*Model)(nil)
	_ llm.Catalog  = (*Model)(nil)
)

// New returns a demo Model.
func New(opts Options) *Model {
	switch {
	case opts.Delay == 0:
		opts.Delay = 25 * time.Millisecond
	case opts.Delay < 0:
		opts.Delay = 0
	}
	return &Model{delay: opts.Delay}
}

// Models lists the demo model only.
func (m *Model) Models(context.Context) ([]llm.ModelInfo, error) {
	return []llm.ModelInfo{Info()}, nil
}

// IsDemo reports that every model this Streamer serves is the demo (see
// llm.Title).
func (m *Model) IsDemo(string) bool { return true }

// Stream implements llm.Streamer: it sends Answer(req) token by token and
// stops at once when ctx ends. A MaxTokens below the answer's length ends
// it early with finish reason "length".
func (m *Model) Stream(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
	tokens := Tokens(req)
	res := llm.Result{FinishReason: "stop"}
	if req.MaxTokens > 0 && req.MaxTokens < len(tokens) {
		tokens, res.FinishReason = tokens[:req.MaxTokens], "length"
	}
	var tick <-chan time.Time
	if m.delay > 0 {
		t := time.NewTicker(m.delay)
		defer t.Stop()
		tick = t.C
	}
	for _, tok := range tokens {
		if err := wait(ctx, tick); err != nil {
			return llm.Result{}, err
		}
		onDelta(tok)
	}
	prompt := 0
	for _, msg := range req.Messages {
		prompt += len(strings.Fields(msg.Content))
	}
	res.Usage = &llm.Usage{PromptTokens: prompt, CompletionTokens: len(tokens), TotalTokens: prompt + len(tokens)}
	return res, nil
}

// wait waits for the next tick (nil: none) or for ctx to end.
func wait(ctx context.Context, tick <-chan time.Time) error {
	if tick == nil {
		if ctx.Err() != nil {
			return ctxError(ctx)
		}
		return nil
	}
	select {
	case <-tick:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

func ctxError(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause != nil && cause != err {
		return fmt.Errorf("demo stream: %w: %w", err, cause)
	}
	return fmt.Errorf("demo stream: %w", err)
}

// Tokens returns the pieces Stream sends for req: words with the
// whitespace after them.
func Tokens(req llm.Request) []string {
	s := Answer(req)
	var out []string
	start, inSpace := 0, false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if !space && inSpace {
			out = append(out, s[start:i])
			start = i
		}
		inSpace = space
	}
	return append(out, s[start:])
}

// maxQuote bounds the quoted prompt, in characters.
const maxQuote = 400

// Answer returns the whole text the demo model streams for req.
func Answer(req llm.Request) string {
	prompt := ""
	for _, m := range req.Messages {
		if m.Role == llm.RoleUser {
			prompt = m.Content
		}
	}
	words, chars := len(strings.Fields(prompt)), utf8.RuneCountInString(prompt)
	var b strings.Builder
	b.WriteString("*Demo mode: no language model is configured, so this is a canned answer, not AI output.*\n\n")
	fmt.Fprintf(&b, "You wrote (%d %s, %d %s):\n\n", words, plural(words, "word"), chars, plural(chars, "character"))
	b.WriteString(quote(prompt))
	b.WriteString("\n\nHere is what a real answer can look like:\n\n" +
		"1. **Markdown** is rendered as it streams: *emphasis*, `inline code` and [links](https://commonmark.org).\n" +
		"2. Numbered and bulleted lists keep their shape.\n" +
		"3. Code blocks are highlighted:\n\n" +
		"```python\n" +
		"def count_words(text: str) -> int:\n" +
		"    \"\"\"Return the number of words in text.\"\"\"\n" +
		"    return len(text.split())\n" +
		"\n\n" +
		fmt.Sprintf("print(count_words(%q))  # %d\n", "hello demo world", 3) +
		"```\n\n" +
		"- Press **Stop** to end an answer early, or **Regenerate** to get a new one.\n" +
		"- Open this conversation in another tab: the answer streams there too.\n\n" +
		"To chat with a real model, configure an OpenAI API key or an OpenAI-compatible " +
		"base URL (for example Ollama or vLLM) and restart the server.\n")
	return b.String()
}

// quote renders prompt as a markdown block quote of at most maxQuote
// characters.
func quote(prompt string) string {
	prompt = strings.TrimSpace(prompt)
	if prompt == "" {
		return "> *(an empty message)*"
	}
	if r := []rune(prompt); len(r) > maxQuote {
		prompt = strings.TrimRightFunc(string(r[:maxQuote]), unicode.IsSpace) + " …"
	}
	lines := strings.Split(strings.ReplaceAll(prompt, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight("> "+l, " ")
	}
	return strings.Join(lines, "\n")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
