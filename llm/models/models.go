// Package models wires the model catalog from configuration: the offline
// demo model when no provider is configured, otherwise an OpenAI-compatible
// upstream serving a configured model list and/or the models it lists.
package models

import (
	"log/slog"
	"strings"
	"time"

	"chatd/llm"
	"chatd/llm/demo"
	"chatd/llm/openai"
)

// Config is the model configuration of a server.
type Config struct {
	// APIKey and BaseURL select the upstream; with neither set, only the
	// offline demo model is offered.
	APIKey  string
	BaseURL string
	// Models is a comma-separated list of model ids users may pick
	// ("gpt-4o-mini,gpt-4o"); the first is the default. Empty: the
	// upstream's GET /v1/models decides.
	Models string
	// Discover also offers the models the upstream lists, after Models.
	Discover bool
	// Azure and AzureAPIVersion select Azure OpenAI (see openai.Options).
	Azure           bool
	AzureAPIVersion string
	// Client tunes the upstream client (retries, timeouts, HTTP client);
	// its APIKey, BaseURL, Azure, AzureAPIVersion and Logger are taken
	// from this Config.
	Client openai.Options
	// DemoDelay is the demo model's pause between tokens (see demo.Options).
	DemoDelay time.Duration
	// CacheTTL is how long an upstream model list is reused (see
	// llm.RouterOptions).
	CacheTTL time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Demo reports whether c selects the offline demo model.
func (c Config) Demo() bool {
	return strings.TrimSpace(c.APIKey) == "" && strings.TrimSpace(c.BaseURL) == ""
}

// New returns the Router for c. Pass it to the hub as its model, and
// (&llm.Titler{Streamer: router}).Title as its titler.
func New(c Config) *llm.Router {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	opts := llm.RouterOptions{CacheTTL: c.CacheTTL, Logger: c.Logger}
	if c.Demo() {
		d := demo.New(demo.Options{Delay: c.DemoDelay})
		info := demo.Info()
		info.Default = true
		opts.Routes = []llm.Route{{Info: info, Streamer: d}}
		return llm.NewRouter(opts)
	}
	co := c.Client
	co.APIKey, co.BaseURL = strings.TrimSpace(c.APIKey), strings.TrimSpace(c.BaseURL)
	co.Azure, co.AzureAPIVersion, co.Logger = c.Azure, c.AzureAPIVersion, c.Logger
	up := openai.New(co)
	opts.Routes = llm.Routes(c.Models, up)
	if c.Discover || len(opts.Routes) == 0 {
		opts.Upstream, opts.UpstreamStreamer = up, up
	}
	return llm.NewRouter(opts)
}
