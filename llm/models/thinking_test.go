package models_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/models"
	"chatd/llm/openai"
)

const thinkingFile = `
upstreams:
  - name: local
    baseURL: %A%
    models:
      - id: r1-distill
        inlineThinking: open
      - id: explainer
        inlineThinking: off      # YAML 1.2: a string, not false
      - plain
  - name: templated
    baseURL: %B%
    inlineThinking: open
    discover: true
    models:
      - id: legacy
        inlineThinking: auto
`

// readFile reads an upstreams file of content, its two base URLs a and b.
func readFile(t *testing.T, content, a, b string) *models.File {
	t.Helper()
	f, err := models.ReadFile(writeFile(t, "up.yaml", content, a, b), env)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// thinkingSplit is how a model's inline thinking reached the answer.
type thinkingSplit int

const (
	split  thinkingSplit = iota // the thinking as reasoning, the rest as text
	asText                      // all of it as text
)

// checkThinking streams model's answer with inline thinking sent as key
// (fakeai.KeyThink, KeyThinkOpen) through r and checks it came as want.
func checkThinking(t *testing.T, r llm.Streamer, model string, key fakeai.ReasoningKey, want thinkingSplit) {
	t.Helper()
	cfg := fakeai.Config{Tokens: 3, Reasoning: 5, ReasoningKey: key}
	var reasoning, text strings.Builder
	req := llm.Request{Model: model, OnReasoning: func(s string) { reasoning.WriteString(s) },
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "[[fake tokens=3 reasoning=5 pieces=2 reasoning_key=" + string(key) + "]] hi"}}}
	if _, err := r.Stream(testCtx(t), req, func(s string) { text.WriteString(s) }); err != nil {
		t.Fatalf("%s: %v", model, err)
	}
	wantR, wantT := fakeai.ExpectedReasoning(cfg), fakeai.ExpectedText(cfg)
	if want == asText {
		wantR, wantT = "", fakeai.ThinkText(cfg)+wantT
	}
	if reasoning.String() != wantR || text.String() != wantT {
		t.Errorf("%s (%s): reasoning %q text %q, want %q and %q", model, key, reasoning.String(), text.String(), wantR, wantT)
	}
}

// TestInlineThinkingDeclared: a model's inlineThinking in the upstreams
// file, or its upstream's for every model (discovered ones too) that
// sets none, says how its answer's inline thinking is read: "open" (the
// template opened the block) takes the thinking before the </think> for
// reasoning, "off" leaves the content as it came, "auto" and a model
// that sets nothing take a leading <think> block.
func TestInlineThinkingDeclared(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Models: []string{"disc-open"}})
	r := models.New(models.Config{File: readFile(t, thinkingFile, srv.URL, srv.URL), FirstListWait: time.Minute,
		Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(r.Close)
	tests := []struct {
		model string
		key   fakeai.ReasoningKey
		want  thinkingSplit
	}{
		{"r1-distill", fakeai.KeyThinkOpen, split},
		{"r1-distill", fakeai.KeyThink, split},
		{"explainer", fakeai.KeyThink, asText},
		{"plain", fakeai.KeyThink, split},
		{"plain", fakeai.KeyThinkOpen, asText},
		{"disc-open", fakeai.KeyThinkOpen, split},
		{"legacy", fakeai.KeyThink, split},
		{"legacy", fakeai.KeyThinkOpen, asText},
	}
	for _, tc := range tests {
		checkThinking(t, r, tc.model, tc.key, tc.want)
	}
}

// TestShorthandInlineThinking: the one upstream of the OPENAI_* variables
// sets how models think inline (InlineThinking, from
// OPENAI_INLINE_THINKING) as an upstreams file does: models it lists,
// models its upstream lists, or "*" for every model not named.
func TestShorthandInlineThinking(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Models: []string{"disc-open", "disc-plain"}})
	tests := []struct {
		name  string
		modes map[string]openai.InlineThinking
		want  map[string]thinkingSplit // model -> how think_open's answer came
	}{
		{"listed and discovered", map[string]openai.InlineThinking{"r1": openai.ThinkOpen, "disc-open": openai.ThinkOpen},
			map[string]thinkingSplit{"r1": split, "plain": asText, "disc-open": split, "disc-plain": asText}},
		{"every model but one", map[string]openai.InlineThinking{"*": openai.ThinkOpen, "plain": openai.ThinkAuto},
			map[string]thinkingSplit{"r1": split, "plain": asText, "disc-open": split, "disc-plain": split}},
		{"none", nil, map[string]thinkingSplit{"r1": asText, "disc-open": asText}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := models.New(models.Config{APIKey: "sk-k", BaseURL: srv.URL, Models: "r1,plain", Discover: true,
				InlineThinking: tc.modes, FirstListWait: time.Minute, Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(r.Close)
			for model, want := range tc.want {
				checkThinking(t, r, model, fakeai.KeyThinkOpen, want)
			}
		})
	}
}
