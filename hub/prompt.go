package hub

import (
	"chatd/llm"
	"chatd/persistence"
)

// buildPrompt returns the messages sent upstream to answer leafID: the
// system prompt, then the path from the conversation's root to leafID
// (other branches are not part of this answer's history). When the path is
// longer than maxChars, the oldest messages are left out; the leaf is
// always kept. Answers that produced no text are skipped.
func buildPrompt(system string, msgs []persistence.Message, leafID string, maxChars int) []llm.Message {
	byID := make(map[string]persistence.Message, len(msgs))
	for _, m := range msgs {
		byID[m.ID] = m
	}
	var path []llm.Message // leaf first
	budget := maxChars
	for id := leafID; id != ""; {
		m, ok := byID[id]
		if !ok {
			break
		}
		id = m.ParentID
		if m.Content == "" {
			continue
		}
		if len(path) > 0 && len(m.Content) > budget {
			break
		}
		budget -= len(m.Content)
		path = append(path, llm.Message{Role: role(m.Role), Content: m.Content})
		if len(byID) < len(path) { // a cycle: stop rather than loop
			break
		}
	}
	out := make([]llm.Message, 0, len(path)+1)
	if system != "" {
		out = append(out, llm.Message{Role: llm.RoleSystem, Content: system})
	}
	for i := len(path) - 1; i >= 0; i-- {
		out = append(out, path[i])
	}
	return out
}

func role(r persistence.Role) llm.Role {
	if r == persistence.RoleAssistant {
		return llm.RoleAssistant
	}
	return llm.RoleUser
}
