package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"chatd/llm"
	"chatd/transport/httperr"
)

// Models serves GET /api/models from a catalog.
type Models struct {
	catalog llm.Catalog
}

// NewModels returns the models route; a nil catalog lists no models.
func NewModels(catalog llm.Catalog) *Models { return &Models{catalog: catalog} }

// Routes registers GET /models on authed.
func (h *Models) Routes(authed gin.IRouter) { authed.GET("/models", h.list) }

func (h *Models) list(c *gin.Context) {
	models := []llm.ModelInfo{}
	if h.catalog != nil {
		m, err := h.catalog.Models(c.Request.Context())
		if err != nil {
			httperr.AbortError(c, httperr.Unavailable("the model list is unavailable; retry", fmt.Errorf("list models: %w", err)))
			return
		}
		models = append(models, m...)
	}
	c.JSON(http.StatusOK, gin.H{"models": models, "upstreams": upstreams(models)})
}

// upstream is one group of /api/models.
type upstream struct {
	Name  string `json:"name"`
	Label string `json:"label"`
}

// upstreams lists the upstreams of models in the order they first appear
// (the demo model's group has the name "").
func upstreams(models []llm.ModelInfo) []upstream {
	out := []upstream{}
	seen := make(map[string]bool)
	for _, m := range models {
		if !seen[m.Upstream] {
			seen[m.Upstream] = true
			out = append(out, upstream{Name: m.Upstream, Label: m.UpstreamLabel})
		}
	}
	return out
}
