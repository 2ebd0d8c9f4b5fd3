package llm

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Route serves one model of a Router.
type Route struct {
	Info     ModelInfo
	Streamer Streamer
}

// RouterOptions configures a Router. Zero fields take the documented
// defaults.
type RouterOptions struct {
	// Routes are the fixed models, listed in this order: the configured
	// model list, or the demo model.
	Routes []Route
	// Upstream, when set, is asked for more models (an OpenAI-compatible
	// GET /v1/models); each one it lists is served by UpstreamStreamer.
	Upstream         Catalog
	UpstreamStreamer Streamer
	// Filter keeps the upstream models users may pick; it defaults to
	// ChatModel, which drops embedding, audio, image and moderation models.
	Filter func(id string) bool
	// CacheTTL is how long an upstream list is reused; it defaults to one
	// minute. A failed fetch is retried after at most 5 seconds, and the
	// last good list is used meanwhile.
	CacheTTL time.Duration
	// Default is the id of the default model; it defaults to the first
	// route marked Default, else the first route, else the first upstream
	// model.
	Default string
	// Logger receives upstream list failures; it defaults to slog.Default().
	Logger *slog.Logger
}

// Router serves several models behind one Streamer and Catalog: it
// dispatches a Request by its Model (empty: the default model) and refuses
// unknown models with an *Error of KindUnknownModel. Safe for concurrent use.
type Router struct {
	opts RouterOptions

	mu        sync.Mutex // held while fetching, so one fetch runs at a time
	upstream  []ModelInfo
	fetchedAt time.Time
	retryAt   time.Time
}

var (
	_ Streamer = (*Router)(nil)
	_ Catalog  = (*Router)(nil)
)

// NewRouter returns a Router.
func NewRouter(opts RouterOptions) *Router {
	if opts.Filter == nil {
		opts.Filter = ChatModel
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Router{opts: opts}
}

// Routes returns one route per id of a comma-separated list ("gpt-4o-mini,
// gpt-4o"), all served by s, skipping blanks and repeats. The first is
// marked Default.
func Routes(list string, s Streamer) []Route {
	var out []Route
	for _, id := range strings.Split(list, ",") {
		id = strings.TrimSpace(id)
		if id == "" || slices.ContainsFunc(out, func(r Route) bool { return r.Info.ID == id }) {
			continue
		}
		out = append(out, Route{Info: ModelInfo{ID: id, Name: id, Default: len(out) == 0}, Streamer: s})
	}
	return out
}

// Models implements Catalog: the fixed routes, then the upstream's models,
// with exactly one marked Default. It fails only when there is no model
// at all.
func (r *Router) Models(ctx context.Context) ([]ModelInfo, error) {
	out := make([]ModelInfo, 0, len(r.opts.Routes))
	for _, rt := range r.opts.Routes {
		out = append(out, rt.Info)
	}
	ups, err := r.upstreamModels(ctx)
	for _, m := range ups {
		if !slices.ContainsFunc(out, func(o ModelInfo) bool { return o.ID == m.ID }) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		if err == nil {
			err = &Error{Kind: KindUnknownModel, Message: "No model is available."}
		}
		return nil, fmt.Errorf("list models: %w", err)
	}
	def := r.defaultID(out)
	for i := range out {
		out[i].Default = out[i].ID == def
	}
	return out, nil
}

// defaultID picks the default model of a non-empty list.
func (r *Router) defaultID(list []ModelInfo) string {
	if r.opts.Default != "" && slices.ContainsFunc(list, func(m ModelInfo) bool { return m.ID == r.opts.Default }) {
		return r.opts.Default
	}
	for _, m := range list {
		if m.Default {
			return m.ID
		}
	}
	return list[0].ID
}

// upstreamModels returns the cached upstream list, fetching it when stale.
func (r *Router) upstreamModels(ctx context.Context) ([]ModelInfo, error) {
	if r.opts.Upstream == nil {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.fetchedAt) < r.opts.CacheTTL || now.Before(r.retryAt) {
		return r.upstream, nil
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := r.opts.Upstream.Models(fctx)
	if err != nil {
		r.retryAt = now.Add(min(5*time.Second, r.opts.CacheTTL))
		r.opts.Logger.Warn("llm upstream model list failed", "err", err, "cached", len(r.upstream))
		return r.upstream, err
	}
	kept := make([]ModelInfo, 0, len(list))
	for _, m := range list {
		if r.opts.Filter(m.ID) {
			kept = append(kept, ModelInfo{ID: m.ID, Name: m.Name})
		}
	}
	slices.SortFunc(kept, func(a, b ModelInfo) int { return strings.Compare(a.ID, b.ID) })
	r.upstream, r.fetchedAt = kept, now
	return kept, nil
}

// Stream implements Streamer: it dispatches req by req.Model.
func (r *Router) Stream(ctx context.Context, req Request, onDelta func(string)) (Result, error) {
	s, id, err := r.route(ctx, req.Model)
	if err != nil {
		return Result{}, err
	}
	req.Model = id
	return s.Stream(ctx, req, onDelta)
}

// route finds the Streamer of a model id (empty: the default model).
func (r *Router) route(ctx context.Context, id string) (Streamer, string, error) {
	if id != "" {
		for _, rt := range r.opts.Routes {
			if rt.Info.ID == id {
				return rt.Streamer, id, nil
			}
		}
	}
	models, err := r.Models(ctx)
	if err != nil {
		return nil, id, err
	}
	if id == "" {
		id = r.defaultID(models)
		for _, rt := range r.opts.Routes {
			if rt.Info.ID == id {
				return rt.Streamer, id, nil
			}
		}
	}
	if r.opts.UpstreamStreamer != nil && slices.ContainsFunc(models, func(m ModelInfo) bool { return m.ID == id }) {
		return r.opts.UpstreamStreamer, id, nil
	}
	return nil, id, &Error{Kind: KindUnknownModel, Message: fmt.Sprintf("The model %q is not available.", shorten(id, 80))}
}

// IsDemo reports whether id names a demo model (see Title).
func (r *Router) IsDemo(id string) bool {
	for _, rt := range r.opts.Routes {
		if rt.Info.ID == id {
			return rt.Info.Demo
		}
	}
	return false
}

// ChatModel reports whether an upstream model id looks like a chat model,
// leaving out OpenAI's embedding, speech, transcription, image, moderation
// and legacy completion models.
func ChatModel(id string) bool {
	id = strings.ToLower(id)
	for _, no := range []string{"embed", "tts", "whisper", "transcribe", "dall-e", "image",
		"moderation", "davinci", "babbage", "realtime", "audio", "search", "sora"} {
		if strings.Contains(id, no) {
			return false
		}
	}
	return true
}

// shorten cuts s to at most n characters.
func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
