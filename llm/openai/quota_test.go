package openai_test

import (
	"errors"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestQuotaExhausted: an HTTP 429 that says the account is out of credit
// (OpenAI's insufficient_quota) is not retried (no wait cures it) and is
// reported as the provider's refusal naming the quota, not as rate
// limiting to try again in a moment.
func TestQuotaExhausted(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 5}})
	r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake fault=quota retry_after=1s]]", 0)
	var e *llm.Error
	if !errors.As(r.err, &e) || e.Kind != llm.KindUpstream || e.Status != 429 {
		t.Fatalf("err %#v, want kind %s status 429", r.err, llm.KindUpstream)
	}
	if !strings.Contains(e.Message, "quota") || strings.Contains(e.Message, "try again in a moment") {
		t.Errorf("message %q does not say the quota is used up", e.Message)
	}
	if got := srv.Requests(); got != 1 {
		t.Errorf("server saw %d requests, want 1 (not retried)", got)
	}
}
