package openai

import (
	"errors"
	"net/http"
	"strings"

	goopenai "github.com/sashabaranov/go-openai"
)

// refusedStreamOptions reports an HTTP 400 or 422 that refuses the
// request's stream_options as a field the upstream does not take: Azure
// OpenAI's "Unrecognized request argument supplied: stream_options"
// (API versions before 2024-09-01-preview), or a server that takes no
// field it does not know ("Extra inputs are not permitted", in its message
// or in a list of details naming the field).
func refusedStreamOptions(err error) bool {
	var apiErr *goopenai.APIError
	var reqErr *goopenai.RequestError
	var status int
	var text string
	switch {
	case errors.As(err, &apiErr):
		status, text = apiErr.HTTPStatusCode, apiErr.Message
	case errors.As(err, &reqErr):
		status, text = reqErr.HTTPStatusCode, string(reqErr.Body)
	}
	if status != http.StatusBadRequest && status != http.StatusUnprocessableEntity {
		return false
	}
	m := strings.ToLower(text)
	return strings.Contains(m, "stream_options") && (unsupported(m) || strings.Contains(m, "not permitted"))
}
