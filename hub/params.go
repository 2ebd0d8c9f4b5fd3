package hub

import (
	"context"
	"slices"

	"chatd/llm"
	"chatd/persistence"
)

// request builds the upstream request answering leafID: the conversation's
// sampling parameters over the model's defaults, and the history (within
// historyBound) fitted into the model's context window (the smaller of the
// catalog's and one an upstream's refusal taught, refit.go), with the answer's max tokens
// lowered when they leave the prompt no room in it (prune.go). It returns
// how many messages were left out, and what the prompt was built from, to
// fit it again.
func (h *Hub) request(ctx context.Context, conv persistence.Conversation, msgs []persistence.Message,
	leafID, model string,
) (llm.Request, int, promptSource) {
	info := h.modelInfo(ctx, model)
	req := llm.Request{Model: model}
	applyParams(&req, conv.Params, info)
	window, capped := h.windows.fit(model, info.ContextTokens), h.caps.fit(model, 0)
	src := promptSource{system: conv.SystemPrompt, window: window, maxTokens: req.MaxTokens,
		path: historyPath(msgs, leafID, h.opts.historyBound(smallerBound(window, capped)))}
	budget := promptTokenBudget(src.window, src.answerRoom(src.window, tokenRatio{}))
	if capped > 0 && (budget == 0 || capped < budget) {
		budget = capped
	}
	var omitted int
	req.Messages, omitted = src.build(budget)
	req.MaxTokens = answerTokens(src.window, req.MaxTokens, estimatePrompt(req.Messages))
	return req, omitted, src
}

// modelInfo returns what the catalog says of a model (the zero value when
// it lists none of that id: no window, no defaults).
func (h *Hub) modelInfo(ctx context.Context, id string) llm.ModelInfo {
	models, err := h.opts.Model.Models(ctx)
	if err != nil {
		return llm.ModelInfo{ID: id}
	}
	for _, m := range models {
		if m.ID == id {
			return m
		}
	}
	return llm.ModelInfo{ID: id}
}

// fittedModel is what the catalog says of a model, with the window
// prompts are fitted into (one a refusal taught, when smaller or none
// was known: refit.go), as Models lists it.
func (h *Hub) fittedModel(ctx context.Context, id string) llm.ModelInfo {
	info := h.modelInfo(ctx, id)
	if w := h.windows.fit(id, info.ContextTokens); w != info.ContextTokens {
		info.ContextTokens, info.ContextTokensLearned = w, true
	}
	return info
}

// applyParams sets req's sampling parameters: the conversation's where it
// sets them, else the model's defaults. maxTokens is capped at the model's
// output bound (a conversation may have been tuned for another model).
func applyParams(req *llm.Request, p *persistence.Params, info llm.ModelInfo) {
	d := info.Defaults
	req.Temperature, req.TopP, req.MaxTokens, req.Stop = d.Temperature, d.TopP, d.MaxTokens, d.Stop
	if p != nil {
		if p.Temperature != nil {
			req.Temperature = p.Temperature
		}
		if p.TopP != nil {
			req.TopP = p.TopP
		}
		if p.MaxTokens != nil {
			req.MaxTokens = *p.MaxTokens
		}
		if len(p.Stop) > 0 {
			req.Stop = p.Stop
		}
	}
	if info.MaxOutputTokens > 0 && req.MaxTokens > info.MaxOutputTokens {
		req.MaxTokens = info.MaxOutputTokens
	}
}

// Models lists the models of Options.Model as the hub fits prompts into
// them: a model whose window an upstream's refusal taught this instance
// (refit.go: smaller than the configured or reported one, or none was
// known, and learned within learnedWindowAge) has that window, marked
// ContextTokensLearned. Learned windows are per instance, in memory: other
// instances of a cluster list their own. The catalog's error is returned
// beside whatever it listed.
func (h *Hub) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	models, err := h.opts.Model.Models(ctx)
	if len(models) == 0 {
		return models, err
	}
	out := slices.Clone(models) // the catalog's slice may be shared
	for i := range out {
		if w := h.windows.fit(out[i].ID, out[i].ContextTokens); w != out[i].ContextTokens {
			out[i].ContextTokens, out[i].ContextTokensLearned = w, true
		}
	}
	return out, err
}
