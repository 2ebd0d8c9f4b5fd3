package main

import (
	"log/slog"
	"strings"

	"chatd/hub"
	"chatd/llm"
	"chatd/llm/models"
	"chatd/llm/openai"
)

// upstreamConfigured reports whether an OpenAI-compatible server is
// configured: an API key, or a base URL of its own (a local server such as
// Ollama needs no key).
func (c Config) upstreamConfigured() bool {
	return c.OpenAIKey != "" || c.OpenAIBaseURL != openai.DefaultBaseURL
}

// newModel builds the model router (see llm/models): the upstreams of
// CHATD_UPSTREAMS_FILE; else the OPENAI_MODELS list (and, with
// OPENAI_MODELS_FROM_UPSTREAM, whatever the upstream lists) served by the
// OpenAI-compatible client; else the offline demo model. The titler names
// conversations with the same router.
func newModel(cfg Config, logger *slog.Logger) (*llm.Router, hub.Titler) {
	mc := models.Config{DemoDelay: cfg.DemoDelay, Logger: logger, File: cfg.Upstreams}
	mc.Client = openai.Options{MaxRetries: retries(cfg.UpstreamRetries),
		FirstTokenTimeout: cfg.FirstTokenTimeout, ReasoningFirstTokenTimeout: cfg.ReasoningFirstTokenTimeout,
		IdleTimeout: cfg.IdleTimeout}
	if cfg.Upstreams == nil && cfg.upstreamConfigured() {
		mc.APIKey, mc.BaseURL = cfg.OpenAIKey, cfg.OpenAIBaseURL
		mc.Models, mc.Discover = strings.Join(cfg.OpenAIModels, ","), cfg.OpenAIModelsFromUpstream
		mc.ReasoningModels = cfg.OpenAIReasoningModels
		mc.InlineThinking = cfg.OpenAIInlineThinking
	}
	router := models.New(mc)
	titler := &llm.Titler{Streamer: router, Logger: logger}
	return router, titler.TitleFor
}

// retries maps the configured count to openai.Options.MaxRetries, where 0
// means the default and a negative number none.
func retries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
