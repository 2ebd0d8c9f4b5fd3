package openai

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
)

// samplingFields are the request fields a model may refuse to take at
// all: OpenAI's reasoning models refuse temperature and top_p other than
// their default, and stop.
var samplingFields = []string{"temperature", "top_p", "stop"}

// refusedAge is how long a sampling field an upstream refused for a
// model is left out of the model's later requests: OpenAI's reasoning
// models refuse temperature and top_p at every request, and each refusal
// costs a request before the first token. Then it is sent again, and a
// refusal teaches it again (an upstream that now takes it gets it).
const refusedAge = time.Hour

// refuse remembers that model's upstream refused the sampling field f,
// for refusedAge. With maxLearned models remembered, the lessons past
// refusedAge are forgotten to make room; when none is, f is not
// remembered (the next request is refused again and still answered).
func (k *modelKinds) refuse(model, f string) {
	now := k.clock()
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.refused[model]; !ok && len(k.refused) >= maxLearned {
		for m, fields := range k.refused {
			if forgetOld(fields, now) {
				delete(k.refused, m)
			}
		}
		if len(k.refused) >= maxLearned {
			return
		}
	}
	if k.refused[model] == nil {
		k.refused[model] = make(map[string]time.Time, len(samplingFields))
	}
	k.refused[model][f] = now
}

// refusedFields returns the sampling fields model's upstream refused
// within refusedAge, in samplingFields' order (nil: none), and forgets
// the older ones.
func (k *modelKinds) refusedFields(model string) []string {
	now := k.clock()
	k.mu.Lock()
	defer k.mu.Unlock()
	fields, ok := k.refused[model]
	if !ok {
		return nil
	}
	if forgetOld(fields, now) {
		delete(k.refused, model)
		return nil
	}
	var out []string
	for _, f := range samplingFields {
		if _, ok := fields[f]; ok {
			out = append(out, f)
		}
	}
	return out
}

// forgetOld deletes the fields refused refusedAge or more before now and
// reports whether none is left.
func forgetOld(fields map[string]time.Time, now time.Time) bool {
	for f, at := range fields {
		if now.Sub(at) >= refusedAge {
			delete(fields, f)
		}
	}
	return len(fields) == 0
}

func (k *modelKinds) clock() time.Time {
	if k.now != nil {
		return k.now()
	}
	return time.Now()
}

// refusedSampling returns the sampling field of req an HTTP 400 refuses
// as unsupported (its param, or the field quoted in its message: OpenAI's
// "Unsupported value: 'temperature' does not support 0.7 with this
// model."), or "" for any other error or a field req does not send.
func refusedSampling(err error, req goopenai.ChatCompletionRequest) string {
	var e *goopenai.APIError
	if !errors.As(err, &e) || e.HTTPStatusCode != http.StatusBadRequest {
		return ""
	}
	m := strings.ToLower(e.Message)
	if !unsupported(m) {
		return ""
	}
	param := ""
	if e.Param != nil {
		param = *e.Param
	}
	for _, f := range samplingFields {
		if (param == f || strings.Contains(m, "'"+f+"'")) && sendsField(req, f) {
			return f
		}
	}
	return ""
}

// sendsField reports whether req sends the sampling field f.
func sendsField(req goopenai.ChatCompletionRequest, f string) bool {
	switch f {
	case "temperature":
		return req.Temperature != 0
	case "top_p":
		return req.TopP != 0
	}
	return len(req.Stop) > 0
}

// dropField leaves the sampling field f out of req: the upstream's
// default applies.
func dropField(req *goopenai.ChatCompletionRequest, f string) {
	switch f {
	case "temperature":
		req.Temperature = 0
	case "top_p":
		req.TopP = 0
	default:
		req.Stop = nil
	}
}

// withoutSampling is req without its temperature and top_p, as go-openai
// is given it: its ReasoningValidator refuses, before any request, a
// temperature or top_p other than 1 to every model whose id starts with
// o1, o3, o4 or gpt-5 (gpt-5-chat-latest, which takes them, too). doer
// writes them into the body instead (samplingMembers), so that only the
// upstream's own refusal drops one (refusedSampling, remembered for
// refusedAge: modelKinds.refuse).
func withoutSampling(req goopenai.ChatCompletionRequest) goopenai.ChatCompletionRequest {
	req.Temperature, req.TopP = 0, 0
	return req
}

// samplingMembers are req's temperature and top_p (a 0 is not sent) as
// JSON object members without braces, as go-openai would write them, nil
// when it sends neither. A temperature of nonZero's stand-in for 0 is
// written 0: servers read the stand-in (about 1.4e-45) as a positive
// temperature, and one that divides the logits by it (llama.cpp's
// sampler does) overflows them instead of choosing greedily, as 0 makes
// every server do. top_p keeps the stand-in: vLLM refuses a top_p of 0.
func samplingMembers(req goopenai.ChatCompletionRequest) []byte {
	var m struct {
		Temperature *float32 `json:"temperature,omitempty"`
		TopP        *float32 `json:"top_p,omitempty"`
	}
	if t := req.Temperature; t != 0 {
		if t == math.SmallestNonzeroFloat32 {
			t = 0
		}
		m.Temperature = &t
	}
	if req.TopP != 0 {
		m.TopP = &req.TopP
	}
	b, _ := json.Marshal(m) // finite numbers (llm.CheckParams): cannot fail
	if len(b) <= 2 {
		return nil
	}
	return b[1 : len(b)-1]
}
