package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestReasoningModelsFromEnvironment: with the one-upstream variables,
// OPENAI_REASONING_MODELS declares a reasoning model under a name the
// name rules do not know (a proxy's, a deployment's): it is sent
// max_completion_tokens, and with default settings it may think silently
// (nothing streamed) well past CHATD_FIRST_TOKEN_TIMEOUT, which still
// ends the wait for any other model, as it does for a model the name
// rules know once CHATD_REASONING_FIRST_TOKEN_TIMEOUT is shorter.
func TestReasoningModelsFromEnvironment(t *testing.T) {
	t.Parallel()
	// The first token comes well after the short timeouts (200 ms, 300 ms),
	// by more than a stall of a second or two under -race on a loaded
	// machine (it came 1.5 s after), and well within the reasoning one.
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 2, FirstDelay: 4 * time.Second}})
	tests := []struct {
		name, model string
		env         map[string]string
		wantField   string // the token bound's field sent; "" when the wait timed out
		wantTimeout string
	}{
		{"declared", "proxy-think", nil, "max_completion_tokens", ""},
		{"not declared", "gpt-x", nil, "", "within 200ms."},
		{"known by name", "o3-mini", nil, "max_completion_tokens", ""},
		{"known by name, shorter reasoning timeout", "o3-mini",
			map[string]string{"CHATD_REASONING_FIRST_TOKEN_TIMEOUT": "300ms"}, "", "within 300ms."},
	}
	for i, tc := range tests {
		tag := "case" + strconv.Itoa(i)
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"OPENAI_BASE_URL": srv.URL, "OPENAI_MODELS": "gpt-x,proxy-think,o3-mini",
				"OPENAI_REASONING_MODELS": "proxy-think", "CHATD_FIRST_TOKEN_TIMEOUT": "200ms", "CHATD_UPSTREAM_RETRIES": "0"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := loadConfig(envOf(env))
			if err != nil {
				t.Fatal(err)
			}
			router, _ := newModel(cfg, slog.New(slog.DiscardHandler))
			t.Cleanup(router.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req := llm.Request{Model: tc.model, MaxTokens: 32, Messages: []llm.Message{{Role: llm.RoleUser, Content: "[[fake tag=" + tag + "]] hi"}}}
			_, err = router.Stream(ctx, req, func(string) {})
			if tc.wantTimeout != "" {
				var e *llm.Error
				if !errors.As(err, &e) || e.Kind != llm.KindTimeout || !strings.HasSuffix(e.Message, tc.wantTimeout) {
					t.Fatalf("err %v, want a timeout %q", err, tc.wantTimeout)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			recs := srv.Recorded()
			i := slices.IndexFunc(recs, func(r fakeai.Recorded) bool { return r.Config.Tag == tag })
			if i < 0 || recs[i].MaxTokensField != tc.wantField {
				t.Fatalf("upstream saw %d requests (request %d), want one sent %s", len(recs), i, tc.wantField)
			}
		})
	}
}

// TestInlineThinkingFromEnvironment: with the one-upstream variables,
// OPENAI_INLINE_THINKING reaches the model's requests: a model declared
// "open" (its template opens the thinking, so its answer holds only
// </think>) has its thinking streamed as reasoning and its answer as
// text, and its title named after the answer; a model not named keeps
// "auto", which shows such thinking as text.
func TestInlineThinkingFromEnvironment(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	cfg, err := loadConfig(envOf(map[string]string{"OPENAI_BASE_URL": srv.URL, "OPENAI_MODELS": "r1-distill,plain",
		"OPENAI_INLINE_THINKING": "r1-distill=open"}))
	if err != nil {
		t.Fatal(err)
	}
	router, titler := newModel(cfg, slog.New(slog.DiscardHandler))
	t.Cleanup(router.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const marker = "[[fake tokens=4 reasoning=5 reasoning_key=think_open pieces=3]]"
	fake := fakeai.Config{Tokens: 4, Reasoning: 5, ReasoningKey: fakeai.KeyThinkOpen}
	for model, want := range map[string][2]string{
		"r1-distill": {fakeai.ExpectedReasoning(fake), fakeai.ExpectedText(fake)},
		"plain":      {"", fakeai.ThinkText(fake) + fakeai.ExpectedText(fake)},
	} {
		var reasoning, text strings.Builder
		req := llm.Request{Model: model, OnReasoning: func(s string) { reasoning.WriteString(s) },
			Messages: []llm.Message{{Role: llm.RoleUser, Content: marker + " hi"}}}
		if _, err := router.Stream(ctx, req, func(s string) { text.WriteString(s) }); err != nil {
			t.Fatal(err)
		}
		if reasoning.String() != want[0] || text.String() != want[1] {
			t.Errorf("%s: reasoning %q text %q, want %q and %q", model, reasoning.String(), text.String(), want[0], want[1])
		}
	}
	if got := titler(ctx, llm.ModelInfo{ID: "r1-distill"}, "Plan a trip "+marker, "an answer"); got != "Hello héllo world wörld" {
		t.Errorf("title %q, want the answer's first words", got)
	}
}
