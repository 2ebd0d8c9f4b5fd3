package openai_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestUsageTotal: the usage of an answer is what the upstream reported,
// with the total worked out when it gave only the prompt's and the
// answer's tokens (a total of 0 was shown under the answer before); a
// total it gave is kept as it is.
func TestUsageTotal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, usage string
		want        llm.Usage
	}{
		{"all three", `{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}`, llm.Usage{PromptTokens: 9, CompletionTokens: 5, TotalTokens: 14}},
		{"no total", `{"prompt_tokens":9,"completion_tokens":5}`, llm.Usage{PromptTokens: 9, CompletionTokens: 5, TotalTokens: 14}},
		{"no total, details", `{"prompt_tokens":9,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":0}}`,
			llm.Usage{PromptTokens: 9, CompletionTokens: 5, TotalTokens: 14}},
		{"a total of its own", `{"prompt_tokens":9,"completion_tokens":5,"total_tokens":20}`, llm.Usage{PromptTokens: 9, CompletionTokens: 5, TotalTokens: 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := sseServer(t, contentChunk("hi")+
				`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"+
				`data: {"choices":[],"usage":`+tc.usage+"}\n\ndata: [DONE]\n\n")
			r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
			if r.err != nil || r.res.Usage == nil || !reflect.DeepEqual(*r.res.Usage, tc.want) {
				t.Fatalf("usage %+v, err %v; want %+v", r.res.Usage, r.err, tc.want)
			}
		})
	}
}

// TestStreamOptionsRefused: an upstream that refuses stream_options (Azure
// OpenAI before API version 2024-09-01-preview: "Unrecognized request
// argument supplied: stream_options"; servers that take no field they do
// not know, with 400 or 422) is asked again at once without it, and not
// sent it again: every answer failed as a rejected request before, as
// nothing configures Options.DisableStreamUsage. Other refusals are not
// taken for it.
func TestStreamOptionsRefused(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3, Refuse: "stream_options"}})
	c := newClient(srv.URL, nil)
	for i := range 2 {
		r := stream(testCtx(t), c, "hi", 0)
		if r.err != nil || r.text() != fakeai.ExpectedText(fakeai.Config{Tokens: 3}) {
			t.Fatalf("answer %d: err %v text %q", i+1, r.err, r.text())
		}
	}
	if n := srv.Requests(); n != 3 {
		t.Fatalf("%d requests, want 3: one refused, then none sent stream_options", n)
	}
	if rec, _ := srv.LastRequest(); rec.StreamOptions {
		t.Fatalf("the last request still sent stream_options: %s", rec.Body)
	}

	t.Run("422 naming it in a detail list", func(t *testing.T) {
		t.Parallel()
		const body = `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","stream_options"],"msg":"Extra inputs are not permitted","input":{"include_usage":true}}]},"type":"invalid_request_error","param":null,"code":null}`
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			b, _ := io.ReadAll(r.Body)
			if strings.Contains(string(b), "stream_options") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprint(w, body)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, contentChunk("ok")+"data: [DONE]\n\n")
		}))
		t.Cleanup(srv.Close)
		r := stream(testCtx(t), newClient(srv.URL, nil), "hi", 0)
		if r.err != nil || r.text() != "ok" || n.Load() != 2 {
			t.Fatalf("err %v text %q after %d requests", r.err, r.text(), n.Load())
		}
	})
	t.Run("another refusal", func(t *testing.T) {
		t.Parallel()
		srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3, Refuse: "stop"}})
		req := request("hi")
		req.Stop = []string{"x"}
		if _, err := newClient(srv.URL, nil).Stream(testCtx(t), req, func(string) {}); err != nil {
			t.Fatal(err)
		}
		if rec, _ := srv.LastRequest(); !rec.StreamOptions {
			t.Fatal("a refused stop dropped stream_options too")
		}
	})
}
