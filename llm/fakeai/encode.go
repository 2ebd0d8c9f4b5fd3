package fakeai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"chatd/internal/jsonhex"
)

// chunkEncoder builds the SSE frames of one stream. The constant head of
// every chunk is encoded once.
type chunkEncoder struct {
	head      []byte // `data: {"id":...,"choices":[`
	usageNull bool   // add "usage":null, as OpenAI does with include_usage
	buf       []byte
}

func newChunkEncoder(id string, created int64, model string, usage bool) *chunkEncoder {
	h := []byte(`data: {"id":`)
	h = appendString(h, id)
	h = append(h, `,"object":"chat.completion.chunk","created":`...)
	h = strconv.AppendInt(h, created, 10)
	h = append(h, `,"model":`...)
	h = appendString(h, model)
	h = append(h, `,"system_fingerprint":"fp_fakeai","choices":[`...)
	return &chunkEncoder{head: h, usageNull: usage}
}

// content returns the frame of a content delta; role adds the assistant role.
func (e *chunkEncoder) content(text string, role bool) []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `{"index":0,"delta":{`...)
	if role {
		b = append(b, `"role":"assistant",`...)
	}
	b = append(b, `"content":`...)
	b = appendString(b, text)
	b = append(b, `},"logprobs":null,"finish_reason":null}]`...)
	return e.end(b, e.usageNull)
}

// finish returns the frame carrying the finish reason.
func (e *chunkEncoder) finish(reason string) []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `{"index":0,"delta":{},"logprobs":null,"finish_reason":`...)
	b = appendString(b, reason)
	b = append(b, "}]"...)
	return e.end(b, e.usageNull)
}

// errorChunk returns OpenRouter's frame of an error after the stream
// started: an ordinary chunk with a top-level "error" (a numeric code and a
// message) and finish_reason "error".
func (e *chunkEncoder) errorChunk(code int, message string) []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"error","native_finish_reason":"error"}],"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	b = append(b, '}')
	return e.end(b, e.usageNull)
}

// toolCall returns the frame of a model asking to call a tool: a delta
// carrying one function call (toolCallJSON).
func (e *chunkEncoder) toolCall() []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `{"index":0,"delta":{"content":null,"tool_calls":[`...)
	b = append(b, toolCallJSON...)
	b = append(b, `]},"logprobs":null,"finish_reason":null}]`...)
	return e.end(b, e.usageNull)
}

// toolCallJSON is the tool call of FaultToolCall, with its index as a
// chunk carries it.
const toolCallJSON = `{"index":0,"id":"call_fake1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`

// usage returns the usage frame: empty choices and the token counts.
func (e *chunkEncoder) usage(prompt, completion int) []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `],"usage":`...)
	b = appendUsage(b, prompt, completion)
	return e.end(b, false)
}

// end closes a chunk with the optional null usage and the x_fake_ts stamp.
func (e *chunkEncoder) end(b []byte, usageNull bool) []byte {
	if usageNull {
		b = append(b, `,"usage":null`...)
	}
	b = append(b, `,"x_fake_ts":`...)
	b = strconv.AppendInt(b, MonotonicNanos(), 10)
	b = append(b, "}\n\n"...)
	e.buf = b
	return b
}

func appendUsage(b []byte, prompt, completion int) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	return append(b, '}')
}

// appendString appends s as a JSON string. Like OpenAI it leaves <, > and &
// and all non-ASCII characters as they are; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', jsonhex.Digits[c>>4], jsonhex.Digits[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

// splitPoint returns an offset inside the first multi-byte character of
// frame at or after from, or -1 when there is none.
func splitPoint(frame []byte, from int) int {
	for i := from; i < len(frame); i++ {
		if frame[i] >= 0xC0 {
			return i + 1
		}
	}
	return -1
}

// errorBody returns an OpenAI-style error object.
func errorBody(message, typ, code string) []byte {
	return encodeError(map[string]any{"message": message, "type": typ, "param": nil, "code": code})
}

// encodeError returns {"error": e} followed by a newline.
func encodeError(e map[string]any) []byte {
	return encodeJSON(map[string]any{"error": e})
}

// encodeJSON returns v as JSON followed by a newline.
func encodeJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return buf.Bytes()
}
