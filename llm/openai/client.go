// Package openai streams chat completions from any OpenAI-compatible API
// (OpenAI, Azure OpenAI, Ollama, vLLM, llm/fakeai) with
// github.com/sashabaranov/go-openai, adding what a chat server needs:
// retries before the first token only, first-token and idle timeouts,
// prompt cancellation and failures classified as *llm.Error. go-openai
// sends the request and splits the event stream into chunks; chatd decodes
// a chunk's JSON itself (chunkDecoder), and leaves any chunk its decoder
// does not fully understand to json.Unmarshal into go-openai's type.
package openai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"chatd/internal/lograte"
	"chatd/llm"
)

// Options configures a Client. Zero fields take the documented defaults.
type Options struct {
	// APIKey is sent as a bearer token (as "api-key" with Azure); empty
	// sends none (Ollama, vLLM).
	APIKey string
	// BaseURL is the API root including its version path; it defaults to
	// "https://api.openai.com/v1" (Ollama: "http://localhost:11434/v1";
	// Azure: "https://<resource>.openai.azure.com").
	BaseURL string
	// Azure selects Azure OpenAI: a request names its deployment in the
	// URL (AzureDeployments), and AzureAPIVersion is sent as api-version.
	Azure bool
	// AzureDeployments maps a model id to the Azure deployment it is
	// requested under, exactly as given ("gpt-3.5-turbo", "my:dep"). A
	// model without one is requested under its id as go-openai's default
	// mapper, and so chatd's earlier releases, sent it: ":" removed, and
	// "." too from an id holding "3.5" (gpt-3.5-turbo asks for
	// gpt-35-turbo, Azure's usual name for it), so a deployment whose name
	// holds either character needs an entry here.
	AzureDeployments map[string]string
	// AzureAPIVersion defaults to go-openai's default for Azure.
	AzureAPIVersion string
	// HTTPClient defaults to a client with a large idle connection pool and
	// no overall timeout (streams are long; the timeouts below bound them).
	// A client with Timeout set would cut long answers.
	HTTPClient *http.Client
	// MaxRetries is how many times a request is retried before its first
	// token (429, 408, 5xx, connection refused or reset; a 429 or 5xx
	// code reported inside the stream, or a finish reason saying the
	// upstream broke the answer off); it defaults to 2, and a negative
	// value disables retries. Nothing is retried after a token.
	MaxRetries int
	// RetryBase is the first backoff; it doubles on every retry, with
	// jitter. It defaults to 500ms.
	RetryBase time.Duration
	// RetryMax caps a backoff; it defaults to 8s. A failure whose
	// Retry-After (retry-after-ms, or Retry-After in seconds or as an HTTP
	// date) asks for longer is not retried: the upstream would refuse a
	// retry sent sooner, and the error's message (a 429's, a 5xx's) names
	// its wait. A Retry-After of a day or more counts as a day.
	RetryMax time.Duration
	// FirstTokenTimeout bounds the wait from sending the request to the
	// first piece of text (or reasoning); it defaults to 30s. Requests to
	// reasoning models have ReasoningFirstTokenTimeout instead.
	FirstTokenTimeout time.Duration
	// ReasoningFirstTokenTimeout is FirstTokenTimeout for requests to
	// reasoning models (see ReasoningModels; a declared one whose server
	// takes max_tokens too): OpenAI's think silently, sending nothing
	// until their reasoning ends, which at a high reasoning effort takes
	// minutes. It defaults to
	// DefaultReasoningFirstTokenTimeout, and is never shorter than
	// FirstTokenTimeout.
	ReasoningFirstTokenTimeout time.Duration
	// IdleTimeout bounds the wait for the next chunk carrying text (or
	// reasoning) once text flows; chunks without any do not count. It
	// defaults to 30s.
	IdleTimeout time.Duration
	// FinishWait bounds the wait, once the finish reason came, for the
	// rest of the stream (the usage, [DONE], the end of the body),
	// counted from the finish reason; it defaults to 2s. Some servers
	// and proxies send neither [DONE] nor end the body after the finish
	// reason (keeping the stream alive with comments): the answer is
	// complete then, and was held until the idle timeout. Text after a
	// finish reason shows it was early (a role chunk carrying "stop", a
	// proxy marking every chunk finished): the reason is dropped, and
	// the answer ends only as one without a finish reason does ([DONE],
	// the idle timeout), or at the body's end after a new one, until a
	// finish reason comes on a chunk without text (the real end), from
	// which the wait applies again. A "stop" before anything was
	// delivered starts no wait (the first-token timeout governs).
	FinishWait time.Duration
	// Headers are added to every request (an api-key header, an
	// organisation header, ...); they win over go-openai's own.
	Headers map[string]string
	// Query parameters are added to every request URL (Azure's
	// api-version).
	Query map[string]string
	// ReasoningModels are models, as the upstream names them, served as
	// reasoning models whatever their names ("*": every model): they are
	// sent max_completion_tokens instead of max_tokens, and a request's
	// reasoning effort. Other models are reasoning models when their names
	// say so (o1, o3, o4, gpt-5, gpt-6 and their variants), or once their
	// upstream refused max_tokens asking for max_completion_tokens (see
	// Stream).
	ReasoningModels []string
	// InlineThinking says how models, as the upstream names them, put
	// their thinking in their answers' content ("*": every model not
	// named): ThinkAuto (the default) takes a leading <think>…</think>
	// block for it, ThinkOpen everything up to the first </think> (a
	// model whose prompt template opens the block), ThinkOff nothing
	// (the content is the answer, byte for byte). See inlineThink.
	InlineThinking map[string]InlineThinking
	// DisableStreamUsage stops asking for usage in the stream
	// (stream_options.include_usage), for servers that reject it. Without
	// it, a server's first refusal of stream_options is learned: that
	// request is sent again at once without it, and so is every later one.
	DisableStreamUsage bool
	// Logger receives retries and failed requests; it defaults to
	// slog.Default(). The API key is never logged, nor a value of Headers
	// or Query (api-version and publicHeaders, such as X-Title, aside),
	// and error messages never quote them.
	Logger *slog.Logger
}

