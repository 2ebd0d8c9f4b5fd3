package llm

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"chatd/internal/gate"
)

// Route serves one model of a Router.
type Route struct {
	Info     ModelInfo
	Streamer Streamer
}

// Upstream is one source of models of a Router: an OpenAI-compatible
// server with the models configured for it and, optionally, the models its
// GET /v1/models lists.
type Upstream struct {
	// Name identifies the upstream: it prefixes a model id ("name/model")
	// when another model was given that name first (see Router).
	Name string
	// Label is the upstream's display name; it defaults to Name.
	Label    string
	Streamer Streamer
	// Models are the configured models, in order: ID is the name the
	// upstream knows (the Router may prefix it), the other fields as
	// listed by the Router.
	Models []ModelInfo
	// Catalog, when set, is asked for more models; each one it lists (and
	// Filter keeps) is offered with Discovered's context window, output
	// bound and defaults, unless the upstream reports its own window. A
	// configured model it lists takes the window it reports when
	// configured without one.
	Catalog    Catalog
	Discovered ModelInfo
	// Filter keeps the listed models users may pick; it defaults to
	// ChatModel, which drops embedding, speech, image, moderation and other
	// models that are not chat models (logged at debug level).
	Filter func(id string) bool
	// ListTimeout bounds one model list request; it defaults to 10s.
	ListTimeout time.Duration
}

// RouterOptions configures a Router. Zero fields take the documented
// defaults.
type RouterOptions struct {
	// Routes are fixed models listed first, in this order (the demo model).
	Routes []Route
	// Upstreams are listed after Routes, in this order.
	Upstreams []Upstream
	// CacheTTL is how long an upstream list is reused; it defaults to one
	// minute. A stale list keeps being served while a fresh one is fetched
	// in the background; a failed fetch is retried after at most 5 seconds.
	CacheTTL time.Duration
	// FirstListWait bounds how long Models waits for an upstream's very
	// first list, counted from when that fetch started; it defaults to 2s.
	// An upstream that has not answered by then is left out (its fetch
	// goes on in the background), and nobody waits for it again: one slow
	// or hung upstream delays the others' models once, at most this long.
	// An upstream never listed whose last list failed sooner (down at
	// start: refused, or 503 while it starts) is waited for again in the
	// same way when its list is asked again, so that the first request
	// after it came back lists its models.
	FirstListWait time.Duration
	// Default is the id of the default model, or its "upstream/name"; it
	// defaults to the first model marked Default, else the first model.
	Default string
	// Logger receives upstream list failures; it defaults to slog.Default().
	Logger *slog.Logger
}

// Router serves several models behind one Streamer and Catalog: it
// dispatches a Request by its Model (empty: the default model) to the
// upstream serving it, and refuses unknown models with an *Error of
// KindUnknownModel. Model ids are unique and stay with the model they were
// given to for the Router's life: configured models take theirs first, in
// order, then listed ones as they are first listed; a model whose name was
// given to another one first gets the id "upstream/name", and one whose
// "upstream/name" was too gets none: it is left out, logged once (a
// configured one as an error: CheckIDs refuses such a configuration
// before). A refresh moves
// no id to another model: one whose model is no longer listed is unknown
// until it is listed again. "upstream/name" also names a model by its
// upstream's name (ModelID, Stream, RouterOptions.Default), unless it is
// another model's id, which wins. Safe for concurrent use; no lock is held
// across a network request.
type Router struct {
	opts    RouterOptions
	sources []*source
	ids     *ids // the id given to each model; configured ones first

	base    context.Context // parent of background list fetches; cancelled by Close
	cancel  context.CancelFunc
	fetches gate.Gate // the background list fetches, waited for by Close
}

var (
	_ Streamer     = (*Router)(nil)
	_ Catalog      = (*Router)(nil)
	_ EffortSender = (*Router)(nil)
	_ Unlister     = (*Router)(nil)
	_ Resolver     = (*Router)(nil)
)

// NewRouter returns a Router. Close ends its background list fetches.
func NewRouter(opts RouterOptions) *Router {
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = time.Minute
	}
	if opts.FirstListWait <= 0 {
		opts.FirstListWait = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	base, cancel := context.WithCancel(context.Background())
	r := &Router{opts: opts, base: base, cancel: cancel, ids: newIDs()}
	for _, rt := range opts.Routes {
		r.sources = append(r.sources, &source{up: Upstream{Streamer: rt.Streamer, Models: []ModelInfo{rt.Info}}})
	}
	for _, up := range opts.Upstreams {
		if up.Label == "" {
			up.Label = up.Name
		}
		if up.Filter == nil {
			up.Filter = ChatModel
		}
		if up.ListTimeout <= 0 {
			up.ListTimeout = 10 * time.Second
		}
		r.sources = append(r.sources, &source{up: up, ttl: opts.CacheTTL, log: opts.Logger, fetches: &r.fetches})
	}
	for _, s := range r.sources { // configured models take their ids before any listed one
		for _, m := range s.up.Models {
			if _, ok := r.ids.of(s, m.ID); !ok {
				opts.Logger.Error("llm configured model left out", "upstream", s.up.Name, "model", m.ID,
					"err", r.ids.untold(s, m.ID))
			}
		}
	}
	return r
}

