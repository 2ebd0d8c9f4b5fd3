package openai_test

import (
	"errors"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestForbiddenSaysWhy: an HTTP 403 is not only a bad key (OpenAI refuses
// a country it does not serve so, OpenRouter an input its moderation
// flagged, Azure a client outside its network rules): the message quotes
// the provider's reason, where it said only "check the API key". A 401
// still names the credentials, without quoting (a careless upstream
// repeats the key). Neither is retried.
func TestForbiddenSaysWhy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		marker, want, notWant string
	}{
		{"fault=403", "The model provider refused access (check the API key and what its account may use): Country, region, or territory not supported", ""},
		{"fault=401", "The model provider refused the credentials; check the API key.", "Fake error"},
	}
	for _, tc := range tests {
		t.Run(tc.marker, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake "+tc.marker+"]]", 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != llm.KindBadRequest {
				t.Fatalf("err %v, want bad_request", r.err)
			}
			if !strings.HasPrefix(e.Message, tc.want) || tc.notWant != "" && strings.Contains(e.Message, tc.notWant) {
				t.Fatalf("message %q, want %q", e.Message, tc.want)
			}
			if got := srv.Requests(); got != 1 {
				t.Fatalf("server saw %d requests, want 1", got)
			}
		})
	}
}
