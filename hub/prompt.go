package hub

import (
	"chatd/llm"
	"chatd/persistence"
)

const (
	// DefaultHistoryBytes is the default Options.HistoryBytes.
	DefaultHistoryBytes = 100_000
	// DefaultMaxHistoryBytes is the default Options.MaxHistoryBytes: the
	// history a window of 1,048,576 tokens holds by the estimate (3 MiB).
	DefaultMaxHistoryBytes = 1 << 20 * bytesPerToken
)

// historyBound is the bytes of history a prompt fitted into tokens
// estimated tokens (the model's context window or the cap a refusal
// taught, the smaller; 0: neither known) may send: all those tokens hold,
// bytesPerToken each (fit never keeps more, so the bound leaves nothing
// out that the window holds), up to MaxHistoryBytes; HistoryBytes when
// nothing is known of the model. The bound also limits what a running
// answer keeps of its conversation (promptSource).
func (o *Options) historyBound(tokens int) int {
	switch {
	case tokens <= 0:
		return min(o.HistoryBytes, o.MaxHistoryBytes)
	case tokens >= o.MaxHistoryBytes/bytesPerToken:
		return o.MaxHistoryBytes
	}
	return tokens * bytesPerToken
}

// smallerBound is the smaller of two bounds, where 0 (or less) means none.
func smallerBound(a, b int) int {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	}
	return min(a, b)
}

// promptLimits bound the history of a prompt.
type promptLimits struct {
	bytes  int // the path's bytes; 0: no bound
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
//
// It is historyPath, which applies lim.bytes, then fit, which applies
// lim.tokens: an answer keeps the first's result (promptSource) to fit
// its prompt again with the second, without the conversation.
func buildPrompt(system string, msgs []persistence.Message, leafID string, lim promptLimits) ([]llm.Message, int) {
	p := historyPath(msgs, leafID, lim.bytes)
	return p.fit(system, lim.tokens)
}

// promptPath is the part of the path from the root to a leaf that a
// prompt may send: the leaf and its ancestors within a bound of
// bytes, leaf first, only their role and content (answers without
// text skipped), and how many older messages of the path the bound left
// out.
type promptPath struct {
	msgs    []llm.Message // leaf first
	omitted int
}

// historyPath walks msgs from leafID toward the root and returns the
// messages within limit bytes of content (0: no bound), the leaf always
// kept.
// The messages kept share their Content with msgs, nothing else of them:
// once the caller drops msgs, a promptPath holds only what it may send.
func historyPath(msgs []persistence.Message, leafID string, limit int) promptPath {
	byID := make(map[string]*persistence.Message, len(msgs))
	for i := range msgs {
		byID[msgs[i].ID] = &msgs[i]
	}
	var p promptPath
	left, full := limit, false
	for id, steps := leafID, 0; id != "" && steps <= len(byID); steps++ { // steps: a cycle ends the walk
		m, ok := byID[id]
		if !ok {
			break
		}
		id = m.ParentID
		if m.Content == "" {
			continue
		}
		if full || len(p.msgs) > 0 && limit > 0 && len(m.Content) > left {
			full = true
			p.omitted++
			continue
		}
		left -= len(m.Content)
		p.msgs = append(p.msgs, llm.Message{Role: role(m.Role), Content: m.Content})
	}
	return p
}

// fit returns the prompt of p's path after system within tokens
// estimated tokens (0: no bound), and how many messages of the whole
// path it leaves out (those p left out included).
func (p promptPath) fit(system string, tokens int) ([]llm.Message, int) {
	left := tokens - estimateTokens(system)
	n := len(p.msgs)
	for i, m := range p.msgs {
		cost := estimateTokens(m.Content)
		if i > 0 && tokens > 0 && cost > left {
			n = i
			break
		}
		left -= cost
	}
	path, omitted := p.msgs[:n], p.omitted+len(p.msgs)-n
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
