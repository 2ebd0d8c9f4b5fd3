package main

import (
	"log/slog"
	"strings"

	"chatd/hub"
	"chatd/llm"
	"chatd/llm/demo"
	"chatd/llm/openai"
)

// upstreamConfigured reports whether an OpenAI-compatible server is
// configured: an API key, or a base URL of its own (a local server such as
// Ollama needs no key).
func (c Config) upstreamConfigured() bool {
	return c.OpenAIKey != "" || c.OpenAIBaseURL != openai.DefaultBaseURL
}

// newModel builds the model router: the OPENAI_MODELS list (and, with
// OPENAI_MODELS_FROM_UPSTREAM, whatever the upstream lists) served by the
// OpenAI-compatible client, or the offline demo model when no upstream is
// configured. The titler names conversations with the same router.
func newModel(cfg Config, logger *slog.Logger) (*llm.Router, hub.Titler) {
	opts := llm.RouterOptions{Logger: logger}
	if cfg.upstreamConfigured() {
		client := openai.New(openai.Options{APIKey: cfg.OpenAIKey, BaseURL: cfg.OpenAIBaseURL, Logger: logger})
		opts.Routes = llm.Routes(strings.Join(cfg.OpenAIModels, ","), client)
		if cfg.OpenAIModelsFromUpstream {
			opts.Upstream, opts.UpstreamStreamer = client, client
		}
	} else {
		info := demo.Info()
		info.Default = true
		opts.Routes = []llm.Route{{Info: info, Streamer: demo.New(demo.Options{})}}
	}
	router := llm.NewRouter(opts)
	titler := &llm.Titler{Streamer: router, Logger: logger}
	return router, titler.Title
}
