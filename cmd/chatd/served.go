package main

import (
	"log/slog"
)

// servedUpstream is one upstream as the start-up log names it: never its
// key, headers or query parameters; its base URL with credentials hidden.
type servedUpstream struct {
	Name     string   `json:"name"`
	BaseURL  string   `json:"base_url"`
	Models   []string `json:"models"`
	Discover bool     `json:"discover"` // also what the upstream's GET /models lists
}

// servedModel is the start-up log's "model" attribute: which source
// answers (as newModel chooses it), "demo", "environment" (OPENAI_*) or
// the upstreams file, and the upstreams with their models.
func servedModel(cfg Config) slog.Attr {
	switch {
	case cfg.Upstreams != nil:
		var ups []servedUpstream
		for _, u := range cfg.Upstreams.Upstreams {
			su := servedUpstream{Name: u.Name, BaseURL: redactURI(u.BaseURL), Models: []string{}, Discover: u.Discover}
			for _, m := range u.Models {
				su.Models = append(su.Models, m.ID)
			}
			ups = append(ups, su)
		}
		return slog.Group("model", slog.String("source", cfg.UpstreamsFile), slog.Any("upstreams", ups))
	case cfg.upstreamConfigured():
		up := servedUpstream{Name: "openai", BaseURL: redactURI(cfg.OpenAIBaseURL),
			Models: append([]string{}, cfg.OpenAIModels...), Discover: cfg.OpenAIModelsFromUpstream}
		return slog.Group("model", slog.String("source", "environment"), slog.Any("upstreams", []servedUpstream{up}))
	}
	return slog.Group("model", slog.String("source", "demo"))
}

// logStart is the start-up log line, naming build's version and revision,
// and a warning when production serves the demo model: its canned answers
// are fine for a demonstration, but with the OPENAI_* lines lost they
// would be served without a word.
func logStart(cfg Config, addr string, build buildInfo, logger *slog.Logger) {
	attrs := append(build.attrs(), slog.String("env", cfg.Env), slog.String("addr", addr),
		slog.String("data_dir", cfg.DataDir), slog.Bool("registration_open", cfg.Registration), servedModel(cfg))
	logger.Info("starting chatd", attrs...)
	if cfg.Production() && cfg.Upstreams == nil && !cfg.upstreamConfigured() {
		logger.Warn("production serves the demo model (offline, canned answers): no CHATD_UPSTREAMS_FILE, " +
			"OPENAI_API_KEY or OPENAI_BASE_URL is set; set them for a real model, or keep this for a demonstration")
	}
}
