package openai_test

import (
	"errors"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestQuotaExhausted: a provider refusing for want of credit or quota
// (OpenAI's HTTP 429 with insufficient_quota, or an HTTP 402 as
// OpenRouter, DeepSeek and Anthropic answer it) is not retried (no wait
// cures it) and ends the answer as quota_exhausted, its message saying so
// with the provider's text, not as rate limiting to try again in a
// moment, nor (the 402) as a bad request.
func TestQuotaExhausted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, marker string
		status       int
		provider     string // the provider's text, in the message
	}{
		{"429 insufficient_quota", "fault=quota retry_after=1s", 429, "You exceeded your current quota"},
		{"402", "fault=402", 402, "Insufficient credits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 5}})
			r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake "+tc.marker+"]]", 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != llm.KindQuota || e.Status != tc.status {
				t.Fatalf("err %v, want kind %s status %d", r.err, llm.KindQuota, tc.status)
			}
			if !strings.HasPrefix(e.Message, "The model provider refused the request: out of credit / quota exhausted") ||
				!strings.Contains(e.Message, tc.provider) || strings.Contains(e.Message, "try again") {
				t.Errorf("message %q does not say the credit or quota is used up, with the provider's %q", e.Message, tc.provider)
			}
			if got := srv.Requests(); got != 1 {
				t.Errorf("server saw %d requests, want 1 (not retried)", got)
			}
		})
	}
}
