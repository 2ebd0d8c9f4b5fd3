package hub

import (
	"fmt"
	"testing"

	"chatd/llm"
	"chatd/persistence"
)

func TestBuildPrompt(t *testing.T) {
	// u1 -> a1 -> u2 -> a2, and an edit u2' under a1.
	msgs := []persistence.Message{
		{ID: "u1", Role: persistence.RoleUser, Content: "one"},
		{ID: "a1", ParentID: "u1", Role: persistence.RoleAssistant, Content: "answer one"},
		{ID: "u2", ParentID: "a1", Role: persistence.RoleUser, Content: "two"},
		{ID: "a2", ParentID: "u2", Role: persistence.RoleAssistant, Content: ""}, // failed: no text
		{ID: "u2e", ParentID: "a1", Role: persistence.RoleUser, Content: "two, edited"},
		{ID: "u3", ParentID: "a2", Role: persistence.RoleUser, Content: "three"}, // sent again after a2 failed
	}
	// Estimated tokens: "one" 1+4=5, "answer one" 4+4=8, "two" 5, "be brief" 3+4=7.
	tests := []struct {
		name, system, leaf string
		lim                promptLimits
		want               string
		omitted            int
	}{
		{"branch path", "", "u2e", promptLimits{bytes: 1000}, "[user:one assistant:answer one user:two, edited]", 0},
		{"other branch", "", "u2", promptLimits{bytes: 1000}, "[user:one assistant:answer one user:two]", 0},
		{"system prompt first", "be brief", "u1", promptLimits{bytes: 1000}, "[system:be brief user:one]", 0},
		{"empty answers skipped", "", "a2", promptLimits{bytes: 1000}, "[user:one assistant:answer one user:two]", 0},
		{"oldest dropped past the bytes, and the answer left first", "", "u2", promptLimits{bytes: 14}, "[user:two]", 2},
		{"the leaf always kept", "", "u2e", promptLimits{bytes: 1}, "[user:two, edited]", 2},
		{"unknown leaf", "", "zz", promptLimits{bytes: 1000}, "[]", 0},
		{"tokens: all fit exactly", "", "u2", promptLimits{tokens: 18}, "[user:one assistant:answer one user:two]", 0},
		{"tokens: one short drops the oldest, and the answer left first", "", "u2", promptLimits{tokens: 17}, "[user:two]", 2},
		{"tokens: system prompt counted", "be brief", "u2", promptLimits{tokens: 25}, "[system:be brief user:one assistant:answer one user:two]", 0},
		{"tokens: system prompt kept, history cut", "be brief", "u2", promptLimits{tokens: 24}, "[system:be brief user:two]", 2},
		{"tokens: leaf kept beyond the budget", "be brief", "u2", promptLimits{tokens: 1}, "[system:be brief user:two]", 2},
		{"a gap stays a gap", "", "u2", promptLimits{tokens: 10}, "[user:two]", 2},
		{"user messages in a row go as one", "", "u3", promptLimits{bytes: 1000}, "[user:one assistant:answer one user:two\n\nthree]", 0},
		{"the cut never leaves an answer first", "", "u3", promptLimits{bytes: 20}, "[user:two\n\nthree]", 2},
		{"both: the bytes cut first", "", "u2", promptLimits{bytes: 14, tokens: 18}, "[user:two]", 2},
		{"both: the tokens cut first", "", "u3", promptLimits{bytes: 1000, tokens: 10}, "[user:three]", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, omitted := buildPrompt(tt.system, msgs, tt.leaf, tt.lim)
			if s := show(got); s != tt.want || omitted != tt.omitted {
				t.Fatalf("got %s (%d left out), want %s (%d)", s, omitted, tt.want, tt.omitted)
			}
		})
	}
}

func TestPromptTokenBudget(t *testing.T) {
	tests := []struct{ ctx, maxTokens, want int }{
		{0, 100, 0},                     // unknown window: no bound
		{8000, 0, 8000 - 2000 - 16},     // a quarter kept for the answer
		{100000, 0, 100000 - 4096 - 16}, // at most 4096
		{8000, 500, 8000 - 500 - 16},    // the conversation's maxTokens
		{100, 200, 1},                   // never below one
	}
	for _, tt := range tests {
		if got := promptTokenBudget(tt.ctx, tt.maxTokens); got != tt.want {
			t.Errorf("promptTokenBudget(%d, %d) = %d, want %d", tt.ctx, tt.maxTokens, got, tt.want)
		}
	}
	if estimateTokens("") != 0 || estimateTokens("abc") != 5 || estimateTokens("abcd") != 6 || estimateTokens("中文") != 6 {
		t.Fatal("estimateTokens")
	}
}

func show(msgs []llm.Message) string {
	s := make([]string, len(msgs))
	for i, m := range msgs {
		s[i] = string(m.Role) + ":" + m.Content
	}
	return fmt.Sprint(s)
}

func TestCheckSeq(t *testing.T) {
	text := []byte("aé") // 'é' is two bytes: offsets 0, 1 and 3 are boundaries
	tests := []struct {
		seq int64
		ok  bool
	}{{0, true}, {1, true}, {2, false}, {3, true}, {4, false}, {-1, false}}
	for _, tt := range tests {
		if err := checkSeq(text, tt.seq); (err == nil) != tt.ok {
			t.Errorf("checkSeq(%d) = %v, want ok=%v", tt.seq, err, tt.ok)
		}
	}
}
