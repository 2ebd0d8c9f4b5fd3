// Package llm streams chat completions from OpenAI-compatible models.
//
// The hub depends only on the interfaces here. Implementations: the
// go-openai client for any OpenAI-compatible base URL (llm/openai), the
// offline demo model (llm/demo), and a router that picks one by model id
// (Router; llm/models builds it from configuration). Titler names
// conversations. llm/fakeai is a real OpenAI-compatible HTTP server for
// tests and benchmarks.
package llm

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Role of a prompt message.
type Role string

// Prompt roles.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one prompt message sent upstream.
type Message struct {
	Role    Role
	Content string
}

// Request is one chat completion request.
type Request struct {
	Model     string
	Messages  []Message
	MaxTokens int // 0: the upstream's default; a reasoning model's reasoning counts against it

	// ReasoningEffort asks a reasoning model to think less or more
	// ("minimal", "low", "medium", "high"); "" leaves the upstream's
	// default. Only upstreams known to have the setting get it (llm/openai:
	// OpenAI's o-series and gpt-5 models, and models declared reasoning
	// models); others, which may refuse it, never see it.
	ReasoningEffort string

	// Sampling parameters; nil (or empty) leaves the upstream's default.
	Temperature *float64
	TopP        *float64
	Stop        []string

	// OnReasoning, when set, receives the model's reasoning ("thinking")
	// text, streamed by reasoning models as reasoning_content (or
	// reasoning) beside the answer, or inline at its start between
	// <think> and </think> (llm/openai moves it here), under the same
	// rules as onDelta (in order, from the calling goroutine, never
	// empty, whole UTF-8 characters). Nil drops it.
	OnReasoning func(text string)
}

// Usage is the token accounting the upstream reported (nil when it did not).
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	TotalTokens      int
}

// Result is how a finished stream ended.
type Result struct {
	FinishReason string // "stop", "length", ... as the upstream said; "" if it did not
	Usage        *Usage
}

// Streamer streams one chat completion. onDelta is called, from the
// calling goroutine, with each piece of text in order (never empty, always
// whole UTF-8 characters). Stream returns when the upstream finished, failed
// or ctx was cancelled; cancelling ctx aborts the upstream request at once and
// returns an error wrapping context.Canceled (or the cause).
type Streamer interface {
	Stream(ctx context.Context, req Request, onDelta func(text string)) (Result, error)
}

// ModelInfo describes a model a user may pick.
type ModelInfo struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Demo    bool   `json:"demo"`    // the offline demo model, not a real LLM
	Default bool   `json:"default"` // used when a conversation names no model
	// Upstream names the upstream serving the model ("" for the demo
	// model), UpstreamLabel is its display name.
	Upstream      string `json:"upstream,omitempty"`
	UpstreamLabel string `json:"upstreamLabel,omitempty"`
	// ContextTokens is the model's context window in tokens (0: unknown);
	// prompts are fitted into it (see docs/protocol.md).
	ContextTokens int `json:"contextTokens,omitempty"`
	// ContextTokensLearned says ContextTokens is a window an upstream
	// named refusing a prompt as too long, smaller than the configured or
	// reported one (or none was known): this instance fits prompts into it
	// for a while (hub/refit.go). Only the hub's model list sets it.
	ContextTokensLearned bool `json:"contextTokensLearned,omitempty"`
	// MaxOutputTokens bounds a conversation's maxTokens (0: no bound).
	MaxOutputTokens int `json:"maxOutputTokens,omitempty"`
	// Defaults are the sampling parameters used where a conversation sets none.
	Defaults Defaults `json:"defaults"`
	// Reasoning marks a reasoning model (known by name, declared, or
	// learned from its server): it may think, silently or not, before its
	// first word, and clients can say so while it does.
	Reasoning bool `json:"reasoning,omitempty"`
}

