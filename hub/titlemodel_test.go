package hub

import (
	"context"
	"testing"
	"time"

	"chatd/llm"
)

// TestTitlerGetsTheFittedModel: the Titler is given the answer's model as
// the hub fits prompts into it, its window the listed one or, when a
// refusal taught a smaller one, that (learned), so that the title request
// keeps within it (llm.Titler.TitleFor).
func TestTitlerGetsTheFittedModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		listed  int
		learned int // a window a refusal named (0: none)
		want    llm.ModelInfo
	}{
		{"listed", 8000, 0, llm.ModelInfo{ID: "fake", Default: true, ContextTokens: 8000}},
		{"learned", 8000, 3000, llm.ModelInfo{ID: "fake", Default: true, ContextTokens: 3000, ContextTokensLearned: true}},
		{"unknown", 0, 0, llm.ModelInfo{ID: "fake", Default: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan llm.ModelInfo, 1)
			titler := func(_ context.Context, m llm.ModelInfo, _, _ string) string { got <- m; return "Otters" }
			e := newEnv(t, Options{Titler: titler}, say("Otters ", "are ", "weasels."))
			e.model.window = tt.listed
			if tt.learned > 0 {
				e.h.windows.learn("fake", tt.listed, tt.learned)
			}
			sub := newSub("u")
			res := e.send(t, sub, "tell me about otters")
			if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
				t.Fatalf("answer ended %+v", done)
			}
			select {
			case m := <-got:
				if m.ID != tt.want.ID || m.ContextTokens != tt.want.ContextTokens || m.ContextTokensLearned != tt.want.ContextTokensLearned {
					t.Fatalf("the titler got %+v, want %+v", m, tt.want)
				}
			case <-time.After(waitTimeout):
				t.Fatal("no title request")
			}
		})
	}
}
