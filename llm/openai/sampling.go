package openai

import (
	"errors"
	"net/http"
	"strings"

	goopenai "github.com/sashabaranov/go-openai"
)

// samplingFields are the request fields a model may refuse to take at
// all: OpenAI's reasoning models refuse temperature and top_p other than
// their default, and stop.
var samplingFields = []string{"temperature", "top_p", "stop"}

// refusedSampling returns the sampling field of req an HTTP 400 refuses
// as unsupported (its param, or the field quoted in its message: OpenAI's
// "Unsupported value: 'temperature' does not support 0.7 with this
// model."), or that go-openai refuses to send to a reasoning model it
// knows by name (a temperature or top_p other than 1), or "" for any
// other error or a field req does not send.
func refusedSampling(err error, req goopenai.ChatCompletionRequest) string {
	if errors.Is(err, goopenai.ErrReasoningModelLimitationsOther) || errors.Is(err, goopenai.ErrReasoningSamplingUnsupported) {
		for _, f := range samplingFields[:2] { // go-openai checks temperature and top_p
			if sendsField(req, f) {
				return f
			}
		}
		return ""
	}
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
