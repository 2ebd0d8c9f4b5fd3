package openai

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
)

// The fields of a request's token bound: reasoning models refuse
// max_tokens; older servers do not know max_completion_tokens.
const (
	fieldMaxTokens  = "max_tokens"
	fieldCompletion = "max_completion_tokens"
)

// maxLearned bounds the models whose kind a Client learns from refusals.
const maxLearned = 1024

// modelKinds tells a client's reasoning models from the others: the ones
// declared (Options.ReasoningModels), else what an upstream refusal of a
// token bound's field taught, else the model's name. It also remembers
// the sampling fields each model's upstream refused (see refuse).
type modelKinds struct {
	declared map[string]bool  // "*": every model
	now      func() time.Time // nil: time.Now; tests set their clock
	mu       sync.Mutex
	learned  map[string]bool // model -> reasoning, at most maxLearned
	// refused: model -> sampling field -> when the upstream refused it,
	// at most maxLearned models.
	refused map[string]map[string]time.Time
}

func newModelKinds(declared []string) *modelKinds {
	k := &modelKinds{declared: make(map[string]bool), learned: make(map[string]bool),
		refused: make(map[string]map[string]time.Time)}
	for _, m := range declared {
		if m = strings.TrimSpace(m); m != "" {
			k.declared[m] = true
		}
	}
	return k
}

// reasoning reports whether model is served as a reasoning model.
func (k *modelKinds) reasoning(model string) bool {
	k.mu.Lock()
	v, ok := k.learned[model]
	k.mu.Unlock()
	if ok {
		return v
	}
	return k.declared[model] || k.declared["*"] || reasoningName(model)
}

// thinks reports whether model is a reasoning model that may think
// silently before its first token (see Options.ReasoningFirstTokenTimeout):
// one declared or known by name (thinkingName), even when its server
// takes max_tokens, or one that asked for max_completion_tokens. The name
// may carry a provider's prefix (OpenRouter's "openai/o3-mini"), which
// does not change the token field it is sent.
func (k *modelKinds) thinks(model string) bool {
	k.mu.Lock()
	learned := k.learned[model]
	k.mu.Unlock()
	return learned || k.declared[model] || k.declared["*"] || thinkingName(model[strings.LastIndexByte(model, '/')+1:])
}

// switchField reports whether err is the upstream refusing the token
// bound's field sent (asking for the other one), and then learns that
// model takes the other field. A model go-openai knows by name for a
// reasoning model is never switched to max_tokens, which go-openai
// itself refuses to send it.
func (k *modelKinds) switchField(model, sent string, err error) bool {
	if sent == "" || refusedTokenField(err) != sent || (sent == fieldCompletion && reasoningName(model)) {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.learned[model]; ok || len(k.learned) < maxLearned {
		k.learned[model] = sent == fieldMaxTokens
	}
	return true
}

// reasoningName reports OpenAI's reasoning models by name; go-openai
// refuses to send them max_tokens.
func reasoningName(model string) bool {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5", "gpt-6"} {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

// thinkingName reports OpenAI's reasoning models by name (reasoningName)
// that think before they answer: not gpt-5-chat (gpt-5-chat-latest), the
// chat model behind ChatGPT, which answers at once, though go-openai
// knows it by its gpt-5 prefix (it is sent max_completion_tokens).
func thinkingName(model string) bool {
	return reasoningName(model) && !strings.HasPrefix(model, "gpt-5-chat")
}

// tokenField names the field of req's token bound ("" when it has none).
func tokenField(req goopenai.ChatCompletionRequest) string {
	switch {
	case req.MaxCompletionTokens > 0:
		return fieldCompletion
	//lint:ignore SA1019 the field sent to non-reasoning models
	case req.MaxTokens > 0:
		return fieldMaxTokens
	}
	return ""
}

// refusedTokenField returns the token bound's field an HTTP 400 refuses
// as unsupported while naming the other one: OpenAI's "Unsupported
// parameter: 'max_tokens' is not supported with this model. Use
// 'max_completion_tokens' instead.", or an older server's "Unrecognized
// request argument supplied: max_completion_tokens". Any other refusal
// (a bound too large, ...) gives "".
func refusedTokenField(err error) string {
	var e *goopenai.APIError
	if !errors.As(err, &e) || e.HTTPStatusCode != http.StatusBadRequest {
		return ""
	}
	m := strings.ToLower(e.Message)
	if !strings.Contains(m, fieldCompletion) || !unsupported(m) {
		return ""
	}
	if strings.Contains(strings.ReplaceAll(m, fieldCompletion, ""), fieldMaxTokens) {
		return fieldMaxTokens
	}
	return fieldCompletion
}

// unsupported reports the wording of a refused parameter.
func unsupported(m string) bool {
	for _, s := range []string{"unsupported", "not supported", "unrecognized", "unknown", "extra"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
