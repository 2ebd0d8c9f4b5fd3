package openai_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"chatd/llm"
)

// TestStreamChunkShapes streams chunks that chatd's decoder takes and
// chunks it leaves to json.Unmarshal (Azure's content filters, a delta
// with logprobs, OpenAI's final usage with token details) from a real
// server, and checks that the text, finish reason and usage come through
// either way, in order.
func TestStreamChunkShapes(t *testing.T) {
	t.Parallel()
	chunks := []string{
		`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x"}`,
		`{"choices":[{"index":0,"delta":{"content":"a\u00e9"},"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}`,
		`{"choices":[{"index":0,"delta":{"content":" b"},"logprobs":null,"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"content":" c"},"logprobs":{"content":[{"token":" c","logprob":-0.5,"top_logprobs":[]}]}}]}`,
		`{"choices":[{"index":1,"delta":{"content":"other choice"}},{"index":0,"delta":{"content":"\ud83d\ude42"}}]}`,
		`{"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],"usage":null}`,
		`{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range chunks {
			fmt.Fprintf(w, "data: %s\n\n", c)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	r := stream(testCtx(t), newClient(srv.URL, nil), "go", 0)
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkDeltas(t, r.deltas)
	if want := "aé b c🙂"; r.text() != want {
		t.Fatalf("text %q, want %q", r.text(), want)
	}
	want := llm.Usage{PromptTokens: 9, CompletionTokens: 5, TotalTokens: 14}
	if r.res.FinishReason != "length" || r.res.Usage == nil || !reflect.DeepEqual(*r.res.Usage, want) {
		t.Fatalf("finish %q, usage %+v", r.res.FinishReason, r.res.Usage)
	}
}
