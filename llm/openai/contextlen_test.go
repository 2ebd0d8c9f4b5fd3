package openai_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestContextLengthRefusalsOfOtherServers: the refusals of a prompt as too
// long by xAI, Together AI, SGLang and LM Studio, which send no code
// context_length_exceeded, are context_length (the hub fits the prompt
// again and asks once more) with the window and the prompt's tokens they
// name, where they were bad_request and every later message of the
// conversation was refused alike. Refusals that share some of their words
// but not what they say stay bad_request.
func TestContextLengthRefusalsOfOtherServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		body           string
		kind           llm.ErrorKind
		window, prompt int
	}{
		{"xai", `{"code":"Client specified an invalid argument","error":"This model's maximum prompt length is 131072 but the request contains 537812 tokens."}`,
			llm.KindContextLength, 131072, 537812},
		{"together", `{"id":"o-1","error":{"message":"The input (250000 tokens) is longer than the model's context length (200000 tokens).","type":"invalid_request_error","param":null,"code":null}}`,
			llm.KindContextLength, 200000, 250000},
		{"sglang", `{"object":"error","message":"The input (9000 tokens) is longer than the model's context length (8192 tokens).","type":"BadRequestError","param":null,"code":400}`,
			llm.KindContextLength, 8192, 9000},
		{"sglang requested total", `{"object":"error","message":"Requested token count exceeds the model's maximum context length of 262144 tokens. You requested a total of 267042 tokens: 201506 tokens from the input messages and 65536 tokens for the completion. Please reduce the number of tokens in the input messages or the completion to fit within the limit.","type":"BadRequestError","param":null,"code":400}`,
			llm.KindContextLength, 262144, 201506},
		{"lm studio", `{"error":"Trying to keep the first 6547 tokens when context overflows. However, the model is loaded with context length of only 4096 tokens, which is not enough. Try to load the model with a larger context length, or provide a shorter input"}`,
			llm.KindContextLength, 4096, 6547},
		{"lm studio, other words", `{"error":"Trying to keep the first 14538 tokens when context the overflows. However, the model is loaded with a context length of only 2048 tokens, which is not enough. Try to load the model with a larger context length, or provide a shorter input"}`,
			llm.KindContextLength, 2048, 14538},
		{"lm studio n_keep", `{"error":"The number of tokens to keep from the initial prompt is greater than the context length (n_keep: 5228 >= n_ctx: 4096). Try to load the model with a larger context length, or provide a shorter input."}`,
			llm.KindContextLength, 4096, 5228},
		{"lm studio n_keep, no numbers", `{"error":"The number of tokens to keep from the initial prompt is greater than the context length."}`,
			llm.KindContextLength, 0, 0},
		{"prompt length in characters", `{"error":{"message":"The maximum prompt length is 4000 characters.","type":"invalid_request_error"}}`,
			llm.KindBadRequest, 0, 0},
		{"context length option", `{"error":"The model can be loaded with a context length of up to 8192 tokens only on this machine."}`,
			llm.KindBadRequest, 0, 0},
		{"input longer than allowed, no context", `{"error":{"message":"The input (12 images) is longer than allowed.","type":"invalid_request_error"}}`,
			llm.KindBadRequest, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			checkRefusal(t, stream(testCtx(t), newClient(srv.URL, nil), "hi", 0).err, tc.kind, tc.window, tc.prompt)
		})
	}
}

// TestContextLengthRefusalsFromFake: the fake upstream's refusals in these
// servers' wordings and bodies are read as the real ones are.
func TestContextLengthRefusalsFromFake(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	c := newClient(srv.URL, nil)
	for _, words := range []fakeai.ContextWords{fakeai.ContextXAI, fakeai.ContextTogether, fakeai.ContextLMStudio} {
		t.Run(string(words), func(t *testing.T) {
			t.Parallel()
			// The system prompt's 3 words and these 3: 6 prompt tokens.
			r := stream(testCtx(t), c, "one two three [[fake context=4 context_words="+string(words)+"]]", 0)
			checkRefusal(t, r.err, llm.KindContextLength, 4, 6)
		})
	}
}

// checkRefusal fails t unless err is an *llm.Error of kind naming window
// and prompt tokens.
func checkRefusal(t *testing.T, err error, kind llm.ErrorKind, window, prompt int) {
	t.Helper()
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != kind {
		t.Fatalf("err %v, want kind %q", err, kind)
	}
	if e.ContextTokens != window || e.PromptTokens != prompt {
		t.Fatalf("window %d, prompt %d tokens; want %d, %d (%s)", e.ContextTokens, e.PromptTokens, window, prompt, e.Message)
	}
}
