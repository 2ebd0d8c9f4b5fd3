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
	return checkParamsKept(ctx, catalog, model, p, nil)
}

// checkParamsKept is checkParams for a patch of a conversation whose
// stored maxTokens is kept: a maxTokens equal to kept is checked against
// the bound of any model (maxTokensUnknown), not model's. A conversation
// switched to a model with a lower bound keeps its value, capped at send
// time; the web client sends every parameter when one changes, and a
// temperature changed alone must not be refused for a maxTokens the user
// never touched.
func checkParamsKept(ctx context.Context, catalog llm.Catalog, model string, p *persistence.Params, kept *int) error {
	if p == nil {
		return nil
	}
	bound := maxTokensUnknown
	if info, ok := modelInfo(ctx, catalog, model); ok && info.MaxOutputTokens > 0 {
		bound = info.MaxOutputTokens
	}
	if p.MaxTokens != nil && kept != nil && *p.MaxTokens == *kept {
		bound = maxTokensUnknown
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
// conversation will have (the patch's, else its current one); a maxTokens
// the conversation has already is kept above that model's bound
// (checkParamsKept). It reads the conversation as the latest state
// (persistence.WithLatest): the model and parameters it has now, and a
// conversation created a moment ago is there.
func (h *Conversations) checkPatchParams(c *gin.Context, owner, id string, f *fields) error {
	if f.Params == nil {
		return nil
	}
	conv, err := h.store.Conversation(persistence.WithLatest(c.Request.Context()), owner, id)
	if err != nil {
		return storeError(err, "load conversation "+id)
	}
	model := conv.Model
	if f.Model != nil {
		model = *f.Model
	}
	var kept *int
	if conv.Params != nil {
		kept = conv.Params.MaxTokens
	}
	return checkParamsKept(c.Request.Context(), h.catalog, model, f.Params, kept)
}
