package models_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/models"
	"chatd/llm/openai"
)

const reasoningFile = `
upstreams:
  - name: azure
    baseURL: %A%
    models:
      - id: o3-prod
        reasoning: true
      - gpt4o-prod
  - name: thinkers
    baseURL: %B%
    reasoning: true
    discover: true
`

// TestReasoningDeclared: a model declared a reasoning model in the
// upstreams file (reasoning: true, or on its upstream for every model,
// discovered ones too) is sent max_completion_tokens and the reasoning
// effort whatever its name; the others are judged by name.
func TestReasoningDeclared(t *testing.T) {
	t.Parallel()
	a := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 2}})
	b := fakeai.Start(t, fakeai.Options{Models: []string{"qwen-thinker"}, Defaults: fakeai.Config{Tokens: 2}})
	f, err := models.ReadFile(writeFile(t, "up.yaml", reasoningFile, a.URL, b.URL), env)
	if err != nil {
		t.Fatal(err)
	}
	r := models.New(models.Config{File: f, FirstListWait: time.Minute}) // the first list waits for the fake's
	t.Cleanup(r.Close)
	tests := []struct {
		model      string
		srv        *fakeai.TestServer
		wantField  string
		wantEffort string
	}{
		{"o3-prod", a, "max_completion_tokens", "low"},
		{"gpt4o-prod", a, "max_tokens", ""},
		{"qwen-thinker", b, "max_completion_tokens", "low"},
	}
	for _, tc := range tests {
		req := llm.Request{Model: tc.model, MaxTokens: 32, ReasoningEffort: "low",
			Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}
		if _, err := r.Stream(testCtx(t), req, func(string) {}); err != nil {
			t.Fatalf("%s: %v", tc.model, err)
		}
		rec, _ := tc.srv.LastRequest()
		if rec.Model != tc.model || rec.MaxTokensField != tc.wantField || rec.ReasoningEffort != tc.wantEffort {
			t.Errorf("%s: upstream saw %s", tc.model, rec.Body)
		}
	}
}

const reasoningTimeoutFile = `
upstreams:
  - name: a
    baseURL: %A%
    timeouts: {firstToken: 200ms, reasoningFirstToken: 10s}
    models:
      - o3-mini
      - plain
      - id: think-prod
        reasoning: true
  - name: b
    baseURL: %B%
    timeouts: {firstToken: 200ms}
    models: [o4-mini]
`

// TestReasoningFirstTokenTimeout: an upstream's
// timeouts.reasoningFirstToken is the first-token timeout of its
// reasoning models (by name or declared), which think silently before
// their first text, while its other models keep timeouts.firstToken; an
// upstream without one takes the server's (Config.Client).
func TestReasoningFirstTokenTimeout(t *testing.T) {
	t.Parallel()
	cfg := fakeai.Config{Tokens: 2, FirstDelay: 1500 * time.Millisecond}
	a := fakeai.Start(t, fakeai.Options{Defaults: cfg})
	b := fakeai.Start(t, fakeai.Options{Defaults: cfg})
	f, err := models.ReadFile(writeFile(t, "up.yaml", reasoningTimeoutFile, a.URL, b.URL), env)
	if err != nil {
		t.Fatal(err)
	}
	r := models.New(models.Config{File: f, Client: openai.Options{ReasoningFirstTokenTimeout: 300 * time.Millisecond},
		FirstListWait: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(r.Close)
	tests := []struct {
		model string
		want  string // "": answered; else the end of the timeout's message
	}{
		{"o3-mini", ""},
		{"think-prod", ""},
		{"plain", "within 200ms."},
		{"o4-mini", "within 300ms."},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			t.Parallel()
			req := llm.Request{Model: tc.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}
			_, err := r.Stream(testCtx(t), req, func(string) {})
			var e *llm.Error
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err %v, want an answer", err)
			case tc.want != "" && (!errors.As(err, &e) || e.Kind != llm.KindTimeout || !strings.HasSuffix(e.Message, tc.want)):
				t.Fatalf("err %v, want a timeout %q", err, tc.want)
			}
		})
	}
}