// ConfiguredIDs returns the ids a Router with these upstreams gives their
// configured models (Upstream.Models), in order, before any list is
// fetched: the ids a Default may name without a Catalog.
func ConfiguredIDs(upstreams []Upstream) []string {
	a := newIDs()
	var out []string
	for _, up := range upstreams {
		s := &source{up: up}
		for _, m := range up.Models {
			if id, ok := a.of(s, m.ID); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

// Close stops the background model list fetches and returns once they
// ended; no list is fetched after it.
func (r *Router) Close() {
	r.cancel()
	r.fetches.Close()
	_ = r.fetches.Wait(context.Background()) // each ends with base, cancelled above
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

// entry is one model as the Router offers it.
type entry struct {
	info   ModelInfo
	src    *source
	remote string // the name the upstream knows
}

// Models implements Catalog: every upstream's models in order, with
// exactly one marked Default. It fails only when there is no model at all.
func (r *Router) Models(ctx context.Context) ([]ModelInfo, error) {
	entries, err := r.entries(ctx)
	if len(entries) == 0 {
		if err == nil {
			err = &Error{Kind: KindUnknownModel, Message: "No model is available."}
		}
		return nil, fmt.Errorf("list models: %w", err)
	}
	out := make([]ModelInfo, len(entries))
	for i, e := range entries {
		out[i] = e.info
	}
	return out, nil
}

// entries lists every model with unique ids and one default; err is the
// first upstream list failure, if any.
func (r *Router) entries(ctx context.Context) ([]entry, error) {
	lists := make([][]ModelInfo, len(r.sources))
	var firstErr error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, s := range r.sources {
		get := func() {
			list, err := s.models(ctx, r.base, r.opts.FirstListWait)
			mu.Lock()
			lists[i] = list
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
		if s.up.Catalog == nil {
			get() // configured models only: nothing to wait for
		} else {
			wg.Go(get) // first lists are awaited side by side
		}
	}
	wg.Wait()
	var out []entry
	for i, s := range r.sources {
		for _, m := range lists[i] {
			e := entry{info: m, src: s, remote: m.ID}
			var ok bool
			if e.info.ID, ok = r.ids.of(s, m.ID); ok {
				out = append(out, e)
			} else if err := r.ids.untold(s, m.ID); err != nil {
				r.opts.Logger.Warn("llm listed model left out", "upstream", s.up.Name, "model", m.ID, "err", err)
			}
		}
	}
	r.markDefault(out)
	return out, firstErr
}

// markDefault marks exactly one entry Default.
func (r *Router) markDefault(list []entry) {
	if len(list) == 0 {
		return
	}
	def := list[0].info.ID
	if i := slices.IndexFunc(list, func(e entry) bool { return e.info.Default }); i >= 0 {
		def = list[i].info.ID
	}
	if i := lookup(list, r.opts.Default); r.opts.Default != "" && i >= 0 {
		def = list[i].info.ID
	}
	for i := range list {
		list[i].info.Default = list[i].info.ID == def
	}
}

// Unlisted implements Unlister: an *Error naming the first upstream whose
// models the Router asks for (Upstream.Catalog) and has no list of now,
// with that upstream's last failure: down since start, or its first list
// still on its way. Its models are missing from Models until it answers,
// and a model id stored earlier may be one of them. Nil while every such
// upstream has a list (a stale one is kept while a refresh fails): a model
// Models leaves out then is not offered any more (removed from the
// configuration, or no longer listed by its upstream).
func (r *Router) Unlisted() error {
	for _, s := range r.sources {
		if err := s.unlisted(); err != nil {
			return err
		}
	}
	return nil
}

// Stream implements Streamer: it dispatches req by req.Model.
func (r *Router) Stream(ctx context.Context, req Request, onDelta func(string)) (Result, error) {
	e, err := r.route(ctx, req.Model)
	if err != nil {
		return Result{}, err
	}
	req.Model = e.remote
	return e.src.up.Streamer.Stream(ctx, req, onDelta)
}

// SendsReasoningEffort implements EffortSender: it asks the upstream
// serving model (true when that one cannot tell); false for a model it
// does not serve.
func (r *Router) SendsReasoningEffort(ctx context.Context, model string) bool {
	e, err := r.route(ctx, model)
	return err == nil && sendsEffort(ctx, e.src.up.Streamer, e.remote)
}

// ModelID implements Resolver: the id of the model name names, an id
// Models lists or "upstream/name".
func (r *Router) ModelID(ctx context.Context, name string) (string, bool) {
	if name == "" {
		return "", false
	}
	e, err := r.route(ctx, name)
	return e.info.ID, err == nil
}

// route finds the model an id names (empty: the default model): an id
// listed by Models, or "upstream/name".
func (r *Router) route(ctx context.Context, id string) (entry, error) {
	entries, err := r.entries(ctx)
	i := lookup(entries, id)
	if id == "" {
		i = slices.IndexFunc(entries, func(e entry) bool { return e.info.Default })
	}
	if i >= 0 {
		return entries[i], nil
	}
	if len(entries) == 0 && err != nil {
		return entry{}, err
	}
	return entry{}, &Error{Kind: KindUnknownModel, Message: fmt.Sprintf("The model %q is not available.", shorten(id, 80))}
}

// lookup returns the index of the entry name names: the one whose id it
// is, else the model "upstream/name" of that upstream; -1 when none.
func lookup(list []entry, name string) int {
	if i := slices.IndexFunc(list, func(e entry) bool { return e.info.ID == name }); i >= 0 {
		return i
	}
	up, remote, ok := strings.Cut(name, "/")
	if !ok || up == "" {
		return -1
	}
	return slices.IndexFunc(list, func(e entry) bool { return e.src.up.Name == up && e.remote == remote })
}

// IsDemo reports whether id names a demo model (see Title).
func (r *Router) IsDemo(id string) bool {
	for _, s := range r.sources {
		for _, m := range s.up.Models {
			if m.ID == id {
				return m.Demo
			}
		}
	}
	return false
}

// shorten cuts s to at most n characters.
func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
