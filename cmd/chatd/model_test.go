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
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 2, FirstDelay: 1500 * time.Millisecond}})
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
