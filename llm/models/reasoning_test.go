package models_test

import (
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/models"
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
	r := models.New(models.Config{File: f})
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
