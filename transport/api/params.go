package api

import (
	"context"

	"github.com/gin-gonic/gin"

	"chatd/llm"
	"chatd/persistence"
	"chatd/transport/httperr"
)

// maxTokensUnknown bounds maxTokens for a model whose output bound is not
// configured.
const maxTokensUnknown = 1 << 20

// checkParams validates a conversation's sampling parameters for model
// ("" : the default model): out-of-range values are refused with a 400
// invalid_field naming params.<field>, never clamped.
func checkParams(ctx context.Context, catalog llm.Catalog, model string, p *persistence.Params) error {
	if p == nil {
		return nil
	}
	bound := maxTokensUnknown
	if info, ok := modelInfo(ctx, catalog, model); ok && info.MaxOutputTokens > 0 {
		bound = info.MaxOutputTokens
	}
	if err := llm.CheckParams(p.Temperature, p.TopP, p.MaxTokens, p.Stop, bound); err != nil {
		return httperr.InvalidField("params."+err.Field, err.Problem)
	}
	return nil
}

// modelInfo finds a model of the catalog ("": the default one).
func modelInfo(ctx context.Context, catalog llm.Catalog, id string) (llm.ModelInfo, bool) {
	if catalog == nil {
		return llm.ModelInfo{}, false
	}
	models, err := catalog.Models(ctx)
	if err != nil {
		return llm.ModelInfo{}, false
	}
	for _, m := range models {
		if m.ID == id || id == "" && m.Default {
			return m, true
		}
	}
	return llm.ModelInfo{}, false
}

// checkPatchParams validates the params of a patch against the model the
// conversation will have (the patch's, else its current one).
func (h *Conversations) checkPatchParams(c *gin.Context, owner, id string, f *fields) error {
	if f.Params == nil {
		return nil
	}
	model := ""
	if f.Model != nil {
		model = *f.Model
	} else {
		// The latest state (persistence.WithLatest): the model it has now,
		// and a conversation created a moment ago is there.
		conv, err := h.store.Conversation(persistence.WithLatest(c.Request.Context()), owner, id)
		if err != nil {
			return storeError(err, "load conversation "+id)
		}
		model = conv.Model
	}
	return checkParams(c.Request.Context(), h.catalog, model, f.Params)
}
