// Package models wires the model catalog from configuration: the offline
// demo model when no provider is configured; otherwise the upstreams of an
// upstreams file (CHATD_UPSTREAMS_FILE), or the one upstream the OPENAI_*
// variables describe, each serving its configured models and/or the models
// it lists.
package models

import (
	"log/slog"
	"maps"
	"net/url"
	"strings"
	"time"

	"chatd/llm"
	"chatd/llm/demo"
	"chatd/llm/openai"
)

// Config is the model configuration of a server.
type Config struct {
	// File, when set, lists the upstreams; the single-upstream fields
	// below (APIKey to AzureAPIVersion) are then ignored.
	File *File
	// APIKey and BaseURL select the one upstream of the shorthand; with
	// neither set (and no File), only the offline demo model is offered.
	APIKey  string
	BaseURL string
	// Models is a comma-separated list of model ids users may pick
	// ("gpt-4o-mini,gpt-4o"); the first is the default. Empty: the
	// upstream's GET /v1/models decides.
	Models string
	// Discover also offers the models the upstream lists, after Models.
	Discover bool
	// ReasoningModels declares models of the one upstream reasoning models
	// whatever their ids (OPENAI_REASONING_MODELS), as "reasoning: true"
	// does in an upstreams file: ids of Models, or of models the upstream
	// lists (with Discover); "*" declares every model, as on an upstream.
	ReasoningModels []string
	// InlineThinking says how models of the one upstream think inline
	// (OPENAI_INLINE_THINKING), as "inlineThinking" does in an upstreams
	// file: ids of Models, or of models the upstream lists (with
	// Discover); "*" sets every model's, as on an upstream.
	InlineThinking map[string]openai.InlineThinking
	// Azure and AzureAPIVersion select Azure OpenAI (see openai.Options).
	Azure           bool
	AzureAPIVersion string
	// Client tunes every upstream client (retries, timeouts, HTTP client);
	// its APIKey, BaseURL, Azure, AzureDeployments, Headers, Query,
	// ReasoningModels, InlineThinking and Logger are taken from the
	// upstream, and an upstream's own timeouts and retries win.
	Client openai.Options
	// DemoDelay is the demo model's pause between tokens (see demo.Options).
	DemoDelay time.Duration
	// CacheTTL is how long an upstream model list is reused and
	// FirstListWait how long a list waits for an upstream's first one
	// (see llm.RouterOptions).
	CacheTTL      time.Duration
	FirstListWait time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Demo reports whether c selects the offline demo model.
func (c Config) Demo() bool {
	return c.File == nil && strings.TrimSpace(c.APIKey) == "" && strings.TrimSpace(c.BaseURL) == ""
}

// New returns the Router for c. Pass it to the hub as its model, and
// (&llm.Titler{Streamer: router}).Title as its titler; Close it at exit.
func New(c Config) *llm.Router {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	opts := llm.RouterOptions{CacheTTL: c.CacheTTL, FirstListWait: c.FirstListWait, Logger: c.Logger}
	switch {
	case c.Demo():
		d := demo.New(demo.Options{Delay: c.DemoDelay})
		info := demo.Info()
		info.Default = true
		opts.Routes = []llm.Route{{Info: info, Streamer: d}}
	case c.File != nil:
		opts.Default = c.File.Default
		for _, u := range c.File.Upstreams {
			opts.Upstreams = append(opts.Upstreams, c.upstream(u, nil, nil))
		}
	default:
		opts.Upstreams = []llm.Upstream{c.shorthand()}
	}
	return llm.NewRouter(opts)
}

// checkIDs refuses a file with a configured model that the Router would
// give no id (llm.CheckIDs): it would be reachable by none, left out of
// the list, and its "<upstream>/<name>" would reach another model.
func (f *File) checkIDs() error {
	ups := make([]llm.Upstream, 0, len(f.Upstreams))
	for _, u := range f.Upstreams {
		up := llm.Upstream{Name: u.Name}
		for _, m := range u.Models {
			up.Models = append(up.Models, llm.ModelInfo{ID: m.ID})
		}
		ups = append(ups, up)
	}
	return llm.CheckIDs(ups)
}

// shorthand is the one upstream of the OPENAI_* variables, named "openai".
func (c Config) shorthand() llm.Upstream {
	u := UpstreamConfig{Name: "openai", Label: hostOf(c.BaseURL), BaseURL: strings.TrimSpace(c.BaseURL),
		APIKey: strings.TrimSpace(c.APIKey), Azure: c.Azure, AzureAPIVersion: c.AzureAPIVersion, Discover: c.Discover}
	declared := make(map[string]bool)
	for _, id := range c.ReasoningModels {
		declared[strings.TrimSpace(id)] = true
	}
	u.Reasoning = declared["*"]
	thinking := maps.Clone(c.InlineThinking)
	u.InlineThinking = thinking["*"]
	delete(thinking, "*")
	for _, r := range llm.Routes(c.Models, nil) {
		id := r.Info.ID
		u.Models = append(u.Models, ModelConfig{ID: id, Reasoning: declared[id], InlineThinking: thinking[id]})
		delete(declared, id)
		delete(thinking, id)
	}
	if len(u.Models) == 0 {
		u.Discover = true
	}
	var discovered []string // declared ids not in Models: ones the upstream may list
	for id := range declared {
		if id != "*" && id != "" {
			discovered = append(discovered, id)
		}
	}
	return c.upstream(u, discovered, thinking)
}

// upstream builds the llm.Upstream of one configured server; reasoning
// are more of its models, not among u.Models, declared reasoning models,
// and thinking how more of them think inline.
func (c Config) upstream(u UpstreamConfig, reasoning []string, thinking map[string]openai.InlineThinking) llm.Upstream {
	co := c.Client
	co.APIKey, co.BaseURL, co.Azure, co.AzureAPIVersion = u.APIKey, u.BaseURL, u.Azure, u.AzureAPIVersion
	co.Headers, co.Query, co.Logger = u.Headers, u.Query, c.Logger
	co.ReasoningModels = append(reasoningModels(u), reasoning...)
	co.InlineThinking = inlineThinking(u, thinking)
	co.AzureDeployments = azureDeployments(u)
	if u.Timeouts.FirstToken > 0 {
		co.FirstTokenTimeout = time.Duration(u.Timeouts.FirstToken)
	}
	if u.Timeouts.ReasoningFirstToken > 0 {
		co.ReasoningFirstTokenTimeout = time.Duration(u.Timeouts.ReasoningFirstToken)
	}
	if u.Timeouts.Idle > 0 {
		co.IdleTimeout = time.Duration(u.Timeouts.Idle)
	}
	if u.Retries != nil {
		co.MaxRetries = *u.Retries
		if co.MaxRetries == 0 {
			co.MaxRetries = -1 // openai.Options: negative disables retries
		}
	}
	client := openai.New(co)
	out := llm.Upstream{Name: u.Name, Label: firstNonEmpty(u.Label, u.Name), Streamer: client,
		ListTimeout: time.Duration(u.Timeouts.List),
		Discovered: llm.ModelInfo{ContextTokens: u.ContextTokens, MaxOutputTokens: u.MaxOutputTokens,
			Defaults: defaults(u.Defaults, Defaults{})}}
	// Reasoning is left to the Router, which asks client (an llm.Thinker)
	// each time it lists: a model learned to be one is listed so.
	for i, m := range u.Models {
		out.Models = append(out.Models, llm.ModelInfo{ID: m.ID, Name: firstNonEmpty(m.Name, m.ID),
			Default:         m.Default || (i == 0 && c.File == nil),
			ContextTokens:   firstPositive(m.ContextTokens, u.ContextTokens),
			MaxOutputTokens: firstPositive(m.MaxOutputTokens, u.MaxOutputTokens),
			Defaults:        defaults(m.Defaults, u.Defaults)})
	}
	if u.Discover {
		out.Catalog = client
	}
	return out
}

// reasoningModels lists u's models declared reasoning models ("*": all).
func reasoningModels(u UpstreamConfig) []string {
	if u.Reasoning {
		return []string{"*"}
	}
	var out []string
	for _, m := range u.Models {
		if m.Reasoning {
			out = append(out, m.ID)
		}
	}
	return out
}

// inlineThinking maps u's models to how they think inline, "*" to how
// the others do, over more (of models not among u.Models); nil when
// nothing is set (every model: openai.ThinkAuto).
func inlineThinking(u UpstreamConfig, more map[string]openai.InlineThinking) map[string]openai.InlineThinking {
	out := maps.Clone(more)
	set := func(id string, m openai.InlineThinking) {
		if m == "" {
			return
		}
		if out == nil {
			out = make(map[string]openai.InlineThinking)
		}
		out[id] = m
	}
	set("*", u.InlineThinking)
	for _, m := range u.Models {
		set(m.ID, m.InlineThinking)
	}
	return out
}

// azureDeployments maps u's models to the Azure deployments given for
// them; nil when none is.
func azureDeployments(u UpstreamConfig) map[string]string {
	var out map[string]string
	for _, m := range u.Models {
		if m.Deployment != nil {
			if out == nil {
				out = make(map[string]string)
			}
			out[m.ID] = *m.Deployment
		}
	}
	return out
}

// defaults merges a model's defaults over its upstream's.
func defaults(m, u Defaults) llm.Defaults {
	d := llm.Defaults{Temperature: m.Temperature, TopP: m.TopP, MaxTokens: m.MaxTokens, Stop: m.Stop}
	if d.Temperature == nil {
		d.Temperature = u.Temperature
	}
	if d.TopP == nil {
		d.TopP = u.TopP
	}
	if d.MaxTokens == 0 {
		d.MaxTokens = u.MaxTokens
	}
	if d.Stop == nil {
		d.Stop = u.Stop
	}
	return d
}

// hostOf is the host of a base URL, the shorthand upstream's label.
func hostOf(base string) string {
	if base == "" {
		base = openai.DefaultBaseURL
	}
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		return u.Host
	}
	return "openai"
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
