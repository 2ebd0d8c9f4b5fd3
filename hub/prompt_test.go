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
	}
	tests := []struct {
		name, system, leaf string
		max                int
		want               string
	}{
		{"branch path", "", "u2e", 1000, "[user:one assistant:answer one user:two, edited]"},
		{"other branch", "", "u2", 1000, "[user:one assistant:answer one user:two]"},
		{"system prompt first", "be brief", "u1", 1000, "[system:be brief user:one]"},
		{"empty answers skipped", "", "a2", 1000, "[user:one assistant:answer one user:two]"},
		{"oldest dropped past the budget", "", "u2", 14, "[assistant:answer one user:two]"},
		{"the leaf always kept", "", "u2e", 1, "[user:two, edited]"},
		{"unknown leaf", "", "zz", 1000, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildPrompt(tt.system, msgs, tt.leaf, tt.max)
			if s := show(got); s != tt.want {
				t.Fatalf("got %s, want %s", s, tt.want)
			}
		})
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
