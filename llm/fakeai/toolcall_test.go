package fakeai_test

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"chatd/llm/fakeai"
)

// TestToolCallFault: tool_call streams a model asking to call a tool: the
// tokens before it (none by default), a chunk carrying tool_calls, the
// finish reason "tool_calls", the usage and [DONE]; not streaming, a
// message with tool_calls and that finish reason.
func TestToolCallFault(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	const call = `"tool_calls":[{"index":0,"id":"call_fake1","type":"function","function":{"name":"get_weather"`
	for _, after := range []int{0, 2} {
		t.Run("after "+strconv.Itoa(after), func(t *testing.T) {
			t.Parallel()
			resp := post(t, testCtx(t), srv.URL, streamBody("[[fake tokens=5 fault=tool_call after="+strconv.Itoa(after)+"]]", true), nil)
			raw, err := io.ReadAll(resp.Body)
			if err != nil || !strings.Contains(string(raw), call) {
				t.Fatalf("err %v, body lacks the tool call: %s", err, raw)
			}
			chunks, done := parseSSE(t, raw)
			text, finish := "", ""
			for _, c := range chunks {
				for _, ch := range c.Choices {
					if ch.Delta.Content != nil {
						text += *ch.Delta.Content
					}
					if ch.FinishReason != nil {
						finish = *ch.FinishReason
					}
				}
			}
			last := chunks[len(chunks)-1]
			if !done || finish != "tool_calls" || text != fakeai.ExpectedPrefix(fakeai.Config{Tokens: 5}, after) ||
				last.Usage == nil || last.Usage.CompletionTokens != after+1 {
				t.Fatalf("done %v finish %q text %q usage %+v", done, finish, text, last.Usage)
			}
		})
	}
	t.Run("not streaming", func(t *testing.T) {
		t.Parallel()
		body := streamBody("[[fake fault=tool_call]]", false)
		body["stream"] = false
		resp := post(t, testCtx(t), srv.URL, body, nil)
		var c struct {
			Choices []struct {
				Message struct {
					Content   *string           `json:"content"`
					ToolCalls []json.RawMessage `json:"tool_calls"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || len(c.Choices) != 1 {
			t.Fatalf("err %v, %d choices", err, len(c.Choices))
		}
		ch := c.Choices[0]
		if ch.FinishReason != "tool_calls" || ch.Message.Content != nil || len(ch.Message.ToolCalls) != 1 {
			t.Fatalf("finish %q content %v tool calls %d", ch.FinishReason, ch.Message.Content, len(ch.Message.ToolCalls))
		}
	})
}