// DefaultBaseURL is the OpenAI API.
const DefaultBaseURL = "https://api.openai.com/v1"

// DefaultReasoningFirstTokenTimeout is the default wait for the first
// text of a reasoning model: 5 minutes. OpenAI's own SDKs wait up to 10
// minutes for a whole request (reasoning and answer); chatd bounds a whole
// answer by 10 minutes too (CHATD_MAX_ANSWER_DURATION), so the silent
// thinking may take half of it and the answer has the other half to
// stream. It is several times what o-series models usually think at a
// high effort, and still ends a request whose upstream hung within minutes.
const DefaultReasoningFirstTokenTimeout = 5 * time.Minute

// Client streams chat completions; it implements llm.Streamer and
// llm.Catalog and is safe for concurrent use.
type Client struct {
	api  *goopenai.Client
	opts Options
	log  *slog.Logger
	// refusals is log rate-limited per upstream (this client's), for the
	// failures only the operator can fix (operatorFixable): each error
	// once per refusalLogEvery, then with the count of those left out.
	refusals *slog.Logger
	kind     *modelKinds
	// clock times first-token and idle timeouts; nil is the real clock
	// (tests set their own).
	clock deadlineClock
	// shown is the base URL as logs name it (shownURL).
	shown string
	// secrets are what error messages and logs never quote.
	secrets secrets
	// noUsage is set once the upstream refused stream_options: no request
	// of this client sends it again (see Stream).
	noUsage atomic.Bool
	// ignored is what the last model list left out, logged when it changes.
	ignored struct {
		sync.Mutex
		last string
	}
}

var (
	_ llm.Streamer     = (*Client)(nil)
	_ llm.Catalog      = (*Client)(nil)
	_ llm.EffortSender = (*Client)(nil)
	_ llm.Thinker      = (*Client)(nil)
)

