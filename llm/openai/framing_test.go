package openai_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestStreamFramings: streams in the shapes the SSE specification allows
// besides LF line ends, as servers behind proxies send them (bare CR or CR
// LF line ends, one event's JSON spread over several data lines, a leading
// byte order mark, each with and without event fields), come through
// whole; an error event whose data has no "error" member (the error
// object itself) fails the answer with its message, keeping the text
// before it.
func TestStreamFramings(t *testing.T) {
	t.Parallel()
	cfg := fakeai.Config{Tokens: 8}
	tests := []struct {
		name, marker string
		text         string
		kind         llm.ErrorKind // "" for none
		message      string        // in the error's message
	}{
		{"lf", "framing=lf", fakeai.ExpectedText(cfg), "", ""},
		{"bare cr", "framing=cr", fakeai.ExpectedText(cfg), "", ""},
		{"bare cr, events", "framing=cr events=true", fakeai.ExpectedText(cfg), "", ""},
		{"crlf", "framing=crlf events=true", fakeai.ExpectedText(cfg), "", ""},
		{"multiline data", "framing=multiline", fakeai.ExpectedText(cfg), "", ""},
		{"multiline data, events", "framing=multiline events=true", fakeai.ExpectedText(cfg), "", ""},
		{"byte order mark", "framing=bom", fakeai.ExpectedText(cfg), "", ""},
		{"byte order mark, events", "framing=bom events=true", fakeai.ExpectedText(cfg), "", ""},
		{"multiline reasoning", "framing=multiline reasoning=3 reasoning_key=reasoning", fakeai.ExpectedText(cfg), "", ""},
		{"error event without an error member", "fault=event_error after=3", fakeai.ExpectedPrefix(cfg, 3),
			llm.KindUpstream, "The upstream model is overloaded"},
		{"error event, bare cr", "fault=event_error after=3 framing=cr", fakeai.ExpectedPrefix(cfg, 3),
			llm.KindUpstream, "The upstream model is overloaded"},
		{"error event, multiline", "fault=event_error after=3 framing=multiline", fakeai.ExpectedPrefix(cfg, 3),
			llm.KindUpstream, "The upstream model is overloaded"},
	}
	srv := fakeai.Start(t, fakeai.Options{})
	c := newClient(srv.URL, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := stream(testCtx(t), c, "[[fake tokens=8 "+tc.marker+"]]", 0)
			if llm.KindOf(r.err) != tc.kind || (tc.kind == "" && r.err != nil) {
				t.Fatalf("err %v, want kind %q", r.err, tc.kind)
			}
			if tc.kind != "" && !strings.Contains(r.err.Error(), tc.message) {
				t.Fatalf("err %v, want %q in it", r.err, tc.message)
			}
			checkDeltas(t, r.deltas)
			if r.text() != tc.text {
				t.Fatalf("text %q, want %q", r.text(), tc.text)
			}
			if tc.kind == "" && (r.res.FinishReason != "stop" || r.res.Usage == nil) {
				t.Fatalf("finish %q, usage %v", r.res.FinishReason, r.res.Usage)
			}
		})
	}
}

// TestStreamRawShapes: bodies in the SSE specification's other shapes,
// written as they are (whole, in one write), come through: the first
// event right after a byte order mark is not lost.
func TestStreamRawShapes(t *testing.T) {
	t.Parallel()
	const chunk = `{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}`
	tests := []struct {
		name, body string
		text       string
		kind       llm.ErrorKind
	}{
		{"byte order mark", "\ufeffdata: " + chunk + "\n\ndata: [DONE]\n\n", "hi", ""},
		{"bare cr", "data: " + chunk + "\r\rdata: [DONE]\r\r", "hi", ""},
		{"bare cr, no blank lines", "data: " + chunk + "\rdata: [DONE]\r", "hi", ""},
		{"multiline", "data: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"hi\"},\ndata: \"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", "hi", ""},
		// An event whose data is empty is not dispatched (a keep-alive):
		// 400 of them, past go-openai's 300 empty messages.
		{"empty data keep-alives", "data: " + `{"choices":[{"index":0,"delta":{"content":"h"}}]}` + "\n\n" +
			strings.Repeat("data: \n\n", 200) + strings.Repeat("event: ping\ndata:\r\n\r\n", 200) + "data: " + chunk + "\n\ndata: [DONE]\n\n", "hhi", ""},
		// An event of fields only (an event type, an id, a retry time),
		// without data, is a keep-alive too: 400 of them.
		{"field-only keep-alives", "retry: 3000\n\n" + "data: " + `{"choices":[{"index":0,"delta":{"content":"h"}}]}` + "\n\n" +
			strings.Repeat("event: ping\n\n", 200) + strings.Repeat("id: 7\r\n\r\n", 200) + "data: " + chunk + "\n\ndata: [DONE]\n\n", "hhi", ""},
		{"error event in plain text", "data: " + `{"choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\nevent: error\ndata: overloaded\n\ndata: [DONE]\n\n",
			"hi", llm.KindUpstream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			r := stream(testCtx(t), newClient(srv.URL, nil), "go", 0)
			if llm.KindOf(r.err) != tc.kind || (tc.kind == "" && r.err != nil) {
				t.Fatalf("err %v, want kind %q", r.err, tc.kind)
			}
			if r.text() != tc.text {
				t.Fatalf("text %q, want %q", r.text(), tc.text)
			}
		})
	}
}