// TestShorthandReasoningModels: the one upstream of the OPENAI_*
// variables declares reasoning models under any id (ReasoningModels,
// from OPENAI_REASONING_MODELS) as an upstreams file does: models it
// lists, models its upstream lists, or "*" for all; they are sent
// max_completion_tokens and the reasoning effort, the others max_tokens.
//
// The model list marks the reasoning models (ModelInfo.Reasoning), for
// clients to say "thinking" while one is silent.
func TestShorthandReasoningModels(t *testing.T) {
	t.Parallel()
	const completion, plain = "max_completion_tokens", "max_tokens"
	tests := []struct {
		name string
		cfg  models.Config
		want map[string]string // model -> the token bound's field sent
	}{
		{"listed", models.Config{Models: "proxy-think, gpt-x", ReasoningModels: []string{"proxy-think"}},
			map[string]string{"proxy-think": completion, "gpt-x": plain}},
		{"discovered", models.Config{Models: "gpt-x", Discover: true, ReasoningModels: []string{"disc-think"}},
			map[string]string{"disc-think": completion, "disc-plain": plain, "gpt-x": plain}},
		{"every model", models.Config{Models: "proxy-think,gpt-x", ReasoningModels: []string{"*"}},
			map[string]string{"proxy-think": completion, "gpt-x": completion}},
		{"none", models.Config{Models: "proxy-think"}, map[string]string{"proxy-think": plain}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Models: []string{"disc-think", "disc-plain"}, Defaults: fakeai.Config{Tokens: 2}})
			tc.cfg.APIKey, tc.cfg.BaseURL, tc.cfg.Logger = "sk-k", srv.URL, slog.New(slog.DiscardHandler)
			tc.cfg.FirstListWait = time.Minute // the first list waits for the fake's, however loaded the machine
			r := models.New(tc.cfg)
			t.Cleanup(r.Close)
			list, err := r.Models(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			// GET /api/models says which are reasoning models, as they are sent.
			for _, m := range list {
				if field, ok := tc.want[m.ID]; ok && m.Reasoning != (field == completion) {
					t.Errorf("%s listed with reasoning %v, sent %s", m.ID, m.Reasoning, field)
				}
			}
			for model, field := range tc.want {
				req := llm.Request{Model: model, MaxTokens: 32, ReasoningEffort: "low",
					Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}
				if _, err := r.Stream(testCtx(t), req, func(string) {}); err != nil {
					t.Fatalf("%s: %v", model, err)
				}
				effort := map[string]string{completion: "low", plain: ""}[field]
				if rec, _ := srv.LastRequest(); rec.Model != model || rec.MaxTokensField != field || rec.ReasoningEffort != effort {
					t.Errorf("%s: upstream saw %s, want %s", model, rec.Body, field)
				}
			}
		})
	}
}

// TestReasoningLearnedListed: a model its server teaches to be a
// reasoning model (it refuses max_tokens, asking for
// max_completion_tokens) is listed reasoning from then on, configured or
// discovered (its upstream's list fetched before it was learned).
func TestReasoningLearnedListed(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, file string }{
		{"configured", "upstreams:\n  - {name: azure, baseURL: %A%, models: [mydeploy]}\n"},
		{"discovered", "upstreams:\n  - {name: azure, baseURL: %A%, discover: true}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Models: []string{"mydeploy"},
				Defaults: fakeai.Config{Tokens: 2, Refuse: "max_tokens"}})
			f, err := models.ReadFile(writeFile(t, "up.yaml", tc.file, srv.URL, ""), env)
			if err != nil {
				t.Fatal(err)
			}
			r := models.New(models.Config{File: f, FirstListWait: time.Minute, Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(r.Close)
			reasoning := func() bool {
				list, err := r.Models(testCtx(t))
				if err != nil || len(list) != 1 || list[0].ID != "mydeploy" {
					t.Fatalf("models %+v, %v", list, err)
				}
				return list[0].Reasoning
			}
			if reasoning() {
				t.Fatal("mydeploy listed reasoning before its server said so")
			}
			req := llm.Request{Model: "mydeploy", MaxTokens: 32, Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}
			if _, err := r.Stream(testCtx(t), req, func(string) {}); err != nil {
				t.Fatal(err)
			}
			if rec, _ := srv.LastRequest(); rec.MaxTokensField != "max_completion_tokens" {
				t.Fatalf("upstream saw %s", rec.Body)
			}
			if !reasoning() {
				t.Error("mydeploy, learned a reasoning model, is listed reasoning: false")
			}
		})
	}
}