// New returns a Client.
func New(opts Options) *Client {
	opts = withDefaults(opts)
	opts.InlineThinking = maps.Clone(opts.InlineThinking) // the caller's map may change
	cfg := goopenai.DefaultConfig(opts.APIKey)
	if opts.Azure {
		cfg = goopenai.DefaultAzureConfig(opts.APIKey, opts.BaseURL)
		cfg.AzureModelMapperFunc = azureDeployments(maps.Clone(opts.AzureDeployments))
		if opts.AzureAPIVersion != "" {
			cfg.APIVersion = opts.AzureAPIVersion
		}
	}
	cfg.BaseURL = opts.BaseURL
	hc := *opts.HTTPClient // a copy: the caller's client is left as it is
	hc.CheckRedirect = RedirectPolicy(hc.CheckRedirect)
	cfg.HTTPClient = doer{c: &hc, headers: opts.Headers, query: opts.Query}
	return &Client{api: goopenai.NewClientWithConfig(cfg), opts: opts, log: opts.Logger,
		refusals: slog.New(lograte.NewHandler(opts.Logger.Handler(), lograte.Options{Every: refusalLogEvery})),
		kind:     newModelKinds(opts.ReasoningModels), shown: shownURL(opts.BaseURL), secrets: newSecrets(opts)}
}

// azureDeployments returns the mapper of a model id to the path segment
// naming its Azure deployment: the deployment given for it, else the id
// as go-openai's default mapper (v1.43.0) changed it (legacyDeployment);
// escaped as one segment, so that any name can be sent.
func azureDeployments(given map[string]string) func(model string) string {
	return func(model string) string {
		if d, ok := given[model]; ok {
			return url.PathEscape(d)
		}
		return url.PathEscape(legacyDeployment(model))
	}
}

// legacyStrip is what go-openai's default Azure mapper removes from an id
// holding "3.5".
var legacyStrip = regexp.MustCompile(`[.:]`)

// legacyDeployment is the deployment go-openai's default Azure mapper
// (v1.43.0) names for model, which configurations written for earlier
// releases rely on: ":" and "." removed from an id holding "3.5"
// (gpt-3.5-turbo: gpt-35-turbo), ":" from any other.
func legacyDeployment(model string) string {
	if strings.Contains(model, "3.5") {
		return legacyStrip.ReplaceAllString(model, "")
	}
	return strings.ReplaceAll(model, ":", "")
}

// shownURL is a base URL as logs name it: without credentials (user
// information), query or fragment.
func shownURL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return "(a base URL that does not parse)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

