package openai

import (
	"bytes"
	"encoding/json"
)

// The SSE fixer's rewrites of lines that report an error (or that would
// hide one from go-openai), so that go-openai reports it as OpenAI's
// `data: {"error":{...}}`.

// otherFields start the SSE field lines go-openai has no use for.
var otherFields = [][]byte{[]byte("id:"), []byte("retry:")}

// eventField starts an event's type.
var eventField = []byte("event:")

// field reports an "event", "id" or "retry" field line, dropped:
// go-openai would add it to the text in which it looks for an error body,
// so that an error event after one (`event: message` before every data
// line, as some servers send) no longer parsed and its message was lost
// (a malformed reply instead). An event's type is kept until the blank
// line that ends the event: an "error" event's data is an error (see
// errorEventData). A blank line right after a field line ends an event
// without data, which the SSE specification does not dispatch (a
// keep-alive such as `event: ping`): it is dropped too, as go-openai
// would count it toward its limit of empty messages (see comment).
func (f *sseFixer) field(l []byte) bool {
	if v, ok := bytes.CutPrefix(l, eventField); ok {
		v = trimEOL(v)
		f.errEvent = string(bytes.TrimPrefix(v, []byte(" "))) == "error"
		f.skipBlank = true
		return true
	}
	for _, p := range otherFields {
		if bytes.HasPrefix(l, p) {
			f.skipBlank = true
			return true
		}
	}
	return false
}

// errorEventData rewrites the data line of an "error" event whose
// payload has no top-level "error" member as OpenAI's
// `data: {"error":{...}}`: a JSON object is the error itself
// ({"message": ..., "type": ...}), any other text its message. It
// returns nil for a payload with an "error" member (OpenAI's shape, or
// one errorData reads).
func errorEventData(payload []byte) []byte {
	payload = bytes.TrimSpace(payload)
	var obj map[string]json.RawMessage
	var e []byte
	switch {
	case len(payload) > 0 && payload[0] == '{' && json.Unmarshal(payload, &obj) == nil:
		if _, ok := obj["error"]; ok {
			return nil
		}
		e = payload
	default:
		msg := string(payload)
		if msg == "" {
			msg = "the stream reported an error without a message"
		}
		e, _ = json.Marshal(struct {
			Message string `json:"message"`
		}{msg})
	}
	out := append([]byte("data: "), errorStart...)
	out = append(out, e...)
	return append(out, "}\n"...)
}

// errorPrefix starts llama.cpp's error line.
var errorPrefix = []byte("error:")

// errorField rewrites llama.cpp's report of a failure inside a stream, an
// "error" field holding a JSON object (`error: {"code":500,"message":...}`,
// then `data: [DONE]`), as the data line OpenAI sends
// (`data: {"error":{...}}`), which go-openai reports as an error. Left
// alone, go-openai takes it for an empty message and the [DONE] after it
// for a complete answer, so the failure went unnoticed. Other lines are
// returned as they are.
func errorField(l []byte) []byte {
	payload, ok := bytes.CutPrefix(bytes.TrimLeft(l, " "), errorPrefix)
	if !ok {
		return l
	}
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 || payload[0] != '{' || !json.Valid(payload) {
		return l
	}
	out := make([]byte, 0, len(payload)+len(errorStart)+8)
	out = append(out, "data: "...)
	out = append(out, errorStart...)
	out = append(out, payload...)
	return append(out, "}\n"...)
}

// errorWord is in every line errorData rewrites.
var errorWord = []byte(`"error"`)

// errorData rewrites a data line reporting an error in a shape go-openai
// cannot read as OpenAI's `data: {"error":{"message":...}}`: an "error"
// that is a string (Hugging Face TGI: {"error": "...", "error_type":
// "..."}), which go-openai fails to parse, so the stream ended as a
// malformed reply with the message lost; and an error object at the top
// level ({"object": "error", "message": ...}, vLLM's error shape), which
// decodes as a chunk without choices, so it went unnoticed and a [DONE]
// after it ended the answer as complete. Given a data line's payload, it
// returns the line to send instead, or nil for any other payload.
func errorData(payload []byte) []byte {
	payload = bytes.TrimSpace(payload)
	var v struct {
		Error     json.RawMessage `json:"error"`
		ErrorType json.RawMessage `json:"error_type"`
		Object    json.RawMessage `json:"object"`
	}
	if len(payload) == 0 || payload[0] != '{' || json.Unmarshal(payload, &v) != nil {
		return nil
	}
	var e []byte
	switch {
	case len(v.Error) > 0 && v.Error[0] == '"':
		e, _ = json.Marshal(struct {
			Message json.RawMessage `json:"message"`
			Type    json.RawMessage `json:"type,omitempty"`
		}{v.Error, v.ErrorType})
	case string(v.Object) == `"error"` && (len(v.Error) == 0 || string(v.Error) == "null"):
		e = payload
	default:
		return nil
	}
	out := append([]byte("data: "), errorStart...)
	out = append(out, e...)
	return append(out, "}\n"...)
}
