package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"chatd/llm"
)

// Models implements llm.Catalog: it asks GET <BaseURL>/models (Azure lists
// models, not deployments). Name is the id; nothing is marked default.
// ContextTokens is read from the fields servers use to report a model's
// context window: context_length (OpenRouter, LM Studio), max_model_len
// (vLLM), context_window (Groq and others).
func (c *Client) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	st := &attempt{list: &bytes.Buffer{}}
	list, err := c.api.ListModels(context.WithValue(ctx, attemptKey{}, st))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, fmt.Errorf("list upstream models: %w", classify(err, st, c.opts.APIKey))
	}
	windows := contextWindows(st.list.Bytes())
	out := make([]llm.ModelInfo, 0, len(list.Models))
	for _, m := range list.Models {
		out = append(out, llm.ModelInfo{ID: m.ID, Name: m.ID, ContextTokens: windows[m.ID], Reasoning: c.kind.thinks(m.ID)})
	}
	return out, nil
}

// contextWindows reads the context window each model of a list reports.
func contextWindows(body []byte) map[string]int {
	var list struct {
		Data []struct {
			ID            string `json:"id"`
			ContextLength int    `json:"context_length"`
			MaxModelLen   int    `json:"max_model_len"`
			ContextWindow int    `json:"context_window"`
		} `json:"data"`
	}
	out := make(map[string]int)
	if json.Unmarshal(body, &list) != nil {
		return out
	}
	for _, m := range list.Data {
		if n := max(m.ContextLength, m.MaxModelLen, m.ContextWindow); n > 0 {
			out[m.ID] = n
		}
	}
	return out
}