func withDefaults(o Options) Options {
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 512
		o.HTTPClient = &http.Client{Transport: tr}
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = 2
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	o.RetryBase = positive(o.RetryBase, 500*time.Millisecond)
	o.RetryMax = positive(o.RetryMax, 8*time.Second)
	o.FirstTokenTimeout = positive(o.FirstTokenTimeout, 30*time.Second)
	o.ReasoningFirstTokenTimeout = max(positive(o.ReasoningFirstTokenTimeout, DefaultReasoningFirstTokenTimeout),
		o.FirstTokenTimeout)
	o.IdleTimeout = positive(o.IdleTimeout, 30*time.Second)
	o.FinishWait = positive(o.FinishWait, 2*time.Second)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func positive(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Stream implements llm.Streamer. It retries only before the first piece
// of text reached onDelta; its errors are *llm.Error, or wrap ctx's error
// when ctx ended. A request whose token bound's field the upstream
// refuses, asking for the other one (a reasoning model sent max_tokens,
// see modelKinds), is sent again at once with the other field, once; one
// whose sampling parameter (temperature, top_p, stop) the upstream refuses
// as unsupported is sent again at once without it (and the model's later
// requests leave it out for an hour, refusedAge), and so is one whose
// stream_options it refuses (see Options.DisableStreamUsage). A failure
// whose Retry-After is longer than Options.RetryMax is not retried.
// Thinking a model puts inline at the start of its answer's content
// (<think>…</think>, after optional white space, or up to </think> for a
// model whose template opened the block, see Options.InlineThinking) is
// delivered as reasoning, and only the text after </think> to onDelta
// (see inlineThink).
func (c *Client) Stream(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
	reasoning := c.kind.reasoning(req.Model)
	oreq := c.modelRequest(req, reasoning)
	out := sink{text: onDelta, reasoning: req.OnReasoning}
	switched := false
	for try := 0; ; try++ {
		st := &attempt{firstToken: c.firstTokenTimeout(c.kind.thinks(req.Model)), think: c.inlineThinking(req.Model)}
		res, err := c.attempt(ctx, oreq, out, st)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctxError(ctx)
		}
		if !switched && !st.delivered.Load() && c.kind.switchField(req.Model, tokenField(oreq), err) {
			switched, reasoning = true, !reasoning
			oreq = c.modelRequest(req, reasoning)
			c.log.Info("llm upstream refused the token limit's field; asking again with the other",
				"generation", llm.RequestID(ctx), "model", req.Model, "max_completion_tokens", reasoning)
			try--
			continue
		}
		if oreq.StreamOptions != nil && !st.delivered.Load() && refusedStreamOptions(err) {
			// A server that does not take it: the answer comes without
			// its usage, from this request on.
			c.noUsage.Store(true)
			oreq.StreamOptions = nil
			c.log.Info("llm upstream refused stream_options; asking again without it, and without it from now on",
				"generation", llm.RequestID(ctx), "model", req.Model, "url", c.shown)
			try--
			continue
		}
		if field := refusedSampling(err, oreq); field != "" && !st.delivered.Load() {
			// A reasoning model refuses what a conversation tuned for
			// another set: its default applies instead, and the model's
			// next requests leave the field out too, not refused again.
			dropField(&oreq, field)
			c.kind.refuse(req.Model, field)
			c.log.Info("llm upstream refused a sampling parameter; asking again without it, and without it for an hour",
				"generation", llm.RequestID(ctx), "model", req.Model, "field", field)
			try--
			continue
		}
		after := retryAfter(st.header)
		if st.delivered.Load() || try >= c.opts.MaxRetries || !retryable(err) || after > c.opts.RetryMax {
			// A Retry-After past RetryMax: the provider would refuse a
			// retry sent sooner, and the error names its wait.
			c.logFailure(ctx, req.Model, st, err)
			return res, err
		}
		wait := c.backoff(try, after)
		c.log.Warn("llm upstream retry", "generation", llm.RequestID(ctx), "model", req.Model, "url", c.shown,
			"retry", try+1, "kind", llm.KindOf(err), "status", st.status, "wait", wait.Round(time.Millisecond).String())
		if !sleep(ctx, wait) {
			return res, ctxError(ctx)
		}
	}
}

// refusalLogEvery is how often an upstream's refusal of the key or its
// quota is logged again while it goes on (see Client.refusals).
const refusalLogEvery = time.Minute

// logFailure logs an answer's failed request, naming the upstream (its
// base URL, without credentials) and the cause, which the answer's own
// log line (the hub's) does not: an operator sees which upstream could
// not be reached, refused or failed, and why. The cause is cleaned of
// the API key. A failure only the operator can fix (operatorFixable) is
// an error, logged at CHATD_LOG_LEVEL=error too, at most once a minute per
// upstream and error (every answer fails alike until it is fixed).
func (c *Client) logFailure(ctx context.Context, model string, st *attempt, err error) {
	log, level := c.log, slog.LevelWarn
	switch {
	case llm.KindOf(err) == llm.KindContextLength:
		level = slog.LevelInfo // the hub fits the prompt and asks again
	case operatorFixable(err):
		log, level = c.refusals, slog.LevelError
	}
	log.Log(ctx, level, "llm upstream request failed", "generation", llm.RequestID(ctx), "model", model, "url", c.shown,
		"kind", llm.KindOf(err), "status", st.status, "err", cleanCause(err, c.secrets))
}

// operatorFixable reports a failure no user can get past and only the
// operator can fix: the upstream refused the API key (401, 403) or the
// account is out of credit or quota.
func operatorFixable(err error) bool {
	var e *llm.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Kind == llm.KindQuota ||
		e.Kind == llm.KindBadRequest && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// cleanCause is err's text without a configured secret (see secrets),
// nor anything shaped like an API key, with the request's URL as shownURL shows it, on one line of at
// most maxCause characters.
func cleanCause(err error, key secrets) string {
	s := err.Error()
	var e *llm.Error
	if errors.As(err, &e) && e.Err != nil {
		s = e.Error() + ": " + e.Err.Error()
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.URL != "" {
		s = strings.ReplaceAll(s, urlErr.URL, shownURL(urlErr.URL))
	}
	s = strings.Join(strings.Fields(keyLike.ReplaceAllString(key.redact(s), "[redacted]")), " ")
	if r := []rune(s); len(r) > maxCause {
		s = string(r[:maxCause]) + "…"
	}
	return s
}

// maxCause bounds the cause a log line quotes: an error response's body
// (up to 1 MiB, a proxy's web page) is part of go-openai's error text.
const maxCause = 1000

// modelRequest is request without the sampling fields the model's
// upstream refused within refusedAge (modelKinds.refusedFields).
func (c *Client) modelRequest(req llm.Request, reasoning bool) goopenai.ChatCompletionRequest {
	r := c.request(req, reasoning)
	for _, f := range c.kind.refusedFields(req.Model) {
		dropField(&r, f)
	}
	return r
}

// request converts an llm.Request for a reasoning model or another.
func (c *Client) request(req llm.Request, reasoning bool) goopenai.ChatCompletionRequest {
	msgs := make([]goopenai.ChatCompletionMessage, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = goopenai.ChatCompletionMessage{Role: string(m.Role), Content: m.Content}
	}
	r := goopenai.ChatCompletionRequest{Model: req.Model, Messages: msgs, Stream: true}
	if !c.opts.DisableStreamUsage && !c.noUsage.Load() {
		r.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
	}
	if req.MaxTokens > 0 {
		if reasoning {
			r.MaxCompletionTokens = req.MaxTokens
		} else {
			//lint:ignore SA1019 max_tokens is the field OpenAI-compatible servers (Ollama, vLLM, older Azure deployments) read
			r.MaxTokens = req.MaxTokens
		}
	}
	if reasoning {
		// Other models (OpenAI's gpt-4o among them) may refuse the field.
		r.ReasoningEffort = req.ReasoningEffort
	}
	if req.Temperature != nil {
		r.Temperature = temperature(*req.Temperature)
	}
	if req.TopP != nil {
		r.TopP = nonZero(*req.TopP)
	}
	r.Stop = req.Stop
	return r
}

// firstTokenTimeout is the first-token timeout of a request to a model
// that thinks silently first (modelKinds.thinks) or another.
func (c *Client) firstTokenTimeout(thinks bool) time.Duration {
	if thinks {
		return c.opts.ReasoningFirstTokenTimeout
	}
	return c.opts.FirstTokenTimeout
}

// inlineThinking is how model thinks inline (Options.InlineThinking).
func (c *Client) inlineThinking(model string) InlineThinking {
	if m, ok := c.opts.InlineThinking[model]; ok {
		return m
	}
	return c.opts.InlineThinking["*"]
}

// Thinks reports whether model is served as a reasoning model, which may
// think silently before its first token: declared (Options.ReasoningModels),
// known by its name (after a provider's prefix too), or learned from its
// server's refusal of max_tokens.
func (c *Client) Thinks(model string) bool { return c.kind.thinks(model) }

// SendsReasoningEffort implements llm.EffortSender: a request's
// reasoning effort is sent to reasoning models only.
func (c *Client) SendsReasoningEffort(_ context.Context, model string) bool {
	return c.kind.reasoning(model)
}

// nonZero converts a sampling parameter for go-openai, whose omitempty
// fields would drop a 0: zero is sent as the smallest positive float32
// (go-openai's documented workaround); doer then sends a temperature of 0
// as 0 (samplingMembers), while a top_p keeps it. So is a value
// below float32's least positive one (1e-50, which llm.CheckParams lets
// through), 0 once converted: dropped, it left the upstream's default
// (often 1) in its place.
func nonZero(v float64) float32 {
	if f := float32(v); f != 0 {
		return f
	}
	return math.SmallestNonzeroFloat32
}

// greedyTemperature is the temperature below which one is sent as 0:
// upstreams divide the logits by it in float32 (llama.cpp), where a
// logit of 40 over 1e-37 is already +Inf (float32 ends at 3.4e38); below
// 1e-30 a logit up to 1e8 stays finite. Any temperature that small is
// greedy sampling, as 0 is.
const greedyTemperature = 1e-30

// temperature converts a temperature for go-openai as nonZero does, and
// sends one below greedyTemperature (1e-40, 2e-38, which llm.CheckParams
// lets through) as 0 too (samplingMembers), where the upstream's
// division would overflow.
func temperature(v float64) float32 {
	if v < greedyTemperature {
		return math.SmallestNonzeroFloat32
	}
	return float32(v)
}

// ctxError wraps ctx's error and, when it differs, its cause.
func ctxError(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause != nil && cause != err {
		return fmt.Errorf("llm stream: %w: %w", err, cause)
	}
	return fmt.Errorf("llm stream: %w", err)
}
