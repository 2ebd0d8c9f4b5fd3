package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"

	goopenai "github.com/sashabaranov/go-openai"

	"chatd/llm"
)

// listBody is the body of a model list request, read by the transport
// (doer) instead of go-openai, which is handed an empty list.
type listBody struct {
	data []byte
	err  error // reading the body failed
}

// maxListBody bounds a model list: OpenRouter's, the largest known, is
// about a tenth of it.
const maxListBody = 16 << 20

// errListTooLarge is a model list of more than maxListBody bytes.
var errListTooLarge = fmt.Errorf("the model list is larger than %d MiB", maxListBody>>20)

// read reads and closes body, keeping at most maxListBody bytes.
func (l *listBody) read(body io.ReadCloser) {
	defer body.Close()
	l.data, l.err = io.ReadAll(io.LimitReader(body, maxListBody+1))
	switch {
	case l.err != nil:
		l.err = fmt.Errorf("read the model list: %w", l.err)
	case len(l.data) > maxListBody:
		l.data, l.err = nil, errListTooLarge
	}
}

// listed is what chatd reads of one entry of a model list.
type listed struct {
	id     string
	window int // 0: not reported
}

// windowKeys are the fields servers report a model's context window in:
// OpenRouter's and LM Studio's, vLLM's, Groq's, Mistral's.
var windowKeys = []string{"context_length", "max_model_len", "context_window", "max_context_length"}

// Causes of a body that is no model list.
var (
	errListWebPage = errors.New("the model list is a web page")
	errListError   = errors.New("the model list is an error")
	errListShape   = errors.New("the model list is not a JSON object with a data array")
)

// parseModelList reads a model list ({"data": [{"id": ...}, ...]}) entry
// by entry: an entry that is no object or has no string id is left out,
// and so is a context window that is no count of tokens (see tokenCount);
// ignored describes each. A missing or null data array is an empty list.
func parseModelList(body []byte) (entries []listed, ignored []string, err error) {
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '<' {
		return nil, nil, errListWebPage
	}
	var list struct {
		Data   json.RawMessage `json:"data"`
		Error  json.RawMessage `json:"error"`
		Object json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errListShape, err)
	}
	if isSet(list.Error) || string(list.Object) == `"error"` || len(list.Data) == 0 && errorOf(body) != nil {
		return nil, nil, errListError
	}
	var data []json.RawMessage
	if isSet(list.Data) {
		if err := json.Unmarshal(list.Data, &data); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", errListShape, err)
		}
	}
	for i, raw := range data {
		e, why := parseEntry(raw)
		if e.id != "" {
			entries = append(entries, e)
		}
		if why != "" {
			ignored = append(ignored, fmt.Sprintf("data[%d]%s", i, why))
		}
	}
	return entries, ignored, nil
}

// isSet reports a JSON value present and not null.
func isSet(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// parseEntry reads one entry of a model list; why describes what was
// left out of it ("" when nothing was).
func parseEntry(raw json.RawMessage) (e listed, why string) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return e, ": not an object: " + snippet(raw)
	}
	if json.Unmarshal(fields["id"], &e.id) != nil || e.id == "" {
		return listed{}, ": no string id: " + snippet(fields["id"])
	}
	if !chats(fields["capabilities"]) {
		return listed{}, ""
	}
	for _, k := range windowKeys {
		v, ok := fields[k]
		if !ok {
			continue
		}
		n, ok := tokenCount(v)
		if !ok {
			why += fmt.Sprintf(" model %q %s %s", e.id, k, snippet(v))
		}
		e.window = max(e.window, n)
	}
	return e, why
}

// chats reports whether a model list entry's capabilities let it chat:
// false only for Mistral's {"completion_chat": false} (its OCR, embedding
// and moderation models); capabilities in another shape, or none, say
// nothing.
func chats(capabilities json.RawMessage) bool {
	var c struct {
		CompletionChat *bool `json:"completion_chat"`
	}
	return json.Unmarshal(capabilities, &c) != nil || c.CompletionChat == nil || *c.CompletionChat
}

// tokenCount reads a count of tokens: a JSON integer, an integral number
// (8192.0, 8.192e3) or a string holding one ("8192"). Null, "" and 0 are 0
// (not reported), with ok true; anything else (another type, a fraction, a
// negative count or one above maxNamedTokens) is 0 with ok false.
func tokenCount(raw json.RawMessage) (n int, ok bool) {
	num := bytes.TrimSpace(raw)
	if string(num) == "null" {
		return 0, true
	}
	if len(num) > 0 && num[0] == '"' {
		var s string
		if json.Unmarshal(num, &s) != nil {
			return 0, false
		}
		num = bytes.TrimSpace([]byte(s))
	}
	if len(num) == 0 {
		return 0, true
	}
	if num[0] != '-' && (num[0] < '0' || num[0] > '9') || !json.Valid(num) {
		return 0, false // not a JSON number: true, an object, "abc"
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f > maxNamedTokens {
		return 0, false
	}
	return int(f), true
}

// maxSnippet bounds a value quoted in a log line.
const maxSnippet = 40

// snippet is raw, shortened for a log line.
func snippet(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(missing)"
	}
	if r := []rune(string(raw)); len(r) > maxSnippet {
		return string(r[:maxSnippet]) + "…"
	}
	return string(raw)
}

// errorOf returns the error a body in the shape of an error response
// states ({"error": {...}}, {"error": "..."}, {"message": ...},
// {"detail": ...}), nil when it states none.
func errorOf(body []byte) *goopenai.APIError {
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil && isSet(v.Error) {
		e := &goopenai.APIError{}
		if json.Unmarshal(v.Error, e) == nil && e.Message != "" {
			return e
		}
	}
	return bodyError(&goopenai.RequestError{Body: body})
}

// listError turns a model list that could not be read (body: nil) or is
// no model list into an *llm.Error.
func listError(err error, body []byte, key secrets) *llm.Error {
	switch {
	case errors.Is(err, errListTooLarge):
		return &llm.Error{Kind: llm.KindUpstream, Status: http.StatusOK, Err: err,
			Message: fmt.Sprintf("The model provider's model list is larger than %d MiB.", maxListBody>>20)}
	case body == nil:
		return &llm.Error{Kind: llm.KindConnection, Status: http.StatusOK, Err: err,
			Message: "The connection to the model provider was lost while it sent the model list."}
	case errors.Is(err, errListWebPage):
		return &llm.Error{Kind: llm.KindUpstream, Status: http.StatusOK, Err: err,
			Message: "The model provider's URL answered the model list with a web page: check its base URL (it usually ends in /v1)."}
	case errors.Is(err, errListError):
		if e := errorOf(body); e != nil {
			return reportedError(e, key, fmt.Errorf("%w: %w", err, e))
		}
		return &llm.Error{Kind: llm.KindUpstream, Err: err,
			Message: "The model provider answered the model list with an error it did not describe."}
	}
	return &llm.Error{Kind: llm.KindMalformed, Status: http.StatusOK, Err: err,
		Message: "The model provider sent a model list that could not be read."}
}
