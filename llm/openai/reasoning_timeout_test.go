package openai_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestReasoningFirstTokenTimeout: a reasoning model (known by its name,
// declared, even when its server then refuses max_completion_tokens, or
// learned from a refusal of max_tokens) that sends nothing
// while it thinks (OpenAI's send the role chunk, then nothing until the
// answer) is waited for with the reasoning first-token timeout, by
// default minutes, never less than the ordinary one; any other model
// still gets the first-token timeout, and the error names the timeout
// that ended the wait.
func TestReasoningFirstTokenTimeout(t *testing.T) {
	t.Parallel()
	const think = "[[fake tokens=4 first_delay=1500ms]]"
	tests := []struct {
		name, model, prompt string
		maxTokens           int
		opts                func(*openai.Options)
		want                string // "": the whole answer; else a timeout saying this
	}{
		{"reasoning model by name, default timeout", "o3-mini", think, 0, nil, ""},
		{"reasoning model behind a provider's prefix", "openai/o3-mini", think, 16, nil, ""},
		{"declared reasoning model", "think-prod", think, 0,
			func(o *openai.Options) { o.ReasoningModels = []string{"think-prod"} }, ""},
		{"reasoning model learned from a refusal", "azure-o3", "[[fake tokens=4 first_delay=1500ms refuse=max_tokens]]", 16, nil, ""},
		{"declared reasoning model whose server takes max_tokens", "old-think",
			"[[fake tokens=4 first_delay=1500ms refuse=max_completion_tokens]]", 16,
			func(o *openai.Options) { o.ReasoningModels = []string{"old-think"} }, ""},
		{"reasoning timeout never below the first-token one", "o3-mini", "[[fake tokens=4 first_delay=1s]]", 0,
			func(o *openai.Options) {
				o.FirstTokenTimeout, o.ReasoningFirstTokenTimeout = 5*time.Second, 100*time.Millisecond
			}, ""},
		{"ordinary model", "fake-mini", think, 0, nil, "within 200ms."},
		{"reasoning model that never starts", "o3-mini", "[[fake tokens=4 fault=hang_first]]", 0,
			func(o *openai.Options) { o.ReasoningFirstTokenTimeout = 300 * time.Millisecond }, "within 300ms."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			c := newClient(srv.URL, func(o *openai.Options) {
				o.FirstTokenTimeout = 200 * time.Millisecond
				if tc.opts != nil {
					tc.opts(o)
				}
			})
			req := request(tc.prompt)
			req.Model, req.MaxTokens = tc.model, tc.maxTokens
			var b strings.Builder
			_, err := c.Stream(testCtx(t), req, func(s string) { b.WriteString(s) })
			if tc.want == "" {
				if err != nil || b.String() != fakeai.ExpectedText(fakeai.Config{Tokens: 4}) {
					t.Fatalf("answer %q, err %v; want the whole answer", b.String(), err)
				}
				if rec, _ := srv.LastRequest(); tc.model == "openai/o3-mini" && rec.MaxTokensField != "max_tokens" {
					t.Fatalf("a prefixed name sent %s: its field is the server's business", rec.MaxTokensField)
				}
				return
			}
			var e *llm.Error
			if llm.KindOf(err) != llm.KindTimeout || !errors.As(err, &e) || !strings.HasSuffix(e.Message, tc.want) {
				t.Fatalf("err %v, want a timeout %q", err, tc.want)
			}
		})
	}
}

// TestThinksByName: OpenAI's reasoning models known by name (after a
// provider's prefix too) are waited for and listed as thinking; not
// gpt-5-chat-latest, the chat model behind ChatGPT, which answers at
// once: its slow first token waited minutes, and the web client said
// "Thinking…". It is still sent max_completion_tokens (go-openai refuses
// max_tokens to any gpt-5 id).
func TestThinksByName(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 2}})
	c := newClient(srv.URL, nil)
	for _, tc := range []struct {
		model  string
		thinks bool
	}{
		{"o3-mini", true},
		{"gpt-5", true},
		{"gpt-5-mini", true},
		{"openai/gpt-5", true},
		{"gpt-5-chat-latest", false},
		{"gpt-5-chat", false},
		{"openai/gpt-5-chat-latest", false},
		{"gpt-4o", false},
	} {
		if got := c.Thinks(tc.model); got != tc.thinks {
			t.Errorf("Thinks(%q) = %v, want %v", tc.model, got, tc.thinks)
		}
	}
	req := request("hi")
	req.Model, req.MaxTokens = "gpt-5-chat-latest", 16
	if _, err := c.Stream(testCtx(t), req, func(string) {}); err != nil {
		t.Fatalf("gpt-5-chat-latest: %v", err)
	}
	if rec, _ := srv.LastRequest(); rec.MaxTokensField != "max_completion_tokens" {
		t.Fatalf("gpt-5-chat-latest sent %q, want max_completion_tokens", rec.MaxTokensField)
	}
}
