package hub

import (
	"chatd/llm"
	"chatd/persistence"
)

// promptLimits bound the history of a prompt.
type promptLimits struct {
	chars  int // the path's characters (bytes); 0: no bound
	tokens int // estimated tokens of everything sent, system prompt included; 0: no bound
}

// buildPrompt returns the messages sent upstream to answer leafID: the
// system prompt, then the path from the conversation's root to leafID
// (other branches are not part of this answer's history), and how many
// messages of that path were left out. When the path exceeds a limit, the
// oldest messages are left out; the system prompt and the leaf are always
// kept. Answers that produced no text are skipped (and not counted), and
// only Content is sent: an answer's reasoning never goes back upstream.
//
// The roles alternate, user first, as strict chat templates (Gemma,
// Mistral, ... behind vLLM, TGI or llama.cpp) demand: an answer left
// first by the cut is left out too, and user messages that follow one
// another (a message sent again after an answer that failed before its
// first token) go as one, their texts a blank line apart.

func buildPrompt(system string, msgs []persistence.Message, leafID string, lim promptLimits) ([]llm.Message, int) {
	byID := make(map[string]persistence.Message, len(msgs))
	for _, m := range msgs {
		byID[m.ID] = m
	}
	var path []llm.Message // leaf first
	chars, tokens := lim.chars, lim.tokens-estimateTokens(system)
	omitted, full := 0, false
	for id, steps := leafID, 0; id != "" && steps <= len(byID); steps++ { // steps: a cycle ends the walk
		m, ok := byID[id]
		if !ok {
			break
		}
		id = m.ParentID
		if m.Content == "" {
			continue
		}
		cost := estimateTokens(m.Content)
		if full || len(path) > 0 && (lim.chars > 0 && len(m.Content) > chars || lim.tokens > 0 && cost > tokens) {
			full = true
			omitted++
			continue
		}
		chars -= len(m.Content)
		tokens -= cost
		path = append(path, llm.Message{Role: role(m.Role), Content: m.Content})
	}
	for len(path) > 1 && path[len(path)-1].Role == llm.RoleAssistant { // the leaf is a user message
		path = path[:len(path)-1]
		omitted++
	}
	out := make([]llm.Message, 0, len(path)+1)
	if system != "" {
		out = append(out, llm.Message{Role: llm.RoleSystem, Content: system})
	}
	for i := len(path) - 1; i >= 0; i-- {
		if last := len(out) - 1; last >= 0 && out[last].Role == path[i].Role {
			out[last].Content += "\n\n" + path[i].Content
			continue
		}
		out = append(out, path[i])
	}
	return out, omitted
}

func role(r persistence.Role) llm.Role {
	if r == persistence.RoleAssistant {
		return llm.RoleAssistant
	}
	return llm.RoleUser
}
