package fakeai_test

import (
	"io"
	"testing"

	"chatd/llm/fakeai"
)

// TestContextRefusalOtherServers: context_words=xai, together and lmstudio
// refuse a prompt over the window (prompt tokens only) in the body each
// server sends, without OpenAI's code context_length_exceeded.
func TestContextRefusalOtherServers(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	tests := []struct{ words, body string }{
		{"xai", `{"code":"Client specified an invalid argument","error":"This model's maximum prompt length is 4 but the request contains 7 tokens."}`},
		{"together", `{"error":{"code":null,"message":"The input (7 tokens) is longer than the model's context length (4 tokens).","param":null,"type":"invalid_request_error"}}`},
		{"lmstudio", `{"error":"Trying to keep the first 7 tokens when context the overflows. However, the model is loaded with context length of only 4 tokens, which is not enough. Try to load the model with a larger context length, or provide a shorter input"}`},
	}
	for _, tt := range tests {
		t.Run(tt.words, func(t *testing.T) {
			t.Parallel()
			body := streamBody("five words of prompt here [[fake context=4 context_words="+tt.words+"]]", false) // and "be brief": 7
			body["max_tokens"] = 10
			resp := post(t, testCtx(t), srv.URL, body, nil)
			got, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 400 || string(got) != tt.body+"\n" {
				t.Fatalf("status %d body %s (%v), want 400 %s", resp.StatusCode, got, err, tt.body)
			}
		})
		t.Run(tt.words+" within", func(t *testing.T) {
			t.Parallel()
			body := streamBody("five words of prompt here [[fake context=7 context_words="+tt.words+"]]", false)
			body["max_tokens"] = 10
			if resp := post(t, testCtx(t), srv.URL, body, nil); resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200: the answer's max tokens do not count", resp.StatusCode)
			}
		})
	}
}
