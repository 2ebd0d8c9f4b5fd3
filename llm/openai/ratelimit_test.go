package openai_test

import (
	"errors"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestRateLimitSaysTheWait: an answer refused 429 until its retries ran
// out tells the user the wait the provider named (Retry-After, rounded up
// to a second), where it said "in a moment" whatever the provider asked
// for (an Azure deployment's "retry after 60 seconds" among them); without
// a Retry-After it still says "in a moment".
func TestRateLimitSaysTheWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, prompt, want string
	}{
		{"a minute", "[[fake fault=429 retry_after=60]]", "try again in 1m."},
		{"seconds rounded up", "[[fake fault=429 retry_after=1500ms]]", "try again in 2s."},
		{"none named", "[[fake fault=429]]", "try again in a moment."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			r := stream(testCtx(t), newClient(srv.URL, nil), tc.prompt, 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != llm.KindRateLimited || e.Status != 429 {
				t.Fatalf("err %v, want rate_limited (HTTP 429)", r.err)
			}
			if !strings.HasSuffix(e.Message, tc.want) {
				t.Fatalf("message %q, want it to end %q", e.Message, tc.want)
			}
		})
	}
}