// Defaults are a model's default sampling parameters; nil and zero fields
// leave the upstream's own default.
type Defaults struct {
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"topP,omitempty"`
	MaxTokens   int      `json:"maxTokens,omitempty"`
	Stop        []string `json:"stop,omitempty"`
}

// DefaultModel is the id of list's default model: the one marked Default,
// else the first; "" for an empty list.
func DefaultModel(list []ModelInfo) string {
	for _, m := range list {
		if m.Default {
			return m.ID
		}
	}
	if len(list) > 0 {
		return list[0].ID
	}
	return ""
}

// Catalog lists the models users may pick.
type Catalog interface {
	Models(ctx context.Context) ([]ModelInfo, error)
}

// Unlister is a Catalog that may list fewer models than it serves for a
// while (see Router.Unlisted).
type Unlister interface {
	// Unlisted returns why the list may lack models now (an *Error), or
	// nil when it lists every model it serves: a model it does not list
	// then is not offered any more.
	Unlisted() error
}

// Resolver is a Catalog whose models have names besides the ids it
// lists (Router: "upstream/name"). Whoever takes a model's name from a
// user resolves it, and keeps and sends the id.
type Resolver interface {
	// ModelID returns the id Models lists for the model name names: name
	// when it is such an id, else the id of the model it is another name
	// of; false when it names none listed now.
	ModelID(ctx context.Context, name string) (string, bool)
}

// ResolveModel returns the id of the model name names among models,
// catalog's list: name when it is one's id, else the id catalog (a
// Resolver) gives the model it is another name of; false when it names
// none of them.
func ResolveModel(ctx context.Context, catalog Catalog, models []ModelInfo, name string) (string, bool) {
	known := func(id string) bool {
		return slices.ContainsFunc(models, func(m ModelInfo) bool { return m.ID == id })
	}
	if known(name) {
		return name, true
	}
	r, ok := catalog.(Resolver)
	if !ok {
		return "", false
	}
	id, ok := r.ModelID(ctx, name)
	return id, ok && known(id)
}

// ErrorKind classifies upstream failures for messages, metrics and retries.
type ErrorKind string

// Error kinds.
const (
	KindRateLimited  ErrorKind = "rate_limited"   // 429
	KindUpstream     ErrorKind = "upstream_error" // 5xx or other non-2xx
	KindConnection   ErrorKind = "connection"     // refused, reset, cut mid-stream
	KindTimeout      ErrorKind = "timeout"        // first-token or idle timeout
	KindMalformed    ErrorKind = "malformed"      // a chunk that does not parse
	KindBadRequest   ErrorKind = "bad_request"    // 4xx other than 429: not retried
	KindUnknownModel ErrorKind = "unknown_model"
	// KindContextLength is a prompt the upstream refused as longer than
	// the model's context window.
	KindContextLength ErrorKind = "context_length"
	// KindQuota is a provider refusing for want of credit or quota (HTTP
	// 402, OpenAI's 429 insufficient_quota): no wait cures it, so it is
	// not retried, and its operator has to act (plan, billing).
	KindQuota ErrorKind = "quota_exhausted"
)

// Error is an upstream failure. Message is safe to show to the user (it
// never contains an API key).
type Error struct {
	Kind    ErrorKind
	Status  int // HTTP status, when there was one
	Message string
	Err     error

	// ContextTokens and PromptTokens are what a KindContextLength refusal
	// named (0: it named none): the model's context window, and the tokens
	// of the refused prompt as the upstream counted them (of the whole
	// request, answer included, when it gave only that total). The hub
	// fits the prompt into them and asks once more.
	ContextTokens int
	PromptTokens  int
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s (HTTP %d): %s", e.Kind, e.Status, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of an *Error in err's chain, or "" if there is none.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

type requestIDKey struct{}

// WithRequestID tags ctx with the id of the generation a request serves.
// Clients send it upstream as X-Request-ID and put it in their logs, so one
// id ties a socket, an upstream request and a stored message together.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id WithRequestID put in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
