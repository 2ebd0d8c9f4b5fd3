package openai_test

import (
	"errors"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestProviderFinishReasons: finish reasons of providers' own are read
// as what they mean, so that the user is told (docs/protocol.md): Mistral's
// "model_length" is an answer cut at the model's limit ("length", which
// clients note under the answer), DeepSeek's "insufficient_system_resource"
// an answer the provider broke off (an upstream error with the text so far
// kept, not a complete answer); others pass through as the upstream said.
func TestProviderFinishReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		finish string
		want   string        // the Result's finish reason, when no error
		kind   llm.ErrorKind // "": success
	}{
		{"model_length", "length", ""},
		{"insufficient_system_resource", "", llm.KindUpstream},
		{"content_filter", "content_filter", ""},
		{"tool_calls", "tool_calls", ""},
		{"stop", "stop", ""},
	}
	for _, tc := range tests {
		t.Run(tc.finish, func(t *testing.T) {
			t.Parallel()
			cfg := fakeai.Config{Tokens: 4}
			srv := fakeai.Start(t, fakeai.Options{Defaults: cfg})
			r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake finish="+tc.finish+"]]", 0)
			if r.text() != fakeai.ExpectedText(cfg) {
				t.Fatalf("text %q, want the whole text streamed", r.text())
			}
			if tc.kind == "" {
				if r.err != nil || r.res.FinishReason != tc.want {
					t.Fatalf("err %v finish %q, want finish %q", r.err, r.res.FinishReason, tc.want)
				}
				return
			}
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != tc.kind || !strings.Contains(e.Message, "resources") {
				t.Fatalf("err %v (finish %q), want %s saying the provider lacked the resources", r.err, r.res.FinishReason, tc.kind)
			}
			if n := srv.Requests(); n != 1 {
				t.Fatalf("%d requests: text was delivered, nothing may be asked again", n)
			}
		})
	}
}
