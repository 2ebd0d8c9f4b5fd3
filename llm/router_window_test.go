package llm_test

import (
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestConfiguredModelTakesReportedWindow: a model both configured and
// listed by its discovering upstream takes the context window the list
// reports when its configuration sets none (a vLLM model listed in the
// file for its name or output bound), so its prompts are fitted into it;
// a configured window wins.
func TestConfiguredModelTakesReportedWindow(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Models: []string{"llama", "qwen", "other"}, ContextLength: 4096})
	up := discovering("vllm", client(srv.URL))
	up.Models = []llm.ModelInfo{{ID: "llama", Name: "Llama", MaxOutputTokens: 512}, {ID: "qwen", Name: "qwen", ContextTokens: 2048}}
	r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{up}, FirstListWait: time.Minute, Logger: quiet}) // the first list waits for the fake's
	t.Cleanup(r.Close)
	models, err := r.Models(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"llama": 4096, "qwen": 2048, "other": 4096}
	for _, m := range models {
		if m.ContextTokens != want[m.ID] {
			t.Errorf("%s: context window %d, want %d", m.ID, m.ContextTokens, want[m.ID])
		}
	}
	if len(models) != 3 || models[0].Name != "Llama" || models[0].MaxOutputTokens != 512 {
		t.Fatalf("models %+v", models)
	}
}
