package openai

import (
	"context"
	"fmt"

	"chatd/llm"
)

// Models implements llm.Catalog: it asks GET <BaseURL>/models (Azure lists
// models, not deployments). Name is the id; nothing is marked default.
func (c *Client) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	st := &attempt{}
	list, err := c.api.ListModels(context.WithValue(ctx, attemptKey{}, st))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, fmt.Errorf("list upstream models: %w", classify(err, st, c.opts.APIKey))
	}
	out := make([]llm.ModelInfo, 0, len(list.Models))
	for _, m := range list.Models {
		out = append(out, llm.ModelInfo{ID: m.ID, Name: m.ID})
	}
	return out, nil
}
