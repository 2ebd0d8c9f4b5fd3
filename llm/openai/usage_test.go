package openai_test

import (
	"reflect"
	"testing"

	"chatd/llm"
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
