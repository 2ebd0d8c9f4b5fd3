package openai_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/llm"
)

// TestReplyThatIsNoStream: a 200 whose body is no event stream (a base
// URL that reaches a web site answering every path with its page, short
// or long; a server that ignores "stream": true and sends the whole reply
// as JSON) fails at once, not retried, saying what came instead of
// "connection lost"; an empty body is still a connection lost, retried.
func TestReplyThatIsNoStream(t *testing.T) {
	t.Parallel()
	page := "<!doctype html>\n<html><head><title>App</title></head>\n<body><div id=root></div></body>\n</html>\n"
	tests := []struct {
		name, contentType, body string
		kind                    llm.ErrorKind
		message                 string
		requests                int32
	}{
		{"web page", "text/html; charset=utf-8", page, llm.KindUpstream, "web page", 1},
		{"long web page", "text/html", strings.Repeat("<p>line</p>\n", 400), llm.KindUpstream, "web page", 1},
		{"whole reply", "application/json",
			`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}]}`,
			llm.KindUpstream, "whole reply", 1},
		// Plain text (a health endpoint's "OK", a proxy's message) was a
		// connection lost, retried.
		{"plain text", "text/plain", "upstream connect error or disconnect/reset before headers\n", llm.KindUpstream, "not a chat completion stream", 1},
		{"plain text without newline", "text/plain", "OK", llm.KindUpstream, "not a chat completion stream", 1},
		{"empty body", "text/event-stream", "", llm.KindConnection, "connection", 3},
		{"blank lines only", "text/event-stream", "\n\n\n", llm.KindConnection, "connection", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var requests atomic.Int32
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				requests.Add(1)
				w.Header().Set("Content-Type", tc.contentType)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(ts.Close)
			r := stream(testCtx(t), newClient(ts.URL, nil), "hi", 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != tc.kind || !strings.Contains(e.Message, tc.message) {
				t.Fatalf("err %v, want %s saying %q", r.err, tc.kind, tc.message)
			}
			if n := requests.Load(); n != tc.requests || r.text() != "" {
				t.Fatalf("%d requests (want %d), text %q", n, tc.requests, r.text())
			}
		})
	}
}
